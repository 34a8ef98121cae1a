"""SiD-like Si-W ECAL geometry as data (lengths in mm).

Each readout layer is a tungsten absorber followed by a readout gap that holds the silicon
sensor: ``[W | air | Si | air]``. The default stack is the SiD TDR one, 20 × 2.5 mm W followed
by 10 × 5.0 mm W, with 0.32 mm Si in a 1.25 mm gap (0.25 mm before the sensor, 0.68 mm of
Cu/Kapton/air after it, treated as air: together < 0.005 X0). Pixels are square, centred on the
beam axis, ``n_pix × n_pix`` per layer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from hepchain.core.errors import UsageError

# material codes used by the simulation
AIR, TUNGSTEN, SILICON = 0, 1, 2
X0_W_MM = 3.504
"""Radiation length of tungsten [mm] (PDG)."""
EC_W_MEV = 7.97
"""Critical energy of tungsten for electrons [MeV] (PDG)."""
RM_W_MM = 9.327
"""Molière radius of tungsten [mm]."""
X0_SI_MM = 93.70
"""Radiation length of silicon [mm] (PDG)."""
EC_SI_MEV = 40.0
"""Critical energy of silicon [MeV] (610/(Z+1.24))."""
DEDX_W_MEV_MM = 2.21
"""Minimum-ionising dE/dx of tungsten [MeV/mm] (1.145 MeV cm²/g × 19.3 g/cm³)."""
DEDX_SI_MEV_MM = 0.3876
"""Minimum-ionising dE/dx of silicon [MeV/mm] (1.664 MeV cm²/g × 2.329 g/cm³)."""
ES_MEV = 21.2052
"""Scale energy E_s [MeV] of multiple scattering and the Molière radius."""


@dataclass(frozen=True)
class ECalGeometry:
    """The calorimeter stack and its pixelisation (all lengths in mm)."""

    n_thin: int = 20
    n_thick: int = 10
    w_thin: float = 2.5
    w_thick: float = 5.0
    si: float = 0.32
    gap_before: float = 0.25
    gap_after: float = 0.68
    pixel: float = 4.0
    n_pix: int = 32

    def __post_init__(self) -> None:
        if self.n_thin < 0 or self.n_thick < 0 or self.n_layers < 1:
            raise UsageError(f"The ECAL needs at least one layer (n_thin={self.n_thin}, "
                             f"n_thick={self.n_thick}); set n_thin + n_thick >= 1.")
        for name in ("w_thin", "w_thick", "si", "pixel"):
            if not getattr(self, name) > 0:
                raise UsageError(f"Geometry value {name}={getattr(self, name)} mm must be "
                                 "positive; give a thickness or pixel size > 0.")
        if self.gap_before < 0 or self.gap_after < 0:
            raise UsageError("Gap thicknesses gap_before/gap_after must be >= 0 mm.")
        if self.n_pix < 1:
            raise UsageError(f"n_pix={self.n_pix} must be at least 1 pixel per side.")

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ECalGeometry:
        """Build from a config mapping; unknown keys are a UsageError."""
        data = dict(data or {})
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise UsageError(f"Unknown geometry settings {sorted(unknown)}; known: {sorted(known)}.")
        types = {f.name: f.type for f in fields(cls)}
        try:
            return cls(**{k: (_as_int(v) if types[k] == "int" else float(v))
                          for k, v in data.items()})
        except ValueError as exc:
            raise UsageError(f"Geometry values must be numbers ({exc}).") from exc

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def n_layers(self) -> int:
        return self.n_thin + self.n_thick

    @property
    def shape(self) -> tuple[int, int, int]:
        """(layers, pixels y, pixels x) of one shower image."""
        return (self.n_layers, self.n_pix, self.n_pix)

    @property
    def n_cells(self) -> int:
        return self.n_layers * self.n_pix * self.n_pix

    @property
    def half_width(self) -> float:
        """Half the transverse size of the pixel grid [mm]."""
        return 0.5 * self.n_pix * self.pixel

    def absorber(self) -> np.ndarray:
        """Tungsten thickness in front of each sensor [mm]."""
        return np.array([self.w_thin] * self.n_thin + [self.w_thick] * self.n_thick)

    def slabs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The stack as slabs along z: (z boundaries [mm] (n+1), material codes (n),
        readout layer of each slab (−1 where not a sensor))."""
        z, mats, layer = [0.0], [], []
        for i, w in enumerate(self.absorber()):
            for thick, mat, lay in ((w, TUNGSTEN, -1), (self.gap_before, AIR, -1),
                                    (self.si, SILICON, i), (self.gap_after, AIR, -1)):
                if thick > 0:
                    z.append(z[-1] + thick)
                    mats.append(mat)
                    layer.append(lay)
        return np.array(z), np.array(mats, dtype=np.int64), np.array(layer, dtype=np.int64)

    def depth_x0(self) -> np.ndarray:
        """Depth of each sensor's centre in radiation lengths."""
        w = np.cumsum(self.absorber()) / X0_W_MM
        si = (np.arange(self.n_layers) + 0.5) * self.si / X0_SI_MM
        return w + si

    def total_x0(self) -> float:
        return float(self.absorber().sum() / X0_W_MM + self.n_layers * self.si / X0_SI_MM)

    def sampling_weights(self) -> np.ndarray:
        """Per-layer sampling weight ∝ absorber in front of the sensor (thin layer = 1)."""
        return self.absorber() / self.w_thin

    def effective_moliere_mm(self, section: str = "thin") -> float:
        """Molière radius of the W + gap mixture [mm] (GFlash effective-medium rule,
        air counted as empty space)."""
        w = self.w_thin if section == "thin" else self.w_thick
        gap = self.gap_before + self.si + self.gap_after
        return RM_W_MM * (w + gap) / w


def _as_int(value: Any) -> int:
    number = float(value)
    if not number.is_integer():
        raise ValueError(f"{value!r} is not a whole number")
    return int(number)
