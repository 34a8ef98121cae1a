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
  electron/MIP sampling fraction, ê = 1/(1 + 0.007(Z_abs − Z_Si)) — smeared per layer with a
  Gamma distribution of relative width σ_l/√(E_layer/GeV), σ_l = σ_s √(d_l/d_thin): sampling
  fluctuations grow as the square root of the absorber a layer samples, so the thick layers
  fluctuate √2 more than the thin ones.

Z of a mixture absorber is its mass-weighted Z, E_c its effective critical energy
(:mod:`hepchain.calo.materials`).

The longitudinal and sampling constants live in :class:`GFlashParams`: the GFlash defaults
(``GFlashParams.gflash(geometry)``) or values tuned to full-simulation showers, as GFlash is
tuned to Geant4 in practice::

    params = tune(geometry, energies_gev, full_showers)       # per-shower profile moments
    fast = simulate_fast(geometry, energies_gev, params=params)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from hepchain.calo.fullsim import validate_energies
from hepchain.calo.geometry import SENSOR, ECalGeometry
from hepchain.calo.validation import stochastic_fit, visible_response
from hepchain.core.errors import UsageError
from hepchain.core.seeding import derive_seed


def e_hat(geometry: ECalGeometry) -> float:
    """Electron-to-MIP response ratio ê = 1/(1 + 0.007(Z_abs − Z_Si)) of the sampling
    structure."""
    return 1.0 / (1.0 + 0.007 * (geometry.absorber_material.z_eff - SENSOR.z_eff))


def sampling_fractions(geometry: ECalGeometry) -> np.ndarray:
    """Visible fraction per layer: ê × Si MIP loss / (absorber + Si MIP loss)."""
    si = geometry.si * SENSOR.dedx_mev_mm
    return e_hat(geometry) * si / (geometry.absorber_mm()
                                   * geometry.absorber_material.dedx_mev_mm + si)


def layer_sampling(geometry: ECalGeometry, sampling: float) -> np.ndarray:
    """Sampling term σ_l [√GeV] of each layer: σ_s of the thin layers × √(d_l/d_thin)."""
    return sampling * np.sqrt(geometry.sampling_weights())


def _layer_edges_x0(geometry: ECalGeometry) -> np.ndarray:
    per_layer = (geometry.absorber_mm() / geometry.absorber_material.x0_mm
                 + geometry.si / SENSOR.x0_mm)
    return np.concatenate([[0.0], np.cumsum(per_layer)])


def _ln_y(energy_gev: float | np.ndarray, geometry: ECalGeometry) -> float | np.ndarray:
    """ln(E/E_c) with the absorber's critical energy."""
    return np.log(np.asarray(energy_gev) * 1000.0 / geometry.absorber_material.ec_mev)


@dataclass(frozen=True)
class GFlashParams:
    """Longitudinal and sampling constants of the fast simulation; y = E/E_c (absorber).

    ⟨ln T⟩ = ln max(t_slope ln y + t_offset, 0.5), ⟨ln α⟩ = ln max(a0 + a1 ln y, 1.2) [T in X0];
    σ(ln T) = 1/(st0 + st1 ln y), σ(ln α) = 1/(sa0 + sa1 ln y), ρ = r0 + r1 ln y; energy spots
    have depth parameters (spot_t·T, spot_a·α); ``sampling`` is σ_s [√GeV] of the thin layers
    (:func:`layer_sampling` scales it per layer); ``visible_scale``
    multiplies the visible energy (1 = the ê × MIP-share sampling fractions).
    """

    t_offset: float
    a0: float
    a1: float
    t_slope: float = 1.0
    st0: float = -2.5
    st1: float = 1.25
    sa0: float = -0.82
    sa1: float = 0.79
    r0: float = 0.784
    r1: float = -0.023
    spot_t: float = 1.0
    spot_a: float = 1.0
    sampling: float = 0.11
    visible_scale: float = 1.0

    @classmethod
    def gflash(cls, geometry: ECalGeometry) -> GFlashParams:
        """Grindhammer–Peters homogeneous values with the sampling-structure corrections."""
        fs, z = _fs(geometry), geometry.absorber_material.z_eff
        return cls(t_offset=-0.812 - 0.55 / fs - 0.69 * (1 - e_hat(geometry)),
                   a0=0.81 - 0.476 / fs, a1=0.458 + 2.26 / z,
                   spot_t=0.813 + 0.0019 * z, spot_a=0.844 + 0.0026 * z)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def longitudinal_parameters(energy_gev: float, geometry: ECalGeometry,
                            params: GFlashParams | None = None
                            ) -> tuple[float, float, float, float, float]:
    """Mean ln T, mean ln α, σ(ln T), σ(ln α) and ρ at ``energy_gev``."""
    p = params or GFlashParams.gflash(geometry)
    ln_y = float(_ln_y(energy_gev, geometry))
    t_mean = max(p.t_slope * ln_y + p.t_offset, 0.5)
    a_mean = max(p.a0 + p.a1 * ln_y, 1.2)
    s_t = 1.0 / max(p.st0 + p.st1 * ln_y, 0.5)
    s_a = 1.0 / max(p.sa0 + p.sa1 * ln_y, 0.5)
    rho = float(np.clip(p.r0 + p.r1 * ln_y, -0.99, 0.99))
    return math.log(t_mean), math.log(a_mean), s_t, s_a, rho


def profile_moments(showers: np.ndarray, geometry: ECalGeometry) -> tuple[np.ndarray, np.ndarray]:
    """Per shower, Gamma (T [X0], α) from the mean and variance of the deposited-energy depth:
    layer energy = Si signal / sampling fraction at the slab centre, plus the Δt²/12 spread
    within a slab; α = ⟨t⟩²/var, T = (α − 1)·var/⟨t⟩."""
    edges = _layer_edges_x0(geometry)
    centre, width = 0.5 * (edges[1:] + edges[:-1]), np.diff(edges)
    layer_e = showers.reshape(len(showers), geometry.n_layers, -1).sum(-1) / sampling_fractions(
        geometry)
    w = layer_e / layer_e.sum(1, keepdims=True)
    mean = w @ centre
    var = w @ centre**2 - mean**2 + w @ (width**2 / 12)
    alpha = np.maximum(mean**2 / var, 1.05)
    return (alpha - 1) * var / mean, alpha


_LINES = ("t_slope", "t_offset", "a1", "a0", "st1", "st0", "sa1", "sa0", "r1", "r0")


def _profile_lines(geometry: ECalGeometry, energies_gev: np.ndarray, showers: np.ndarray
                   ) -> np.ndarray:
    """Straight lines in ln y through the per-energy statistics of the per-shower
    (ln T, ln α): exp⟨ln T⟩, exp⟨ln α⟩, 1/σ(ln T), 1/σ(ln α), ρ; coefficients as ``_LINES``."""
    levels = np.unique(energies_gev)
    t, a = profile_moments(showers, geometry)
    stats = []
    for e in levels:
        lt, la = np.log(t[energies_gev == e]), np.log(a[energies_gev == e])
        stats.append((np.exp(lt.mean()), np.exp(la.mean()), 1 / lt.std(), 1 / la.std(),
                      np.corrcoef(lt, la)[0, 1]))
    ln_y = _ln_y(levels, geometry)
    return np.concatenate([np.polyfit(ln_y, col, 1) for col in np.array(stats).T])


def tune(geometry: ECalGeometry, energies_gev: np.ndarray, showers: np.ndarray, *,
         seed: int = 0, iterations: int = 3, n_fast: int = 600,
         readout: Callable[[np.ndarray], np.ndarray] | None = None) -> GFlashParams:
    """Fit :class:`GFlashParams` to (full-simulation) showers at ≥ 3 fixed energies [GeV].

    Target: straight lines in ln y through the per-energy mean, spread and correlation of the
    per-shower (ln T, ln α) (:func:`profile_moments`), and the stochastic term a of the
    visible-energy resolution. Spots follow the energy profile (spot factors 1). The
    per-shower estimates are noisy (finite spots, sampling), so the parameters are corrected
    ``iterations`` times by the difference between the target and the same statistics of
    ``n_fast`` fast showers per energy (σ_s in quadrature, the visible-energy scale by the
    ratio of mean visible energies). When ``showers`` are read-out signals, pass the same
    ``readout`` (true deposits → signals) so that the fast showers are compared like with like.
    """
    energies_gev = np.asarray(energies_gev, dtype=float)
    levels = np.unique(energies_gev)
    if levels.size < 3:
        raise UsageError("Tuning the fast simulation needs showers at >= 3 fixed energies.")
    target = _profile_lines(geometry, energies_gev, showers)
    a_full = stochastic_fit(energies_gev, showers, geometry).a
    vis_full = visible_response(energies_gev, showers, geometry)[1]
    coeffs, sampling, scale = target.copy(), a_full, 1.0
    e_fast = np.repeat(levels, n_fast)

    def params() -> GFlashParams:
        return GFlashParams(**dict(zip(_LINES, map(float, coeffs), strict=True)),
                            spot_t=1.0, spot_a=1.0, sampling=float(sampling),
                            visible_scale=float(scale))

    for i in range(iterations):
        fast = simulate_fast(geometry, e_fast, seed=derive_seed(seed, "tune", i), params=params())
        if readout is not None:
            fast = readout(fast)
        coeffs = coeffs + target - _profile_lines(geometry, e_fast, fast)
        sampling = math.sqrt(max(sampling**2 + a_full**2 - stochastic_fit(e_fast, fast, geometry).a**2,
                                 0.0))
        scale *= float(np.mean(vis_full / visible_response(e_fast, fast, geometry)[1]))
    return params()



def _fs(geometry: ECalGeometry) -> float:
    """F_s = X0_eff / (d_abs + d_Si) for the thin section."""
    return 1.0 / (geometry.w_thin / geometry.absorber_material.x0_mm
                  + geometry.si / SENSOR.x0_mm)


def _radial(tau: np.ndarray, energy_gev: float, fs: float, z: float, ehat: float
            ) -> tuple[np.ndarray, ...]:
    """Core radius, tail radius and core probability [Molière units] at τ = t/T for an
    absorber of (effective) atomic number ``z`` and electron/MIP ratio ``ehat``."""
    ln_e = math.log(energy_gev)
    rc = 0.0251 + 0.00319 * ln_e + (0.1162 - 0.000381 * z) * tau
    k4 = 0.3585 + 0.0412 * ln_e
    rt = (0.659 - 0.00309 * z) * (np.exp(-2.59 * (tau - 0.645)) + np.exp(k4 * (tau - 0.645)))
    p1, p2, p3 = 2.632 - 0.00094 * z, 0.401 + 0.00187 * z, 1.313 - 0.0686 * ln_e
    p = p1 * np.exp((p2 - tau) / p3 - np.exp((p2 - tau) / p3))
    rc = rc - 0.0203 * (1 - ehat) + 0.0397 / fs * np.exp(-tau)
    rt = rt - 0.14 * (1 - ehat) - 0.495 / fs * np.exp(-tau)
    p = p + (1 - ehat) * (0.348 - 0.642 / fs * np.exp(-((tau - 1) ** 2)))
    return np.maximum(rc, 1e-3), np.maximum(rt, 1e-3), np.clip(p, 0.0, 1.0)


def simulate_fast(geometry: ECalGeometry, energies_gev: np.ndarray, *, seed: int = 0,
                  spread_mm: float = 2.0, params: GFlashParams | None = None) -> np.ndarray:
    """GFlash-style showers: ``(N, layers, n_pix, n_pix)`` float32 Si deposits [MeV];
    ``params`` default to :meth:`GFlashParams.gflash`."""
    e = np.asarray(energies_gev, dtype=np.float64)
    validate_energies(e)
    params = params or GFlashParams.gflash(geometry)
    sampling_resolution = params.sampling
    if sampling_resolution < 0:
        raise UsageError(f"sampling={sampling_resolution} must be >= 0.")
    rng = np.random.default_rng(seed)
    edges = _layer_edges_x0(geometry)
    frac = sampling_fractions(geometry)
    rm = np.where(np.arange(geometry.n_layers) < geometry.n_thin,
                  geometry.effective_moliere_mm("thin"), geometry.effective_moliere_mm("thick"))
    fs, z, ehat = _fs(geometry), geometry.absorber_material.z_eff, e_hat(geometry)
    sigma_l = layer_sampling(geometry, sampling_resolution)
    out = np.zeros((e.size, *geometry.shape), dtype=np.float64)
    n_pix, pixel, half = geometry.n_pix, geometry.pixel, geometry.half_width
    for i, energy in enumerate(e):
        ln_t, ln_a, s_t, s_a, rho = longitudinal_parameters(energy, geometry, params)
        z1, z2 = rng.normal(size=2)
        c1, c2 = math.sqrt((1 + rho) / 2), math.sqrt((1 - rho) / 2)
        t_max = math.exp(ln_t + s_t * (c1 * z1 + c2 * z2))
        alpha = max(math.exp(ln_a + s_a * (c1 * z1 - c2 * z2)), 1.05)
        t_s, a_s = t_max * params.spot_t, max(alpha * params.spot_a, 1.05)
        n_spots = max(int(10.3 / 0.11 * energy**0.959), 1)
        depth = rng.gamma(a_s, t_s / (a_s - 1.0), n_spots)
        layer = np.searchsorted(edges, depth, side="right") - 1
        keep = layer < geometry.n_layers
        depth, layer = depth[keep], layer[keep]
        tau = depth / t_max
        rc, rt, p = _radial(tau, energy, fs, z, ehat)
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
                shape = layer_e / sigma_l**2
                smeared = np.where(layer_e > 0, rng.gamma(np.maximum(shape, 1e-12),
                                                          sigma_l**2), 0.0)
                scale = np.where(layer_e > 0, smeared / layer_e, 0.0)
        else:
            scale = np.ones(geometry.n_layers)
        inside = (ix >= 0) & (ix < n_pix) & (iy >= 0) & (iy < n_pix)
        w = spot_e * 1000.0 * params.visible_scale * frac[layer] * scale[layer]
        np.add.at(out[i], (layer[inside], iy[inside], ix[inside]), w[inside])
    return out.astype(np.float32)
