"""FastJet clustering of particle-flow candidates: anti-kt jets with ghost-associated flavour
labels, their distance to the nearest hard-scatter truth jet (pile-up jet labelling), large-R
jets with N-subjettiness (beta = 1) and soft-drop mass.

Inputs are flat arrays with an event index; FastJet's multi-event interface clusters a whole
batch of events in one call.
"""

from __future__ import annotations

from dataclasses import dataclass

import awkward as ak
import numpy as np

from hepchain.collider.kinematics import delta_phi
from hepchain.collider.truth import GHOST_B, GHOST_C, GHOST_TAU

GHOST_SCALE = 1e-18
JET_PT_MIN, JET_ETA_MAX = 20.0, 2.5  # GeV, |eta|
SOFTDROP_BETA, SOFTDROP_ZCUT = 0.0, 0.1
#: hard-scatter truth jets that label a reconstructed jet as hard-scatter (ATLAS pile-up jet
#: studies: anti-kt R = 0.4 of the hard interaction's stable particles without neutrinos and
#: muons, pT > 10 GeV; a jet within dR < 0.3 of one is hard-scatter, beyond 0.6 pile-up)
TRUTH_JET_PT_MIN = 10.0  # GeV


_BANNER_SHOWN: list[bool] = []


def _fastjet():
    import fastjet

    from hepchain.collider.pythia import _captured_stdout

    if not _BANNER_SHOWN:
        with _captured_stdout():
            one = ak.Array([[{"px": 1.0, "py": 0.0, "pz": 0.0, "E": 1.0}]])
            fastjet.ClusterSequence(one, fastjet.JetDefinition(fastjet.antikt_algorithm, 0.4))
        _BANNER_SHOWN.append(True)
    return fastjet


def _jagged(n_events: int, event: np.ndarray, px: np.ndarray, py: np.ndarray, pz: np.ndarray,
            e: np.ndarray) -> ak.Array:
    """Per-event lists of (px, py, pz, E) records; inputs must be sorted by event."""
    counts = np.bincount(event, minlength=n_events)
    rec = ak.zip({"px": px, "py": py, "pz": pz, "E": e})
    return ak.unflatten(rec, counts)


def kinematics(px: np.ndarray, py: np.ndarray, pz: np.ndarray,
               e: np.ndarray) -> tuple[np.ndarray, ...]:
    """(pt, eta, phi, mass) from four-momenta (GeV)."""
    pt = np.hypot(px, py)
    eta = np.arcsinh(pz / np.maximum(pt, 1e-300))
    m2 = e**2 - px**2 - py**2 - pz**2
    return pt, eta, np.arctan2(py, px), np.sqrt(np.maximum(m2, 0.0))


def jet_energy_scale(pt: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """The CMS card's jet energy scale factor sqrt((2.5 - 0.15 |eta|)^2 / pT + 1) (pT in GeV),
    applied to the four-momentum of the R = 0.4 jets."""
    return np.sqrt((2.5 - 0.15 * np.abs(eta)) ** 2 / np.maximum(pt, 1e-9) + 1.0)


@dataclass
class Jets:
    """Selected jets, flat and sorted by (event, -pt)."""

    event: np.ndarray
    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    mass: np.ndarray
    flavour: np.ndarray


def small_r_jets(n_events: int, event: np.ndarray, px: np.ndarray, py: np.ndarray,
                 pz: np.ndarray, e: np.ndarray, ghost_event: np.ndarray, ghost_p: np.ndarray,
                 ghost_kind: np.ndarray, radius: float = 0.4) -> Jets:
    """Anti-kt jets (pT > 20 GeV after the jet energy scale, |eta| < 2.5) with flavour by ghost association: 5 if a
    weakly decaying b hadron is clustered into the jet, else 4 for a c hadron, 15 for a
    hadronic tau, 0 otherwise. ``ghost_p`` is an (n, 4) array of (px, py, pz, E)."""
    fj = _fastjet()
    all_event = np.concatenate([event, ghost_event])
    order = np.argsort(all_event, kind="stable")
    is_ghost = np.concatenate([np.zeros(len(event), bool), np.ones(len(ghost_event), bool)])
    kinds = np.concatenate([np.zeros(len(event), np.int8), ghost_kind])
    comp = [np.concatenate([a, GHOST_SCALE * ghost_p[:, i]])[order]
            for i, a in enumerate((px, py, pz, e))]
    data = _jagged(n_events, all_event[order], *comp)
    cs = fj.ClusterSequence(data, fj.JetDefinition(fj.antikt_algorithm, radius))
    jets = cs.inclusive_jets(JET_PT_MIN)
    cidx = cs.constituent_index(JET_PT_MIN)
    counts = ak.to_numpy(ak.num(jets))
    jet_event = np.repeat(np.arange(n_events), counts)
    jp = [ak.to_numpy(ak.flatten(jets[f])) for f in ("px", "py", "pz", "E")]
    pt, eta, phi, mass = kinematics(*jp)
    scale = jet_energy_scale(pt, eta)
    pt, mass = pt * scale, mass * scale
    # constituent index -> position in the sorted input -> ghost kind
    starts = np.bincount(all_event, minlength=n_events).cumsum() - np.bincount(all_event,
                                                                            minlength=n_events)
    const = ak.flatten(cidx, axis=1)  # per jet lists of per-event indices
    n_const = ak.to_numpy(ak.num(const))
    flat = ak.to_numpy(ak.flatten(const)) + np.repeat(starts[jet_event], n_const)
    ghost_in = np.where(is_ghost[order][flat], kinds[order][flat], 0)
    jet_of = np.repeat(np.arange(len(pt)), n_const)
    flavour = np.zeros(len(pt), np.int8)
    for label in (GHOST_TAU, GHOST_C, GHOST_B):  # later assignments win: b > c > tau
        flavour[np.unique(jet_of[ghost_in == label])] = label
    keep = (np.abs(eta) < JET_ETA_MAX) & (pt > JET_PT_MIN)
    sort = np.lexsort((-pt[keep], jet_event[keep]))
    return Jets(*(a[keep][sort] for a in (jet_event, pt, eta, phi, mass, flavour)))


def hard_scatter_dr(n_events: int, jet_event: np.ndarray, jet_eta: np.ndarray,
                    jet_phi: np.ndarray, event: np.ndarray, px: np.ndarray, py: np.ndarray,
                    pz: np.ndarray, e: np.ndarray, radius: float = 0.4) -> np.ndarray:
    """ΔR of every reconstructed jet to the nearest truth jet of the hard scatter (anti-kt
    ``radius`` of the given particles, pT > :data:`TRUTH_JET_PT_MIN` GeV, any η); ``inf`` in
    an event without one. The particles are the hard interaction's stable particles (pile-up
    excluded; the caller drops neutrinos and muons), sorted by ``event``; momenta in GeV.

    >>> hard_scatter_dr(1, np.array([0]), np.array([0.1]), np.array([0.0]), np.array([0]),
    ...                 np.array([30.0]), np.array([0.0]), np.array([0.0]), np.array([30.0]))
    array([0.1])
    """
    fj = _fastjet()
    data = _jagged(n_events, event, px, py, pz, e)
    cs = fj.ClusterSequence(data, fj.JetDefinition(fj.antikt_algorithm, radius))
    truth = cs.inclusive_jets(TRUTH_JET_PT_MIN)
    counts = ak.to_numpy(ak.num(truth))
    _, t_eta, t_phi, _ = kinematics(*(ak.to_numpy(ak.flatten(truth[f]))
                                      for f in ("px", "py", "pz", "E")))
    stop = np.cumsum(counts)
    start = stop - counts
    best = np.full(len(jet_event), np.inf)
    for k in range(int(counts.max(initial=0))):
        has = start[jet_event] + k < stop[jet_event]
        t = start[jet_event[has]] + k
        dr = np.hypot(jet_eta[has] - t_eta[t], delta_phi(jet_phi[has], t_phi[t]))
        best[has] = np.minimum(best[has], dr)
    return best


@dataclass
class FatJets:
    """Large-R jets, flat and sorted by (event, -pt)."""

    event: np.ndarray
    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    mass: np.ndarray
    tau1: np.ndarray
    tau2: np.ndarray
    tau3: np.ndarray
    msd: np.ndarray
    n_const: np.ndarray  # constituents per jet
    const: np.ndarray  # flat indices of the constituents into the (event-sorted) inputs


def large_r_jets(n_events: int, event: np.ndarray, px: np.ndarray, py: np.ndarray,
                 pz: np.ndarray, e: np.ndarray, radius: float, pt_min: float) -> FatJets:
    """Anti-kt jets of ``radius`` above ``pt_min`` (GeV) with tau_1..3 (beta = 1, normalised
    measure, one-pass kT axes) and the soft-drop mass (C/A re-clustering, beta = 0,
    z_cut = 0.1, R0 = ``radius``)."""
    fj = _fastjet()
    data = _jagged(n_events, event, px, py, pz, e)
    cs = fj.ClusterSequence(data, fj.JetDefinition(fj.antikt_algorithm, radius))
    jets = cs.inclusive_jets(pt_min)
    consts = cs.constituents(pt_min)
    counts = ak.to_numpy(ak.num(jets))
    jet_event = np.repeat(np.arange(n_events), counts)
    cidx = ak.flatten(cs.constituent_index(pt_min), axis=1)
    n_const = ak.to_numpy(ak.num(cidx)).astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(np.bincount(event, minlength=n_events))[:-1]])
    flat = ak.to_numpy(ak.flatten(cidx)) + np.repeat(starts[jet_event], n_const)
    jp = [ak.to_numpy(ak.flatten(jets[f])) for f in ("px", "py", "pz", "E")]
    pt, eta, phi, mass = kinematics(*jp)
    tau = np.zeros((len(pt), 3))
    msd = np.zeros(len(pt))
    if len(pt):
        per_jet = ak.flatten(consts, axis=1)
        per_jet = ak.zip({f: per_jet[f] for f in ("px", "py", "pz", "E")})
        sub = fj.ClusterSequence(per_jet, fj.JetDefinition(fj.cambridge_algorithm, 10.0))
        tau = ak.to_numpy(sub.njettiness(njets=[1, 2, 3], beta=1.0, R0=radius))
        msd = ak.to_numpy(sub.exclusive_jets_softdrop_grooming(
            njets=1, beta=SOFTDROP_BETA, symmetry_cut=SOFTDROP_ZCUT, R0=radius).msoftdrop)
    sort = np.lexsort((-pt, jet_event))
    first = np.concatenate([[0], np.cumsum(n_const)[:-1]])
    const = np.concatenate([flat[first[k]:first[k] + n_const[k]] for k in sort]) if len(
        sort) else np.zeros(0, np.int64)
    return FatJets(jet_event[sort], pt[sort], eta[sort], phi[sort], mass[sort],
                   tau[sort, 0], tau[sort, 1], tau[sort, 2], msd[sort], n_const[sort], const)
