"""Per-jet trees for the jet-tree translation study (option ``jet_trees=1``).

- ``merge``: the anti-kt clustering history of each R = 0.4 jet, rebuilt by recursive
  ``has_parents`` declustering (FastJet SWIG interface); nodes in pre-order, each with
  ``pt, eta, phi, mass`` (GeV, before the jet energy scale), ``left``/``right`` child node
  indices (-1 for leaves) and ``leaf`` (index of the particle-flow candidate in the event,
  -1 for internal nodes).
- ``truth``: the generator decay forest of the jet: the visible final-state particles of the
  hard event within ΔR < 0.4 of the jet axis and all their ancestors up to the primary
  particles (hadrons from hadronisation, shower photons/leptons; every |status| < 91),
  carbon copies skipped, rooted at node 0 = the jet itself (its kinematics) labelled with the
  pid of the nearest hard-process parton within ΔR < 0.4 (0 if none); each node has
  ``pid, pt, eta, phi, mass`` and ``parent`` (node index, -1 for the root).
"""

from __future__ import annotations

import awkward as ak
import numpy as np

from hepchain.collider.jets import JET_ETA_MAX, Jets, _fastjet
from hepchain.collider.kinematics import delta_r
from hepchain.collider.pythia import Particles

R = 0.4


def _kin(p) -> tuple[float, float, float, float]:
    return p.pt(), p.eta(), p.phi_std(), max(p.m(), 0.0)


def merge_trees(n_events: int, small: Jets, pf: dict[str, np.ndarray]) -> list[dict]:
    """Clustering trees of the selected jets (one dict of node lists per jet, jet order)."""
    fj = _fastjet()
    trees: list[dict] = [{} for _ in range(len(small.pt))]
    bounds = np.searchsorted(pf["event"], np.arange(n_events + 1))
    jdef = fj.JetDefinition(fj.antikt_algorithm, R)
    for ev in range(n_events):
        sel = np.flatnonzero(small.event == ev)
        if not len(sel):
            continue
        lo, hi = bounds[ev], bounds[ev + 1]
        inputs = []
        for k in range(lo, hi):
            pj = fj.PseudoJet(pf["px"][k], pf["py"][k], pf["pz"][k], pf["e"][k])
            pj.set_user_index(int(k - lo))
            inputs.append(pj)
        cs = fj.ClusterSequence(inputs, jdef)
        found = [j for j in cs.inclusive_jets(5.0) if abs(j.eta()) < JET_ETA_MAX + R]
        for i in sel:
            best = min(found, key=lambda j, i=i: delta_r(np.array(j.eta()), np.array(j.phi_std()),
                                                      small.eta[i], small.phi[i]))
            trees[i] = _decluster(fj, best)
    return trees


def _decluster(fj, jet) -> dict[str, list]:
    nodes: dict[str, list] = {k: [] for k in ("pt", "eta", "phi", "mass", "left", "right",
                                              "leaf")}
    stack = [(jet, -1, 0)]  # (pseudojet, parent node, 0 = left / 1 = right)
    while stack:
        pj, parent, side = stack.pop()
        idx = len(nodes["pt"])
        for key, value in zip(("pt", "eta", "phi", "mass"), _kin(pj), strict=True):
            nodes[key].append(value)
        nodes["left"].append(-1)
        nodes["right"].append(-1)
        if parent >= 0:
            nodes["right" if side else "left"][parent] = idx
        p1, p2 = fj.PseudoJet(), fj.PseudoJet()
        if pj.has_parents(p1, p2):
            nodes["leaf"].append(-1)
            stack.append((p2, idx, 1))
            stack.append((p1, idx, 0))
        else:
            nodes["leaf"].append(pj.user_index())
    return nodes


def truth_trees(hard: Particles, small: Jets, final: np.ndarray,
                partons: dict[str, np.ndarray]) -> list[dict]:
    """Decay forests of the selected jets (see the module docstring)."""
    pt = np.hypot(hard.px, hard.py)
    eta = np.arcsinh(hard.pz / np.maximum(pt, 1e-12))
    phi = np.arctan2(hard.py, hard.px)
    mass = hard.m
    trees = []
    for i in range(len(small.pt)):
        ev = small.event[i]
        lo, hi = hard.offsets[ev], hard.offsets[ev + 1]
        inside = np.flatnonzero(final[lo:hi]) + lo
        inside = inside[delta_r(eta[inside], phi[inside], small.eta[i], small.phi[i]) < R]
        psel = np.flatnonzero(partons["event"] == ev)
        root_pid = 0
        if len(psel):
            d = delta_r(partons["eta"][psel], partons["phi"][psel], small.eta[i], small.phi[i])
            if d.min() < R:
                root_pid = int(partons["pid"][psel][np.argmin(d)])
        node_of: dict[int, int] = {}
        nodes: dict[str, list] = {"pid": [root_pid], "pt": [small.pt[i]],
                                  "eta": [small.eta[i]], "phi": [small.phi[i]],
                                  "mass": [small.mass[i]], "parent": [-1]}

        for g in inside:
            _attach(int(g), int(lo), hard, node_of, nodes, (pt, eta, phi, mass))
        trees.append(nodes)
    return trees


def _attach(g: int, lo: int, hard: Particles, node_of: dict[int, int], nodes: dict[str, list],
            kin: tuple[np.ndarray, ...]) -> None:
    """Add particle ``g`` and its not-yet-present decay ancestors to the tree ``nodes``."""
    chain = []
    while g not in node_of:
        chain.append(g)
        m = hard.mother1[g]
        if abs(hard.status[g]) < 91 or m <= 0:  # not a decay product: a primary particle
            break
        up = lo + m
        # skip carbon copies (single mother with the same id)
        while (hard.mother1[up] == hard.mother2[up] and hard.mother1[up] > 0
               and hard.pid[lo + hard.mother1[up]] == hard.pid[up]):
            up = lo + hard.mother1[up]
        g = up
    parent = node_of.get(g, 0)
    for c in reversed(chain):
        node_of[c] = len(nodes["pid"])
        nodes["pid"].append(int(hard.pid[c]))
        for key, arr in zip(("pt", "eta", "phi", "mass"), kin, strict=True):
            nodes[key].append(float(arr[c]))
        nodes["parent"].append(parent)
        parent = node_of[c]


def to_awkward(trees: list[dict], fields: dict[str, type]) -> ak.Array:
    """Per-jet node lists as an ``ak.Array`` of length ``len(trees)``."""
    counts = np.array([len(t.get(next(iter(fields)), [])) for t in trees], np.int64)
    cols = {k: np.array([v for t in trees for v in t.get(k, [])], dtype=dt)
            for k, dt in fields.items()}
    return ak.unflatten(ak.zip(cols, depth_limit=1), counts)


MERGE_FIELDS = {"pt": np.float64, "eta": np.float64, "phi": np.float64, "mass": np.float64,
                "left": np.int64, "right": np.int64, "leaf": np.int64}
TRUTH_FIELDS = {"pid": np.int64, "pt": np.float64, "eta": np.float64, "phi": np.float64,
                "mass": np.float64, "parent": np.int64}
