"""Study metrics on held-out test events, built on :mod:`hepchain.core.metrics`.

- AUC ± Hanley–McNeil error;
- S/√B at a fixed signal efficiency: the score threshold keeping that fraction of the
  *validation* signal; S and B are each sample's expected selected yield at the luminosity
  times the fraction of its test events above the threshold; the error propagates the
  Poisson errors of the passing test counts, √(1/n_S + 1/(4 n_B)) relative;
- hop-matrix accuracy over the matched off-diagonal object pairs (binomial error, pairs of
  one event counted as independent);
- assignment efficiency: fully matched signal events whose six jets (b_had, b_lep, q₁, q₂,
  b_H₁, b_H₂) all get their true role from a greedy assignment of the role probabilities, and
  signal events with both Higgs b jets matched whose two b_H jets are both found.
"""

from __future__ import annotations

import numpy as np

from hepchain.analysis.decayaware.objects import B_H, B_HAD, B_LEP, OTHER, Q_W
from hepchain.core import metrics
from hepchain.core.result import Result
from hepchain.core.twosample import auc_error

#: how many jets of each role a fully matched ttH event has
SLOTS = {B_HAD: 1, B_LEP: 1, Q_W: 2, B_H: 2}


def add_classification(result: Result, method: str, y_val: np.ndarray, s_val: np.ndarray,
                       y_test: np.ndarray, s_test: np.ndarray, sample_test: np.ndarray,
                       yields: np.ndarray, efficiency: float, lumi_fb: float) -> None:
    """AUC and S/√B at ``efficiency`` (working point on the validation set) of one model."""
    auc = metrics.roc_auc(y_test, s_test)
    n1 = int(y_test.sum())
    result.add("AUC", method, auc, std=auc_error(auc, n1, y_test.size - n1),
               higher_is_better=True)
    value, err = significance(y_val, s_val, y_test, s_test, sample_test, yields, efficiency)
    result.add(f"S/√B at ε_S = {efficiency:g} ({lumi_fb:g} fb⁻¹)", method, value, std=err,
               higher_is_better=True)


def significance(y_val: np.ndarray, s_val: np.ndarray, y_test: np.ndarray, s_test: np.ndarray,
                 sample_test: np.ndarray, yields: np.ndarray, efficiency: float
                 ) -> tuple[float, float]:
    """(S/√B, its error) on the test events at the validation working point."""
    threshold = metrics.rejection_at_efficiency(y_val, s_val, efficiency).threshold
    passing = s_test >= threshold
    s = b = 0.0
    n_s = n_b = 0
    for k, expected in enumerate(yields):
        here = sample_test == k
        if not here.any():
            continue
        frac = float(passing[here].mean())
        is_signal = bool(y_test[here][0])
        if is_signal:
            s, n_s = s + expected * frac, n_s + int(passing[here].sum())
        else:
            b, n_b = b + expected * frac, n_b + int(passing[here].sum())
    if n_b == 0 or n_s == 0:
        return float("nan"), float("nan")
    value = s / np.sqrt(b)
    return float(value), float(value * np.sqrt(1.0 / n_s + 0.25 / n_b))


def hop_mode(true: np.ndarray, n_hops: int) -> int:
    """The most frequent hop count (classes as in :func:`hop_accuracy`) of matched pairs."""
    off = ~np.eye(true.shape[1], dtype=bool)[None]
    return int(np.argmax(np.bincount(np.minimum(true[(true >= 0) & off], n_hops - 1))))


def hop_accuracy(pred: np.ndarray, true: np.ndarray, n_hops: int) -> tuple[float, float, int]:
    """(accuracy, binomial error, number of pairs) over matched off-diagonal pairs, hop
    counts ≥ ``n_hops`` − 1 in one class."""
    off = ~np.eye(true.shape[1], dtype=bool)[None]
    valid = (true >= 0) & off
    n = int(valid.sum())
    if n == 0:
        return float("nan"), float("nan"), 0
    acc = float(np.mean(pred[valid] == np.minimum(true[valid], n_hops - 1)))
    return acc, float(np.sqrt(acc * (1 - acc) / n)), n


def assign(probs: np.ndarray) -> np.ndarray:
    """Greedy assignment of one event's jets (rows of ``probs``, (n_jets, n_roles)) to the
    roles of :data:`SLOTS`: repeatedly the most probable (jet, role) with a free slot."""
    out = np.full(len(probs), OTHER)
    left = dict(SLOTS)
    order = np.dstack(np.unravel_index(np.argsort(-probs, axis=None), probs.shape))[0]
    for jet, role in order:
        if out[jet] == OTHER and left.get(int(role), 0) > 0:
            out[jet] = role
            left[int(role)] -= 1
    return out


def assignment_efficiency(role_probs: np.ndarray, roles: np.ndarray, labels: np.ndarray
                          ) -> dict[str, tuple[float, float, int]]:
    """Greedy-assignment efficiencies on the signal events, each (value, binomial error,
    events): ``"event"`` all six jets right (fully matched events), ``"H"`` both b_H jets
    right (events with both b_H jets matched)."""
    hits: dict[str, list[bool]] = {"event": [], "H": []}
    for p, r, y in zip(role_probs, roles, labels, strict=True):
        jets = r >= 0
        truth = r[jets]
        if y != 1 or int((truth == B_H).sum()) != SLOTS[B_H]:
            continue
        guess = assign(p[jets])
        hits["H"].append(bool(np.all(guess[truth == B_H] == B_H)))
        if all(int((truth == k).sum()) == n for k, n in SLOTS.items()):
            hits["event"].append(bool(np.all(guess[truth != OTHER] == truth[truth != OTHER])))
    out = {}
    for key, h in hits.items():
        eff = float(np.mean(h)) if h else float("nan")
        out[key] = (eff, float(np.sqrt(eff * (1 - eff) / len(h))) if h else float("nan"), len(h))
    return out
