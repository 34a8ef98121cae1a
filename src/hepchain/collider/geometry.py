"""The inner tracker's geometry and material: solenoid field, barrel layer radii, and the
material layers (beryllium beam pipe, silicon pixel layers) with the PDG radiation and nuclear
interaction lengths of their elements.

Units: mm, T, GeV. Endcap disks are treated as equivalent barrel layers (a particle at any
|eta| < :data:`ETA_MAX` crosses every layer outside its production radius), so a particle at
polar angle theta meets ``x / sin(theta)`` of a layer's material.

>>> round(BEAM_PIPE.x_over_lambda, 5)  # 0.8 mm of Be in nuclear interaction lengths
0.00193
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

B_FIELD = 3.8  # T
RHO_PER_GEV = 1000.0 / (0.299792458 * B_FIELD)  # helix radius per GeV of pT [mm/GeV]
ETA_MAX = 2.5


@dataclass(frozen=True)
class Material:
    """An element: atomic number ``z``, ``a_third`` = A^(1/3), radiation length ``x0`` and
    nuclear (inelastic) interaction length ``lambda_i`` [mm] (PDG tables: X0 and lambda_I in
    g/cm^2 divided by the density)."""

    name: str
    z: int
    a_third: float
    x0: float
    lambda_i: float


#: PDG: X0 65.19 g/cm^2, lambda_I 77.8 g/cm^2, 1.848 g/cm^3
BERYLLIUM = Material("Be", 4, 9.012 ** (1 / 3), 651.9 / 1.848, 778.0 / 1.848)
#: PDG: X0 21.82 g/cm^2, lambda_I 108.4 g/cm^2, 2.329 g/cm^3
SILICON = Material("Si", 14, 28.0855 ** (1 / 3), 218.2 / 2.329, 1084.0 / 2.329)


@dataclass(frozen=True)
class Layer:
    """A barrel cylinder of material: ``radius`` [mm] and thickness ``x_over_x0`` in radiation
    lengths at normal incidence (a layer's services counted as its element)."""

    radius: float
    x_over_x0: float
    material: Material

    @property
    def x_over_lambda(self) -> float:
        """Thickness in nuclear interaction lengths at normal incidence."""
        return self.x_over_x0 * self.material.x0 / self.material.lambda_i


#: 0.8 mm beryllium beam pipe (0.23 % X0, the ATLAS IBL-era pipe)
BEAM_PIPE = Layer(23.5, 0.0023, BERYLLIUM)
#: IBL stave with services ~1.5 % X0 (IBL TDR, recalled), then three pixel layers of ~3 % X0
#: each with their services (the order of ATLAS's original pixel layers; recalled, not checked)
PIXEL_LAYERS = (Layer(33.25, 0.015, SILICON), Layer(50.5, 0.03, SILICON),
                Layer(88.5, 0.03, SILICON), Layer(122.5, 0.03, SILICON))
#: the material in which interactions are simulated (:mod:`.material`), inside out
MATERIAL_LAYERS = (BEAM_PIPE, *PIXEL_LAYERS)
PIXEL_RADII = np.array([layer.radius for layer in PIXEL_LAYERS])
SCT_RADII = np.array([299.0, 371.0, 443.0, 514.0])  # double-sided: two hits per layer
