"""High-level jet features for the DL1-like MLP and the boosted trees.

IP summaries (IP3D-like LLRs b/light and b/c, the three largest s_d0 and their s_z0, the
number of tracks with s_d0 > 2 and > 4, the track count), the secondary-vertex features of
:mod:`svfinder`, soft-lepton features (a track identified as a lepton by the detector's
reconstructed ``lepton_id``: presence flag, and the highest-pT one's momentum transverse to
the jet axis p_T,rel [GeV] and its s_d0 — the same lepton information GN1 and DeepSets get per
track), and the jet pT [GeV] (as ln pT) and η.
"""

from __future__ import annotations

import numpy as np

from hepchain.reco.btag.ip3d import LLR_FEATURES
from hepchain.reco.btag.svfinder import SV_FEATURES, find_vertices
from hepchain.reco.btag.table import JetTable

IP_FEATURES: tuple[str, ...] = (*LLR_FEATURES, "sd0_1", "sd0_2", "sd0_3",
                                "sz0_1", "sz0_2", "sz0_3", "n_sd0_gt2", "n_sd0_gt4", "n_trk")
SLT_FEATURES: tuple[str, ...] = ("slt_found", "slt_ptrel", "slt_sd0")
HL_FEATURES: tuple[str, ...] = (*IP_FEATURES, *SV_FEATURES, *SLT_FEATURES, "log_pt", "eta")


def soft_lepton_features(table: JetTable) -> dict[str, np.ndarray]:
    """:data:`SLT_FEATURES` per jet: 1 if a track is identified as e or μ, the highest-pT such
    track's p_T,rel = |p × â_jet| [GeV] and its s_d0 (sign(s) ln(1 + |s|)); 0 without one."""
    lep = table.mask & (table.track("lepton_id") > 0)
    pt = table.track("pt").astype(np.float64)
    best = np.where(lep, pt, -1.0).argmax(axis=1)
    rows = np.arange(len(table))
    found = lep[rows, best]
    eta, phi = (table.track(k).astype(np.float64)[rows, best] for k in ("eta", "phi"))
    p = pt[rows, best, None] * np.stack([np.cos(phi), np.sin(phi), np.sinh(eta)], axis=-1)
    jet_eta, jet_phi = table.jet[:, 1].astype(np.float64), table.phi.astype(np.float64)
    axis = np.stack([np.cos(jet_phi), np.sin(jet_phi), np.sinh(jet_eta)], axis=-1)
    axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
    ptrel = np.linalg.norm(np.cross(p, axis), axis=-1)
    sd0 = table.track("sd0")[rows, best]
    return {"slt_found": found.astype(np.float32),
            "slt_ptrel": np.where(found, ptrel, 0.0),
            "slt_sd0": np.where(found, np.sign(sd0) * np.log1p(np.abs(sd0)), 0.0)}


def high_level_features(table: JetTable, ip_llr: dict[str, np.ndarray],
                        sv_cfg: dict | None = None) -> np.ndarray:
    """(N, len(HL_FEATURES)) float32 feature matrix (tracks are sorted by s_d0 already);
    ``ip_llr`` holds the IP3D-like :data:`~.ip3d.LLR_FEATURES` columns of these jets (out of
    fold for the jets the templates were filled from)."""
    sd0, sz0, m = table.track("sd0"), table.track("sz0"), table.mask
    top = min(3, sd0.shape[1])
    fill = -5.0  # slot without a track
    sd0_top = np.full((len(table), 3), fill, np.float32)
    sz0_top = np.full((len(table), 3), fill, np.float32)
    sd0_top[:, :top] = np.where(m[:, :top], np.sign(sd0[:, :top]) * np.log1p(np.abs(sd0[:, :top])), fill)
    sz0_top[:, :top] = np.where(m[:, :top], np.sign(sz0[:, :top]) * np.log1p(np.abs(sz0[:, :top])), fill)
    cols = {
        **ip_llr,
        **soft_lepton_features(table),
        "n_sd0_gt2": ((sd0 > 2) & m).sum(1), "n_sd0_gt4": ((sd0 > 4) & m).sum(1),
        "n_trk": m.sum(1), "log_pt": np.log(table.jet[:, 0]), "eta": table.jet[:, 1],
    }
    for k in range(3):
        cols[f"sd0_{k + 1}"] = sd0_top[:, k]
        cols[f"sz0_{k + 1}"] = sz0_top[:, k]
    sv = find_vertices(table, **(sv_cfg or {}))
    sv["sv_L"] = np.sign(sv["sv_L"]) * np.log1p(np.abs(sv["sv_L"]) / 0.1)
    sv["sv_Lsig"] = np.sign(sv["sv_Lsig"]) * np.log1p(np.abs(sv["sv_Lsig"]))
    cols.update(sv)
    return np.stack([np.asarray(cols[f], np.float32) for f in HL_FEATURES], axis=-1)
