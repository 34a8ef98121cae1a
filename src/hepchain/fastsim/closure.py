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

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from hepchain.core.metrics import GaussianCore, gaussian_core_fit
from hepchain.core.result import Result
from hepchain.core.seeding import derive_seed
from hepchain.fastsim.data import ShowerSet
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


def closure(result: Result, data: ShowerSet, train: np.ndarray, val: np.ndarray,
            test: np.ndarray, generators: Mapping[str, Callable[[np.ndarray, int], np.ndarray]],
            cfg: dict[str, Any], seed: int) -> None:
    """Add the closure rows: per training source (full sim, each generator) the stochastic
    term and mean response on the held-out full-sim showers, and the stochastic term relative
    to the full-sim-trained one."""
    def signals(showers: np.ndarray) -> np.ndarray:  # back to read-out Si signals [MeV]
        return showers / data.scale

    e_tr, e_va, e_te = (data.e_inc[i] / 1e3 for i in (train, val, test))
    sources = {"full sim": (data.showers[train], data.showers[val])}
    sources |= {name: (gen(data.e_inc[train], derive_seed(seed, "closure train", name)),
                       gen(data.e_inc[val], derive_seed(seed, "closure val", name)))
                for name, gen in generators.items()}
    hidden, tcfg = list(cfg["hidden"]), cfg["train"]
    reference = None
    for name, (s_tr, s_va) in sources.items():
        calib = calibrate((signals(s_tr), e_tr), (signals(s_va), e_va), hidden, tcfg,
                          derive_seed(seed, "closure"))
        pred = calib(signals(data.showers[test]))
        core = stochastic_term(pred, e_te)
        label = f"trained on {name}"
        result.add("closure: stochastic term on full sim [√GeV]", label, core.sigma,
                   std=core.sigma_error, higher_is_better=False)
        response = pred / e_te
        result.add("closure: mean response E_pred/E − 1 on full sim", label,
                   float(response.mean() - 1), std=float(response.std(ddof=1)
                                                         / np.sqrt(response.size)))
        if reference is None:
            reference = core
            continue
        rel = core.sigma / reference.sigma - 1
        err = abs(core.sigma / reference.sigma) * np.hypot(core.sigma_error / core.sigma,
                                                           reference.sigma_error / reference.sigma)
        result.add("closure: stochastic term / full-sim-trained − 1", label, float(rel),
                   std=float(err), higher_is_better=False)
