"""Materials of the ECAL stack: element constants (PDG) and mixtures by mass fraction.

Element values are the PDG "Atomic and nuclear properties" ones (radiation length X0 in
g/cm², density in g/cm³, critical energy E_c for electrons in MeV, minimum-ionising mass
stopping power in MeV cm²/g). Mixtures follow the PDG rules (Review of Particle Physics,
"Passage of particles through matter"): 1/X0 = Σ w_j/X0_j, 1/R_M = Σ w_j E_cj/(E_s X0_j),
dE/dx = Σ w_j (dE/dx)_j, with w_j the mass fractions; the effective E_c = E_s X0/R_M.
Lengths returned by :class:`Material` are in mm.
"""

from __future__ import annotations

from dataclasses import dataclass

from hepchain.core.errors import UsageError

ES_MEV = 21.2052
"""Scale energy E_s [MeV] of multiple scattering and the Molière radius."""
AVOGADRO = 6.02214076e23
"""Avogadro's number [1/mol]."""


@dataclass(frozen=True)
class Element:
    """One element: Z, A [g/mol], X0 [g/cm²], density [g/cm³], E_c [MeV], min dE/dx
    [MeV cm²/g] and the photoelectric mass attenuation at 0.1 MeV [cm²/g] with its power-law
    index in photon energy (σ_pe ∝ k^−index)."""

    z: int
    a: float
    x0_g_cm2: float
    density: float
    ec_mev: float
    dedx_mev_cm2_g: float
    photo_0p1mev_cm2_g: float
    photo_index: float


ELEMENTS: dict[str, Element] = {
    "W": Element(74, 183.84, 6.76, 19.3, 7.97, 1.145, 4.27, 2.65),
    "Si": Element(14, 28.0855, 21.82, 2.329, 40.19, 1.664, 0.0034, 3.0),
    "Fe": Element(26, 55.845, 13.84, 7.874, 21.68, 1.451, 0.20, 3.0),
    # E_c of Ni from 610 MeV/(Z + 1.24) (PDG's fit for solids); Ni is 5 % of the alloy
    "Ni": Element(28, 58.6934, 12.68, 8.902, 610.0 / (28 + 1.24), 1.406, 0.26, 3.0),
}


@dataclass(frozen=True)
class Material:
    """A pure element or a mixture: ``fractions`` are mass fractions (sum 1), ``density``
    in g/cm³."""

    name: str
    fractions: tuple[tuple[str, float], ...]
    density: float

    def __post_init__(self) -> None:
        total = sum(w for _, w in self.fractions)
        if abs(total - 1.0) > 1e-6 or any(el not in ELEMENTS for el, _ in self.fractions):
            raise UsageError(f"Material {self.name}: mass fractions must sum to 1 over known "
                             f"elements {sorted(ELEMENTS)}; got {self.fractions}.")

    def _sum(self, attr: str) -> float:
        return sum(w * getattr(ELEMENTS[el], attr) for el, w in self.fractions)

    @property
    def x0_g_cm2(self) -> float:
        """Radiation length [g/cm²]."""
        return 1.0 / sum(w / ELEMENTS[el].x0_g_cm2 for el, w in self.fractions)

    @property
    def x0_mm(self) -> float:
        """Radiation length [mm]."""
        return 10.0 * self.x0_g_cm2 / self.density

    @property
    def moliere_mm(self) -> float:
        """Molière radius [mm]."""
        inv = sum(w * ELEMENTS[el].ec_mev / ELEMENTS[el].x0_g_cm2 for el, w in self.fractions)
        return 10.0 * ES_MEV / inv / self.density

    @property
    def ec_mev(self) -> float:
        """Effective critical energy E_s X0/R_M [MeV] (the element's own for a pure one)."""
        return ES_MEV * self.x0_mm / self.moliere_mm

    @property
    def dedx_mev_mm(self) -> float:
        """Minimum-ionising energy loss [MeV/mm]."""
        return self._sum("dedx_mev_cm2_g") * self.density / 10.0

    @property
    def z_eff(self) -> float:
        """Mass-fraction-weighted Z (GFlash's rule for mixtures)."""
        return self._sum("z")

    @property
    def electrons_per_mm3(self) -> float:
        """Electron density [1/mm³]."""
        return self.density * AVOGADRO * sum(w * ELEMENTS[el].z / ELEMENTS[el].a
                                             for el, w in self.fractions) / 1000.0

    @property
    def photo_per_mm(self) -> float:
        """Photoelectric attenuation at 0.1 MeV [1/mm]."""
        return self._sum("photo_0p1mev_cm2_g") * self.density / 10.0

    @property
    def photo_index(self) -> float:
        """Power-law index of the photoelectric cross-section of the dominant element."""
        return ELEMENTS[max(self.fractions, key=lambda f: f[1])[0]].photo_index


MATERIALS: dict[str, Material] = {
    "W": Material("W", (("W", 1.0),), ELEMENTS["W"].density),
    # SiD ECAL absorber: tungsten heavy alloy, 93 % W with Ni and Fe binder, 17.8 g/cm³
    "W93NiFe": Material("W93NiFe", (("W", 0.93), ("Ni", 0.049), ("Fe", 0.021)), 17.8),
    "Si": Material("Si", (("Si", 1.0),), ELEMENTS["Si"].density),
}


def material(name: str) -> Material:
    """The material called ``name``; an unknown name is a UsageError."""
    if name not in MATERIALS:
        raise UsageError(f"Unknown material {name!r}; choose one of {sorted(MATERIALS)}.")
    return MATERIALS[name]
