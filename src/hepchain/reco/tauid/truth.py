"""The visible hadronic tau of a jet, read from the jet's generator decay tree.

The substrate stores, with option ``jet_trees=1``, each R = 0.4 jet's ``truth_tree``
(:mod:`hepchain.collider.trees`): the visible final-state particles within ΔR < 0.4 and their
decay ancestors, node 0 being the jet, every node's parent before it. A τ node whose direct
children include no e or μ is a hadronic τ; its prongs are the charged hadrons among its
descendants that do not come from a K⁰/Λ decay, its neutrals the π⁰ among them, and its
visible pT (GeV) the vector sum of its final-state descendants (the neutrinos are not stored).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: decay modes (index = class of the decay-mode head)
DECAY_MODES = ("1p0n", "1p1n", "1pXn", "3p0n", "3pXn")
OTHER_MODE = -1  # real τ whose prong count is neither 1 nor 3 (e.g. a prong out of the cone)
CHARGED_HADRONS = (211, 321, 2212)
LONG_LIVED = (130, 310, 311, 3122)  # their decay products are not counted as prongs


@dataclass(frozen=True)
class TruthTau:
    """One jet's truth: a hadronic τ or not, its prongs, π⁰ count, decay mode, visible pT."""

    hadronic: bool
    n_prongs: int = 0
    n_pi0: int = 0
    mode: int = OTHER_MODE
    vis_pt: float = float("nan")


def decay_mode(n_prongs: int, n_pi0: int) -> int:
    """Index in :data:`DECAY_MODES`, or :data:`OTHER_MODE` for 2, 4, 5... prongs."""
    if n_prongs == 1:
        return min(n_pi0, 2)
    if n_prongs == 3:
        return 3 + min(n_pi0, 1)
    return OTHER_MODE


def tau_of_tree(pid: np.ndarray, parent: np.ndarray, px: np.ndarray,
                py: np.ndarray) -> TruthTau:
    """The hadronic τ of one decay tree (the one of highest visible pT if several)."""
    n = len(pid)
    apid = np.abs(pid)
    tau_of = np.full(n, -1)          # nearest τ ancestor of each node
    via_long = np.zeros(n, bool)     # a K⁰/Λ sits between the node and that τ
    has_child = np.zeros(n, bool)
    leptonic = np.zeros(n, bool)
    for j in range(1, n):
        p = parent[j]
        has_child[p] = True
        if apid[p] == 15 and p > 0:
            tau_of[j] = p
            leptonic[p] |= apid[j] in (11, 13)
        else:
            tau_of[j] = tau_of[p]
            via_long[j] = via_long[p] or apid[p] in LONG_LIVED
    best = TruthTau(hadronic=False)
    for t in np.flatnonzero((apid == 15) & (np.arange(n) > 0) & ~leptonic):
        mine = tau_of == t
        if not mine.any():
            continue
        leaves = mine & ~has_child
        prompt = mine & ~via_long
        n_prongs = int((leaves & prompt & np.isin(apid, CHARGED_HADRONS)).sum())
        n_pi0 = int((prompt & (apid == 111)).sum())
        vis_pt = float(np.hypot(px[leaves].sum(), py[leaves].sum()))
        if not best.hadronic or vis_pt > best.vis_pt:
            best = TruthTau(True, n_prongs, n_pi0, decay_mode(n_prongs, n_pi0), vis_pt)
    return best
