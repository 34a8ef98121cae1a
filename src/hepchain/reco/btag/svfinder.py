"""A simple inclusive secondary-vertex finder (SV1-like, no magnetic-field curvature).

1. Seed tracks: lifetime-signed transverse IP significance s_d0 > ``min_sd0``.
2. Each track is a straight line through its perigee point
   P = (d0 sin φ, −d0 cos φ, z0) [mm] (d0 > 0 for positive angular momentum about the beam,
   the producer's convention), z0 = z0 sinθ / sinθ, with direction
   u = (sinθ cos φ, sinθ sin φ, cosθ) — exact near the beam line for tracks of ≳ 1 GeV.
3. One common vertex v minimises χ² = Σ_i [(t_i·(v − P_i))/σ_d0,i]² + [(w_i·(v − P_i))/σ_⊥,i]²
   with t_i = (−sin φ, cos φ, 0), w_i = u_i × t_i and σ_⊥ = σ_z0 sinθ (linear least squares).
4. While a track's χ² contribution exceeds ``max_track_chi2`` the worst one is dropped; a
   vertex needs ≥ 2 tracks left.

Outputs per jet (GeV, mm): found flag, track count, invariant mass (pion hypothesis),
energy fraction E_SV / E_all tracks, 3D decay length L (signed by the jet direction), its
significance L/σ_L, transverse decay length L_xy.
"""

from __future__ import annotations

import numpy as np

from hepchain.reco.btag.table import JetTable

PION_MASS = 0.13957  # GeV
SV_FEATURES: tuple[str, ...] = ("sv_found", "sv_ntrk", "sv_mass", "sv_efrac", "sv_L",
                                "sv_Lsig", "sv_Lxy")


def _track_vectors(table: JetTable) -> dict[str, np.ndarray]:
    phi = table.track("phi").astype(np.float64)
    eta = table.track("eta").astype(np.float64)
    sin_t, cos_t = 1.0 / np.cosh(eta), np.tanh(eta)
    d0 = table.track("d0").astype(np.float64)
    z0 = table.track("z0sintheta").astype(np.float64) / sin_t
    p0 = np.stack([d0 * np.sin(phi), -d0 * np.cos(phi), z0], axis=-1)
    t = np.stack([-np.sin(phi), np.cos(phi), np.zeros_like(phi)], axis=-1)
    w = np.stack([-cos_t * np.cos(phi), -cos_t * np.sin(phi), sin_t], axis=-1)
    s_d0 = np.clip(table.track("sigma_d0").astype(np.float64), 1e-4, None)
    s_perp = np.clip(table.track("sigma_z0").astype(np.float64) * sin_t, 1e-4, None)
    return {"p0": p0, "t": t, "w": w, "s_d0": s_d0, "s_perp": s_perp}


def _fit(tv: dict[str, np.ndarray], use: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted least-squares vertex for every jet: (v (N,3), cov (N,3,3), chi2 per track)."""
    m = use.astype(np.float64)
    a_t = tv["t"] / tv["s_d0"][..., None]
    a_w = tv["w"] / tv["s_perp"][..., None]
    b_t = (a_t * tv["p0"]).sum(-1)
    b_w = (a_w * tv["p0"]).sum(-1)
    h = (np.einsum("nti,ntj,nt->nij", a_t, a_t, m) + np.einsum("nti,ntj,nt->nij", a_w, a_w, m)
         + 1e-9 * np.eye(3))
    g = np.einsum("nti,nt->ni", a_t, b_t * m) + np.einsum("nti,nt->ni", a_w, b_w * m)
    cov = np.linalg.inv(h)
    v = np.einsum("nij,nj->ni", cov, g)
    chi2 = ((a_t * v[:, None]).sum(-1) - b_t) ** 2 + ((a_w * v[:, None]).sum(-1) - b_w) ** 2
    return v, cov, np.where(use, chi2, 0.0)


def find_vertices(table: JetTable, min_sd0: float = 2.0, max_track_chi2: float = 9.0
                  ) -> dict[str, np.ndarray]:
    """Run the finder on every jet; returns the :data:`SV_FEATURES` arrays, (N,) each."""
    tv = _track_vectors(table)
    use = table.mask & (table.track("sd0") > min_sd0)
    for _ in range(table.mask.shape[1]):
        v, cov, chi2 = _fit(tv, use)
        worst = chi2.argmax(axis=1)
        drop = (chi2.max(axis=1) > max_track_chi2) & (use.sum(axis=1) > 2)
        if not drop.any():
            break
        use[np.flatnonzero(drop), worst[drop]] = False
    v, cov, chi2 = _fit(tv, use)
    ntrk = use.sum(axis=1)
    found = (ntrk >= 2) & (chi2.max(axis=1) <= max_track_chi2)

    pt, eta, phi = (table.track(k).astype(np.float64) for k in ("pt", "eta", "phi"))
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    e = np.sqrt(px**2 + py**2 + pz**2 + PION_MASS**2) * table.mask
    sv = use & found[:, None]
    sums = [(q * sv).sum(axis=1) for q in (e, px, py, pz)]
    mass = np.sqrt(np.clip(sums[0] ** 2 - sums[1] ** 2 - sums[2] ** 2 - sums[3] ** 2, 0, None))
    efrac = sums[0] / np.clip(e.sum(axis=1), 1e-9, None)

    jet_eta = table.jet[:, 1].astype(np.float64)
    jet_phi = table.phi.astype(np.float64)
    axis = np.stack([np.cos(jet_phi), np.sin(jet_phi), np.sinh(jet_eta)], axis=-1)
    axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
    length = np.linalg.norm(v, axis=-1)
    sign = np.where((v * axis).sum(-1) >= 0, 1.0, -1.0)
    unit = v / np.clip(length, 1e-12, None)[:, None]
    sigma_l = np.sqrt(np.clip(np.einsum("ni,nij,nj->n", unit, cov, unit), 1e-12, None))
    lxy = np.hypot(v[:, 0], v[:, 1])
    return {
        "sv_found": found.astype(np.float32),
        "sv_ntrk": np.where(found, ntrk, 0).astype(np.float32),
        "sv_mass": np.where(found, mass, 0.0).astype(np.float32),
        "sv_efrac": np.where(found, efrac, 0.0).astype(np.float32),
        "sv_L": np.where(found, sign * length, 0.0).astype(np.float32),
        "sv_Lsig": np.where(found, sign * length / sigma_l, 0.0).astype(np.float32),
        "sv_Lxy": np.where(found, lxy, 0.0).astype(np.float32),
    }
