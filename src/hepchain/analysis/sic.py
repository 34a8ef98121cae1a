"""SIC at a working point chosen on validation events, beside the (biased) max SIC.

The maximum of a SIC curve measured on the test set is the maximum of a noisy curve: its
expectation lies above the SIC of any fixed cut, the more so the fewer background events pass.
:func:`validated_sic` removes that bias: the test events are split in two halves (stratified by
label, seeded); the cut that maximises SIC on one half is applied to the other half, where its
SIC = ε_S/√ε_B is measured with a binomial error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from hepchain.core import metrics


@dataclass(frozen=True)
class ValidatedSIC:
    """SIC of the validation-chosen cut on the other half, its binomial error, and the max SIC
    of the validation half (what choosing and measuring on the same events gives)."""

    value: float
    error: float
    max_on_validation: float


def validated_sic(y_true: ArrayLike, score: ArrayLike, seed: int,
                  min_background: int = 25) -> ValidatedSIC:
    """SIC of the cut that maximises SIC on a random half of the events (stratified by
    label), measured on the other half; NaN when no cut keeps ``min_background`` background
    events of the validation half."""
    y = np.asarray(y_true).astype(bool)
    s = np.asarray(score, dtype=float)
    rng = np.random.default_rng(seed)
    val = np.zeros(y.size, dtype=bool)
    for cls in (True, False):
        idx = np.flatnonzero(y == cls)
        val[rng.permutation(idx)[: idx.size // 2]] = True
    fpr, tpr, thresholds = metrics.roc_curve(y[val], s[val])
    n_bkg = (~y[val]).sum()
    ok = fpr * n_bkg >= min_background
    if not ok.any():
        return ValidatedSIC(float("nan"), float("nan"), float("nan"))
    sic_val = np.where(ok, tpr / np.sqrt(np.where(fpr > 0, fpr, 1.0)), -np.inf)
    best = int(np.argmax(sic_val))
    test = ~val
    passed = s[test] >= thresholds[best]
    n_s, n_b = y[test].sum(), (~y[test]).sum()
    eff_s, eff_b = passed[y[test]].mean(), passed[~y[test]].mean()
    if eff_b == 0 or eff_s == 0:
        return ValidatedSIC(float("nan"), float("nan"), float(sic_val[best]))
    value = eff_s / np.sqrt(eff_b)
    rel2 = (1 - eff_s) / (eff_s * n_s) + 0.25 * (1 - eff_b) / (eff_b * n_b)
    return ValidatedSIC(float(value), float(value * np.sqrt(rel2)), float(sic_val[best]))
