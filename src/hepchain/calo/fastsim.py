"""Fast simulation: a GFlash-style parametrised shower in the same geometry.

Grindhammer–Peters parametrisation (hep-ex/0001020, Geant4 GFlash sampling constants), energies
in GeV, depth t in radiation lengths of the stack (W + Si), radii in effective Molière radii:

- longitudinal: Gamma profile (1/E) dE/dt = (βt)^(α−1) β e^(−βt) / Γ(α), T = (α−1)/β, with
  ⟨ln T⟩ = ln(ln y − 0.812), ⟨ln α⟩ = ln(0.81 + (0.458 + 2.26/Z) ln y), y = E/E_c, sampling
  corrections T − 0.55/F_s − 0.69(1 − ê), α − 0.476/F_s, and correlated Gaussian fluctuations
  of (ln T, ln α) with σ_T = 1/(−2.5 + 1.25 ln y), σ_α = 1/(−0.82 + 0.79 ln y), ρ = 0.784 − 0.023 ln y;
- spots: N = 10.3/0.11 · E^0.959 energy spots with a Gamma depth profile
  (T_s = T(0.813 + 0.0019 Z), α_s = α(0.844 + 0.0026 Z));
- radial: core/tail profile f(r) = p·2r R_C²/(r² + R_C²)² + (1−p)·2r R_T²/(r² + R_T²)² with the
  GFlash R_C, R_T, p (τ = t/T) and their sampling corrections; r = R·√(u/(1−u));
- visible energy: each layer's share times ê × (Si dE/dx share of the layer) — the
  electron/MIP sampling fraction, ê = 1/(1 + 0.007(Z_W − Z_Si)) — smeared per layer with a
  Gamma distribution of relative width σ_s/√(E_layer/GeV).
"""

from __future__ import annotations

import math

import numpy as np

from hepchain.calo.fullsim import validate_energies
from hepchain.calo.geometry import (
    DEDX_SI_MEV_MM,
    DEDX_W_MEV_MM,
    EC_W_MEV,
    X0_SI_MM,
    X0_W_MM,
    ECalGeometry,
)
from hepchain.core.errors import UsageError

Z_W, Z_SI = 74.0, 14.0
E_HAT = 1.0 / (1.0 + 0.007 * (Z_W - Z_SI))
"""Electron-to-MIP response ratio ê of the W/Si sampling structure."""


def sampling_fractions(geometry: ECalGeometry) -> np.ndarray:
    """Visible fraction per layer: ê × Si MIP loss / (W + Si MIP loss)."""
    si = geometry.si * DEDX_SI_MEV_MM
    return E_HAT * si / (geometry.absorber() * DEDX_W_MEV_MM + si)


def _layer_edges_x0(geometry: ECalGeometry) -> np.ndarray:
    per_layer = geometry.absorber() / X0_W_MM + geometry.si / X0_SI_MM
    return np.concatenate([[0.0], np.cumsum(per_layer)])


def longitudinal_parameters(energy_gev: float, geometry: ECalGeometry
                            ) -> tuple[float, float, float, float, float]:
    """Mean ln T, mean ln α, σ(ln T), σ(ln α) and ρ of the sampling parametrisation."""
    ln_y = math.log(energy_gev * 1000.0 / EC_W_MEV)
    fs = _fs(geometry)
    t_hom = ln_y - 0.812
    a_hom = 0.81 + (0.458 + 2.26 / Z_W) * ln_y
    t_mean = max(t_hom - 0.55 / fs - 0.69 * (1 - E_HAT), 0.5)
    a_mean = max(a_hom - 0.476 / fs, 1.2)
    s_t = 1.0 / max(-2.5 + 1.25 * ln_y, 0.5)
    s_a = 1.0 / max(-0.82 + 0.79 * ln_y, 0.5)
    rho = 0.784 - 0.023 * ln_y
    return math.log(t_mean), math.log(a_mean), s_t, s_a, rho


def _fs(geometry: ECalGeometry) -> float:
    """F_s = X0_eff / (d_W + d_Si) for the thin section."""
    d_w, d_si = geometry.w_thin, geometry.si
    m_w, m_si = d_w * 19.3, d_si * 2.33
    w_w, w_si = m_w / (m_w + m_si), m_si / (m_w + m_si)
    rho = (m_w + m_si) / (d_w + d_si)
    x0_eff = 1.0 / (w_w * rho / (X0_W_MM * 19.3) + w_si * rho / (X0_SI_MM * 2.33))
    return x0_eff / (d_w + d_si)


def _radial(tau: np.ndarray, energy_gev: float, fs: float) -> tuple[np.ndarray, ...]:
    """Core radius, tail radius and core probability [Molière units] at τ = t/T."""
    ln_e = math.log(energy_gev)
    rc = 0.0251 + 0.00319 * ln_e + (0.1162 - 0.000381 * Z_W) * tau
    k4 = 0.3585 + 0.0412 * ln_e
    rt = (0.659 - 0.00309 * Z_W) * (np.exp(-2.59 * (tau - 0.645)) + np.exp(k4 * (tau - 0.645)))
    p1, p2, p3 = 2.632 - 0.00094 * Z_W, 0.401 + 0.00187 * Z_W, 1.313 - 0.0686 * ln_e
    p = p1 * np.exp((p2 - tau) / p3 - np.exp((p2 - tau) / p3))
    rc = rc - 0.0203 * (1 - E_HAT) + 0.0397 / fs * np.exp(-tau)
    rt = rt - 0.14 * (1 - E_HAT) - 0.495 / fs * np.exp(-tau)
    p = p + (1 - E_HAT) * (0.348 - 0.642 / fs * np.exp(-((tau - 1) ** 2)))
    return np.maximum(rc, 1e-3), np.maximum(rt, 1e-3), np.clip(p, 0.0, 1.0)


def simulate_fast(geometry: ECalGeometry, energies_gev: np.ndarray, *, seed: int = 0,
                  spread_mm: float = 2.0, sampling_resolution: float = 0.11) -> np.ndarray:
    """GFlash-style showers: ``(N, layers, n_pix, n_pix)`` float32 Si deposits [MeV]."""
    e = np.asarray(energies_gev, dtype=np.float64)
    validate_energies(e)
    if sampling_resolution < 0:
        raise UsageError(f"sampling_resolution={sampling_resolution} must be >= 0.")
    rng = np.random.default_rng(seed)
    edges = _layer_edges_x0(geometry)
    frac = sampling_fractions(geometry)
    rm = np.where(np.arange(geometry.n_layers) < geometry.n_thin,
                  geometry.effective_moliere_mm("thin"), geometry.effective_moliere_mm("thick"))
    fs = _fs(geometry)
    out = np.zeros((e.size, *geometry.shape), dtype=np.float64)
    n_pix, pixel, half = geometry.n_pix, geometry.pixel, geometry.half_width
    for i, energy in enumerate(e):
        ln_t, ln_a, s_t, s_a, rho = longitudinal_parameters(energy, geometry)
        z1, z2 = rng.normal(size=2)
        c1, c2 = math.sqrt((1 + rho) / 2), math.sqrt((1 - rho) / 2)
        t_max = math.exp(ln_t + s_t * (c1 * z1 + c2 * z2))
        alpha = max(math.exp(ln_a + s_a * (c1 * z1 - c2 * z2)), 1.05)
        t_s, a_s = t_max * (0.813 + 0.0019 * Z_W), alpha * (0.844 + 0.0026 * Z_W)
        n_spots = max(int(10.3 / 0.11 * energy**0.959), 1)
        depth = rng.gamma(a_s, t_s / (a_s - 1.0), n_spots)
        layer = np.searchsorted(edges, depth, side="right") - 1
        keep = layer < geometry.n_layers
        depth, layer = depth[keep], layer[keep]
        tau = depth / t_max
        rc, rt, p = _radial(tau, energy, fs)
        u = rng.uniform(size=depth.size)
        radius = np.where(rng.uniform(size=depth.size) < p, rc, rt) * np.sqrt(u / (1 - u))
        radius = radius * rm[layer]
        phi = rng.uniform(0, 2 * math.pi, depth.size)
        x0, y0 = rng.normal(0.0, spread_mm, 2) if spread_mm > 0 else (0.0, 0.0)
        ix = np.floor((x0 + radius * np.cos(phi) + half) / pixel).astype(np.int64)
        iy = np.floor((y0 + radius * np.sin(phi) + half) / pixel).astype(np.int64)
        spot_e = energy / n_spots  # GeV per spot
        layer_e = np.bincount(layer, minlength=geometry.n_layers) * spot_e
        if sampling_resolution > 0:
            with np.errstate(divide="ignore", invalid="ignore"):
                shape = layer_e / sampling_resolution**2
                smeared = np.where(layer_e > 0, rng.gamma(np.maximum(shape, 1e-12),
                                                          sampling_resolution**2), 0.0)
                scale = np.where(layer_e > 0, smeared / layer_e, 0.0)
        else:
            scale = np.ones(geometry.n_layers)
        inside = (ix >= 0) & (ix < n_pix) & (iy >= 0) & (iy < n_pix)
        w = spot_e * 1000.0 * frac[layer] * scale[layer]
        np.add.at(out[i], (layer[inside], iy[inside], ix[inside]), w[inside])
    return out.astype(np.float32)
