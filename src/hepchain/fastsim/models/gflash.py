"""The baseline: the GFlash-style parametrisation of :mod:`hepchain.calo.fastsim`, tuned to
the training showers, read out like the full simulation and put in the same units.

:func:`hepchain.calo.fastsim.tune` fits straight lines in ln E through per-energy profile
statistics, so it needs showers at fixed energies; from a continuous spectrum the training
showers are grouped in ``levels`` logarithmic energy bins and each bin is tuned at the
geometric mean of its energies (an approximation: the spread of energies inside a bin widens
the per-bin statistics a little).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hepchain.calo.fastsim import GFlashParams, simulate_fast, tune
from hepchain.calo.geometry import ECalGeometry
from hepchain.calo.readout import Readout, digitise
from hepchain.core.errors import UsageError
from hepchain.core.io import atomic_write_text
from hepchain.core.seeding import derive_seed


@dataclass(frozen=True)
class GFlash:
    """Tuned parameters plus everything needed to produce showers [MeV, data units]."""

    params: GFlashParams
    ecal: ECalGeometry
    readout: Readout
    spread_mm: float
    scale: float

    @classmethod
    def fit(cls, showers: np.ndarray, e_inc: np.ndarray, ecal: ECalGeometry | None,
            readout: Readout, spread_mm: float, scale: float, levels: int, n_fast: int,
            seed: int) -> GFlash:
        """Tune to ``showers`` (N, n_voxels) [data units] at ``e_inc`` [MeV]."""
        if ecal is None:
            raise UsageError("The GFlash baseline needs hepchain's ECAL geometry; it cannot be "
                             "tuned to an official CaloChallenge file (drop it from models).")
        e_gev = np.asarray(e_inc, dtype=np.float64) / 1e3
        edges = np.geomspace(e_gev.min(), e_gev.max() * (1 + 1e-9), levels + 1)
        level = np.clip(np.searchsorted(edges, e_gev, side="right") - 1, 0, levels - 1)
        centres = np.array([np.exp(np.log(e_gev[level == i]).mean()) if np.any(level == i)
                            else np.nan for i in range(levels)])
        rng = np.random.default_rng(derive_seed(seed, "gflash readout"))
        params = tune(ecal, centres[level], np.asarray(showers).reshape(-1, *ecal.shape) / scale,
                      seed=seed, n_fast=n_fast,
                      readout=lambda s: digitise(s, ecal, readout, rng))
        return cls(params, ecal, readout, spread_mm, scale)

    def generate(self, e_inc: np.ndarray, seed: int = 0) -> np.ndarray:
        """Showers (N, n_voxels) at incident energies ``e_inc`` [MeV]."""
        e_gev = np.asarray(e_inc, dtype=np.float64).reshape(-1) / 1e3
        deposits = simulate_fast(self.ecal, e_gev, seed=seed, spread_mm=self.spread_mm,
                                 params=self.params)
        rng = np.random.default_rng(derive_seed(seed, "gflash readout"))
        signals = digitise(deposits, self.ecal, self.readout, rng)
        return signals.reshape(len(e_gev), -1).astype(np.float64) * self.scale

    def n_parameters(self) -> int:
        return len(self.params.to_dict())

    def save(self, path: str | Path) -> Path:
        atomic_write_text(path, json.dumps({"params": self.params.to_dict(),
                                            "ecal": self.ecal.to_dict(),
                                            "readout": self.readout.to_dict(),
                                            "spread_mm": self.spread_mm,
                                            "scale": self.scale}, indent=1))
        return Path(path)
