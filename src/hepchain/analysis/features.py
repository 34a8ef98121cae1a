"""The LHC Olympics feature set (CATHODE convention) and its "more inputs" extension.

Jets are ordered by mass: J1 is the lighter, J2 the heavier of the two leading jets.
Masses are in TeV; τ_ij = τ_i / (τ_j + 1e-5).

| name      | definition                                |
|-----------|-------------------------------------------|
| mjj       | dijet invariant mass [TeV] (conditioning)  |
| mj1       | lighter jet mass m_J1 [TeV]                |
| dmj       | Δm_J = m_J2 − m_J1 [TeV]                   |
| tau21_j1  | τ2/τ1 of the lighter jet                   |
| tau21_j2  | τ2/τ1 of the heavier jet                   |
| tau32_j1  | τ3/τ2 of the lighter jet  (extension)      |
| tau32_j2  | τ3/τ2 of the heavier jet  (extension)      |
| delta_r   | ΔR between the jets       (extension)      |
| mj2       | heavier jet mass m_J2 [TeV] (param. scans) |
"""

from __future__ import annotations

import numpy as np

from hepchain.analysis.dijets import Dijets
from hepchain.core.errors import UsageError

EPS = 1e-5
KNOWN = ("mjj", "mj1", "mj2", "dmj", "tau21_j1", "tau21_j2", "tau32_j1", "tau32_j2", "delta_r")
STANDARD = ("mj1", "dmj", "tau21_j1", "tau21_j2")
EXTENDED = (*STANDARD, "tau32_j1", "tau32_j2", "delta_r")


def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """τ_i/(τ_j + 1e-5), the LHCO definition that stays finite for τ_j = 0."""
    return num / (den + EPS)


def _mass_order(jets: Dijets) -> np.ndarray:
    """Column index (N, 2) that puts the lighter jet first (ties keep pT order)."""
    return np.argsort(jets.mass, axis=1, kind="stable")


def compute(jets: Dijets, names: tuple[str, ...] | list[str]) -> np.ndarray:
    """Feature matrix (N, len(names)) in the units of the module table."""
    order = _mass_order(jets)
    by_mass = {k: np.take_along_axis(getattr(jets, k), order, axis=1)
               for k in ("mass", "tau1", "tau2", "tau3")}
    m = by_mass["mass"] / 1000.0
    table = {
        "mjj": lambda: jets.mjj() / 1000.0,
        "mj1": lambda: m[:, 0],
        "mj2": lambda: m[:, 1],
        "dmj": lambda: m[:, 1] - m[:, 0],
        "tau21_j1": lambda: ratio(by_mass["tau2"][:, 0], by_mass["tau1"][:, 0]),
        "tau21_j2": lambda: ratio(by_mass["tau2"][:, 1], by_mass["tau1"][:, 1]),
        "tau32_j1": lambda: ratio(by_mass["tau3"][:, 0], by_mass["tau2"][:, 0]),
        "tau32_j2": lambda: ratio(by_mass["tau3"][:, 1], by_mass["tau2"][:, 1]),
        "delta_r": jets.delta_r,
    }
    unknown = [n for n in names if n not in table]
    if unknown:
        raise UsageError(f"Unknown features {unknown}; choose from {sorted(table)}.")
    return np.stack([table[n]() for n in names], axis=1).astype(np.float64)
