"""Generated-jet quality: jet mass [GeV], constituent multiplicity and constituent pT [GeV] of
generated jets against held-out real jets, with :mod:`hepchain.core.twosample` (C2ST AUC, W1
per observable, FPD and KPD on the jet-level observables)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from hepchain.core import twosample
from hepchain.core.result import Result
from hepchain.reco.jetfm.backbone import massless_vectors, transverse_momentum

JET_OBSERVABLES = ("jet mass [GeV]", "multiplicity", "jet pT [GeV]")


def jet_observables(features: np.ndarray, mask: np.ndarray, kin_index: Sequence[int]
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(jet-level (N, 3) = mass [GeV], multiplicity, pT [GeV] of the sum of the massless
    constituents; constituent pT [GeV] of all real constituents (n,))."""
    x, m = torch.from_numpy(features), torch.from_numpy(mask)
    vec = (massless_vectors(x, kin_index) * m[..., None]).sum(1).double()
    mass = (vec[:, 3] ** 2 - vec[:, :3].square().sum(1)).clamp(min=0).sqrt()
    jet = torch.stack([mass, m.sum(1).double(), vec[:, :2].norm(dim=1)], 1).numpy()
    return jet, transverse_momentum(x[..., kin_index[0]])[m].numpy()


def add_generation_metrics(result: Result, method: str, real: tuple[np.ndarray, np.ndarray],
                           gen: tuple[np.ndarray, np.ndarray], seed: int) -> None:
    """Rows comparing generated (jet-level, constituent pT) with real held-out jets."""
    (jet_r, pt_r), (jet_g, pt_g) = real, gen
    auc, err = twosample.c2st(jet_r, jet_g, seed=seed)
    result.add("C2ST AUC (mass, multiplicity, jet pT)", method, auc, std=err,
               higher_is_better=False)
    w1 = twosample.wasserstein_1d(jet_r, jet_g)
    for name, value in zip(JET_OBSERVABLES[:2], w1[:2], strict=True):
        result.add(f"W1 {name}", method, float(value), higher_is_better=False)
    result.add("W1 constituent pT [GeV]", method,
               float(twosample.wasserstein_1d(pt_r, pt_g)[0]), higher_is_better=False)
    n = min(len(jet_r), len(jet_g))
    fpd = twosample.fpd(jet_r, jet_g, min_samples=max(n // 4, 20), max_samples=n, seed=seed)
    result.add("FPD (jet observables, normalised)", method, fpd.value, std=fpd.error,
               higher_is_better=False)
    kpd = twosample.kpd(jet_r, jet_g, batch_size=n, seed=seed)
    result.add("KPD (jet observables, normalised)", method, kpd.value, std=kpd.error,
               higher_is_better=False)
