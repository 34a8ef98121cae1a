"""gymnasium environments for the end-section task: after drifts (and a disturbed end section)
bring the beam on the target screen ``E_SCR`` to a target beam (mu_x, sigma_x, mu_y, sigma_y),
an ARES-EA-like task.

* actions: changes of the five end-section actuators (E_Q1..3 k1, E_CV/E_CH angle) in
  normalised units, ``u <- clip(u + action_scale * a, -1, 1)`` (``action_map="linear"``) or
  ``u <- clip(u + action_scale * a |a|, -1, 1)`` (``"quadratic"``: the same largest step, finer
  small ones);
* observation (13, float32): measured minus target beam, target beam, current ``u``;
  ``observation="raw"``: beams in mm (errors reach tens of mm when a quadrupole setting blows
  the beam up); ``"scaled"``: every input O(1), errors as
  ``sign(d) log(1 + |d| / tolerance) / log(1 + ref / tolerance)`` (resolution where it matters,
  near the tolerance) and targets divided by ``ref`` = ``target_position_mm``;
* error: MAE = mean |beam - target| over the four beam parameters [mm];
* reward: ``reward="log_error"``: ``-log10(MAE / tolerance)`` per step (negative until inside
  tolerance); ``"log_improvement"``: ``log10(MAE_previous / MAE)`` (ARES's differential
  reward on the log distance: it sums to the log of the episode's total improvement); either
  plus ``success_bonus`` on success, which ends the episode, minus ``step_cost`` per reading (a
  time penalty: finishing a reading sooner is worth ``step_cost``); ``max_steps`` truncates.

:class:`MachineEnv` tracks the cheetah machine in randomised drift states;
:class:`LearnedEnv` replaces the machine by the conditional VAE learned from the logs.
Episodes start from the mode's set point plus a uniform disturbance of +-``start_spread``
(normalised units) on every actuator. With ``Randomisation.targets`` each episode draws its own
target, as ARES does (centroids within +-``target_position_mm``, sizes within
``target_size_mm``), reachable by construction: the screen beam of a uniformly random actuator
setting, kept when it lies in those ranges. Without it the targets are the modes' operating
beams from the operations log (median of the normal-operation rows), which returning to the
mode's stored set point already meets: the ``recall`` baseline of :mod:`control`.
:class:`MachineEnv` also randomises per episode the beam entering the end section and the
misalignments of its quadrupoles.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import cheetah
import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from hepchain.accelerator.linac.generative import ConditionalVAE
from hepchain.accelerator.linac.lattice import END_ACTUATORS, END_QUADS
from hepchain.accelerator.linac.lattice_vae import BeamShift, LatticeVAE
from hepchain.accelerator.linac.machine import Machine
from hepchain.core.errors import UsageError

N_ACT = len(END_ACTUATORS)
OBSERVATIONS = ("raw", "scaled")
REWARDS = ("log_error", "log_improvement")
ACTION_MAPS = ("linear", "quadratic")
TARGET_TRIES = 5  # batches of 64 random settings searched for a target in range per state
STATE_TRIES = 20  # states tried per episode before giving up on the target ranges


def check_choices(observation: str, reward: str, action_map: str, step_cost: float = 0.0
                  ) -> None:
    """UsageError unless ``observation`` is in OBSERVATIONS, ``reward`` in REWARDS,
    ``action_map`` in ACTION_MAPS and ``step_cost`` >= 0."""
    if observation not in OBSERVATIONS or reward not in REWARDS or action_map not in ACTION_MAPS:
        raise UsageError(f"rl.observation must be one of {OBSERVATIONS}, rl.reward one of "
                         f"{REWARDS} and rl.action_map one of {ACTION_MAPS}, got "
                         f"{observation!r}, {reward!r} and {action_map!r}.")
    if step_cost < 0:
        raise UsageError(f"rl.step_cost must be >= 0 (reward units per reading), got "
                         f"{step_cost}.")


@dataclass(frozen=True)
class Randomisation:
    """What each episode draws anew (zero / False: off, the old fixed task).

    ``targets``: a random target per episode, centroids within +-``target_position_mm`` and
    sizes within ``target_size_mm`` = (low, high) [mm]. The others act on the machine and on a
    learned beam line (:class:`LatticeVAE`), not on the MLP-decoder learned sim: the
    beam entering the end section is shifted by U(+-``beam_offset_mm``) and
    U(+-``beam_angle_urad``) per plane and its sizes scaled by U(1 +- ``beam_size_spread``);
    the end-section quadrupoles are misaligned by U(+-``misalignment_mm``) per plane on top of
    the drift state's misalignment.
    """

    targets: bool = False
    target_position_mm: float = 2.0
    target_size_mm: tuple[float, float] = (0.0, 2.0)
    beam_offset_mm: float = 0.0
    beam_angle_urad: float = 0.0
    beam_size_spread: float = 0.0
    misalignment_mm: float = 0.0

    def draw_beam(self, rng: np.random.Generator, quads: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One episode's beam and error changes: centroid shift (x, x', y, y') [m, rad],
        size factors (x, y) and extra quadrupole offsets (quads, 2) [m]."""
        shift = rng.uniform(-1, 1, 4) * np.array([self.beam_offset_mm * 1e-3,
                                                   self.beam_angle_urad * 1e-6] * 2)
        size = rng.uniform(1 - self.beam_size_spread, 1 + self.beam_size_spread, 2)
        return shift, size, rng.uniform(-1, 1, (quads, 2)) * self.misalignment_mm * 1e-3

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> Randomisation:
        """From the ``rl.randomise`` block of a preset."""
        low, high = (float(v) for v in cfg["target_size_mm"])
        if not 0 <= low < high:
            raise UsageError(f"rl.randomise.target_size_mm must be [low, high] with "
                             f"0 <= low < high (mm), got {cfg['target_size_mm']}.")
        return cls(**{**cfg, "target_size_mm": (low, high)})


class SteeringEnv(gym.Env):
    """Shared task logic; subclasses implement ``_new_state`` and ``_beam``."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, targets: np.ndarray, tolerance_mm: float = 0.04, max_steps: int = 50,
                 action_scale: float = 0.25, start_spread: float = 0.3,
                 success_bonus: float = 5.0, screen_noise_mm: float = 0.005,
                 randomise: Randomisation | None = None, observation: str = "raw",
                 reward: str = "log_error", action_map: str = "linear",
                 step_cost: float = 0.0) -> None:
        check_choices(observation, reward, action_map, step_cost)
        self.observation, self.reward, self.action_map = observation, reward, action_map
        self.targets = np.asarray(targets, float)
        self.randomise = randomise or Randomisation()
        self.start_spread = start_spread
        self.tolerance = tolerance_mm
        self.max_steps = max_steps
        self.action_scale = action_scale
        self.success_bonus = success_bonus
        self.step_cost = step_cost
        self.noise = screen_noise_mm
        self.action_space = gym.spaces.Box(-1.0, 1.0, (N_ACT,), np.float32)
        self.observation_space = gym.spaces.Box(-1e3, 1e3, (8 + N_ACT,), np.float32)
        self.u = np.zeros(N_ACT)
        self.set_point = np.zeros(N_ACT)
        self.target = np.zeros(4)
        self.beam = np.zeros(4)
        self.steps = 0

    # subclass hooks -------------------------------------------------------------
    def _new_state(self) -> tuple[int, np.ndarray]:
        """Pick a machine state; return its mode and the mode's normalised set point."""
        raise NotImplementedError

    def _beam(self, u: np.ndarray) -> np.ndarray:
        """True beam (mu_x, sigma_x, mu_y, sigma_y) [mm] for actuators ``u`` (n, 5)."""
        raise NotImplementedError

    # task ---------------------------------------------------------------------------
    def measure(self, u: np.ndarray) -> float:
        """Set the actuators to ``u``, read the screen, return the MAE [mm]."""
        self.u = np.clip(np.asarray(u, float), -1, 1)
        beam = self._beam(self.u[None])[0]
        beam = beam + self.np_random.normal(0, 1, 4) * np.array(
            [self.noise, 0.02 * beam[1], self.noise, 0.02 * beam[3]])
        self.beam = beam
        return self.error()

    def error(self) -> float:
        return float(np.abs(self.beam - self.target).mean())

    def _obs(self) -> np.ndarray:
        error, target = self.beam - self.target, self.target
        if self.observation == "scaled":
            ref = self.randomise.target_position_mm
            error = np.sign(error) * np.log1p(np.abs(error) / self.tolerance) / np.log1p(
                ref / self.tolerance)
            target = target / ref
        obs = np.concatenate([error, target, self.u])
        return np.clip(obs, -1e3, 1e3).astype(np.float32)

    def random_target(self) -> np.ndarray | None:
        """A target beam [mm] in the randomisation's ranges that the end section can make in
        the current state: the noise-free screen beam of the first uniformly random setting
        that lands in range (None if none of ``TARGET_TRIES`` x 64 settings does)."""
        r = self.randomise
        for _ in range(TARGET_TRIES):
            beams = self._beam(self.np_random.uniform(-1, 1, (64, N_ACT)))
            sizes = beams[:, [1, 3]]
            ok = ((np.abs(beams[:, [0, 2]]) <= r.target_position_mm).all(1)
                  & ((sizes >= r.target_size_mm[0]) & (sizes <= r.target_size_mm[1])).all(1))
            if ok.any():
                return beams[np.flatnonzero(ok)[0]]
        return None

    def reset(self, *, seed: int | None = None, options: dict | None = None
              ) -> tuple[np.ndarray, dict]:
        """A new episode; with random targets, a state that cannot reach the target ranges is
        replaced by another (UsageError if ``STATE_TRIES`` states in a row cannot)."""
        super().reset(seed=seed)
        self.steps = 0
        for _ in range(STATE_TRIES):
            mode, self.set_point = self._new_state()
            u0 = self.set_point + self.np_random.uniform(-self.start_spread,
                                                         self.start_spread, N_ACT)
            self.target = self.targets[mode]
            err = self.measure(u0)
            if not self.randomise.targets:
                break
            target = self.random_target()  # after the first reading: LearnedEnv's DR anchor
            if target is not None:
                self.target = target
                err = self.error()
                break
        else:
            r = self.randomise
            raise UsageError(f"No reachable target beam lies within +-{r.target_position_mm} "
                             f"mm with sizes in {r.target_size_mm} mm in {STATE_TRIES} states; "
                             "widen rl.randomise.target_position_mm or target_size_mm.")
        return self._obs(), {"mae": err, "success": err < self.tolerance}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        a = np.clip(np.asarray(action, float), -1, 1)
        if self.action_map == "quadratic":
            a = a * np.abs(a)
        previous = self.error()
        err = self.measure(self.u + self.action_scale * a)
        self.steps += 1
        success = err < self.tolerance
        if self.reward == "log_error":
            reward = -np.log10(max(err, 1e-4) / self.tolerance)
        else:
            reward = np.log10(max(previous, 1e-4) / max(err, 1e-4))
        reward += (self.success_bonus if success else 0.0) - self.step_cost
        return (self._obs(), float(reward), bool(success), self.steps >= self.max_steps,
                {"mae": err, "success": success})


class MachineEnv(SteeringEnv):
    """The task on the cheetah machine; ``n_states`` drift states are sampled up front from
    ``state_seed`` (use different seeds for training and evaluation). Each state keeps the beam
    at ``M_SCR``, the end-section misalignments and the design energy the end-section magnets
    are set for, so energy drifts change their kicks (:mod:`lattice`)."""

    def __init__(self, machine: Machine, targets: np.ndarray, n_states: int = 64,
                 state_seed: int = 0, **kwargs: Any) -> None:
        super().__init__(targets, **kwargs)
        self.machine = machine
        rng = np.random.default_rng(state_seed)
        mus, covs, energies, modes, mis, design = [], [], [], [], [], []
        end_quads = [machine.lattice.quads.index(q) for q in END_QUADS]
        for _ in range(max(1, n_states // 16)):
            n = min(16, n_states)
            t = np.sort(rng.uniform(0, 1440, n))
            state = machine.drift(rng, t)
            m = rng.choice(len(machine.modes), n, p=machine.shares)
            settings = machine.settle(m, machine.nominal[m], state)
            beam, _ = machine.track_linac(m, settings, state)
            mus.append(beam.mu), covs.append(beam.cov), energies.append(beam.energy)
            modes.append(m), mis.append(state.misalignment[:, end_quads])
            design.append(machine.design(settings)[END_QUADS[0]])
        self.mu, self.cov = torch.cat(mus), torch.cat(covs)
        self.energy, self.modes = torch.cat(energies), np.concatenate(modes)
        self.misalignment = np.concatenate(mis)  # (states, end quads, 2) [m]
        self.design_energy = torch.cat(design)  # [eV], the same for all end-section magnets
        self.index = 0
        self.episode_mu, self.episode_cov = self.mu[0], self.cov[0]
        self.episode_misalignment = self.misalignment[0]

    def _new_state(self) -> tuple[int, np.ndarray]:
        self.index = i = int(self.np_random.integers(len(self.modes)))
        shift, size, mis = self.randomise.draw_beam(self.np_random, len(END_QUADS))
        mu = self.mu[i].clone()
        mu[:4] += torch.as_tensor(shift, dtype=mu.dtype)
        scale = torch.as_tensor(np.r_[np.repeat(size, 2), np.ones(3)], dtype=mu.dtype)
        self.episode_mu = mu
        self.episode_cov = self.cov[i] * scale[:, None] * scale[None, :]
        self.episode_misalignment = self.misalignment[i] + mis
        mode = int(self.modes[i])
        return mode, self.machine.to_unit(self.machine.nominal[mode, self.machine.end_idx])

    def _beam(self, u: np.ndarray) -> np.ndarray:
        n, i = len(u), self.index
        beam = cheetah.ParameterBeam(self.episode_mu.expand(n, 7).clone(),
                                     self.episode_cov.expand(n, 7, 7).clone(),
                                     self.energy[i].expand(n).clone())
        values = self.machine.from_unit(u)
        settings = {a: torch.as_tensor(values[:, j], dtype=torch.float32)
                    for j, a in enumerate(END_ACTUATORS)}
        design = {a.split(".")[0]: self.design_energy[i].expand(n) for a in END_ACTUATORS}
        mis = {q: torch.as_tensor(self.episode_misalignment[k], dtype=torch.float32).expand(n, 2)
               for k, q in enumerate(END_QUADS)}
        r = self.machine.lattice.track_end(beam, settings, misalignment=mis, design=design)
        return np.stack([r[f"E_SCR.{q}"].numpy() for q in ("x", "sigma_x", "y", "sigma_y")],
                        1).astype(float) * 1e3


class LearnedEnv(SteeringEnv):
    """The task on the learned simulator: per episode a context row (upstream readings of a
    logged machine state, with its mode) and a latent ``z ~ N(0, 1)`` are drawn and held
    fixed; ``set_points`` (modes, 5) are the modes' normalised end-section set points.

    With a :class:`LatticeVAE` (a learned beam line) the episode also draws the task's beam
    and error changes of :class:`Randomisation` (centroid, sizes, quadrupole offsets), as the
    machine does; that beam line's beam entering the end section depends only on the
    episode's context, latent and changes, so it is computed once per episode (and batch size)
    and each reading only tracks it to the screen (the same numbers, bit for bit, as decoding
    anew; 8-9 % less CPU per step). Domain randomisation (for transfer to the machine): per
    episode the simulated beam is ``b0 + g * (f(u) - b0) + offset``, with ``b0`` the model's
    beam at the episode's start, ``offset ~ N(0, offset_mm)`` per beam parameter [mm] (set it
    to the simulator's error, so the policy cannot trust the model's absolute prediction and
    has to close the loop on the screen) and response gains
    ``g ~ U(1 - gain_spread, 1 + gain_spread)``. Zero = off::

        env = LearnedEnv(cvae, ctx, modes, points, y.mean, y.std, targets,
                         offset_mm=sim_mae, gain_spread=0.3)
    """

    def __init__(self, model: ConditionalVAE, contexts: np.ndarray, modes: np.ndarray,
                 set_points: np.ndarray, y_mean: np.ndarray, y_std: np.ndarray,
                 targets: np.ndarray, offset_mm: np.ndarray | float = 0.0,
                 gain_spread: float = 0.0, **kwargs: Any) -> None:
        super().__init__(targets, **kwargs)
        self.model = model.eval()
        self.contexts = torch.as_tensor(contexts, dtype=torch.float32)
        self.modes = np.asarray(modes)
        self.set_points = set_points
        self.y_mean, self.y_std = y_mean, y_std
        self.offset_mm = np.broadcast_to(np.asarray(offset_mm, float), (4,))
        self.gain_spread = gain_spread
        self.ctx: Tensor = self.contexts[0]
        self.z = torch.zeros(model.latent)
        self.b0, self.gain, self.offset = np.zeros(4), np.ones(4), np.zeros(4)
        self.shift: BeamShift | None = None
        self.beam_line: dict[int, tuple[cheetah.ParameterBeam, Tensor]] = {}

    def _new_state(self) -> tuple[int, np.ndarray]:
        i = int(self.np_random.integers(len(self.contexts)))
        self.ctx = self.contexts[i]
        self.z = torch.as_tensor(self.np_random.normal(size=self.model.latent),
                                 dtype=torch.float32)
        self.gain = 1 + self.np_random.uniform(-self.gain_spread, self.gain_spread, 4)
        self.offset = self.np_random.normal(0, 1, 4) * self.offset_mm
        self.b0, self.beam_line = None, {}
        if isinstance(self.model, LatticeVAE):  # a beam line: randomise beam and errors
            f64 = lambda a: torch.as_tensor(a, dtype=torch.float64)[None]  # noqa: E731
            self.shift = BeamShift(*map(f64, self.randomise.draw_beam(self.np_random,
                                                                      len(END_QUADS))))
        mode = int(self.modes[i])
        return mode, self.set_points[mode]

    @torch.no_grad()
    def _model_beam(self, u: np.ndarray) -> np.ndarray:
        n, s = len(u), torch.as_tensor(u, dtype=torch.float32)
        ctx, z = self.ctx.expand(n, -1), self.z.expand(n, -1)
        if isinstance(self.model, LatticeVAE):  # the episode's beam line, per batch size
            if n not in self.beam_line:
                self.beam_line[n] = self.model.beam(ctx, z, self.shift)
            mean = self.model.screen(s, *self.beam_line[n])[0]
        else:
            mean = self.model.decode(torch.cat([s, ctx], 1), z)[0]
        y = mean.numpy() * self.y_std + self.y_mean
        return np.stack([y[:, 0], np.exp(y[:, 1]), y[:, 2], np.exp(y[:, 3])], 1)

    def _beam(self, u: np.ndarray) -> np.ndarray:
        beam = self._model_beam(u)
        if self.b0 is None:  # first reading of the episode: the randomisation's anchor
            self.b0 = beam[0].copy()
        beam = self.b0 + self.gain * (beam - self.b0) + self.offset
        beam[:, [1, 3]] = np.maximum(beam[:, [1, 3]], 1e-3)  # a beam size stays positive
        return beam
