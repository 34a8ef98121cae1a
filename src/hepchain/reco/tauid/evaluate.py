"""Tau-ID metrics per prong on held-out candidates, built on :mod:`hepchain.core.metrics`:
fake rejection 1/ε_fake at the ATLAS working points (ε_τ = 85 / 75 / 60 %, thresholds fixed on
the validation candidates of the same prong), ROC AUC (Hanley–McNeil error), rejection in pT
bins, and the decay-mode confusion matrix of real τ."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hepchain.core import metrics
from hepchain.core.errors import DataError
from hepchain.core.result import Result
from hepchain.core.twosample import auc_error
from hepchain.reco.tauid.candidates import Candidates
from hepchain.reco.tauid.truth import DECAY_MODES

PRONGS = (1, 3)


def require_both(c: Candidates, idx: np.ndarray, prong: int, where: str) -> None:
    """DataError when the ``prong``-prong candidates ``idx`` lack real τ or fakes."""
    y = c.is_tau[idx[c.n_core[idx] == prong]]
    if y.all() or not y.any():
        raise DataError(f"The {where} set has no {prong}-prong "
                        f"{'fakes' if y.all() else 'real taus'}; generate more events "
                        "(data.n_events).")


def working_point(c: Candidates, score: np.ndarray, val: np.ndarray, prong: int,
                  efficiency: float) -> float:
    """Score threshold keeping ``efficiency`` of the validation τ with ``prong`` core tracks."""
    require_both(c, val, prong, "validation")
    v = val[c.n_core[val] == prong]
    return metrics.rejection_at_efficiency(c.is_tau[v], score[v], efficiency).threshold


def rejection(c: Candidates, score: np.ndarray, idx: np.ndarray, threshold: float,
              efficiency: float) -> metrics.Rejection:
    """1/ε_fake of the fakes among ``idx`` passing ``threshold`` (binomial error, or a 68 %
    CL lower limit when none passes)."""
    fakes = idx[~c.is_tau[idx]]
    return metrics.rejection_from_counts(int((score[fakes] >= threshold).sum()), fakes.size,
                                         efficiency, threshold)


def add_tau_metrics(result: Result, method: str, c: Candidates, score: np.ndarray,
                    mode_probs: np.ndarray, val: np.ndarray, test: np.ndarray,
                    efficiencies: Sequence[float]) -> None:
    """Rows per prong: AUC, rejection at each working point; decay-mode accuracy of real τ."""
    for prong in PRONGS:
        require_both(c, test, prong, "test")
        t = test[c.n_core[test] == prong]
        y = c.is_tau[t]
        auc = metrics.roc_auc(y, score[t])
        result.add(f"AUC, {prong}-prong", method, auc,
                   std=auc_error(auc, int(y.sum()), int((~y).sum())), higher_is_better=True)
        for eff in efficiencies:
            thr = working_point(c, score, val, prong, eff)
            result.add_rejection(f"fake rejection at ε_τ = {eff:.0%}, {prong}-prong", method,
                                 rejection(c, score, t, thr, eff), higher_is_better=True)
    known = test[c.is_tau[test] & (c.mode[test] >= 0)]
    correct = mode_probs[known].argmax(1) == c.mode[known]
    acc = float(correct.mean())
    result.add("decay-mode accuracy (real τ)", method, acc,
               std=float(np.sqrt(acc * (1 - acc) / max(known.size, 1))), higher_is_better=True)


def rejection_vs_pt(c: Candidates, score: np.ndarray, val: np.ndarray, test: np.ndarray,
                    efficiency: float, edges: Sequence[float]
                    ) -> list[metrics.Rejection | None]:
    """Rejection of the test fakes in each candidate-pT bin ``edges`` [GeV] at the per-prong
    working points of ``efficiency`` (None for a bin without fakes)."""
    passed = np.zeros(len(c), bool)
    for prong in PRONGS:
        sel = c.n_core == prong
        passed[sel] = score[sel] >= working_point(c, score, val, prong, efficiency)
    fakes = test[~c.is_tau[test]]
    which = np.digitize(c.pt[fakes], np.asarray(edges, float)) - 1
    out: list[metrics.Rejection | None] = []
    for b in range(len(edges) - 1):
        f = fakes[which == b]
        out.append(metrics.rejection_from_counts(int(passed[f].sum()), f.size, efficiency,
                                                 float("nan")) if f.size else None)
    return out


def mode_confusion(c: Candidates, mode_probs: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Row-normalised confusion matrix (true mode × predicted mode) of the test τ."""
    known = test[c.is_tau[test] & (c.mode[test] >= 0)]
    return metrics.confusion_matrix(c.mode[known], mode_probs[known].argmax(1),
                                    n_classes=len(DECAY_MODES), normalize=True)


def add_ratio_rows(result: Result, methods: Sequence[str], baseline: str,
                   efficiency: float) -> None:
    """Per prong: each model's fake rejection at ``efficiency`` over the ``baseline``'s (the
    issue's goal: ≥ 1.3 for the best set/graph model). Errors are propagated as independent
    (the models share the test fakes, so this overestimates); rows with a lower-limit
    rejection on either side are left out."""
    for prong in PRONGS:
        name = f"fake rejection at ε_τ = {efficiency:.0%}, {prong}-prong"
        base = result.get(name, baseline)
        for method in methods:
            row = result.get(name, method)
            if method == baseline or row.limit or base.limit:
                continue
            ratio = row.value / base.value
            err = ratio * float(np.hypot((row.std or 0.0) / row.value,
                                         (base.std or 0.0) / base.value))
            result.add(f"rejection ratio to {baseline} at ε_τ = {efficiency:.0%}, "
                       f"{prong}-prong", method, ratio, std=err, higher_is_better=True)
