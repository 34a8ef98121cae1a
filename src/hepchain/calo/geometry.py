"""SiD-like Si-W ECAL geometry as data (lengths in mm).

Each readout layer is a tungsten(-alloy) absorber followed by a readout gap that holds the
silicon sensor: ``[W | air | Si | air]``. The default stack is the SiD TDR one, 20 × 2.5 mm
followed by 10 × 5.0 mm of SiD's tungsten alloy (93 % W, 17.8 g/cm³, X0 = 3.93 mm: 25.5 X0 in
all, the seed's ≈ 26 X0), with 0.32 mm Si in a 1.25 mm gap (0.25 mm before the sensor, 0.68 mm
of Cu/Kapton/air after it, treated as air: together < 0.005 X0). ``absorber`` names the
material (:mod:`hepchain.calo.materials`; ``W`` for pure tungsten). Pixels are square, centred
on the beam axis, ``n_pix × n_pix`` per layer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from hepchain.calo.materials import Material, material
from hepchain.core.errors import UsageError

# material codes used by the simulation (TUNGSTEN: the absorber, whatever its alloy)
AIR, TUNGSTEN, SILICON = 0, 1, 2
SENSOR = material("Si")


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
    absorber: str = "W93NiFe"

    def __post_init__(self) -> None:
        material(self.absorber)
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
            return cls(**{k: _CONVERT[types[k]](v) for k, v in data.items()})
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

    @property
    def absorber_material(self) -> Material:
        """The absorber's material constants."""
        return material(self.absorber)

    def absorber_mm(self) -> np.ndarray:
        """Absorber thickness in front of each sensor [mm]."""
        return np.array([self.w_thin] * self.n_thin + [self.w_thick] * self.n_thick)

    def slabs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The stack as slabs along z: (z boundaries [mm] (n+1), material codes (n),
        readout layer of each slab (−1 where not a sensor))."""
        z, mats, layer = [0.0], [], []
        for i, w in enumerate(self.absorber_mm()):
            for thick, mat, lay in ((w, TUNGSTEN, -1), (self.gap_before, AIR, -1),
                                    (self.si, SILICON, i), (self.gap_after, AIR, -1)):
                if thick > 0:
                    z.append(z[-1] + thick)
                    mats.append(mat)
                    layer.append(lay)
        return np.array(z), np.array(mats, dtype=np.int64), np.array(layer, dtype=np.int64)

    def depth_x0(self) -> np.ndarray:
        """Depth of each sensor's centre in radiation lengths."""
        w = np.cumsum(self.absorber_mm()) / self.absorber_material.x0_mm
        si = (np.arange(self.n_layers) + 0.5) * self.si / SENSOR.x0_mm
        return w + si

    def total_x0(self) -> float:
        """Depth of the whole stack [X0]."""
        return float(self.absorber_mm().sum() / self.absorber_material.x0_mm
                     + self.n_layers * self.si / SENSOR.x0_mm)

    def sampling_weights(self) -> np.ndarray:
        """Per-layer sampling weight ∝ absorber in front of the sensor (thin layer = 1)."""
        return self.absorber_mm() / self.w_thin

    def mip_mev(self) -> float:
        """Mean energy a perpendicular minimum-ionising particle leaves in one sensor [MeV]."""
        return self.si * SENSOR.dedx_mev_mm

    def effective_moliere_mm(self, section: str = "thin") -> float:
        """Molière radius of the absorber + gap mixture [mm] (GFlash effective-medium rule,
        air counted as empty space)."""
        w = self.w_thin if section == "thin" else self.w_thick
        gap = self.gap_before + self.si + self.gap_after
        return self.absorber_material.moliere_mm * (w + gap) / w


def _as_int(value: Any) -> int:
    number = float(value)
    if not number.is_integer():
        raise ValueError(f"{value!r} is not a whole number")
    return int(number)


_CONVERT = {"int": _as_int, "float": float, "str": str}
