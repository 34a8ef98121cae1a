"""The event as a set of objects — lepton, missing pT as the neutrino, jets — with truth
targets: the hop-count matrix along the decay chain and the jets' SPANet-style roles.

Object order: 0 the lepton, 1 the neutrino (missing pT: η = 0, E = pT), 2.. the leading
``max_jets`` jets by pT (padding masked). Features per object: ln pT [GeV], η, sin and cos of
φ − φ_lepton [rad], ln E [GeV], the b-tagger's score (GN1's D_b; 0 for the lepton, the
neutrino and with the parameterised tagger, which has none), b-tag (0/1 at the working point),
and one-hot type (lepton, neutrino, jet).

Truth matching, per event, on the hard-process record (``partons``: ``pid``, ``parent``,
``eta``, ``phi``): the final hard partons (those without hard-process daughters) are the
leaves. The charged lepton (e, μ, τ) is matched to the reconstructed lepton within ΔR < 0.4,
the neutrino to the missing pT, the quarks to jets by ascending ΔR < 0.4, each jet at most
once. The decay tree is the hard record under one root (the production vertex). For
tt̄ + jets, heavy-flavour jets (ghost flavour b or c) matched to no hard parton are leaves
of one gluon per flavour under the root (g → bb̄, g → cc̄ from the shower: two such b jets
are 1 hop apart; our event record keeps no shower history, so this is the approximation);
every other jet is unmatched and masked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import awkward as ak
import numpy as np

from hepchain.analysis.decayaware.hops import MASKED, hop_matrix
from hepchain.collider.kinematics import delta_r
from hepchain.core.errors import DataError

FEATURES = ("ln pT", "eta", "sin dphi", "cos dphi", "ln E", "D_b", "b-tag", "is lepton",
            "is neutrino", "is jet")
N_CONTINUOUS = 6  # the first six features are standardised, the flags are not
#: jet roles of the assignment target (q₁/q₂ and b_H₁/b_H₂ share a role: SPANet's symmetry)
ROLES = ("other", "b_had", "b_lep", "q (W_had)", "b_H")
OTHER, B_HAD, B_LEP, Q_W, B_H = range(len(ROLES))
MATCH_DR = 0.4
LEPTONS, NEUTRINOS = (11, 13, 15), (12, 14, 16)


@dataclass
class EventObjects:
    """Padded object tensors of N events with T = 2 + max_jets slots.

    ``x`` (N, T, F) features, ``mask`` (N, T) real objects, ``hops`` (N, T, T) hop counts
    (:data:`~.hops.MASKED` for unmatched or padded objects), ``roles`` (N, T) jet roles
    (:data:`ROLES`, -1 for the lepton, the neutrino and padding)."""

    x: np.ndarray
    mask: np.ndarray
    hops: np.ndarray
    roles: np.ndarray

    def __len__(self) -> int:
        return len(self.x)

    def take(self, idx: np.ndarray) -> EventObjects:
        return EventObjects(self.x[idx], self.mask[idx], self.hops[idx], self.roles[idx])


def event_tree(pid: np.ndarray, parent: np.ndarray, extra: Sequence[int] = ()) -> np.ndarray:
    """Parents of the decay tree of one event: the hard partons (``parent`` -1 hung under a
    root), the root, a gluon → bb̄ and a gluon → cc̄ under the root, then one leaf per
    extra heavy-flavour jet under the gluon of its flavour (``extra``: 5 or 4 per leaf)."""
    n = len(pid)
    gluon = {5: n + 1, 4: n + 2}
    return np.concatenate([np.where(parent < 0, n, parent), [-1, n, n],
                           [gluon[f] for f in extra]]).astype(np.int64)


def jet_roles(pid: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """Role (:data:`ROLES`) of each hard parton if a jet is matched to it."""
    roles = np.full(len(pid), OTHER)
    children = [np.flatnonzero(parent == k) for k in range(len(pid))]
    for k, (p, m) in enumerate(zip(np.abs(pid), parent, strict=True)):
        if m < 0 or not 1 <= p <= 5:
            continue
        mother = abs(int(pid[m]))
        if mother == 25:
            roles[k] = B_H
        elif mother == 24:
            roles[k] = Q_W
        elif mother == 6:
            w = [c for c in children[m] if abs(int(pid[c])) == 24]
            leptonic = any(abs(int(pid[d])) in LEPTONS for c in w for d in children[c])
            roles[k] = B_LEP if leptonic else B_HAD
    return roles


def build_objects(events: ak.Array, btag: ak.Array, max_jets: int, min_jets: int,
                  score: ak.Array | None = None) -> EventObjects:
    """:class:`EventObjects` of selected ``events`` (one lepton, ≥ ``min_jets`` jets;
    ``btag`` per jet 0/1, ``score`` per jet the tagger's discriminant or None); DataError
    naming the first event with too few objects."""
    n_lep, n_jet = ak.to_numpy(ak.num(events.leptons)), ak.to_numpy(ak.num(events.jets))
    bad = np.flatnonzero((n_lep < 1) | (n_jet < min_jets))
    if bad.size:
        i = int(bad[0])
        raise DataError(f"Event {i} has {n_lep[i]} leptons and {n_jet[i]} jets; the objects "
                        f"need one lepton and at least {min_jets} jets (apply the selection "
                        "first).")
    if max_jets < min_jets:
        raise DataError(f"max_jets ({max_jets}) must be at least min_jets ({min_jets}).")
    n, t = len(events), 2 + max_jets
    x = np.zeros((n, t, len(FEATURES)), np.float32)
    mask = np.zeros((n, t), bool)
    hops = np.full((n, t, t), MASKED, np.int64)
    roles = np.full((n, t), -1, np.int64)
    recs = ak.to_list(events[["leptons", "jets", "met", "met_phi", "partons"]])
    tags = ak.to_list(btag)
    scores = ak.to_list(score) if score is not None else [[0.0] * len(t) for t in tags]
    for e, (rec, tag, db) in enumerate(zip(recs, tags, scores, strict=True)):
        x[e], mask[e], hops[e], roles[e] = _one_event(rec, tag, db, max_jets)
    return EventObjects(x, mask, hops, roles)


def _one_event(rec: dict, tag: list, score: list, max_jets: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Features, mask, hop matrix and jet roles of one event (padded to 2 + max_jets)."""
    lep, jets = rec["leptons"][0], rec["jets"][:max_jets]
    t = 2 + max_jets
    x = np.zeros((t, len(FEATURES)), np.float32)
    nj = len(jets)
    pt = np.array([lep["pt"], rec["met"], *(j["pt"] for j in jets)])
    eta = np.array([lep["eta"], 0.0, *(j["eta"] for j in jets)])
    phi = np.array([lep["phi"], rec["met_phi"], *(j["phi"] for j in jets)])
    mass = np.array([0.0, 0.0, *(j["mass"] for j in jets)])
    energy = np.hypot(pt * np.cosh(eta), mass)
    k = 2 + nj
    x[:k, 0], x[:k, 1] = np.log(pt), eta
    x[:k, 2], x[:k, 3] = np.sin(phi - lep["phi"]), np.cos(phi - lep["phi"])
    x[:k, 4], x[2:k, 5], x[2:k, 6] = np.log(energy), score[:nj], tag[:nj]
    x[0, 7], x[1, 8], x[2:k, 9] = 1.0, 1.0, 1.0
    mask = np.zeros(t, bool)
    mask[:k] = True
    pid, parent = _parton_arrays(rec["partons"])
    nodes, roles, extra = _match(pid, parent, rec["partons"], lep, jets)
    roles_out = np.full(t, -1, np.int64)
    roles_out[2:k] = roles
    node_out = np.full(t, -1, np.int64)
    node_out[:k] = nodes
    return x, mask, hop_matrix(event_tree(pid, parent, extra), node_out), roles_out


def _parton_arrays(partons: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    return (np.array([p["pid"] for p in partons], np.int64),
            np.array([p["parent"] for p in partons], np.int64))


def _match(pid: np.ndarray, parent: np.ndarray, partons: list[dict], lep: dict,
           jets: list[dict]) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Tree node of each object (lepton, neutrino, jets; -1 unmatched), each jet's role and
    the flavours of the extra heavy-flavour leaves (nodes after the two gluons)."""
    leaf = ~np.isin(np.arange(len(pid)), parent)
    eta = np.array([p["eta"] for p in partons])
    phi = np.array([p["phi"] for p in partons])
    nodes = np.full(2 + len(jets), -1, np.int64)
    for k in np.flatnonzero(leaf & np.isin(np.abs(pid), LEPTONS)):
        if delta_r(lep["eta"], lep["phi"], eta[k:k + 1], phi[k:k + 1])[0] < MATCH_DR:
            nodes[0] = k
    nus = np.flatnonzero(leaf & np.isin(np.abs(pid), NEUTRINOS))
    if nus.size:
        nodes[1] = nus[0]
    quarks = np.flatnonzero(leaf & (np.abs(pid) >= 1) & (np.abs(pid) <= 5))
    roles = np.full(len(jets), OTHER, np.int64)
    parton_role = jet_roles(pid, parent)
    if quarks.size and jets:
        j_eta = np.array([j["eta"] for j in jets])
        j_phi = np.array([j["phi"] for j in jets])
        dr = np.stack([delta_r(eta[q], phi[q], j_eta, j_phi) for q in quarks])  # (quark, jet)
        for flat in np.argsort(dr, axis=None):
            q, j = np.unravel_index(flat, dr.shape)
            if dr[q, j] >= MATCH_DR:
                break
            if nodes[2 + j] < 0 and quarks[q] not in nodes:
                nodes[2 + j] = quarks[q]
                roles[j] = parton_role[quarks[q]]
    extra: list[int] = []
    for j, jet in enumerate(jets):
        if nodes[2 + j] < 0 and jet["flavour"] in (4, 5):
            nodes[2 + j] = len(pid) + 3 + len(extra)
            extra.append(int(jet["flavour"]))
    return nodes, roles, extra
