"""Physics validation of the collider substrate: mass peaks, impact-parameter significances,
track resolution and efficiency, B-hadron lifetimes, flavour fractions, tau visible mass,
isolated leptons.

Functions take event records (``ak.Array`` from :mod:`hepchain.collider.events`) or a
generated :class:`~hepchain.collider.pythia.Particles` batch and return plain numbers/arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import awkward as ak
import numpy as np

from hepchain.collider import tracking, truth
from hepchain.collider.kinematics import delta_r
from hepchain.collider.pythia import Particles

MATCH_DR = 0.3


def _mass(pt: np.ndarray, eta: np.ndarray, phi: np.ndarray, m: np.ndarray) -> float:
    px, py = pt * np.cos(phi), pt * np.sin(phi)
    pz = pt * np.sinh(eta)
    e = np.sqrt(px**2 + py**2 + pz**2 + m**2)
    return float(np.sqrt(max(e.sum() ** 2 - px.sum() ** 2 - py.sum() ** 2 - pz.sum() ** 2, 0)))


def top_w_masses(events: ak.Array) -> tuple[np.ndarray, np.ndarray]:
    """Invariant masses [GeV] of hadronic W -> q q' (2 jets) and t -> b q q' (3 jets), using
    the jets matched (ΔR < 0.3, one jet per parton) to the hard-process quarks."""
    m_w, m_t = [], []
    for ev in events:
        partons = ev["partons"]
        jets = ev["jets"]
        if len(jets) < 2:
            continue
        pid = np.asarray(partons["pid"])
        parent = np.asarray(partons["parent"])
        jeta, jphi = np.asarray(jets["eta"]), np.asarray(jets["phi"])
        for w in np.flatnonzero(np.abs(pid) == 24):
            quarks = np.flatnonzero((parent == w) & (np.abs(pid) <= 5))
            if len(quarks) != 2:
                continue
            top = parent[w]
            bs = np.flatnonzero((parent == top) & (np.abs(pid) == 5)) if top >= 0 else []
            match = []
            for q in [*quarks, *bs[:1]]:
                dr = delta_r(partons["eta"][q], partons["phi"][q], jeta, jphi)
                dr[match] = np.inf
                k = int(np.argmin(dr))
                if dr[k] >= MATCH_DR:
                    break
                match.append(k)
            kin = [np.asarray(jets[f]) for f in ("pt", "eta", "phi", "mass")]
            if len(match) >= 2:
                m_w.append(_mass(*(a[match[:2]] for a in kin)))
            if len(match) == 3:
                m_t.append(_mass(*(a[match] for a in kin)))
    return np.array(m_w), np.array(m_t)


def sd0_by_flavour(events: ak.Array) -> dict[int, np.ndarray]:
    """Lifetime-signed d0 significances of the tracks of b (5), c (4) and light (0) jets."""
    jets = ak.flatten(events["jets"])
    out = {}
    for flav in (5, 4, 0):
        out[flav] = ak.to_numpy(ak.flatten(jets[jets["flavour"] == flav]["tracks"]["sd0"]))
    return out


def secondary_fractions(events: ak.Array) -> dict[int, tuple[float, float, int]]:
    """Per jet flavour (b 5, c 4, light 0): the fraction of jet tracks from secondary
    interactions and light-hadron decays (origin ``otherSecondary``), the fraction that are
    photon-conversion electrons among all jet tracks, and the number of jet tracks."""
    jets = ak.flatten(events["jets"])
    out = {}
    for flav in (5, 4, 0):
        tracks = ak.flatten(jets[jets["flavour"] == flav]["tracks"])
        sec = ak.to_numpy(tracks["truth_origin"]) == truth.OTHER_SECONDARY
        conv = sec & (ak.to_numpy(tracks["truth_lepton"]) == 11)
        out[flav] = ((float(sec.mean()), float(conv.mean()), len(sec)) if len(sec)
                     else (float("nan"), float("nan"), 0))
    return out


def flavour_fractions(events: ak.Array) -> dict[int, float]:
    """Fractions of b, c, tau and light jets among all selected jets."""
    flav = ak.to_numpy(ak.flatten(events["jets"]["flavour"]))
    return {f: float(np.mean(flav == f)) if len(flav) else float("nan") for f in (5, 4, 15, 0)}


@dataclass
class LeptonCheck:
    """Isolated-lepton counts of a t tbar-like sample (:func:`lepton_check`): ``found``, per
    true e/μ from a W decay in the acceptance (event order), whether an isolated lepton of its
    flavour lies within the matching ΔR; ``n_nonprompt``, the isolated leptons from neither a
    W's e/μ nor near a W's τ."""

    found: np.ndarray
    n_nonprompt: int
    n_events: int

    @property
    def efficiency(self) -> float:
        return float(self.found.mean()) if len(self.found) else float("nan")

    @property
    def efficiency_error(self) -> float:
        """Binomial error of :attr:`efficiency`."""
        e = self.efficiency
        return float(np.sqrt(e * (1 - e) / max(len(self.found), 1)))


def lepton_check(events: ak.Array, match_dr: float = 0.1, tau_dr: float = 0.4) -> LeptonCheck:
    """Identification × isolation efficiency of prompt leptons and the rate of non-prompt
    isolated leptons. Prompt: the hard process's e/μ with a W parent, pT > 10 GeV and
    |η| < 2.5 (e) / 2.4 (μ), found when an isolated lepton of the same flavour lies within
    ``match_dr``. Non-prompt: isolated leptons matched to no prompt e/μ and farther than
    ``tau_dr`` from every τ of a W (whose leptonic decays are not in the hard process)."""
    found: list[bool] = []
    n_nonprompt = 0
    for ev in ak.to_list(events[["partons", "leptons"]]):
        par, lep = ev["partons"], ev["leptons"]
        w_kids = [p for p in par if p["parent"] >= 0 and abs(par[p["parent"]]["pid"]) == 24]
        prompt = [p for p in w_kids if abs(p["pid"]) in (11, 13) and p["pt"] > 10.0
                  and abs(p["eta"]) < (2.5 if abs(p["pid"]) == 11 else 2.4)]
        taus = [p for p in w_kids if abs(p["pid"]) == 15]
        matched = set()
        for p in prompt:
            hits = [k for k, lp in enumerate(lep) if abs(lp["pdgid"]) == abs(p["pid"])
                    and delta_r(lp["eta"], lp["phi"], p["eta"], p["phi"]) < match_dr]
            found.append(bool(hits))
            matched.update(hits)
        for k, lp in enumerate(lep):
            near_tau = any(delta_r(lp["eta"], lp["phi"], t["eta"], t["phi"]) < tau_dr
                           for t in taus)
            n_nonprompt += k not in matched and not near_tau
    return LeptonCheck(np.array(found, bool), n_nonprompt, len(events))


@dataclass
class TrackCheck:
    """Truth vs reconstruction of charged particles: pulls, resolution, efficiency.

    The pulls are a closure check, not a validation: ``tracking.reconstruct`` smears d0 and z0
    with exactly the σ they are divided by (and pT log-normally with the card's σ), so widths
    of 1 show the smearing is applied as intended, not that the resolution model is right.
    """

    pull_d0: np.ndarray
    pull_z0: np.ndarray
    pt_true: np.ndarray
    eta_true: np.ndarray
    pt_rel: np.ndarray  # (pT_reco - pT_true) / pT_true
    res_expected: np.ndarray  # card sigma(pT)/pT for each track
    gen_pt: np.ndarray
    gen_eta: np.ndarray
    gen_r: np.ndarray  # production radius [mm]
    found: np.ndarray  # per charged particle: reconstructed?


def track_check(p: Particles, charge: np.ndarray, seed: int) -> TrackCheck:
    """Reconstruct the charged final-state particles of ``p`` and compare with the truth."""
    rng = np.random.default_rng(seed)
    sel = np.flatnonzero((p.status > 0) & (charge != 0))
    trk = tracking.reconstruct(rng, p.event[sel], sel, p.pid[sel], charge[sel], p.px[sel],
                               p.py[sel], p.pz[sel], p.x[sel], p.y[sel], p.z[sel])
    src = trk.src
    d0, z0, _ = tracking.perigee(p.x[src], p.y[src], p.z[src], p.px[src], p.py[src],
                                 p.pz[src], charge[src].astype(float))
    pt = np.hypot(p.px[src], p.py[src])
    eta = np.arcsinh(p.pz[src] / pt)
    apid = np.abs(p.pid[src])
    kind = np.where(apid == 11, 11, np.where(apid == 13, 13, 0))
    gen_pt = np.hypot(p.px[sel], p.py[sel])
    found = np.isin(sel, src)
    return TrackCheck(
        pull_d0=(trk.d0 - d0) / trk.sigma["d0"], pull_z0=(trk.z0 - z0) / trk.sigma["z0"],
        pt_true=pt, eta_true=eta, pt_rel=(trk.pt - pt) / pt,
        res_expected=tracking.pt_resolution(kind, pt, eta), gen_pt=gen_pt,
        gen_eta=np.arcsinh(p.pz[sel] / np.maximum(gen_pt, 1e-12)),
        gen_r=np.hypot(p.x[sel], p.y[sel]), found=found)


def b_hadron_ctau(p: Particles) -> np.ndarray:
    """Proper decay lengths c*tau = L / (beta gamma) [mm] of weakly decaying b hadrons, from
    the production vertex of their first daughter."""
    _, _, hf = truth.track_labels(p)
    ghost = truth.ghost_kinds(p, hf)
    idx = np.flatnonzero((hf == 5) & (ghost == truth.GHOST_B) & (p.daughter1 > 0))
    start = p.offsets[p.event[idx]]
    d = start + p.daughter1[idx]
    length = np.sqrt((p.x[d] - p.x[idx]) ** 2 + (p.y[d] - p.y[idx]) ** 2
                     + (p.z[d] - p.z[idx]) ** 2)
    betagamma = np.sqrt(p.px[idx] ** 2 + p.py[idx] ** 2 + p.pz[idx] ** 2) / p.m[idx]
    return length / betagamma


def b_hadron_mean_tau0(pythia: object, p: Particles) -> float:
    """Mean of Pythia's tau0 [mm/c] over the same weakly decaying b hadrons (the expectation
    for :func:`b_hadron_ctau`)."""
    _, _, hf = truth.track_labels(p)
    ghost = truth.ghost_kinds(p, hf)
    idx = np.flatnonzero((hf == 5) & (ghost == truth.GHOST_B) & (p.daughter1 > 0))
    return float(np.mean([pythia.particleData.tau0(int(i)) for i in p.pid[idx]]))


def tau_visible_mass(p: Particles) -> np.ndarray:
    """Visible mass [GeV] of the decay products (neutrinos excluded) of each tau."""
    origin, vparent, _ = truth.track_labels(p)
    final = (p.status > 0) & (origin == truth.FROM_TAU) & (vparent >= 0)
    final &= ~np.isin(np.abs(p.pid), (12, 14, 16))
    i = np.flatnonzero(final)
    key = p.event[i] * 100_000 + vparent[i]
    _, inv = np.unique(key, return_inverse=True)
    sums = [np.bincount(inv, weights=getattr(p, f)[i]) for f in ("e", "px", "py", "pz")]
    m2 = sums[0] ** 2 - sums[1] ** 2 - sums[2] ** 2 - sums[3] ** 2
    return np.sqrt(np.maximum(m2, 0.0))
