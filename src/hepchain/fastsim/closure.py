"""Downstream closure: an energy calibration trained on generated showers, tested on full
simulation.

The calibration is the ``sparse`` study's MLP regressor (:mod:`hepchain.reco.calibration`:
linear pixel sum plus a non-linear correction, relative MSE, the core Trainer), trained once
on full-simulation showers and once per generator on showers generated at the same incident
energies (validation: generated too, so no full-sim shower enters a generator's calibration).
Both are tested on the held-out full-simulation showers: stochastic term σ((E_pred − E)/√E)
from a Gaussian core fit [√GeV] and mean response E_pred/E − 1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from hepchain.core.metrics import GaussianCore, gaussian_core_fit
from hepchain.reco.calibration.models import MLPRegressor
from hepchain.reco.calibration.train import fit_regressor, predict, to_inputs


def calibrate(train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray],
              hidden: list[int], train_cfg: dict[str, Any], seed: int
              ) -> Callable[[np.ndarray], np.ndarray]:
    """Fit the MLP calibration on (read-out Si signals (N, voxels) [MeV], E_inc [GeV]);
    returns showers -> predicted energy [GeV]."""
    def tensors(showers: np.ndarray, energy: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return to_inputs(showers), torch.as_tensor(energy, dtype=torch.float32)

    n_in = train[0].shape[1]
    trainer = fit_regressor(lambda: MLPRegressor(n_in, hidden), tensors(*train), tensors(*val),
                            train_cfg, seed)
    return lambda showers: predict(trainer, to_inputs(showers))


def stochastic_term(e_pred: np.ndarray, e_true: np.ndarray) -> GaussianCore:
    """Gaussian core of (E_pred − E)/√E [√GeV] (E in GeV)."""
    return gaussian_core_fit((e_pred - e_true) / np.sqrt(e_true))
