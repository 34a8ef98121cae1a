"""Hand-built (high-level) tau-ID variables per candidate, after the ATLAS tau-ID set
(ATL-PHYS-PUB-2019-033): track multiplicities, energy and momentum fractions, track spread,
leading-track impact parameter and invariant masses. Units: GeV, rad."""

from __future__ import annotations

import numpy as np

from hepchain.reco.tauid.candidates import OBJECT_FEATURES, Candidates

HIGH_LEVEL = ("log_pt", "n_core", "n_isolation_tracks", "f_cent", "f_leading_track", "r_track",
              "abs_s_leading_track", "m_tracks", "dr_max_core", "f_isolation_tracks",
              "f_neutral", "n_neutral", "m_visible")
_COL = {name: i for i, name in enumerate(OBJECT_FEATURES)}


def _mass(vectors: np.ndarray, select: np.ndarray) -> np.ndarray:
    p = (vectors * select[..., None]).sum(axis=1)
    return np.sqrt(np.maximum(p[:, 3] ** 2 - (p[:, :3] ** 2).sum(axis=1), 0.0))


def high_level_features(c: Candidates) -> np.ndarray:
    """(N, len(:data:`HIGH_LEVEL`)) hand-built variables of the candidates."""
    x, m = c.objects, c.mask
    pt = np.exp(x[..., _COL["log_pt_fraction"]]) * c.pt[:, None] * m
    dr = x[..., _COL["dr"]]
    track = (x[..., _COL["is_track"]] > 0) & m
    core = (x[..., _COL["is_core"]] > 0) & m
    iso = track & (dr >= 0.2) & (pt > 1.0)
    neutral = m & ~track
    e = c.vectors[..., 3] * m
    e_02 = (e * (dr < 0.2)).sum(1)
    tracks = core | iso
    sum_trk = np.maximum((pt * tracks).sum(1), 1e-9)
    lead = np.argmax(np.where(track, pt, -1.0), axis=1)  # every candidate has a core track
    rows = np.arange(len(c))
    return np.stack([
        np.log(c.pt), c.n_core.astype(float), iso.sum(1).astype(float),
        (e * (dr < 0.1)).sum(1) / np.maximum(e_02, 1e-9),
        pt[rows, lead] / c.pt,
        (pt * dr * tracks).sum(1) / sum_trk,
        np.abs(x[rows, lead, _COL["d0_significance"]]),
        _mass(c.vectors, tracks),
        np.where(core, dr, 0.0).max(1),
        (pt * iso).sum(1) / c.pt,
        (pt * neutral * (dr < 0.2)).sum(1) / c.pt,
        (neutral & (dr < 0.2)).sum(1).astype(float),
        _mass(c.vectors, m & (dr < 0.2)),
    ], axis=1).astype(np.float32)
