"""The seed's physics rewards of a decoded truth tree against the jet's clustering tree
(``reco``), each in [0, 1], soft and hard. The truth tree's root is the jet (labelled with its
parton's id); its other nodes are generator particles whose stored children are only the
products with a visible, in-cone descendant above ``pt_min`` (neutrinos, out-of-cone and
pruned products are missing), so a decay may legitimately show a sub-multiset of its channel
and not balance momentum. The rewards are built so that a tree cannot score by having no
decays: every term has checks a flat tree must pass too.

- ``decay`` = V × C. V is the mean over the *node checks*: one per non-root node, and for a τ
  root one more (exactly one root child is the root's τ: a τ jet is its τ's decay products).
  A node passes when all that apply hold:

  * its mass is its PDG id's (Pythia 8's [mMin, mMax] for a resonance, m0 otherwise, within
    1 % + 2 MeV, the tokeniser's rounding);
  * an internal node: its children's ids are a sub-multiset of one of its decay channels
    (Pythia 8's tables; soft: the largest fraction of the children one channel explains);
  * a root child: a particle of fragmentation — a hadron, or the τ of a τ root (photons and
    leptons in a jet come from decays, or rarely from the shower: a flat tree that puts the
    photons of a π0 under the jet fails here);
  * a leaf: stable in the generator (π±, K±, K0L, p, n, e, μ, γ, ν), or an unstable particle
    whose products can all be missing: a channel with a neutrino, or pT < n·pt_min for its
    largest multiplicity n (vector sum bound: all n products below pt_min).

  C (coverage) is the fraction of the clustering tree's leaves (the jet's particle-flow
  candidates) with a decoded leaf within ΔR < 0.1: a tree must explain the jet's constituents.
  Soft: V with the soft channel fraction; hard: V with pass/fail channels; both times C.
- ``momentum``: the mean over *conservation checks* — always the jet: the visible part,
  d = |Σ p⃗(decoded leaves) − Σ p⃗(reco leaves)| / |Σ p⃗(reco leaves)|, soft exp(−d / 0.2),
  hard d < 0.2 (the truth–reco difference of the visible part is ≈ 10 % typically); and each
  non-root decay: when its children are exactly one of its channels (all products stored),
  d = |p⃗_parent − Σ p⃗_children| / |p⃗_parent|, soft exp(−d / 0.1), hard d < 0.05; otherwise
  the missing four-momentum q = p_parent − Σ p_children (the unstored products) must be
  physical, v = max(0, |q⃗| − q⁰) / E_parent (0 for a future-pointing time- or light-like q),
  soft exp(−v / 0.1), hard v < 0.05.
- ``closeness``: the decoded leaves against the clustering tree's leaves, paired by a
  minimum-cost assignment with d = ΔR / 0.05 + |log(pT / pT_reco)|. Soft: Σ exp(−d) over the
  pairs / max(n_decoded, n_reco) (an unpaired leaf on either side scores 0); hard: the number
  of pairs with ΔR < 0.05 and a pT ratio (smaller / larger) above 0.8, over the same count.

A root without children (the jet alone) has no decoded leaves: 0 on decay and closeness, and
its visible sum is zero for the jet check.

A true tree and its flattening (root → its leaves) have the same leaves, so they tie on
closeness and on the jet check; the flattening loses decay checks (photons and leptons under
the jet, a τ jet without its τ) and the decays' conservation checks. Flattening a hadronic
resonance into hadrons (ρ0 → π+π− moved under the jet) stays a valid tree: no reward here can
tell it from direct production.
"""

from __future__ import annotations

from collections import Counter
from functools import cache

import numpy as np
from scipy.optimize import linear_sum_assignment

from hepchain.collider.kinematics import delta_r
from hepchain.reco.treelm.trees import Tree

TERMS = ("decay", "momentum", "closeness")
NEUTRINOS = frozenset({12, 14, 16})
R_COVER = 0.1


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


@cache
def _mass_window(pid: int) -> tuple[float, float] | None:
    """[lowest, highest] mass [GeV] of ``pid`` with the rounding tolerance; None if unknown."""
    pd = _particle_data()
    a = abs(pid)
    if not pd.isParticle(a):
        return None
    m0 = pd.m0(a)
    lo, hi = (pd.mMin(a), pd.mMax(a)) if pd.mWidth(a) > 0 else (m0, m0)
    tol = 0.01 * m0 + 0.002
    return lo - tol, hi + tol


@cache
def _unstable(pid: int) -> bool:
    pd = _particle_data()
    return bool(pd.isParticle(abs(pid)) and pd.canDecay(abs(pid)) and pd.mayDecay(abs(pid)))


def _leaf_ok(pid: int, pt: float, pt_min: float) -> bool:
    """A leaf is stable, or all its products can be missing (see the module docstring)."""
    if not _unstable(pid):
        return True
    channels = decay_channels(pid)
    if any(NEUTRINOS & {abs(p) for p in ch} for ch in channels):
        return True
    return pt < max((sum(ch.values()) for ch in channels), default=0) * pt_min


def _channel_fraction(tree: Tree, parent: int, kids: list[int]) -> float:
    children = Counter(int(tree.pid[k]) for k in kids)
    n = sum(children.values())
    return max((sum((children & ch).values()) / n for ch in
                decay_channels(int(tree.pid[parent]))), default=0.0)


def _visible(tree: Tree) -> np.ndarray:
    """The leaves that are particles: all but a root without children (the jet itself)."""
    leaves = tree.leaves()
    return leaves[leaves > 0]


def _coverage(tree: Tree, reco: Tree) -> float:
    """Fraction of the reco leaves with a decoded leaf within ΔR < R_COVER."""
    t, r = tree.kin[_visible(tree)], reco.kin[reco.leaves()]
    if not len(t):
        return 0.0
    d = delta_r(t[:, None, 1], t[:, None, 2], r[None, :, 1], r[None, :, 2])
    return float(np.mean(d.min(0) < R_COVER))


def decay_reward(tree: Tree, reco: Tree, pt_min: float = 0.0) -> tuple[float, float]:
    """(soft, hard) decay reward V × C (module docstring); ``pt_min`` [GeV] is the pruning
    threshold of the trees."""
    kids = tree.children()
    soft, hard = [], []
    for i in range(1, len(tree)):
        pid = int(tree.pid[i])
        window = _mass_window(pid)
        ok = window is not None and window[0] <= tree.kin[i, 3] <= window[1]
        if tree.parent[i] == 0:
            ok &= _particle_data().isHadron(abs(pid)) or (pid == tree.pid[0] and abs(pid) == 15)
        frac = _channel_fraction(tree, i, kids[i]) if kids[i] else 1.0
        if not kids[i]:
            ok &= _leaf_ok(pid, float(tree.kin[i, 0]), pt_min)
        soft.append(ok * frac)
        hard.append(ok and frac == 1.0)
    if abs(int(tree.pid[0])) == 15:
        has_tau = sum(int(tree.pid[c]) == tree.pid[0] for c in kids[0]) == 1
        soft.append(float(has_tau))
        hard.append(has_tau)
    if not soft:
        return 0.0, 0.0  # the root alone explains nothing
    cover = _coverage(tree, reco)
    return float(np.mean(soft)) * cover, float(np.mean(hard)) * cover


def _p4(kin: np.ndarray) -> np.ndarray:
    """(…, 4) kinematics (pT, η, φ, m) → (…, 4) four-momenta (px, py, pz, E) [GeV]."""
    pt, eta, phi, m = (kin[..., k] for k in range(4))
    p = np.stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)], -1)
    return np.concatenate([p, np.sqrt((p**2).sum(-1) + m**2)[..., None]], -1)


def momentum_reward(tree: Tree, reco: Tree) -> tuple[float, float]:
    """(soft, hard) momentum reward: the jet check and one check per decay (module
    docstring)."""
    p = _p4(tree.kin)
    visible = p[_visible(tree), :3].sum(0)
    jet = _p4(reco.kin[reco.leaves()])[:, :3].sum(0)
    d = np.linalg.norm(visible - jet) / max(np.linalg.norm(jet), 1e-9)
    soft, hard = [np.exp(-d / 0.2)], [d < 0.2]
    for i, k in enumerate(tree.children()):
        if i == 0 or not k:
            continue
        q = p[i] - p[k].sum(0)
        children = Counter(int(tree.pid[c]) for c in k)
        if any(children == ch for ch in decay_channels(int(tree.pid[i]))):
            d = np.linalg.norm(q[:3]) / max(np.linalg.norm(p[i, :3]), 1e-9)
            soft.append(np.exp(-d / 0.1))
            hard.append(d < 0.05)
        else:
            v = max(0.0, np.linalg.norm(q[:3]) - q[3]) / max(p[i, 3], 1e-9)
            soft.append(np.exp(-v / 0.1))
            hard.append(v < 0.05)
    return float(np.mean(soft)), float(np.mean(hard))


def closeness_reward(tree: Tree, reco: Tree) -> tuple[float, float]:
    """(soft, hard) truth–reco closeness of the leaves (module docstring)."""
    t, r = tree.kin[_visible(tree)], reco.kin[reco.leaves()]
    d_r = delta_r(t[:, None, 1], t[:, None, 2], r[None, :, 1], r[None, :, 2])
    d_pt = np.abs(np.log(np.maximum(t[:, None, 0], 1e-3) / np.maximum(r[None, :, 0], 1e-3)))
    rows, cols = linear_sum_assignment(d_r / 0.05 + d_pt)
    n = max(len(t), len(r))
    soft = np.exp(-(d_r[rows, cols] / 0.05 + d_pt[rows, cols])).sum() / n
    close = (d_r[rows, cols] < 0.05) & (np.abs(np.expm1(-d_pt[rows, cols])) < 0.2)
    return float(soft), float(close.sum() / n)


def rewards(tree: Tree | None, reco: Tree, hard: bool = False,
            pt_min: float = 0.0) -> dict[str, float]:
    """All reward terms of a decoded tree (0 for each when it did not parse)."""
    if tree is None:
        return dict.fromkeys(TERMS, 0.0)
    k = 1 if hard else 0
    return {"decay": decay_reward(tree, reco, pt_min)[k],
            "momentum": momentum_reward(tree, reco)[k],
            "closeness": closeness_reward(tree, reco)[k]}
