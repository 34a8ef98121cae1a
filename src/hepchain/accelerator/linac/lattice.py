"""The linac lattice in cheetah and batched tracking through it.

Layout (all lengths in m)::

    cell i (i = 0 .. n_cells-1):
        QF(0.2) D(0.3) CH(0.05) CV(0.05) D(0.2) ACC(structure_m) D(0.2) QD(0.2) D(0.3) BPM [SCR]
    matching screen M_SCR, then the end section (the RL task):
        D(1.0) E_Q1(0.2) D(0.5) E_Q2(0.2) D(0.5) E_CV(0.05) E_Q3(0.2) E_CH(0.05) D(2.0) E_SCR

Settings and units: quadrupole ``k1`` [1/m^2], corrector ``angle`` [rad], cavity ``voltage``
[V] and ``phase`` [deg] (on crest at 0). Every ``screen_every``-th cell ends with a screen.
Misalignments are per quadrupole (x, y) [m]. Readings are beam centroids and sizes [m] and a
transmission estimate: the Gaussian beam fraction inside a round aperture of radius
``aperture`` at every BPM/screen, multiplied along the linac.

Magnets are set for a *design* energy profile (:meth:`Lattice.design_energies`: the injection
energy plus ``V cos(phase)`` of every set cavity upstream), as on a real linac: a quadrupole's
``k1`` and a corrector's ``angle`` are the values at the design energy, and the beam of actual
energy ``E`` sees ``k1 * E_design / E`` and ``angle * E_design / E`` (fixed fields, rigidity
``B rho ~ E``). An energy error therefore changes the kicks of the correctors and of the
misaligned quadrupoles and moves the orbit.
"""

from __future__ import annotations

from dataclasses import dataclass

import cheetah
import numpy as np
import torch
from torch import Tensor

END_QUADS = ("E_Q1", "E_Q2", "E_Q3")
END_CORRECTORS = ("E_CH", "E_CV")
END_ACTUATORS = tuple(f"{q}.k1" for q in END_QUADS) + tuple(f"{c}.angle" for c in END_CORRECTORS)
RF_FREQUENCY = 2856e6  # S-band [Hz]
_MAGNETS = (cheetah.Quadrupole, cheetah.HorizontalCorrector, cheetah.VerticalCorrector)


@dataclass(frozen=True)
class LatticeSpec:
    """Size of the lattice: number of cells and how often a cell carries a screen."""

    n_cells: int = 48
    screen_every: int = 4
    aperture: float = 0.01  # [m]
    structure_m: float = 4.0  # accelerating-structure length per cell [m]


def _t(x: float) -> Tensor:
    return torch.tensor(x, dtype=torch.float32)


def _cell(i: int, with_screen: bool, structure_m: float) -> list[cheetah.Element]:
    p = f"C{i:02d}"
    els = [cheetah.Quadrupole(_t(0.2), name=f"{p}_QF"), cheetah.Drift(_t(0.3)),
           cheetah.HorizontalCorrector(_t(0.05), name=f"{p}_CH"),
           cheetah.VerticalCorrector(_t(0.05), name=f"{p}_CV"), cheetah.Drift(_t(0.2)),
           cheetah.Cavity(_t(structure_m), voltage=_t(0.0), phase=_t(0.0), frequency=_t(RF_FREQUENCY),
                          name=f"{p}_ACC"),
           cheetah.Drift(_t(0.2)), cheetah.Quadrupole(_t(0.2), name=f"{p}_QD"),
           cheetah.Drift(_t(0.3)), cheetah.BPM(name=f"{p}_BPM")]
    if with_screen:
        els.append(cheetah.Screen(name=f"{p}_SCR"))
    return els


def end_section() -> list[cheetah.Element]:
    """The final-focus/steering section in front of the target screen ``E_SCR``."""
    return [cheetah.Drift(_t(1.0)), cheetah.Quadrupole(_t(0.2), name="E_Q1"),
            cheetah.Drift(_t(0.5)), cheetah.Quadrupole(_t(0.2), name="E_Q2"),
            cheetah.Drift(_t(0.5)), cheetah.VerticalCorrector(_t(0.05), name="E_CV"),
            cheetah.Quadrupole(_t(0.2), name="E_Q3"),
            cheetah.HorizontalCorrector(_t(0.05), name="E_CH"), cheetah.Drift(_t(2.0)),
            cheetah.Screen(name="E_SCR")]


class Lattice:
    """The linac as an ordered element list with named settings, tracked in batches."""

    def __init__(self, spec: LatticeSpec) -> None:
        self.spec = spec
        self.linac: list[cheetah.Element] = []
        for i in range(spec.n_cells):
            self.linac += _cell(i, (i + 1) % spec.screen_every == 0, spec.structure_m)
        self.linac.append(cheetah.Screen(name="M_SCR"))
        self.end: list[cheetah.Element] = end_section()
        self.cells = [f"C{i:02d}" for i in range(spec.n_cells)]
        names = []
        for c in self.cells:
            names += [f"{c}_QF.k1", f"{c}_QD.k1", f"{c}_CH.angle", f"{c}_CV.angle",
                      f"{c}_ACC.voltage", f"{c}_ACC.phase"]
        self.setting_names: list[str] = names + list(END_ACTUATORS)
        self.quads = [e.name for e in self.linac + self.end if isinstance(e, cheetah.Quadrupole)]
        self.bpms = [e.name for e in self.linac if isinstance(e, cheetah.BPM)]
        self.screens = [e.name for e in self.linac + self.end if isinstance(e, cheetah.Screen)]

    def design_energies(self, energy: Tensor, settings: dict[str, Tensor]
                        ) -> dict[str, Tensor]:
        """Design beam energy [eV] at every magnet (quadrupole, corrector) of the linac and the
        end section for an injection ``energy`` [eV] and the *set* cavity voltages and phases in
        ``settings``: ``E += V cos(phase)`` per cavity, as cheetah accelerates on crest at 0."""
        out: dict[str, Tensor] = {}
        for el in self.linac + self.end:
            if isinstance(el, cheetah.Cavity):
                energy = energy + settings[f"{el.name}.voltage"] * torch.cos(
                    torch.deg2rad(settings[f"{el.name}.phase"]))
            elif isinstance(el, _MAGNETS):
                out[el.name] = energy
        return out

    @staticmethod
    def _apply(el: cheetah.Element, settings: dict[str, Tensor],
               misalignment: dict[str, Tensor], design: dict[str, Tensor],
               energy: Tensor) -> None:
        """Set ``el`` for a beam of ``energy`` [eV]: magnet strengths are the set values
        scaled by design / actual energy (no scaling without a design energy)."""
        scale = design[el.name] / energy if el.name in design else 1.0
        for attr in ("k1", "angle", "voltage", "phase"):
            key = f"{el.name}.{attr}"
            if key in settings:
                value = settings[key]
                setattr(el, attr, value * scale if attr in ("k1", "angle") else value)
        if el.name in misalignment:
            el.misalignment = misalignment[el.name]

    def _run(self, elements: list[cheetah.Element], beam: cheetah.ParameterBeam,
             settings: dict[str, Tensor], misalignment: dict[str, Tensor],
             design: dict[str, Tensor], survival: Tensor
             ) -> tuple[cheetah.ParameterBeam, dict[str, Tensor], Tensor]:
        out: dict[str, Tensor] = {}
        a = self.spec.aperture
        for el in elements:
            self._apply(el, settings, misalignment, design, beam.energy)
            beam = el.track(beam)
            if isinstance(el, cheetah.BPM | cheetah.Screen):
                survival = survival * _inside(beam.mu_x, beam.sigma_x, a) * _inside(
                    beam.mu_y, beam.sigma_y, a)
                out[f"{el.name}.x"], out[f"{el.name}.y"] = beam.mu_x, beam.mu_y
                out[f"{el.name}.transmission"] = survival
                if isinstance(el, cheetah.Screen):
                    out[f"{el.name}.sigma_x"], out[f"{el.name}.sigma_y"] = (beam.sigma_x,
                                                                            beam.sigma_y)
        return beam, out, survival

    @torch.no_grad()
    def track_linac(self, beam: cheetah.ParameterBeam, settings: dict[str, Tensor],
                    misalignment: dict[str, Tensor], design: dict[str, Tensor] | None = None
                    ) -> tuple[cheetah.ParameterBeam, dict[str, Tensor]]:
        """Track to the matching screen; returns the beam there and all readings on the way.
        ``design`` maps a magnet to its design energy [eV] (:meth:`design_energies`);
        magnets without one act with their set strength whatever the beam energy."""
        ones = torch.ones_like(beam.sigma_x)
        out_beam, readings, _ = self._run(self.linac, beam, settings, misalignment,
                                          design or {}, ones)
        return out_beam, readings

    def track_end(self, beam: cheetah.ParameterBeam, settings: dict[str, Tensor],
                  survival: Tensor | None = None, misalignment: dict[str, Tensor] | None = None,
                  design: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
        """Track a beam at ``M_SCR`` through the end section to ``E_SCR``; differentiable in
        the beam, the settings and the misalignments (the learned lattice simulator trains
        through it)."""
        survival = torch.ones_like(beam.sigma_x) if survival is None else survival
        return self._run(self.end, beam, settings, misalignment or {}, design or {},
                         survival)[1]


def _inside(mu: Tensor, sigma: Tensor, a: float) -> Tensor:
    """Fraction of a Gaussian N(mu, sigma^2) inside [-a, a]."""
    s = sigma.clamp_min(1e-9) * np.sqrt(2.0)
    return 0.5 * (torch.erf((a - mu) / s) + torch.erf((a + mu) / s))
