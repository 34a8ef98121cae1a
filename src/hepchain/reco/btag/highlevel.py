"""High-level jet features for the DL1-like MLP and the boosted trees.

IP summaries (IP3D-like LLRs b/light and b/c, the three largest s_d0 and their s_z0, the
number of tracks with s_d0 > 2 and > 4, the track count), the secondary-vertex features of
:mod:`svfinder`, and the jet pT [GeV] (as ln pT) and η.
"""

from __future__ import annotations

import numpy as np

from hepchain.reco.btag.ip3d import IPTemplates
from hepchain.reco.btag.svfinder import SV_FEATURES, find_vertices
from hepchain.reco.btag.table import JetTable

IP_FEATURES: tuple[str, ...] = ("ip3d_llr_bl", "ip3d_llr_bc", "sd0_1", "sd0_2", "sd0_3",
                                "sz0_1", "sz0_2", "sz0_3", "n_sd0_gt2", "n_sd0_gt4", "n_trk")
HL_FEATURES: tuple[str, ...] = (*IP_FEATURES, *SV_FEATURES, "log_pt", "eta")


def high_level_features(table: JetTable, templates: IPTemplates, sv_cfg: dict | None = None
                        ) -> np.ndarray:
    """(N, len(HL_FEATURES)) float32 feature matrix (tracks are sorted by s_d0 already)."""
    sd0, sz0, m = table.track("sd0"), table.track("sz0"), table.mask
    top = min(3, sd0.shape[1])
    fill = -5.0  # slot without a track
    sd0_top = np.full((len(table), 3), fill, np.float32)
    sz0_top = np.full((len(table), 3), fill, np.float32)
    sd0_top[:, :top] = np.where(m[:, :top], np.sign(sd0[:, :top]) * np.log1p(np.abs(sd0[:, :top])), fill)
    sz0_top[:, :top] = np.where(m[:, :top], np.sign(sz0[:, :top]) * np.log1p(np.abs(sz0[:, :top])), fill)
    cols = {
        "ip3d_llr_bl": templates.jet_llr(sd0, sz0, m, "b", "light"),
        "ip3d_llr_bc": templates.jet_llr(sd0, sz0, m, "b", "c"),
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
