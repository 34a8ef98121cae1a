"""Beam-induced background rates seen by Belle II, per ring (LER, HER), in units of the rate
at nominal current with a perfectly tuned IP (≈1).

Heuristic model with the scalings of reference/accelerator.md §6.9::

    R = a_gas (I/I₀)(1 + p I/I₀)/(1 + p) (1 + a_ir x_IR)        beam-gas ∝ I·P, P rises with I
      + a_T (I/I₀)² σ_y,ring,0 / σ_y,ring                         Touschek ∝ I I_b / (σ_x σ_y σ_z)
      + a_L L / L₀                                                  luminosity (radiative Bhabha)

x_IR = (Δσ_y*² + Δσ_y'² σ_s²) / (ε_y β_y*) is the knob-driven growth of the vertical envelope
through the final focus (losses of scattered particles grow with it). Knobs that enlarge the
ring beam size lower the Touschek term and the luminosity term, so the background is not
simply minimal at the luminosity optimum.
"""

from __future__ import annotations

import numpy as np

from hepchain.accelerator.ipknob.machine import Machine


def ir_excursion(size2: np.ndarray, div2: np.ndarray, machine: Machine) -> np.ndarray:
    """x_IR per ring (dimensionless), shape (..., 2)."""
    ref = np.array([r.eps_y * r.beta_y for r in machine.rings])
    return (np.asarray(size2) + np.asarray(div2) * machine.luminous_length**2) / ref


def background_rates(currents: np.ndarray, ring_size: np.ndarray, lumi: np.ndarray,
                     size2: np.ndarray, div2: np.ndarray, machine: Machine,
                     lumi_ref: float) -> np.ndarray:
    """Background rate per ring, shape (..., 2).

    ``currents`` [A] and ``ring_size`` (vertical size at the monitor [m]) have shape (..., 2);
    ``lumi`` [cm⁻² s⁻¹] shape (...); ``lumi_ref`` the luminosity that gives a_L.
    """
    c = machine.background
    i0 = np.array([r.current for r in machine.rings])
    size0 = np.array([np.sqrt(r.eps_y * machine.beta_monitor) for r in machine.rings])
    x = np.asarray(currents, float) / i0
    gas = c["gas"] * x * (1 + c["pressure"] * x) / (1 + c["pressure"])
    gas = gas * (1 + c["ir"] * ir_excursion(size2, div2, machine))
    touschek = c["touschek"] * x**2 * size0 / np.asarray(ring_size, float)
    lum = c["lumi"] * np.asarray(lumi, float)[..., None] / lumi_ref
    return gas + touschek + lum
