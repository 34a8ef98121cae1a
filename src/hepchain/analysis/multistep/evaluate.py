"""Multi-step metrics on held-out events, built on :mod:`hepchain.core.metrics`: step (b)'s
ROC AUC (Hanley–McNeil error) and signal efficiency at a fixed background rejection (threshold
fixed on the validation background), and step (a)'s tau-ID AUC and fake rejection at a fixed
τ efficiency on the test events' candidates (threshold fixed on the validation candidates)."""

from __future__ import annotations

import numpy as np

from hepchain.analysis.multistep.training import Outcome
from hepchain.core import metrics
from hepchain.core.result import Result
from hepchain.core.twosample import auc_error


def signal_efficiency(y_val: np.ndarray, s_val: np.ndarray, y_test: np.ndarray,
                      s_test: np.ndarray, rejection: float) -> tuple[float, float]:
    """(ε_S, binomial error) on the test events at the threshold keeping 1/``rejection`` of
    the validation background."""
    threshold = np.quantile(s_val[~y_val], 1.0 - 1.0 / rejection)
    passed = s_test[y_test] > threshold
    eff = float(passed.mean())
    return eff, float(np.sqrt(eff * (1 - eff) / passed.size))


def add_event_metrics(result: Result, method: str, o: Outcome, y: np.ndarray, val: np.ndarray,
                      test: np.ndarray, rejection: float) -> float:
    """Step (b) rows; returns the validation AUC (for choosing among static weights)."""
    auc = metrics.roc_auc(y[test], o.event_score[test])
    result.add("step (b) AUC (H→ττ vs Z→ττ)", method, auc,
               std=auc_error(auc, int(y[test].sum()), int((~y[test]).sum())),
               higher_is_better=True)
    eff, err = signal_efficiency(y[val], o.event_score[val], y[test], o.event_score[test],
                                 rejection)
    result.add(f"step (b) ε_S at Z→ττ rejection {rejection:g}", method, eff, std=err,
               higher_is_better=True)
    result.add("training CPU time", method, o.cpu_seconds, unit="s", higher_is_better=False)
    return metrics.roc_auc(y[val], o.event_score[val])


def add_tau_metrics(result: Result, method: str, tau_score: np.ndarray, is_tau: np.ndarray,
                    val: np.ndarray, test: np.ndarray, efficiency: float) -> float:
    """Step (a) rows from the (N, 2) tau scores of the test events' candidates; returns the
    rejection."""
    y_t, s_t = is_tau[test].ravel(), tau_score[test].ravel()
    auc = metrics.roc_auc(y_t, s_t)
    result.add("step (a) tau-ID AUC", method, auc,
               std=auc_error(auc, int(y_t.sum()), int((~y_t).sum())), higher_is_better=True)
    threshold = metrics.rejection_at_efficiency(is_tau[val].ravel(), tau_score[val].ravel(),
                                                efficiency).threshold
    fakes = s_t[~y_t]
    rej = metrics.rejection_from_counts(int((fakes >= threshold).sum()), fakes.size,
                                        efficiency, threshold)
    result.add_rejection(f"step (a) fake rejection at ε_τ = {efficiency:.0%}", method, rej,
                         higher_is_better=True)
    return rej.rejection
