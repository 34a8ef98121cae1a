"""The linac machine: operating modes, nominal settings, environmental drifts, orbit feedback.

Operating modes stand in for KEK's linac serving several rings: each mode has its final energy
[GeV], bunch charge [nC], normalised emittance [um rad] and share of operating time, and its own
optimum (which accelerating units are on, the FODO strength, the golden corrector pattern and
the end-section set point). Drifts (time ``t`` in minutes) move the machine away from it:

* outdoor temperature ``T_out = T0 + 5 K sin(2 pi t / 1440 + phi) + OU`` drives the tunnel air
  ``T_air,i`` and cooling water ``T_water,i`` of every cell (Ornstein-Uhlenbeck noise, OU);
* quadrupoles (the end section's too) move horizontally by ``15 um/K * s_i * (T_air,i - 25 C)``
  (thermal girder expansion, ``s_i ~ N(0, 1)`` per quad) and vertically by
  ``tide_urad * L * tide(t) * sin(pi z_i/L + psi)`` with a 12.42 h Earth tide of tilt amplitude
  ``tide_urad`` [urad] over the machine length ``L`` (an upper bound: a uniform tilt moves the
  whole machine rigidly), on top of a static random misalignment (50 um rms);
* klystron phases drift by ``1.5 deg/K * (T_water,i - 30 C)`` plus OU noise;
* the injected beam's position, angle and energy wander (OU) and jitter pulse to pulse.

Magnets are set for the mode's design energy profile (``Lattice.design_energies`` of the set
voltages and phases), so energy drifts (injected energy, klystron phases) change the magnets'
kicks and move the orbit. An accelerating unit gains at most ``gradient_mv_m * structure_m``.

An orbit feedback (the operators' routine correction) steers the cell correctors back to the
mode's golden orbit every ``feedback_every`` samples with an SVD correction of gain
``feedback_gain`` from the measured response matrix.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cheetah
import numpy as np
import torch
from torch import Tensor

from hepchain.accelerator.linac.lattice import END_ACTUATORS, END_QUADS, Lattice, LatticeSpec
from hepchain.core.errors import UsageError

INJECTOR_GEV = 0.6  # energy at the linac entrance [GeV]
END_K1 = 6.0  # end-section quadrupole range +-[1/m^2]
END_ANGLE = 1e-3  # end-section corrector range +-[rad]
ELECTRON_MASS_GEV = 0.51099895e-3


@dataclass(frozen=True)
class Mode:
    """One operating mode (one ring served by the linac)."""

    name: str
    energy_gev: float
    charge_nc: float
    emittance_um: float
    share: float


def modes_from_config(items: list[dict]) -> list[Mode]:
    """Parse the ``modes:`` list of a preset (UsageError for bad entries)."""
    try:
        modes = [Mode(**dict(m)) for m in items]
    except TypeError as exc:
        raise UsageError(f"Bad linac mode entry ({exc}); each mode needs name, energy_gev, "
                         "charge_nc, emittance_um and share.") from exc
    if not modes or any(m.share <= 0 for m in modes):
        raise UsageError("The linac needs at least one mode, each with share > 0.")
    return modes


@dataclass
class DriftState:
    """Hidden and environment state per sample (arrays with leading dimension n)."""

    t_out: np.ndarray  # [C]
    tilt: np.ndarray  # tide phase factor in [-1, 1]
    t_air: np.ndarray  # (n, cells) [C]
    t_water: np.ndarray  # (n, cells) [C]
    vacuum: np.ndarray  # (n, cells) log10(p / Pa)
    phase_offset: np.ndarray  # (n, cells) [deg]
    misalignment: np.ndarray  # (n, quads, 2) [m]
    beam_offset: np.ndarray  # (n, 4): x [m], px [rad], y [m], py [rad]
    energy_offset: np.ndarray  # (n,) relative


def ou(rng: np.random.Generator, t: np.ndarray, sigma: float, tau: float,
       size: tuple[int, ...] = ()) -> np.ndarray:
    """Stationary Ornstein-Uhlenbeck process on time grid ``t`` [min] (std sigma, time tau)."""
    out = np.empty((len(t), *size))
    x = rng.normal(0, sigma, size)
    for k in range(len(t)):
        if k:
            a = np.exp(-(t[k] - t[k - 1]) / tau)
            x = a * x + sigma * np.sqrt(1 - a * a) * rng.normal(size=size)
        out[k] = x
    return out


HIDDEN = ("beam", "energy", "phase")  # drift processes that no log channel measures


def beam_offset(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """Injected-beam offset (n, 4): x [m], x' [rad], y [m], y' [rad] — an OU wander of 4 h
    (0.3 mm, 20 urad) plus pulse-to-pulse jitter (30 um, 3 urad)."""
    offset = ou(rng, t, 1.0, 240.0, (4,)) * np.array([0.3e-3, 0.02e-3, 0.3e-3, 0.02e-3])
    return offset + rng.normal(size=offset.shape) * np.array([0.03e-3, 3e-6, 0.03e-3, 3e-6])


def energy_offset(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """Relative injected-energy offset (n,): an OU wander of 3 h, 1e-3 rms."""
    return ou(rng, t, 1e-3, 180.0)


def phase_jitter(rng: np.random.Generator, t: np.ndarray, n_cells: int) -> np.ndarray:
    """The klystron phases' own drift (n, cells) [deg] beside the cooling water's: OU, 1 h,
    0.3 deg rms."""
    return ou(rng, t, 0.3, 60.0, (n_cells,))


class Machine:
    """The cheetah linac with its modes, drifts and feedback (see module docstring)."""

    def __init__(self, spec: LatticeSpec, modes: list[Mode], machine_seed: int = 0,
                 gradient_mv_m: float = 21.0, tide_urad: float = 0.07) -> None:
        self.lattice = Lattice(spec)
        self.v_max = gradient_mv_m * spec.structure_m * 1e6  # one unit's largest gain [V]
        self.tide = tide_urad * 1e-6  # Earth-tide tilt amplitude [rad]
        self.modes = modes
        self.shares = np.array([m.share for m in modes]) / sum(m.share for m in modes)
        rng = np.random.default_rng(machine_seed)
        lat = self.lattice
        nq = len(lat.quads)
        self.static_misalignment = rng.normal(0, 50e-6, (nq, 2))
        self.thermal_coeff = rng.normal(0, 1, nq)
        self.length = sum(float(e.length) for e in lat.linac + lat.end)  # [m]
        z = np.arange(nq) / max(nq - 1, 1)
        self.tide_shape = np.sin(np.pi * z + rng.uniform(0, np.pi))
        self.correctors = [n for n in lat.setting_names
                           if n.endswith(".angle") and not n.startswith("E_")]
        self.corrector_idx = np.array([lat.setting_names.index(c) for c in self.correctors])
        self.end_idx = np.array([lat.setting_names.index(a) for a in END_ACTUATORS])
        self.end_low = np.array([-END_K1] * 3 + [-END_ANGLE] * 2)
        self.end_high = -self.end_low
        self.nominal = np.stack([self._nominal(m, rng) for m in modes])
        self._response: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for m in range(len(modes)):
            self.response(m)

    # ------------------------------------------------------------------ settings
    def _nominal(self, mode: Mode, rng: np.random.Generator) -> np.ndarray:
        n = self.lattice.spec.n_cells
        gain = (mode.energy_gev - INJECTOR_GEV) * 1e9
        n_on = int(np.ceil(gain / (0.85 * self.v_max)))
        if gain <= 0 or n_on > n:
            raise UsageError(f"Mode {mode.name!r} needs {mode.energy_gev} GeV, which {n} cells "
                             f"of at most {self.v_max / 1e6:.0f} MV cannot reach; add cells, raise "
                             "gradient_mv_m or structure_m, or lower the energy.")
        on = np.zeros(n, bool)
        on[rng.choice(n, n_on, replace=False)] = True
        # FODO strength for a phase advance of ~25-65 deg per cell whatever the cell length
        k = rng.uniform(1.0, 2.5) * 5.5 / (1.5 + self.lattice.spec.structure_m)
        per_cell = np.stack([k * (1 + 0.03 * rng.normal(size=n)),
                             -k * (1 + 0.03 * rng.normal(size=n)),
                             rng.normal(0, 0.05e-3, n), rng.normal(0, 0.05e-3, n),
                             np.where(on, gain / n_on, 0.0),
                             np.where(on, rng.normal(0, 3.0, n), 0.0)], axis=1)
        end = np.concatenate([rng.uniform(-0.4, 0.4, 3) * END_K1,
                              rng.uniform(-0.2, 0.2, 2) * END_ANGLE])
        return np.concatenate([per_cell.ravel(), end])

    def to_unit(self, end: np.ndarray) -> np.ndarray:
        """End-section actuator values -> normalised [-1, 1]."""
        return end / self.end_high

    def from_unit(self, u: np.ndarray) -> np.ndarray:
        """Normalised [-1, 1] -> end-section actuator values (k1 [1/m^2], angle [rad])."""
        return np.clip(u, -1, 1) * self.end_high

    # ------------------------------------------------------------------ drifts
    def drift(self, rng: np.random.Generator, t: np.ndarray) -> DriftState:
        """Sample the drift processes on the time grid ``t`` [min] of one simulated day."""
        nc = self.lattice.spec.n_cells
        t_out = rng.uniform(0, 25) + 5 * np.sin(2 * np.pi * t / 1440 + rng.uniform(0, 6.3)) \
            + ou(rng, t, 1.0, 300.0)
        t_air = 25 + 0.15 * (t_out[:, None] - 12) + ou(rng, t, 0.2, 120.0, (nc,))
        t_water = 30 + 0.5 * (t_air - 25) + ou(rng, t, 0.05, 30.0, (nc,))
        tilt = np.cos(2 * np.pi * t / 745.2 + rng.uniform(0, 6.3))
        dt_cell = t_air - 25
        dt_quad = np.concatenate([np.repeat(dt_cell, 2, axis=1),  # two quads per cell
                                  np.repeat(dt_cell[:, -1:], len(END_QUADS), axis=1)], axis=1)
        mis = np.repeat(self.static_misalignment[None], len(t), 0)
        mis[..., 0] += 15e-6 * self.thermal_coeff * dt_quad
        mis[..., 1] += self.tide * self.length * tilt[:, None] * self.tide_shape
        offset = beam_offset(rng, t)
        return DriftState(t_out=t_out, tilt=tilt, t_air=t_air, t_water=t_water,
                          vacuum=-6 + ou(rng, t, 0.1, 600.0, (nc,)),
                          phase_offset=1.5 * (t_water - 30) + phase_jitter(rng, t, nc),
                          misalignment=mis, beam_offset=offset,
                          energy_offset=energy_offset(rng, t))

    def redraw(self, state: DriftState, rng: np.random.Generator, t: np.ndarray,
               hidden: tuple[str, ...]) -> DriftState:
        """``state`` with the ``hidden`` drift processes (names from :data:`HIDDEN`: the
        processes no log channel measures) drawn anew from ``rng``; the environment and every
        other process stay as they were."""
        if set(hidden) - set(HIDDEN):
            raise UsageError(f"Hidden drifts must be among {list(HIDDEN)}, got {list(hidden)}.")
        new: dict[str, np.ndarray] = {}
        if "beam" in hidden:
            new["beam_offset"] = beam_offset(rng, t)
        if "energy" in hidden:
            new["energy_offset"] = energy_offset(rng, t)
        if "phase" in hidden:
            new["phase_offset"] = (1.5 * (state.t_water - 30)
                                   + phase_jitter(rng, t, self.lattice.spec.n_cells))
        return replace(state, **new)

    # ------------------------------------------------------------------ tracking
    def incoming(self, modes: np.ndarray, state: DriftState) -> cheetah.ParameterBeam:
        """Injected beam per sample (mode emittance, drifting offsets and energy)."""
        energy = INJECTOR_GEV * 1e9 * (1 + state.energy_offset)
        gamma = energy / (ELECTRON_MASS_GEV * 1e9)
        emit = np.array([self.modes[m].emittance_um for m in modes]) * 1e-6 / gamma
        beta = 8.0
        f = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float32))  # noqa: E731
        return cheetah.ParameterBeam.from_parameters(
            mu_x=f(state.beam_offset[:, 0]), mu_px=f(state.beam_offset[:, 1]),
            mu_y=f(state.beam_offset[:, 2]), mu_py=f(state.beam_offset[:, 3]),
            sigma_x=f(np.sqrt(emit * beta)), sigma_px=f(np.sqrt(emit / beta)),
            sigma_y=f(np.sqrt(emit * beta)), sigma_py=f(np.sqrt(emit / beta)),
            sigma_p=f(np.full(len(modes), 1e-3)), energy=f(energy),
            total_charge=f([self.modes[m].charge_nc * 1e-9 for m in modes]))

    def _settings_dict(self, settings: np.ndarray, phase_offset: np.ndarray | None = None
                       ) -> dict[str, Tensor]:
        """Settings as tensors; the actual phase is the set phase plus ``phase_offset``."""
        names = self.lattice.setting_names
        out = {n: torch.as_tensor(settings[:, j], dtype=torch.float32)
               for j, n in enumerate(names)}
        for i, c in enumerate(self.lattice.cells):
            # units on standby keep 10 kV: cheetah 0.8.4 gives NaN in tau for zero-voltage
            # cavities in a batch that mixes zero and non-zero voltages
            out[f"{c}_ACC.voltage"] = out[f"{c}_ACC.voltage"].clamp_min(1e4)
            if phase_offset is not None:
                out[f"{c}_ACC.phase"] = out[f"{c}_ACC.phase"] + torch.as_tensor(
                    phase_offset[:, i], dtype=torch.float32)
        return out

    def design(self, settings: np.ndarray) -> dict[str, Tensor]:
        """Design energy [eV] at every magnet for the set values ``settings`` (n, n_settings):
        nominal injection energy, set voltages and phases, no drifts."""
        e0 = torch.full((len(settings),), INJECTOR_GEV * 1e9)
        return self.lattice.design_energies(e0, self._settings_dict(settings))

    def misalignments(self, state: DriftState) -> dict[str, Tensor]:
        """Quadrupole misalignments (x, y) [m] of ``state`` by element name."""
        return {q: torch.as_tensor(state.misalignment[:, i], dtype=torch.float32)
                for i, q in enumerate(self.lattice.quads)}

    def track_linac(self, modes: np.ndarray, settings: np.ndarray, state: DriftState
                    ) -> tuple[cheetah.ParameterBeam, dict[str, Tensor]]:
        """Beam at the matching screen and readings along the linac (true values, SI)."""
        return self.lattice.track_linac(self.incoming(modes, state),
                                        self._settings_dict(settings, state.phase_offset),
                                        self.misalignments(state), self.design(settings))

    def track(self, modes: np.ndarray, settings: np.ndarray, state: DriftState
              ) -> dict[str, np.ndarray]:
        """All true readings (SI units) for ``settings`` (n, n_settings) in ``state``."""
        beam, out = self.track_linac(modes, settings, state)
        out.update(self.lattice.track_end(beam, self._settings_dict(settings),
                                          out["M_SCR.transmission"], self.misalignments(state),
                                          self.design(settings)))
        out["energy"] = beam.energy * torch.ones_like(beam.sigma_x)
        return {k: v.numpy().astype(np.float64) for k, v in out.items()}

    def orbit(self, readings: dict[str, np.ndarray]) -> np.ndarray:
        """BPM orbit (n, 2 * n_bpm) [m] from readings."""
        return np.concatenate([np.stack([readings[f"{b}.x"] for b in self.lattice.bpms], 1),
                               np.stack([readings[f"{b}.y"] for b in self.lattice.bpms], 1)], 1)

    def quiet(self, n: int) -> DriftState:
        """A drift-free state (static misalignment only, nominal temperatures) for n samples."""
        nc = self.lattice.spec.n_cells
        z = np.zeros(n)
        return DriftState(t_out=z + 12, tilt=z, t_air=np.full((n, nc), 25.0),
                          t_water=np.full((n, nc), 30.0), vacuum=np.full((n, nc), -6.0),
                          phase_offset=np.zeros((n, nc)),
                          misalignment=np.repeat(self.static_misalignment[None], n, 0),
                          beam_offset=np.zeros((n, 4)), energy_offset=z)

    def response(self, mode: int) -> tuple[np.ndarray, np.ndarray]:
        """Orbit response to the cell correctors [m/rad] of a mode in the drift-free machine
        and its truncated-SVD pseudo-inverse (singular values below 1 % of the largest
        dropped). The golden orbit is zero (beam through the BPM centres)."""
        if mode not in self._response:
            n_c = len(self.correctors)
            delta = 2e-5
            settings = np.repeat(self.nominal[mode][None], n_c + 1, 0)
            settings[np.arange(1, n_c + 1), self.corrector_idx] += delta
            orbit = self.orbit(self.track(np.full(n_c + 1, mode), settings, self.quiet(n_c + 1)))
            r = ((orbit[1:] - orbit[0]) / delta).T
            u, sv, vt = np.linalg.svd(r, full_matrices=False)
            keep = sv > 1e-2 * sv[0]
            pinv = (vt[keep].T / sv[keep]) @ u[:, keep].T
            self._response[mode] = (r, pinv)
            # the mode's nominal correctors steer the drift-free machine onto the golden orbit
            self.nominal[mode, self.corrector_idx] -= pinv @ orbit[0]
        return self._response[mode]

    def feedback(self, modes: np.ndarray, settings: np.ndarray, state: DriftState,
                 rng: np.random.Generator, every: int, gain: float,
                 bpm_noise: float = 10e-6) -> np.ndarray:
        """Apply the orbit feedback in time order; returns the corrected settings.

        The orbit is affine in the corrector kicks, so the orbit without feedback is tracked
        once and the corrections are propagated with each mode's response matrix.
        """
        orbit0 = self.orbit(self.track(modes, settings, state))
        out = settings.copy()
        corr = {m: np.zeros(len(self.correctors)) for m in np.unique(modes)}
        seen = dict.fromkeys(corr, 0)
        for k, m in enumerate(modes):
            r, pinv = self.response(int(m))
            if seen[m] % every == 0:
                measured = orbit0[k] + r @ corr[m] + rng.normal(0, bpm_noise, len(orbit0[k]))
                corr[m] = corr[m] - gain * pinv @ measured
            seen[m] += 1
            out[k, self.corrector_idx] += corr[m]
        return out

    def settle(self, modes: np.ndarray, settings: np.ndarray, state: DriftState) -> np.ndarray:
        """Settings after a converged orbit feedback, each sample corrected on its own."""
        orbit0 = self.orbit(self.track(modes, settings, state))
        out = settings.copy()
        for m in np.unique(modes):
            _, pinv = self.response(int(m))
            rows = modes == m
            out[np.ix_(rows, self.corrector_idx)] -= orbit0[rows] @ pinv.T
        return out
