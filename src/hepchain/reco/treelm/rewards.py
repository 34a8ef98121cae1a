"""The seed's physics rewards of a decoded truth tree, each in [0, 1], hard and soft:

- ``decay``: every decay in the tree (a node with children, the root excepted: its children
  come from hadronisation, not a decay) is allowed — its children's PDG ids are a sub-multiset
  of one of the parent's decay channels in Pythia 8's particle data (sub-, because neutrinos
  and particles outside the jet cone are not in the tree). Soft: the mean over decays of the
  largest fraction of the children one channel explains; hard: the fraction of allowed decays.
- ``momentum``: conservation in each decay, d = |p⃗_parent − Σ p⃗_children| / |p⃗_parent|.
  Soft: mean exp(−d / 0.1); hard: fraction of decays with d < 0.05.
- ``closeness``: the tree's leaves (its visible particles) against the clustering tree's
  leaves (the particle-flow candidates), paired by a minimum-cost assignment with
  d = ΔR / 0.05 + |log(pT / pT_reco)|. Soft: mean exp(−d) over decoded leaves (an unpaired
  leaf scores 0); hard: the fraction with ΔR < 0.05 and a pT ratio (smaller / larger) above 0.8.

A tree without decays scores 1 on ``decay`` and ``momentum`` (nothing violates them).
"""

from __future__ import annotations

from collections import Counter
from functools import cache

import numpy as np
from scipy.optimize import linear_sum_assignment

from hepchain.reco.treelm.trees import Tree

TERMS = ("decay", "momentum", "closeness")


@cache
def _particle_data():
    import pythia8mc

    return pythia8mc.Pythia("", False).particleData


@cache
def decay_channels(pid: int) -> tuple[Counter, ...]:
    """The decay channels of ``pid`` as multisets of product ids (charge-conjugated for
    antiparticles); empty for unknown or stable particles."""
    pd = _particle_data()
    if not pd.isParticle(abs(pid)):
        return ()
    entry = pd.particleDataEntryPtr(abs(pid))
    out = []
    for i in range(entry.sizeChannels()):
        ch = entry.channel(i)
        prods = [ch.product(k) for k in range(ch.multiplicity())]
        if pid < 0:
            prods = [-p if pd.hasAnti(p) else p for p in prods]
        out.append(Counter(prods))
    return tuple(out)


def _decays(tree: Tree) -> list[tuple[int, list[int]]]:
    kids = tree.children()
    return [(i, c) for i, c in enumerate(kids) if i > 0 and c]


def decay_reward(tree: Tree) -> tuple[float, float]:
    """(soft, hard) allowed-decay reward (module docstring)."""
    decays = _decays(tree)
    if not decays:
        return 1.0, 1.0
    soft, hard = [], []
    for parent, kids in decays:
        children = Counter(int(tree.pid[k]) for k in kids)
        n = sum(children.values())
        best = max((sum((children & ch).values()) / n for ch in
                    decay_channels(int(tree.pid[parent]))), default=0.0)
        soft.append(best)
        hard.append(best == 1.0)
    return float(np.mean(soft)), float(np.mean(hard))


def _p3(kin: np.ndarray) -> np.ndarray:
    pt, eta, phi = kin[..., 0], kin[..., 1], kin[..., 2]
    return np.stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)], -1)


def momentum_reward(tree: Tree) -> tuple[float, float]:
    """(soft, hard) momentum-conservation reward (module docstring)."""
    decays = _decays(tree)
    if not decays:
        return 1.0, 1.0
    p = _p3(tree.kin)
    d = np.array([np.linalg.norm(p[i] - p[k].sum(0)) / max(np.linalg.norm(p[i]), 1e-9)
                  for i, k in decays])
    return float(np.mean(np.exp(-d / 0.1))), float(np.mean(d < 0.05))


def closeness_reward(tree: Tree, reco: Tree) -> tuple[float, float]:
    """(soft, hard) truth–reco closeness of the leaves (module docstring)."""
    t, r = tree.kin[tree.leaves()], reco.kin[reco.leaves()]
    d_r = np.hypot(t[:, None, 1] - r[None, :, 1],
                   np.angle(np.exp(1j * (t[:, None, 2] - r[None, :, 2]))))
    d_pt = np.abs(np.log(np.maximum(t[:, None, 0], 1e-3) / np.maximum(r[None, :, 0], 1e-3)))
    rows, cols = linear_sum_assignment(d_r / 0.05 + d_pt)
    soft = np.exp(-(d_r[rows, cols] / 0.05 + d_pt[rows, cols])).sum() / len(t)
    close = (d_r[rows, cols] < 0.05) & (np.abs(np.expm1(-d_pt[rows, cols])) < 0.2)
    return float(soft), float(close.sum() / len(t))


def rewards(tree: Tree | None, reco: Tree, hard: bool = False) -> dict[str, float]:
    """All reward terms of a decoded tree (0 for each when it did not parse)."""
    if tree is None:
        return dict.fromkeys(TERMS, 0.0)
    k = 1 if hard else 0
    return {"decay": decay_reward(tree)[k], "momentum": momentum_reward(tree)[k],
            "closeness": closeness_reward(tree, reco)[k]}
