"""The reconstructed primary vertex of each event and impact parameters measured w.r.t. it.

The hard-scatter vertex is not at the origin: it is drawn from the luminous region
(:data:`BEAM_SPOT_SIGMA`, Gaussian). Each event's primary vertex is fitted from its tracks:

1. seed z: the pT²-weighted median of the z0 of tracks with pT > 1 GeV (all tracks if none);
2. adaptive fit (10 iterations, fixed temperature T = 1): each track gets the weight
   w = 1 / (1 + exp((χ² − χ²_cut) / 2T)) with χ² = ((z0 − z)/σ_z0)² + ((d0 − d0_v)/σ_d0)²,
   χ²_cut = 9, where d0_v = x sin φ − y cos φ is the d0 a track through (x, y) would have;
   z is the weighted mean of z0, (x, y) the weighted least-squares solution constrained by the
   beam spot (centre (0, 0), width σ_xy).

Units: mm, GeV, rad.
"""

from __future__ import annotations

import numba
import numpy as np

#: luminous region (x, y, z) Gaussian widths [mm]: LHC Run 2 beam spot ~15 µm, σ_z = 45 mm
BEAM_SPOT_SIGMA = (0.015, 0.015, 45.0)
CHI2_CUT = 9.0
N_ITERATIONS = 10


def draw_vertices(rng: np.random.Generator, n_events: int) -> np.ndarray:
    """True hard-scatter vertex positions (n_events, 3) [mm] from the luminous region."""
    return rng.normal(0.0, BEAM_SPOT_SIGMA, size=(n_events, 3))


@numba.njit(cache=True)
def _fit(offsets, d0, z0, phi, s_d0, s_z0, pt, sigma_bs, chi2_cut, n_iter):
    n_events = len(offsets) - 1
    out = np.zeros((n_events, 3))
    for ev in range(n_events):
        lo, hi = offsets[ev], offsets[ev + 1]
        if hi == lo:
            continue
        n_hard = 0
        for i in range(lo, hi):
            if pt[i] > 1.0:
                n_hard += 1
        zs = np.empty(hi - lo if n_hard == 0 else n_hard)
        ws = np.empty(len(zs))
        k = 0
        for i in range(lo, hi):
            if n_hard == 0 or pt[i] > 1.0:
                zs[k] = z0[i]
                ws[k] = pt[i] ** 2
                k += 1
        order = np.argsort(zs)
        half = 0.5 * ws.sum()
        acc = 0.0
        z = zs[order[-1]]
        for k in order:
            acc += ws[k]
            if acc >= half:
                z = zs[k]
                break
        x = 0.0
        y = 0.0
        for _ in range(n_iter):
            a11 = a22 = 1.0 / sigma_bs**2  # beam-spot constraint
            a12 = 0.0
            b1 = b2 = 0.0
            sz = swz = 0.0
            for i in range(lo, hi):
                s, c = np.sin(phi[i]), np.cos(phi[i])
                r_t = (d0[i] - (x * s - y * c)) / s_d0[i]
                r_z = (z0[i] - z) / s_z0[i]
                arg = (r_t * r_t + r_z * r_z - chi2_cut) / 2.0
                w = 0.0 if arg > 50 else 1.0 / (1.0 + np.exp(arg))
                wt = w / s_d0[i] ** 2
                a11 += wt * s * s
                a12 -= wt * s * c
                a22 += wt * c * c
                b1 += wt * d0[i] * s
                b2 -= wt * d0[i] * c
                wz = w / s_z0[i] ** 2
                sz += wz
                swz += wz * z0[i]
            det = a11 * a22 - a12 * a12
            x = (a22 * b1 - a12 * b2) / det
            y = (a11 * b2 - a12 * b1) / det
            if sz > 0:
                z = swz / sz
        out[ev, 0], out[ev, 1], out[ev, 2] = x, y, z
    return out


def fit_vertices(n_events: int, event: np.ndarray, d0: np.ndarray, z0: np.ndarray,
                 phi: np.ndarray, sigma_d0: np.ndarray, sigma_z0: np.ndarray,
                 pt: np.ndarray) -> np.ndarray:
    """Reconstructed primary vertex (n_events, 3) [mm] from tracks sorted by ``event`` with
    perigee parameters w.r.t. the beam line; the beam-spot centre for events without tracks."""
    offsets = np.concatenate([[0], np.cumsum(np.bincount(event, minlength=n_events))])
    return _fit(offsets, d0, z0, phi, sigma_d0, sigma_z0, pt, BEAM_SPOT_SIGMA[0], CHI2_CUT,
                N_ITERATIONS)


def relative_to(vertex: np.ndarray, event: np.ndarray, d0: np.ndarray, z0: np.ndarray,
                phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(d0, z0) [mm] of tracks w.r.t. their event's ``vertex`` instead of the beam line
    (linearised: d0 − (x sin φ − y cos φ), z0 − z; exact to O(d0 · |v_xy| / ρ))."""
    v = vertex[event]
    return d0 - (v[:, 0] * np.sin(phi) - v[:, 1] * np.cos(phi)), z0 - v[:, 2]
