"""Tagger metrics (ParT-paper conventions) on held-out test jets, built on
:mod:`hepchain.core.metrics`.

Two classes (top vs QCD): AUC ± Hanley–McNeil error, accuracy ± binomial error, and the
background rejection 1/ε_B at ε_S = 0.3 and 0.5 with the working point (score threshold) fixed
on the *validation* jets and ε_B counted on the test jets (binomial error; a lower limit when
no test background passes). More classes (JetClass): accuracy, macro one-vs-rest AUC and the
QCD rejection of each signal class with the score p_X / (p_X + p_QCD), at ε_S = 0.5 or at the
tight point the ParT paper's table uses for that class (``working_points``); the macro AUC's
error combines the classes' Hanley–McNeil errors, neglecting their correlation.
:func:`add_confusion` adds the confusion matrix's diagonal (the fraction of each class
classified as itself).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from hepchain.core import metrics
from hepchain.core.result import Reference, Result
from hepchain.core.seeding import derive_seed
from hepchain.core.twosample import auc_error, one_vs_rest_auc

#: published top-tagging numbers (other datasets: the top-tagging landscape), tagging.md §4, §12
TOP_REFERENCES: dict[str, dict[str, Reference]] = {
    "AUC": {"ParT": Reference(0.9877, "ParT, top-tagging landscape (arXiv:2202.03772)")},
    "1/ε_B at ε_S = 0.3": {
        name: Reference(value, f"{name}, top-tagging landscape (arXiv:2510.24066, read off "
                               "a figure)")
        for name, value in (("PFN", 890.0), ("ParticleNet", 1615.0), ("ParT", 1600.0))},
}
#: published 10-class JetClass accuracy (100 M training jets; tagging.md §4, secondary source)
JETCLASS_CLASSES = ("QCD", "Hbb", "Hcc", "Hgg", "H4q", "Hqql", "Zqq", "Wqq", "Tbqq", "Tbl")
JETCLASS_REFERENCES: dict[str, Reference] = {
    "ParT": Reference(0.861, "ParT, JetClass 100 M training jets (arXiv:2202.03772, "
                             "secondary source)")}


def rejection_at_working_point(y_val: np.ndarray, s_val: np.ndarray, y_test: np.ndarray,
                               s_test: np.ndarray, efficiency: float) -> metrics.Rejection:
    """1/ε_B on the test jets at the threshold that keeps ``efficiency`` of the *validation*
    signal; binomial error, or a 68 % CL lower limit when no test background passes
    (as :func:`hepchain.core.metrics.rejection_at_efficiency`, which fixes it on one set)."""
    threshold = metrics.rejection_at_efficiency(y_val, s_val, efficiency).threshold
    bkg = np.asarray(s_test)[~np.asarray(y_test).astype(bool)]
    n_pass = int((bkg >= threshold).sum())
    if n_pass == 0:
        eps_up = -np.expm1(np.log1p(-metrics.REJECTION_LIMIT_CL) / bkg.size)
        return metrics.Rejection(efficiency, float(1.0 / eps_up), float("nan"), threshold,
                                 bkg.size, is_lower_limit=True)
    eps = n_pass / bkg.size
    err = np.sqrt(eps * (1.0 - eps) / bkg.size) / eps**2
    return metrics.Rejection(efficiency, 1.0 / eps, float(err), threshold, bkg.size)


def signal_score(probs: np.ndarray, signal: int, background: int = 0) -> np.ndarray:
    """p_signal / (p_signal + p_background) from (n, n_classes) class probabilities."""
    p_s, p_b = probs[:, signal], probs[:, background]
    return p_s / np.clip(p_s + p_b, 1e-12, None)


def add_tagger_metrics(result: Result, method: str, classes: Sequence[str],
                       y_val: np.ndarray, p_val: np.ndarray, y_test: np.ndarray,
                       p_test: np.ndarray, efficiencies: Sequence[float],
                       working_points: Mapping[str, float] | None = None) -> None:
    """Append the test metrics of one tagger (class probabilities ``p_*``) to ``result``;
    ``working_points`` maps signal classes to their ε_S when it is not 0.5 (more classes)."""
    n = y_test.size
    acc = float(np.mean(np.argmax(p_test, 1) == y_test))
    reference = JETCLASS_REFERENCES.get(method) if tuple(classes) == JETCLASS_CLASSES else None
    result.add("accuracy", method, acc, std=float(np.sqrt(acc * (1 - acc) / n)),
               higher_is_better=True, reference=reference)
    if len(classes) == 2:
        s_val, s_test = p_val[:, 1], p_test[:, 1]
        auc = metrics.roc_auc(y_test, s_test)
        n1 = int(y_test.sum())
        result.add("AUC", method, auc, std=auc_error(auc, n1, n - n1), higher_is_better=True,
                   reference=TOP_REFERENCES["AUC"].get(method))
        for eff in efficiencies:
            name = f"1/ε_B at ε_S = {eff:g}"
            result.add_rejection(name, method, rejection_at_working_point(
                y_val, s_val, y_test, s_test, eff), higher_is_better=True,
                reference=TOP_REFERENCES.get(name, {}).get(method))
        return
    _, (macro, macro_err) = one_vs_rest_auc(y_test, p_test)
    result.add("macro AUC (one vs rest)", method, macro, std=macro_err, higher_is_better=True)
    for k, name in enumerate(classes[1:], start=1):
        keep_val, keep_test = np.isin(y_val, (0, k)), np.isin(y_test, (0, k))
        eff = (working_points or {}).get(name, 0.5)
        result.add_rejection(
            f"QCD 1/ε_B at ε_S = {eff:g} ({name})", method, rejection_at_working_point(
                y_val[keep_val] == k, signal_score(p_val[keep_val], k),
                y_test[keep_test] == k, signal_score(p_test[keep_test], k), eff),
            higher_is_better=True)


def add_confusion(result: Result, method: str, classes: Sequence[str], y_test: np.ndarray,
                  p_test: np.ndarray) -> np.ndarray:
    """Append the fraction of each class's test jets classified as that class (arg-max of the
    probabilities; binomial error) and return the row-normalised confusion matrix
    C[true, predicted]."""
    cm = metrics.confusion_matrix(y_test, np.argmax(p_test, 1), len(classes), normalize=True)
    for k, name in enumerate(classes):
        n = int((y_test == k).sum())
        if n:
            f = cm[k, k]
            result.add(f"classified as itself ({name})", method, f,
                       std=float(np.sqrt(f * (1 - f) / n)), higher_is_better=True)
    return cm


def add_paired_auc_difference(result: Result, method: str, other: str, y_test: np.ndarray,
                              s_method: np.ndarray, s_other: np.ndarray, seed: int,
                              n_boot: int = 200) -> None:
    """AUC(method) − AUC(other) on the same test jets, ± the std of the difference over
    ``n_boot`` bootstrap resamplings of those jets (paired, so their correlation cancels)."""
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n_boot):
        idx = rng.integers(0, y_test.size, y_test.size)
        if 0 < y_test[idx].sum() < idx.size:
            diffs.append(metrics.roc_auc(y_test[idx], s_method[idx])
                         - metrics.roc_auc(y_test[idx], s_other[idx]))
    value = metrics.roc_auc(y_test, s_method) - metrics.roc_auc(y_test, s_other)
    result.add(f"AUC minus {other}'s (paired)", method, value,
               std=float(np.std(diffs, ddof=1)), higher_is_better=True)


#: (better, worse) pairs of the published ranking (ParT >= ParticleNet > PFN)
RANKING = (("ParT", "ParticleNet"), ("ParticleNet", "PFN"))


def add_ranking(result: Result, scores: dict[str, np.ndarray], y_test: np.ndarray,
                seed: int) -> None:
    """The paired AUC differences of :data:`RANKING` for the models present in ``scores``
    (signal scores of the test jets)."""
    for better, worse in RANKING:
        if better in scores and worse in scores:
            add_paired_auc_difference(result, better, worse, y_test, scores[better],
                                      scores[worse], derive_seed(seed, better, worse))


def test_loss(probs: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Mean cross-entropy −ln p_y over jets (nats) from class probabilities, ± its standard
    error (std of the per-jet losses / √n)."""
    per_jet = -np.log(np.clip(probs[np.arange(labels.size), labels], 1e-12, None))
    return float(per_jet.mean()), float(per_jet.std(ddof=1) / np.sqrt(labels.size))
