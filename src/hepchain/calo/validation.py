"""Physics checks of simulated showers: longitudinal profile, shower maximum, containment,
linearity and resolution of the visible energy.

Energy sums weight each layer by the absorber it samples (:meth:`ECalGeometry.sampling_weights`:
1 for thin, 2 for thick layers), so a thick layer's signal counts for the twice as much
shower energy it represents."""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize

from hepchain.calo.geometry import ECalGeometry
from hepchain.core.metrics import ResolutionFit, fit_resolution, gaussian_core_fit


def weighted_layer_sum(showers: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Σ_l w_l Σ_pixels E [MeV] of ``showers`` (N, layers, ...) (masked pixels hold 0)."""
    per_layer = showers.reshape(showers.shape[0], showers.shape[1], -1).sum(axis=2)
    return per_layer @ np.asarray(weights, dtype=float)


def longitudinal_profile(showers: np.ndarray) -> np.ndarray:
    """Mean visible energy per layer [MeV], (layers,)."""
    return showers.reshape(showers.shape[0], showers.shape[1], -1).sum(axis=2).mean(axis=0)


def fitted_tmax(showers: np.ndarray, geometry: ECalGeometry) -> float:
    """Depth of shower maximum [X0] from a Gamma fit A·t^(α−1)·e^(−βt) to the mean Si profile
    (the Si signal samples dE/dt, so thick layers need no reweighting); T = (α − 1)/β."""
    t, prof = geometry.depth_x0(), longitudinal_profile(showers)

    def gamma(tt, amp, a, b):
        return amp * tt ** (a - 1) * np.exp(-b * tt)

    p0 = [prof.max(), 4.0, 0.5]
    (_amp, a, b), _ = optimize.curve_fit(gamma, t, prof, p0=p0, maxfev=20000)
    return float((a - 1) / b)


def expected_tmax(energy_gev: float, geometry: ECalGeometry, particle: str = "e-") -> float:
    """t_max = ln(E/E_c) + C [X0], C = −0.5 (e±) or +0.5 (γ), with E_c of the absorber."""
    return (math.log(energy_gev * 1000.0 / geometry.absorber_material.ec_mev)
            + (0.5 if particle == "gamma" else -0.5))


def containment(showers: np.ndarray, geometry: ECalGeometry, radius_mm: float) -> float:
    """Mean fraction of the layer-weighted visible energy within ``radius_mm`` of each
    shower's centroid."""
    centres = (np.arange(geometry.n_pix) + 0.5) * geometry.pixel - geometry.half_width
    xy = np.einsum("nlyx,l->nyx", showers, geometry.sampling_weights())
    tot = xy.sum(axis=(1, 2))
    cx = (xy.sum(axis=1) * centres).sum(axis=1) / tot
    cy = (xy.sum(axis=2) * centres).sum(axis=1) / tot
    dx = centres[None, None, :] - cx[:, None, None]
    dy = centres[None, :, None] - cy[:, None, None]
    inside = (dx**2 + dy**2) <= radius_mm**2
    return float(((xy * inside).sum(axis=(1, 2)) / tot).mean())


def visible_response(energies: np.ndarray, showers: np.ndarray, geometry: ECalGeometry
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per distinct energy [GeV]: (E, mean layer-weighted visible energy [MeV], core σ/mean,
    its error)."""
    vis = weighted_layer_sum(showers, geometry.sampling_weights())
    es, means, res, errs = [], [], [], []
    for e in np.unique(energies):
        v = vis[np.isclose(energies, e)]
        core = gaussian_core_fit(v / v.mean() - 1.0)
        es.append(e)
        means.append(v.mean())
        res.append(core.sigma)
        errs.append(core.sigma_error)
    return np.array(es), np.array(means), np.array(res), np.array(errs)


def stochastic_fit(energies: np.ndarray, showers: np.ndarray, geometry: ECalGeometry
                   ) -> ResolutionFit:
    """a/√E ⊕ b fit of the layer-weighted visible-energy resolution (needs ≥ 3 energies)."""
    e, _, res, err = visible_response(energies, showers, geometry)
    return fit_resolution(e, res, err, noise_term=False)
