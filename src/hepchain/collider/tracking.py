"""Charged-particle tracking: Delphes-CMS-card efficiency and pT resolution, exact helix
perigee parameters in Bz = 3.8 T from the true production vertex, a documented resolution
model for the other perigee parameters, and hit patterns of a layered silicon tracker.

Units: GeV, mm, rad. The beam line is the z axis through (0, 0); the hard-scatter primary
vertex is at the origin, so d0 and z0 are relative to it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

B_FIELD = 3.8  # T
RHO_PER_GEV = 1000.0 / (0.299792458 * B_FIELD)  # helix radius per GeV of pT [mm/GeV]
ETA_MAX = 2.5

#: perigee resolution sigma = sqrt(a^2 + (b / (p sin^k theta))^2) with p in GeV: (a, b, k)
RESOLUTION = {
    "d0": (0.010, 0.090, 1.5),        # mm, mm GeV: pixel intrinsic + multiple scattering
    "z0sintheta": (0.040, 0.100, 1.5),  # mm, mm GeV
    "phi": (1.0e-4, 1.5e-3, 0.5),     # rad, rad GeV
    "eta": (1.0e-4, 1.5e-3, 0.5),     # sigma(theta) = sin(theta) * sigma(eta)
}

#: barrel layers: radius [mm], pixel? (the first two are the IBL and the next-to-innermost layer)
PIXEL_RADII = np.array([33.25, 50.5, 88.5, 122.5])
SCT_RADII = np.array([299.0, 371.0, 443.0, 514.0])  # double-sided: two hits per layer
PIXEL_EFF, SCT_EFF = 0.98, 0.99
#: cluster merging windows (r-phi, z) [mm]: pixel 50 x 250/400 um, SCT strips 80 um
PIXEL_PITCH = (0.050, 0.400)
SCT_PITCH = 0.080


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

    ``src`` is the global index of the generating particle in the batch record.
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
    sig = {name: sigma_param(name, p, sin_t) for name in RESOLUTION}
    sig_d0, sig_z0 = sig["d0"], sig["z0sintheta"] / sin_t
    sig_phi, sig_theta = sig["phi"], sig["eta"] * sin_t
    res_pt = pt_resolution(kind, pt, eta)
    pt_m = lognormal_smear(rng, pt, res_pt * pt)
    theta_m = np.clip(2 * np.arctan(np.exp(-eta)) + sig_theta * rng.standard_normal(len(pt)),
                      1e-6, np.pi - 1e-6)
    phi_m = np.angle(np.exp(1j * (phi0 + sig_phi * rng.standard_normal(len(pt)))))
    p_m = pt_m / np.sin(theta_m)
    hits = hit_pattern(rng, event, np.hypot(x, y), phi_m, z0, theta_m, charge, pt_m)
    return Tracks(
        event=event, src=src, charge=charge, pt=pt_m, eta=-np.log(np.tan(theta_m / 2)),
        phi=phi_m, qoverp=charge / p_m,
        d0=d0 + sig_d0 * rng.standard_normal(len(pt)),
        z0=z0 + sig_z0 * rng.standard_normal(len(pt)),
        sigma={"qoverp": res_pt / p, "theta": sig_theta, "phi": sig_phi, "d0": sig_d0,
               "z0": sig_z0},
        hits=hits, true_pt=pt)


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
