"""Luminosity of the nano-beam collision: Gaussian overlap with crossing angle and hourglass.

Small-angle overlap integral (reference/accelerator.md §6.5), integrated over t analytically::

    L_pair = 2 f N₁ N₂ ∫ g_x(s) g_y(s) exp(−2s²/Σ_z²) / sqrt(2π Σ_z²) ds
    g_x(s) = exp(−(2φs)² / (2Σ_x²(s))) / sqrt(2π Σ_x²(s)),   Σ_x²(s) = Σ ε_x β_x(s)
    g_y(s) = 1 / sqrt(2π Σ_y²(s)),   Σ_y²(s) = Σ B² [ε_y β_y(s) + Δσ_y*² + Δσ_y'² s²]
    β(s) = β* (1 + (s/β*)²),   Σ_z² = σ_z1² + σ_z2²,   f = c/C

with φ the half crossing angle, Δσ the knob terms of :func:`machine.knob_terms` and B the
beam-beam blow-up of each beam (B = 1 gives the geometric luminosity). Without hourglass this
reduces to L = f N₁ N₂ / (2π Σ_y sqrt(Σ_x² + φ² Σ_z²)).
"""

from __future__ import annotations

import numpy as np

from hepchain.accelerator.ipknob.machine import Machine

_N_S = 241  # integration points over ±6 luminous lengths


def blowup(size2: np.ndarray, populations: np.ndarray, machine: Machine) -> np.ndarray:
    """Vertical beam-beam blow-up factor B per ring, shape (..., 2).

    The beam-beam parameter of beam i is made by the *opposite* beam j,
    ξ_y,i ∝ N_j / (σ_y,j Σ_x), so B_i = 1 + κ (N_j / N_j,ref)(σ_j,ref / σ_j), with σ_j the
    opposite beam's IP size including its knob term ``size2`` and κ = ``machine.bb_kappa``
    (the blow-up of each beam at nominal populations and design sizes). Phenomenological
    (linear in ξ), as reference §6.5 asks for.
    """
    n = np.asarray(populations, float)
    n_ref = machine.bunch_population(np.array([r.current for r in machine.rings]))
    sig0 = np.array([r.sigma_y0 for r in machine.rings])
    sig = np.sqrt(sig0**2 + np.asarray(size2, float))
    other_charge = n[..., ::-1] / n_ref[::-1]
    other_density = sig0[::-1] / sig[..., ::-1]
    return 1.0 + machine.bb_kappa * other_charge * other_density


def luminosity(size2: np.ndarray, div2: np.ndarray, populations: np.ndarray,
               machine: Machine, beam_beam: bool = True) -> np.ndarray:
    """Total luminosity [cm⁻² s⁻¹] of ``machine.n_bunches`` bunch pairs.

    ``size2`` [m²] and ``div2`` [rad²]: knob terms, shape (..., 2); ``populations``:
    particles per bunch (..., 2). Returns shape (...).
    """
    size2, div2 = np.asarray(size2, float), np.asarray(div2, float)
    n = np.broadcast_to(np.asarray(populations, float), size2.shape)
    ler, her = machine.rings
    rings = (ler, her)
    s = np.linspace(-6, 6, _N_S) * machine.luminous_length
    b2 = blowup(size2, n, machine) ** 2 if beam_beam else np.ones_like(size2)
    sx2 = sum(r.eps_x * r.beta_x * (1 + (s / r.beta_x) ** 2) for r in rings)
    sy2 = sum(b2[..., i, None] * (r.eps_y * r.beta_y * (1 + (s / r.beta_y) ** 2)
                                  + size2[..., i, None] + div2[..., i, None] * s**2)
              for i, r in enumerate(rings))
    sz2 = ler.sigma_z**2 + her.sigma_z**2
    gx = np.exp(-((2 * machine.half_crossing * s) ** 2) / (2 * sx2)) / np.sqrt(2 * np.pi * sx2)
    gy = 1.0 / np.sqrt(2 * np.pi * sy2)
    rho = np.exp(-2 * s**2 / sz2) / np.sqrt(2 * np.pi * sz2)
    integral = np.trapezoid(gx * gy * rho, s, axis=-1)
    pair = 2 * machine.rev_freq * n[..., 0] * n[..., 1] * integral  # m⁻² s⁻¹
    return pair * machine.n_bunches * 1e-4


def specific_luminosity(lumi: np.ndarray, currents: np.ndarray, machine: Machine) -> np.ndarray:
    """L_sp = L / (n_b I_b+ I_b−) in 10³¹ cm⁻² s⁻¹ mA⁻² (bunch currents I_b in mA)."""
    i_b = np.asarray(currents, float) * 1e3 / machine.n_bunches
    return np.asarray(lumi, float) / (machine.n_bunches * i_b[..., 0] * i_b[..., 1]) / 1e31
