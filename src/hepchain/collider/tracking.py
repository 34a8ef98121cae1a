"""Charged-particle tracking: Delphes-CMS-card efficiency and pT resolution, exact helix
perigee parameters in Bz = 3.8 T from the true production vertex, a documented resolution
model for the other perigee parameters, single-scattering tails from the material in front of
the first measurements, fake tracks, and hit patterns of a layered silicon tracker.

Units: GeV, mm, rad. The beam line is the z axis through (0, 0); d0 and z0 here are relative
to it (:mod:`.vertexing` re-expresses them relative to the reconstructed primary vertex).
The quoted uncertainties (``Tracks.sigma``) are computed from the *measured* momentum and
polar angle, as a track fit would; the smearing itself uses the true ones.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numba
import numpy as np

from hepchain.collider.geometry import (
    BEAM_PIPE,
    ETA_MAX,
    PIXEL_LAYERS,
    PIXEL_RADII,
    RHO_PER_GEV,
    SCT_RADII,
)

#: perigee resolution sigma = sqrt(a^2 + (b / (p sin^k theta))^2) with p in GeV: (a, b, k)
RESOLUTION = {
    "d0": (0.010, 0.090, 1.5),        # mm, mm GeV: pixel intrinsic + multiple scattering
    "z0sintheta": (0.040, 0.100, 1.5),  # mm, mm GeV
    "phi": (1.0e-4, 1.5e-3, 0.5),     # rad, rad GeV
    "eta": (1.0e-4, 1.5e-3, 0.5),     # sigma(theta) = sin(theta) * sigma(eta)
}

PIXEL_EFF, SCT_EFF = 0.98, 0.99
#: cluster merging windows (r-phi, z) [mm]: pixel 50 x 250/400 um, SCT strips 80 um
PIXEL_PITCH = (0.050, 0.400)
SCT_PITCH = 0.080

PION_MASS = 0.13957  # GeV, mass hypothesis of the track fit (for beta in the Highland formula)
ALPHA_EM = 1 / 137.036
ELECTRON_MASS = 0.000511  # GeV
#: cylinders in front of the first measurements whose single (Rutherford) scatters give
#: non-Gaussian impact-parameter tails: (radius [mm], x/X0 at normal incidence, Z, A^(1/3)) of
#: the beam pipe and the IBL. The Gaussian core of multiple scattering is already in
#: RESOLUTION["d0"] etc. (the b term).
SCATTERERS: tuple[tuple[float, float, int, float], ...] = tuple(
    (layer.radius, layer.x_over_x0, layer.material.z, layer.material.a_third)
    for layer in (BEAM_PIPE, PIXEL_LAYERS[0]))
#: a single scatter counts as a tail above this many Highland widths (the core describes the rest)
TAIL_START = 3.0
#: fake tracks per reconstructed track (our choice, of the order of the ~1 % quoted for
#: loose selections in dense jets; not from a measurement)
FAKE_RATE = 0.01
#: fake-track model: relative spread of the wrong curvature, IP spread in units of sigma
FAKE_PT_SPREAD, FAKE_IP_SPREAD = 0.5, 5.0


def lognormal_smear(rng: np.random.Generator, mean: np.ndarray,
                    sigma: np.ndarray) -> np.ndarray:
    """Delphes' LogNormal(mean, sigma); entries with mean <= 0 stay 0 (as in Delphes).

    One random number is drawn per entry either way, so the stream does not depend on how
    many entries are empty.
    """
    mean = np.asarray(mean, dtype=float)
    positive = mean > 0
    safe_mean = np.where(positive, mean, 1.0)
    var = np.log1p((np.where(positive, sigma, 0.0) / safe_mean) ** 2)
    return np.where(positive, rng.lognormal(np.log(safe_mean) - 0.5 * var, np.sqrt(var)), 0.0)


def efficiency(kind: np.ndarray, pt: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """Tracking efficiency of the CMS card; ``kind`` 0 hadron, 11 electron, 13 muon."""
    central = np.abs(eta) <= 1.5
    inside = (np.abs(eta) <= ETA_MAX) & (pt > 0.1)
    soft = pt <= 1.0
    had = np.where(central, np.where(soft, 0.70, 0.95), np.where(soft, 0.60, 0.85))
    ele = np.where(central, np.where(soft, 0.73, np.where(pt <= 100, 0.95, 0.99)),
                   np.where(soft, 0.50, np.where(pt <= 100, 0.83, 0.90)))
    hard_mu = np.exp(0.5 - pt * 5e-4)
    mu = np.where(central, np.where(soft, 0.75, np.where(pt <= 1000, 0.99, 0.99 * hard_mu)),
                  np.where(soft, 0.70, np.where(pt <= 1000, 0.98, 0.98 * hard_mu)))
    eff = np.where(kind == 11, ele, np.where(kind == 13, mu, had))
    return np.where(inside, eff, 0.0)


def pt_resolution(kind: np.ndarray, pt: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """Relative pT resolution sigma(pT)/pT of the CMS card (capped at 1)."""
    region = np.digitize(np.abs(eta), [0.5, 1.5])  # 0, 1, 2
    tables = {0: ((0.06, 1.3e-3), (0.10, 1.7e-3), (0.25, 3.1e-3)),
              11: ((0.03, 1.3e-3), (0.05, 1.7e-3), (0.15, 3.1e-3)),
              13: ((0.01, 1.0e-4), (0.015, 1.5e-4), (0.025, 3.5e-4))}
    res = np.zeros_like(pt)
    for k, rows in tables.items():
        sel_kind = kind == k
        for r, (a, b) in enumerate(rows):
            sel = sel_kind & (region == r)
            res[sel] = np.hypot(a, pt[sel] * b)
    return np.minimum(res, 1.0)


def sigma_param(name: str, p: np.ndarray, sin_theta: np.ndarray) -> np.ndarray:
    """Resolution of perigee parameter ``name`` from :data:`RESOLUTION`."""
    a, b, k = RESOLUTION[name]
    return np.hypot(a, b / (p * sin_theta**k))


def perigee(x: np.ndarray, y: np.ndarray, z: np.ndarray, px: np.ndarray, py: np.ndarray,
            pz: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact helix perigee (d0 [mm], z0 [mm], phi0 [rad]) w.r.t. the z axis.

    A particle of charge ``q`` produced at (x, y, z) with momentum (px, py, pz) moves on a
    circle of radius rho = pT / (0.3 B) around c = r + q rho (sin phi, -cos phi). The point of
    closest approach is r_pca = c (1 - rho/|c|); d0 = x sin(phi0) - y cos(phi0) there (positive
    for positive angular momentum about the beam), and z0 = z + s cot(theta) with the signed
    transverse arc length s = q rho Δphi back to the perigee.
    """
    pt = np.hypot(px, py)
    phi = np.arctan2(py, px)
    rho = pt * RHO_PER_GEV
    cx = x + q * rho * np.sin(phi)
    cy = y - q * rho * np.cos(phi)
    c = np.hypot(cx, cy)
    scale = 1.0 - rho / c
    xp, yp = cx * scale, cy * scale
    # direction of motion at the perigee: v = q ((r - c)_y, -(r - c)_x) / rho
    phi0 = np.arctan2(-q * (xp - cx), q * (yp - cy))
    d0 = xp * np.sin(phi0) - yp * np.cos(phi0)
    dphi = np.angle(np.exp(1j * (phi - phi0)))
    z0 = z + q * rho * dphi * pz / pt
    return d0, z0, phi0


@dataclass
class Tracks:
    """Reconstructed tracks of a batch of events (flat arrays, ``event`` = event index).

    ``src`` is the global index of the generating particle in the batch record, −1 for a
    fake track (see :func:`add_fakes`).
    """

    event: np.ndarray
    src: np.ndarray
    charge: np.ndarray
    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    qoverp: np.ndarray
    d0: np.ndarray
    z0: np.ndarray
    sigma: dict[str, np.ndarray]
    hits: dict[str, np.ndarray]
    true_pt: np.ndarray


def reconstruct(rng: np.random.Generator, event: np.ndarray, src: np.ndarray, pid: np.ndarray,
                charge: np.ndarray, px: np.ndarray, py: np.ndarray, pz: np.ndarray,
                x: np.ndarray, y: np.ndarray, z: np.ndarray) -> Tracks:
    """Apply efficiency, compute and smear perigee parameters, draw hit patterns."""
    pt = np.hypot(px, py)
    p = np.sqrt(pt**2 + pz**2)
    eta = np.arcsinh(pz / np.maximum(pt, 1e-12))
    kind = np.where(np.abs(pid) == 11, 11, np.where(np.abs(pid) == 13, 13, 0))
    kept = (rng.random(len(pt)) < efficiency(kind, pt, eta)) & (np.hypot(x, y) < SCT_RADII[-1])
    event, src, charge, kind, px, py, pz, x, y, z, pt, p, eta = (
        a[kept] for a in (event, src, charge, kind, px, py, pz, x, y, z, pt, p, eta))
    d0, z0, phi0 = perigee(x, y, z, px, py, pz, charge.astype(float))
    sin_t = pt / p
    true_sigma = _sigmas(kind, p, sin_t, eta)
    pt_m = lognormal_smear(rng, pt, true_sigma["pt_rel"] * pt)
    theta_m = np.clip(2 * np.arctan(np.exp(-eta)) + true_sigma["theta"]
                      * rng.standard_normal(len(pt)), 1e-6, np.pi - 1e-6)
    phi_m = np.angle(np.exp(1j * (phi0 + true_sigma["phi"] * rng.standard_normal(len(pt)))))
    p_m = pt_m / np.sin(theta_m)
    hits = hit_pattern(rng, event, np.hypot(x, y), phi_m, z0, theta_m, charge, pt_m)
    tail_d0, tail_z0 = scattering_tails(rng, p, sin_t, np.hypot(x, y))
    eta_m = -np.log(np.tan(theta_m / 2))
    sigma = _sigmas(kind, p_m, np.sin(theta_m), eta_m)
    sigma["qoverp"] = sigma.pop("pt_rel") / p_m
    return Tracks(
        event=event, src=src, charge=charge, pt=pt_m, eta=eta_m, phi=phi_m,
        qoverp=charge / p_m,
        d0=d0 + true_sigma["d0"] * rng.standard_normal(len(pt)) + tail_d0,
        z0=z0 + true_sigma["z0"] * rng.standard_normal(len(pt)) + tail_z0,
        sigma=sigma, hits=hits, true_pt=pt)


def _sigmas(kind: np.ndarray, p: np.ndarray, sin_t: np.ndarray, eta: np.ndarray
            ) -> dict[str, np.ndarray]:
    """Perigee resolutions for momentum ``p`` [GeV] and sin(theta): d0, z0 [mm], phi, theta
    [rad] and the relative pT resolution ``pt_rel``."""
    sig = {name: sigma_param(name, p, sin_t) for name in RESOLUTION}
    return {"pt_rel": pt_resolution(kind, p * sin_t, eta), "theta": sig["eta"] * sin_t,
            "phi": sig["phi"], "d0": sig["d0"], "z0": sig["z0sintheta"] / sin_t}


def highland_theta0(p: np.ndarray, beta: np.ndarray, x_over_x0: np.ndarray) -> np.ndarray:
    """Highland width [rad] of the projected multiple-scattering angle (PDG eq. 34.15) for
    unit charge, momentum ``p`` [GeV] and thickness ``x_over_x0`` radiation lengths."""
    return 0.0136 / (beta * p) * np.sqrt(x_over_x0) * (1 + 0.038 * np.log(x_over_x0))


def scattering_tails(rng: np.random.Generator, p: np.ndarray, sin_t: np.ndarray,
                     r_prod: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Perigee shifts (δd0, δz0) [mm] from single large-angle scatters in :data:`SCATTERERS`.

    Rutherford scattering on the nuclei of a layer of x radiation lengths gives
    N(> θ) = (x/X0) π / (α ln(183 Z^-1/3)) (m_e / (p β θ))² scatters above space angle θ
    (1/X0 ∝ Z² ln(183 Z^-1/3), so the rate depends on Z only through the logarithm), up to the
    nuclear-size cut-off θ_max = ħc / (p 1.2 fm A^1/3). Scatters above TAIL_START Highland
    widths are drawn (Poisson count, θ = θ_start / √u, uniform azimuth ψ), the Gaussian core
    being part of the resolution model already. A kick δ at radius r, extrapolated back to the
    beam line over a transverse distance r, moves d0 by r δ cos ψ / sinθ and z0 by
    r δ sin ψ / sin²θ. Only tracks produced inside a layer cross it.
    """
    beta = p / np.sqrt(p**2 + PION_MASS**2)
    d_d0 = np.zeros(len(p))
    d_z0 = np.zeros(len(p))
    for radius, x0_frac, z_nucleus, a_third in SCATTERERS:
        x = x0_frac / sin_t
        start = TAIL_START * highland_theta0(p, beta, x)
        log_term = np.log(183 * z_nucleus ** (-1 / 3))
        rate = x * np.pi / (ALPHA_EM * log_term) * (ELECTRON_MASS / (p * beta * start)) ** 2
        theta_max = 0.1973 / (1.2 * a_third * p)  # ħc = 0.1973 GeV fm
        n = np.where((r_prod < radius) & (start < theta_max), rng.poisson(rate), 0)
        for k in range(int(n.max(initial=0))):
            hit = n > k
            theta = np.minimum(start / np.sqrt(1 - rng.random(len(p))), theta_max)
            psi = 2 * np.pi * rng.random(len(p))
            d_d0 += np.where(hit, radius * theta * np.cos(psi) / sin_t, 0.0)
            d_z0 += np.where(hit, radius * theta * np.sin(psi) / sin_t**2, 0.0)
    return d_d0, d_z0


def add_fakes(rng: np.random.Generator, trk: Tracks, rate: float = FAKE_RATE) -> Tracks:
    """``trk`` plus fake tracks (``src`` = −1), sorted by event.

    Each event gets Poisson(rate × its track count) fakes. A fake is a wrong-hit combination
    around a real track of the event (its "seed", chosen at random): the seed's pixel hits
    (so they are shared), the seed's direction within 1 mrad, a wrong curvature
    (pT × exp(N(0, FAKE_PT_SPREAD))), a poorly determined perigee (seed d0, z0 plus
    FAKE_IP_SPREAD × the seed's σ, Gaussian) and half the seed's SCT hits, the other half holes.
    """
    counts = np.bincount(trk.event, minlength=int(trk.event.max(initial=-1)) + 1)
    n_fake = rng.poisson(rate * counts)
    if n_fake.sum() == 0:
        return trk
    ev = np.repeat(np.arange(len(counts)), n_fake)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    seed = first[ev] + (rng.random(len(ev)) * counts[ev]).astype(np.int64)
    n = len(seed)
    pt = trk.pt[seed] * np.exp(FAKE_PT_SPREAD * rng.standard_normal(n))
    eta = trk.eta[seed] + 1e-3 * rng.standard_normal(n)
    phi = np.angle(np.exp(1j * (trk.phi[seed] + 1e-3 * rng.standard_normal(n))))
    p = pt * np.cosh(eta)
    sigma = {k: v[seed].copy() for k, v in trk.sigma.items()}
    sigma["qoverp"] = sigma["qoverp"] * trk.pt[seed] / pt
    hits = {k: v[seed].copy() for k, v in trk.hits.items()}
    hits["n_pix_shared"] = hits["n_pix_hits"].copy()
    hits["n_ibl_shared"] = hits["n_ibl_hits"].copy()
    hits["n_pix_split"] = np.zeros(n, hits["n_pix_split"].dtype)
    hits["n_ibl_split"] = np.zeros(n, hits["n_ibl_split"].dtype)
    lost = rng.binomial(hits["n_sct_hits"], 0.5)
    hits["n_sct_hits"] = hits["n_sct_hits"] - lost
    hits["n_sct_holes"] = hits["n_sct_holes"] + lost
    fake = Tracks(
        event=ev, src=np.full(n, -1, trk.src.dtype), charge=trk.charge[seed], pt=pt, eta=eta,
        phi=phi, qoverp=trk.charge[seed] / p,
        d0=trk.d0[seed] + FAKE_IP_SPREAD * sigma["d0"] * rng.standard_normal(n),
        z0=trk.z0[seed] + FAKE_IP_SPREAD * sigma["z0"] * rng.standard_normal(n),
        sigma=sigma, hits=hits, true_pt=np.zeros(n))
    return _merge(trk, fake)


def _merge(a: Tracks, b: Tracks) -> Tracks:
    """The tracks of ``a`` and ``b`` sorted by event (stable: ``a``'s first in an event)."""
    order = np.argsort(np.concatenate([a.event, b.event]), kind="stable")

    def cat(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.concatenate([x, y])[order]

    flat = {f.name: cat(getattr(a, f.name), getattr(b, f.name)) for f in fields(Tracks)
            if f.name not in ("sigma", "hits")}
    return Tracks(**flat, sigma={k: cat(a.sigma[k], b.sigma[k]) for k in a.sigma},
                  hits={k: cat(a.hits[k], b.hits[k]) for k in a.hits})


def hit_pattern(rng: np.random.Generator, event: np.ndarray, r_prod: np.ndarray,
                phi0: np.ndarray, z0: np.ndarray, theta: np.ndarray, charge: np.ndarray,
                pt: np.ndarray) -> dict[str, np.ndarray]:
    """Hits, holes, shared and split hits on the barrel layers (endcap disks are treated as
    equivalent layers, so every |eta| < 2.5 track crosses each layer outside its production
    radius). Two tracks share a cluster when their crossing points on a layer are within two
    pitches in r-phi (and z for pixels); a shared pixel cluster is counted as *split* when the
    tracks are more than one pitch apart in either direction (resolvable by cluster splitting).
    """
    radii = np.concatenate([PIXEL_RADII, SCT_RADII, SCT_RADII])
    n_layers = len(radii)
    crossed = r_prod[:, None] < radii[None, :]
    eff = np.where(np.arange(n_layers) < len(PIXEL_RADII), PIXEL_EFF, SCT_EFF)
    hit = crossed & (rng.random(crossed.shape) < eff[None, :])
    rho = pt * RHO_PER_GEV
    bend = np.arcsin(np.clip(radii[None, :] / (2 * rho[:, None]), -1, 1))
    phi_l = phi0[:, None] - charge[:, None] * bend
    z_l = z0[:, None] + radii[None, :] / np.tan(theta)[:, None]
    order = np.argsort(event, kind="stable")
    shared, split = _sharing(event[order], (phi_l * radii[None, :])[order], z_l[order],
                             hit[order], len(PIXEL_RADII))
    inv = np.empty_like(order)
    inv[order] = np.arange(len(order))
    shared, split = shared[inv], split[inv]
    pix, sct = slice(0, 4), slice(4, n_layers)
    holes = crossed & ~hit
    return {
        "n_pix_hits": hit[:, pix].sum(1), "n_sct_hits": hit[:, sct].sum(1),
        "n_ibl_hits": hit[:, 0].astype(np.int64), "n_bl_hits": hit[:, 1].astype(np.int64),
        "n_ibl_shared": shared[:, 0].astype(np.int64), "n_ibl_split": split[:, 0].astype(np.int64),
        "n_pix_shared": shared[:, pix].sum(1), "n_pix_split": split[:, pix].sum(1),
        "n_sct_shared": shared[:, sct].sum(1),
        "n_pix_holes": holes[:, pix].sum(1), "n_sct_holes": holes[:, sct].sum(1),
    }


@numba.njit(cache=True)
def _sharing(event, rphi, z, hit, n_pix):
    n, n_layers = hit.shape
    shared = np.zeros((n, n_layers), np.bool_)
    split = np.zeros((n, n_layers), np.bool_)
    start = 0
    while start < n:
        stop = start
        while stop < n and event[stop] == event[start]:
            stop += 1
        for a in range(start, stop):
            for b in range(a + 1, stop):
                for layer in range(n_layers):
                    if not (hit[a, layer] and hit[b, layer]):
                        continue
                    d_rphi = abs(rphi[a, layer] - rphi[b, layer])
                    d_z = abs(z[a, layer] - z[b, layer])
                    if layer < n_pix:
                        if d_rphi < 2 * PIXEL_PITCH[0] and d_z < 2 * PIXEL_PITCH[1]:
                            if d_rphi > PIXEL_PITCH[0] or d_z > PIXEL_PITCH[1]:
                                split[a, layer] = True
                                split[b, layer] = True
                            else:
                                shared[a, layer] = True
                                shared[b, layer] = True
                    elif d_rphi < 2 * SCT_PITCH:
                        shared[a, layer] = True
                        shared[b, layer] = True
        start = stop
    return shared, split
