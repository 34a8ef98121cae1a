"""Metrics of decoded truth trees against the true ones, by jet type:

- grammar-valid fraction: decoded sequences that parse (an invalid one is a miss everywhere);
- exact tree match: same rooted unordered tree with the same PDG id on every node;
- topology match: the same tree ignoring PDG ids;
- per-node PDG accuracy: true and decoded nodes paired by a minimum-cost assignment in
  (Δη, Δφ, Δlog pT) (:func:`scipy.optimize.linear_sum_assignment`); the fraction of
  max(n_true, n_decoded) nodes whose pair has the same PDG id;
- momentum residual: mean |pT_decoded − pT_true| / pT_true over the paired nodes.

Errors are the test set's own: binomial for fractions, the standard error of the mean for
averages.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from hepchain.reco.treelm.trees import Tree, signature


@dataclass(frozen=True)
class NodeMatch:
    """Paired nodes of a (true, decoded) tree pair: same-PDG count, the number of nodes it is
    divided by, and the relative pT residuals of the pairs."""

    pdg_correct: int
    n_nodes: int
    pt_residuals: np.ndarray


def match_nodes(true: Tree, pred: Tree) -> NodeMatch:
    """Pair the nodes of ``true`` and ``pred`` by their kinematics (see the module docstring)."""
    d_eta = true.kin[:, None, 1] - pred.kin[None, :, 1]
    d_phi = np.angle(np.exp(1j * (true.kin[:, None, 2] - pred.kin[None, :, 2])))
    d_pt = np.log(np.maximum(true.kin[:, None, 0], 1e-3) / np.maximum(pred.kin[None, :, 0],
                                                                       1e-3))
    rows, cols = linear_sum_assignment(d_eta**2 + d_phi**2 + d_pt**2)
    same = int(np.sum(true.pid[rows] == pred.pid[cols]))
    resid = (pred.kin[cols, 0] - true.kin[rows, 0]) / np.maximum(true.kin[rows, 0], 1e-3)
    return NodeMatch(same, max(len(true), len(pred)), resid)


@dataclass(frozen=True)
class Scores:
    """Per-jet outcomes for one method on the test jets (``valid`` False: did not parse)."""

    valid: np.ndarray
    exact: np.ndarray
    topology: np.ndarray
    pdg_correct: np.ndarray
    n_nodes: np.ndarray
    pt_abs_residual: np.ndarray  # per jet: mean |ΔpT|/pT of its paired nodes (NaN if none)


def score(true: list[Tree], pred: list[Tree | None]) -> Scores:
    """Compare decoded trees (None = did not parse) with the true ones, jet by jet."""
    rows = []
    for t, p in zip(true, pred, strict=True):
        if p is None:
            rows.append((False, False, False, 0, len(t), np.nan))
            continue
        m = match_nodes(t, p)
        rows.append((True, signature(t) == signature(p),
                     signature(t, False) == signature(p, False), m.pdg_correct, m.n_nodes,
                     float(np.mean(np.abs(m.pt_residuals)))))
    cols = list(zip(*rows, strict=True))
    return Scores(*(np.asarray(c) for c in cols))


def _binomial(k: float, n: int) -> tuple[float, float]:
    """k/n and its Agresti–Coull error sqrt(p̃(1 − p̃)/(n + 4)), p̃ = (k + 2)/(n + 4), which
    stays honest at 0 and 1."""
    p_tilde = (k + 2) / (n + 4)
    return float(k / max(n, 1)), float(np.sqrt(p_tilde * (1 - p_tilde) / (n + 4)))


def fraction(x: np.ndarray) -> tuple[float, float]:
    """Mean of a boolean array and its binomial error."""
    return _binomial(float(np.sum(x)), x.size)


def mean_error(x: np.ndarray) -> tuple[float, float]:
    """Mean of the finite values and its standard error (NaN, NaN if fewer than two)."""
    x = x[np.isfinite(x)]
    if x.size < 2:
        return float("nan"), float("nan")
    return float(np.mean(x)), float(np.std(x, ddof=1) / np.sqrt(x.size))


def pdg_accuracy(s: Scores) -> tuple[float, float]:
    """Node-weighted PDG accuracy with its binomial error over the node count."""
    return _binomial(float(s.pdg_correct.sum()), int(s.n_nodes.sum()))


# ---------------------------------------------------------------------------- baseline


def most_frequent_trees(truth: list[Tree], kind: np.ndarray) -> dict[int, Tree]:
    """Per jet type, a training tree whose labelled signature is the most frequent one."""
    out = {}
    for k in np.unique(kind):
        members = [truth[i] for i in np.flatnonzero(kind == k)]
        sig, _ = Counter(signature(t) for t in members).most_common(1)[0]
        out[int(k)] = next(t for t in members if signature(t) == sig)
    return out


def template_prediction(template: Tree, reco: Tree) -> Tree:
    """The template tree with momenta from the jet: the root takes the jet's kinematics, the
    template's leaves the clustering tree's leaves in pT order (missing ones pT = 0), and
    every internal node the four-momentum sum of its children."""
    n = len(template)
    p4 = np.zeros((n, 4))  # px, py, pz, E
    leaves = template.leaves()
    rl = reco.leaves()
    rl = rl[np.argsort(-reco.kin[rl, 0])]
    order = leaves[np.argsort(-template.kin[leaves, 0])]
    for node, src in zip(order, rl, strict=False):
        p4[node] = four_momentum(reco.kin[src])
    for i in range(n - 1, 0, -1):  # children come after their parents
        if i not in leaves:
            continue
        p = template.parent[i]
        while p > 0:
            p4[p] += p4[i]
            p = template.parent[p]
    kin = np.array([kinematics(v) for v in p4])
    kin[0] = reco.kin[0]
    return Tree(template.parent, kin, template.pid)


def four_momentum(k: np.ndarray) -> np.ndarray:
    """(pT, η, φ, m) → (px, py, pz, E) [GeV]."""
    pt, eta, phi, m = k
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    return np.array([px, py, pz, np.sqrt(px**2 + py**2 + pz**2 + m**2)])


def kinematics(v: np.ndarray) -> np.ndarray:
    """(px, py, pz, E) → (pT, η, φ, m) [GeV]; zeros for pT = 0."""
    px, py, pz, e = v
    pt = np.hypot(px, py)
    if pt < 1e-9:
        return np.zeros(4)
    return np.array([pt, np.arcsinh(pz / pt), np.arctan2(py, px),
                     np.sqrt(max(e**2 - px**2 - py**2 - pz**2, 0.0))])
