"""SuperKEKB-like machine parameters, the 12 IP knobs and the optics model of the knobs.

Units are SI throughout: m, rad, s, A; emittances in m·rad. Parameters are the beam-beam
benchmark input with β_y* = 1 mm (reference/accelerator.md §6.1, ``pkicsiny/superkekb``),
which is also the β_y* SuperKEKB ran with in 2022–2024.

Knob model (reference §6.3, derived from the SAD coupling matrix with b ≈ 1): an offset δ of a
knob from its (hidden) optimum adds to the vertical beam at the IP

- size knobs (r1, r2, η_y*):     σ_y*² += ε_x β_x* δr1² + ε_x/β_x* δr2² + (σ_δ δη)²
- divergence knobs (r3, r4, η'): σ_y'² += ε_x β_x* δr3² + ε_x/β_x* δr4² + (σ_δ δη')²

and the divergence term widens the beam along the luminous region, σ_y²(s) += σ_y'² s².

Knob cross-talk (:func:`effective_offsets`): the knobs are not orthogonal. A skew-quadrupole
(R) knob acting where the horizontal dispersion is non-zero also makes vertical dispersion, and
the η knob's orbit bumps through sextupoles also make coupling, so in knob scales a change z of
R1 or R2 (R3 or R4) moves η_y* (η_y') by ``crosstalk``·z and a change of η_y* (η_y') moves R1
(R3) by ``crosstalk``·z. The IP parameters are then K (u − u*) with K = 1 + cross-talk, so the
one-knob optimum moves with the other knobs' errors. Non-closure (:func:`nonclosure_emittance`):
a knob bump that is not perfectly closed leaves a coupling/dispersion wave around the ring,
seen by the beam-size monitors as ``nonclosure`` times the knob's IP term evaluated at its
*absolute* setting (minimal at knob 0, not at the luminosity optimum).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

C_LIGHT = 299_792_458.0  # m/s
E_CHARGE = 1.602176634e-19  # C


@dataclass(frozen=True)
class Ring:
    """One storage ring (LER e+ or HER e−) at the IP."""

    name: str
    energy_gev: float
    eps_x: float  # m rad
    eps_y: float  # m rad
    beta_x: float  # m, β_x*
    beta_y: float  # m, β_y*
    sigma_z: float  # m, bunch length
    sigma_delta: float  # relative momentum spread
    current: float  # A, nominal stored current (2024-like operation)
    lifetime_s: float  # s, beam lifetime between top-up injections

    @property
    def sigma_y0(self) -> float:
        """Design vertical IP beam size sqrt(ε_y β_y*) [m]."""
        return float(np.sqrt(self.eps_y * self.beta_y))


LER = Ring("LER", 4.0, 4.0e-9, 20e-12, 0.080, 1.0e-3, 4.60e-3, 7.5e-4, 1.2, 600.0)
HER = Ring("HER", 7.007, 4.6e-9, 35e-12, 0.060, 1.0e-3, 5.05e-3, 6.3e-4, 1.0, 1500.0)


@dataclass(frozen=True)
class Machine:
    """Collider-wide parameters and the phenomenological (documented) extras.

    ``bb_kappa``: vertical beam-beam blow-up of each beam at nominal bunch populations
    (see :func:`.luminosity.blowup`); 0 gives the purely geometric luminosity.
    ``crosstalk``: knob scales of the partner term (η ↔ R) moved per knob scale of a knob.
    ``nonclosure``: fraction of a knob's IP term, at its absolute setting, that the ring's
    beam-size monitor sees through the residual wave of the imperfectly closed knob bump.
    Neither of the last two has a published SuperKEKB value; both are stated assumptions.
    """

    rings: tuple[Ring, Ring] = (LER, HER)
    circumference: float = 3016.315  # m
    half_crossing: float = 0.0415  # rad
    n_bunches: int = 2346
    bb_kappa: float = 0.3
    crosstalk: float = 0.15
    nonclosure: float = 0.1
    beta_monitor: float = 10.0  # m, β_y at the X-ray beam-size monitors
    background: dict[str, float] = field(default_factory=lambda: {
        "gas": 0.4, "touschek": 0.4, "lumi": 0.2, "ir": 0.3, "pressure": 0.5})

    @property
    def rev_freq(self) -> float:
        """Revolution frequency f = c/C [Hz]."""
        return C_LIGHT / self.circumference

    def bunch_population(self, current: np.ndarray | float) -> np.ndarray:
        """Particles per bunch for a stored current [A]."""
        return np.asarray(current, float) / (E_CHARGE * self.rev_freq * self.n_bunches)

    @property
    def luminous_length(self) -> float:
        """rms length of the luminous region σ_s = Σ_x Σ_z / (2 sqrt(Σ_x² + φ² Σ_z²)) [m]."""
        sx2 = sum(r.eps_x * r.beta_x for r in self.rings)
        sz2 = sum(r.sigma_z**2 for r in self.rings)
        return float(np.sqrt(sx2 * sz2) / (2 * np.sqrt(sx2 + self.half_crossing**2 * sz2)))


@dataclass(frozen=True)
class Knob:
    """One IP knob: ring index (0 LER, 1 HER), kind and unit."""

    name: str
    ring: int
    kind: str  # r1 r2 r3 r4 eta etap
    unit: str

    @property
    def is_divergence(self) -> bool:
        return self.kind in ("r3", "r4", "etap")


_KINDS = (("r1", "1"), ("r2", "m"), ("r3", "1/m"), ("r4", "1"), ("eta", "m"), ("etap", "rad"))
_LABEL = {"r1": "R1", "r2": "R2", "r3": "R3", "r4": "R4", "eta": "ETAY", "etap": "ETAYP"}
KNOBS: tuple[Knob, ...] = tuple(
    Knob(f"{ring}_{_LABEL[kind]}", i, kind, unit)
    for i, ring in enumerate(("LER", "HER")) for kind, unit in _KINDS)
KNOB_NAMES: tuple[str, ...] = tuple(k.name for k in KNOBS)


def knob_index(name: str) -> int:
    """Position of knob ``name`` in :data:`KNOBS` (ValueError if unknown)."""
    try:
        return KNOB_NAMES.index(name)
    except ValueError:
        raise ValueError(f"unknown knob {name!r}; known: {', '.join(KNOB_NAMES)}") from None


def _coefficient2(knob: Knob, ring: Ring) -> float:
    """Squared optics coefficient of the knob: the added σ_y*² (or σ_y'²) per unit offset²."""
    return {"r1": ring.eps_x * ring.beta_x, "r2": ring.eps_x / ring.beta_x,
            "r3": ring.eps_x * ring.beta_x, "r4": ring.eps_x / ring.beta_x,
            "eta": ring.sigma_delta**2, "etap": ring.sigma_delta**2}[knob.kind]


def knob_terms(offsets: np.ndarray, machine: Machine) -> tuple[np.ndarray, np.ndarray]:
    """Added vertical IP size² [m²] and divergence² [rad²] per ring for knob ``offsets``.

    ``offsets`` has shape (..., 12) in knob units (offset from the hidden optimum); the two
    outputs have shape (..., 2) (LER, HER).
    """
    off = np.asarray(offsets, float)
    size2 = np.zeros((*off.shape[:-1], 2))
    div2 = np.zeros((*off.shape[:-1], 2))
    for i, knob in enumerate(KNOBS):
        term = _coefficient2(knob, machine.rings[knob.ring]) * off[..., i] ** 2
        target = div2 if knob.is_divergence else size2
        target[..., knob.ring] += term
    return size2, div2


def knob_scales(machine: Machine) -> np.ndarray:
    """Offset of each knob that doubles its ring's effective σ_y² at the IP (knob units).

    For divergence knobs the size is taken at one luminous length σ_s from the IP. These
    scales set scan ranges, BO bounds and the simulated machine's spread of offsets.
    """
    ls2 = machine.luminous_length**2
    out = []
    for knob in KNOBS:
        ring = machine.rings[knob.ring]
        c2 = _coefficient2(knob, ring) * (ls2 if knob.is_divergence else 1.0)
        out.append(np.sqrt(ring.eps_y * ring.beta_y / c2))
    return np.array(out)


_PARTNERS = {"r1": "eta", "r2": "eta", "eta": "r1", "r3": "etap", "r4": "etap", "etap": "r3"}


def crosstalk_matrix(machine: Machine) -> np.ndarray:
    """K (12, 12) in knob units: IP parameter offsets = K @ knob offsets.

    In knob scales K = 1 + c P, where P[j, k] = 1 if knob j is knob k's partner in the same
    ring (R1, R2 -> η_y*; η_y* -> R1; R3, R4 -> η_y'; η_y' -> R3) and c = ``machine.crosstalk``.
    """
    scales = knob_scales(machine)
    k = np.eye(12)
    for i, knob in enumerate(KNOBS):
        partner = KNOB_NAMES.index(f"{knob.name[:3]}_{_LABEL[_PARTNERS[knob.kind]]}")
        k[partner, i] += machine.crosstalk * scales[partner] / scales[i]
    return k


def effective_offsets(offsets: np.ndarray, machine: Machine) -> np.ndarray:
    """IP parameter offsets (..., 12) [knob units] made by knob ``offsets`` (..., 12) from the
    hidden optimum, with cross-talk (:func:`crosstalk_matrix`)."""
    return np.asarray(offsets, float) @ crosstalk_matrix(machine).T


def nonclosure_emittance(settings: np.ndarray, machine: Machine) -> np.ndarray:
    """Vertical emittance [m rad] per ring (..., 2) that the monitors see from the residual wave
    of non-closed knob bumps: ``nonclosure`` × (IP size² + divergence² σ_s² of the knobs at
    their absolute ``settings`` (..., 12)) / β_y*."""
    size2, div2 = knob_terms(settings, machine)
    beta_y = np.array([r.beta_y for r in machine.rings])
    return machine.nonclosure * (size2 + div2 * machine.luminous_length**2) / beta_y
