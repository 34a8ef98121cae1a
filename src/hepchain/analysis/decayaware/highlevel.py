"""Standard ttH(bb̄) high-level variables for the BDT (as in the ATLAS/CMS ttH(bb̄)
single-lepton analyses): b-tagged-pair ΔR and masses, H_T, centrality, multiplicities.

Every variable is computed from the selected event's lepton, missing pT and jets (GeV, rad);
the b-tagged pairs need ≥ 2 b-tags (the selection guarantees it). With a tagger score per jet
(GN1's D_b) the BDT also gets the analyses' continuous b-tag variables
(:data:`SCORE_NAMES`), so that it sees what the networks see."""

from __future__ import annotations

import awkward as ak
import numpy as np

from hepchain.core.errors import DataError

NAMES = ("ΔR_bb min", "ΔR_bb mean", "m_bb of the closest pair", "m_bb max", "pT_bb of the "
         "closest pair", "H_T jets", "H_T all", "centrality", "n jets", "n b-tags",
         "leading jet pT", "lepton pT", "missing pT", "m_T(W)", "m_jjj max pT")
SCORE_NAMES = ("D_b 3rd highest", "D_b 4th highest", "D_b sum of the 4 highest")


def _p4(pt: ak.Array, eta: ak.Array, phi: ak.Array, mass: ak.Array) -> dict[str, ak.Array]:
    return {"px": pt * np.cos(phi), "py": pt * np.sin(phi), "pz": pt * np.sinh(eta),
            "e": np.sqrt((pt * np.cosh(eta)) ** 2 + mass ** 2)}


def _mass(a: dict[str, ak.Array], b: dict[str, ak.Array]) -> ak.Array:
    m2 = (a["e"] + b["e"]) ** 2 - sum((a[k] + b[k]) ** 2 for k in ("px", "py", "pz"))
    return np.sqrt(np.maximum(m2, 0.0))


def high_level(events: ak.Array, btag: ak.Array, score: ak.Array | None = None) -> np.ndarray:
    """(N, len(NAMES)) high-level variables, (N, len(NAMES) + len(SCORE_NAMES)) with the
    tagger's ``score`` per jet; DataError when an event has < 2 b-tags."""
    jets = events.jets
    n_tag = ak.to_numpy(ak.sum(btag, axis=1))
    if (n_tag < 2).any():
        raise DataError("The BDT variables need at least 2 b-tagged jets per event; "
                        "set selection.min_btags >= 2.")
    b = jets[btag == 1]
    p4 = _p4(b.pt, b.eta, b.phi, b.mass)
    pairs = ak.argcombinations(b.pt, 2)
    i, j = pairs["0"], pairs["1"]
    dphi = np.angle(np.exp(1j * ak.to_numpy(ak.flatten(b.phi[i] - b.phi[j]))))
    dr = ak.unflatten(np.hypot(ak.to_numpy(ak.flatten(b.eta[i] - b.eta[j])), dphi),
                      ak.num(i))
    pa, pb = ({k: v[i] for k, v in p4.items()}, {k: v[j] for k, v in p4.items()})
    mbb = _mass(pa, pb)
    closest = ak.argmin(dr, axis=1, keepdims=True)
    ptbb = np.hypot(pa["px"] + pb["px"], pa["py"] + pb["py"])
    jp4 = _p4(jets.pt, jets.eta, jets.phi, jets.mass)
    lep = events.leptons[:, 0]
    ht_jets = ak.sum(jets.pt, axis=1)
    ht_all = ht_jets + lep.pt + events.met
    e_all = ak.sum(jp4["e"], axis=1) + lep.pt * np.cosh(lep.eta)
    mt = np.sqrt(2 * lep.pt * events.met * (1 - np.cos(lep.phi - events.met_phi)))
    cols = [ak.min(dr, axis=1), ak.mean(dr, axis=1), ak.firsts(mbb[closest]), ak.max(mbb, axis=1),
            ak.firsts(ptbb[closest]), ht_jets, ht_all, ht_all / e_all, ak.num(jets),
            n_tag, jets.pt[:, 0], lep.pt, events.met, mt, _mjjj_max_pt(jp4)]
    if score is not None:  # NaN (the BDT's missing value) for an event with < 4 jets
        top = ak.fill_none(ak.pad_none(ak.sort(score, axis=1, ascending=False), 4, clip=True),
                           np.nan)
        cols += [top[:, 2], top[:, 3], ak.sum(top, axis=1)]
    return np.stack([ak.to_numpy(c).astype(np.float64) for c in cols], axis=1)


def _mjjj_max_pt(p4: dict[str, ak.Array]) -> ak.Array:
    """Mass of the three-jet combination with the largest summed pT (the hadronic-top
    candidate) [GeV]."""
    trip = ak.argcombinations(p4["px"], 3)
    s = {k: v[trip["0"]] + v[trip["1"]] + v[trip["2"]] for k, v in p4.items()}
    best = ak.argmax(np.hypot(s["px"], s["py"]), axis=1, keepdims=True)
    m2 = s["e"] ** 2 - s["px"] ** 2 - s["py"] ** 2 - s["pz"] ** 2
    return ak.firsts(np.sqrt(np.maximum(m2, 0.0))[best])
