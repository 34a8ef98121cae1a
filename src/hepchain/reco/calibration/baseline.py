"""Baseline calibration: sampling-weighted layer sum with a linear calibration.

E_raw = Σ_l w_l · E_l [MeV] (:func:`hepchain.calo.validation.weighted_layer_sum`), with w_l
the absorber thickness in front of sensor l in units of the thin layer (1 for 2.5 mm, 2 for
5 mm); E = a · E_raw + b [GeV], a and b fitted by weighted least squares (weights 1/E, i.e. a stochastic-term variance) on training data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hepchain.core.errors import DataError


@dataclass
class LinearCalibration:
    """E [GeV] = slope · E_raw [MeV] + offset."""

    slope: float = 0.0
    offset: float = 0.0

    def fit(self, raw: np.ndarray, energy: np.ndarray) -> LinearCalibration:
        raw, energy = np.asarray(raw, float), np.asarray(energy, float)
        if raw.size < 2 or np.ptp(raw) == 0:
            raise DataError("The linear calibration needs at least two showers with different "
                            "visible energy; use a larger training sample.")
        w = 1.0 / np.sqrt(np.clip(energy, 1e-3, None))
        design = np.stack([raw, np.ones_like(raw)], axis=1) * w[:, None]
        (self.slope, self.offset), *_ = np.linalg.lstsq(design, energy * w, rcond=None)
        return self

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        return self.slope * np.asarray(raw, float) + self.offset
