"""Silicon readout of the ECAL: Landau fluctuations, electronics noise and zero suppression.

The simulations return the mean energy lost in each pixel [MeV]. A real sensor reads that
energy with the fluctuations of ionisation loss in a thin layer, adds electronics noise to every
pixel, and keeps only pixels above a threshold. In units of the MIP, the mean loss of a
perpendicular minimum-ionising particle in the sensor (0.124 MeV in 320 µm of Si):

- **Landau**: a pixel with deposit n MIP reads n + √n·ξ·(M − ⟨M⟩), M a standard Moyal
  variable (Moyal's approximation of the Landau distribution, with a finite mean). For one MIP
  this is a Landau-like peak of width ξ = (K/2)(Z/A)ρ·d (PDG, β = 1; 0.046 MIP for 320 µm Si)
  and unchanged mean; for n MIPs the mean and variance are those of n independent crossings.
  The Moyal tail is lighter than the Landau one, so these fluctuations are a lower bound.
- **noise**: Gaussian, σ = ``noise_mip`` MIP, on every pixel (hit or not);
- **zero suppression**: pixels reading ≤ ``threshold_mip`` MIP are set to 0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from hepchain.calo.geometry import SENSOR, ECalGeometry
from hepchain.calo.materials import ELEMENTS
from hepchain.core.errors import UsageError

K_MEV_CM2_MOL = 0.307075
"""K = 4π N_A r_e² m_e c² [MeV cm²/mol] of the Bethe formula (PDG)."""
_MOYAL_MEAN = float(np.euler_gamma + np.log(2.0))


@dataclass(frozen=True)
class Readout:
    """Sensor response settings: Landau fluctuations on/off, noise σ and zero-suppression
    threshold, both in MIP."""

    landau: bool = True
    noise_mip: float = 0.1
    threshold_mip: float = 0.5

    def __post_init__(self) -> None:
        for name in ("noise_mip", "threshold_mip"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise UsageError(f"Readout {name}={value} must be a finite value >= 0 MIP.")

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Readout:
        """Build from a mapping of settings or ``--set`` strings; bad values are UsageErrors."""
        data = dict(data or {})
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise UsageError(f"Unknown readout settings {sorted(unknown)}; known: "
                             f"{sorted(cls.__dataclass_fields__)}.")
        out: dict[str, Any] = {}
        try:
            for key, value in data.items():
                out[key] = _as_bool(value) if key == "landau" else float(value)
        except ValueError as exc:
            raise UsageError(f"Readout settings: {exc}.") from exc
        return cls(**out)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"landau={value!r} is not true or false")


def landau_width_mip(geometry: ECalGeometry) -> float:
    """Landau width ξ = (K/2)(Z/A)ρ·d of one sensor for β = 1, in MIP."""
    si = ELEMENTS["Si"]
    xi_mev = 0.5 * K_MEV_CM2_MOL * si.z / si.a * SENSOR.density * geometry.si / 10.0
    return xi_mev / geometry.mip_mev()


def digitise(showers: np.ndarray, geometry: ECalGeometry, readout: Readout,
             rng: np.random.Generator) -> np.ndarray:
    """Read out true Si deposits ``showers`` (N, layers, n_pix, n_pix) [MeV]: Landau
    fluctuations, noise, zero suppression; returns float32 signals [MeV]."""
    mip = geometry.mip_mev()
    out = np.asarray(showers, dtype=np.float64) / mip  # in MIP
    if readout.landau:
        hit = out > 0
        m = _standard_moyal(rng, int(hit.sum()))
        out[hit] += np.sqrt(out[hit]) * landau_width_mip(geometry) * (m - _MOYAL_MEAN)
    if readout.noise_mip > 0:
        out += rng.normal(0.0, readout.noise_mip, out.shape)
    out[out <= readout.threshold_mip] = 0.0
    return (out * mip).astype(np.float32)


def _standard_moyal(rng: np.random.Generator, n: int) -> np.ndarray:
    """Standard Moyal variables: M = −ln(X²) with X standard normal."""
    return -np.log(rng.standard_normal(n) ** 2)
