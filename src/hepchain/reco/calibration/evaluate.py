"""Resolution of a calibration: Gaussian core of (E_pred − E)/E per incident energy."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hepchain.core.metrics import ResolutionFit, fit_resolution, gaussian_core_fit


@dataclass(frozen=True)
class EnergyPoint:
    """Response at one incident energy E [GeV]: core mean (``bias``, so the response is
    1 + bias) and σ of (E_pred − E)/E, with their statistical errors."""

    energy: float
    bias: float
    resolution: float
    resolution_error: float
    bias_error: float = 0.0


def resolution_points(e_true: np.ndarray, e_pred: np.ndarray) -> list[EnergyPoint]:
    """One :class:`EnergyPoint` per distinct value of ``e_true`` [GeV]."""
    e_true, e_pred = np.asarray(e_true, float), np.asarray(e_pred, float)
    points = []
    for energy in np.unique(np.round(e_true, 6)):
        sel = np.isclose(e_true, energy)
        core = gaussian_core_fit((e_pred[sel] - energy) / energy)
        points.append(EnergyPoint(float(energy), core.mean, core.sigma, core.sigma_error,
                                  core.mean_error))
    return points


def fit_points(points: list[EnergyPoint]) -> ResolutionFit | None:
    """a/√E ⊕ b fit of the points (None with fewer than three energies)."""
    if len(points) < 3:
        return None
    return fit_resolution([p.energy for p in points], [p.resolution for p in points],
                          [p.resolution_error for p in points], noise_term=False)
