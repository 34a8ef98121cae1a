"""A conditional VAE of the target screen whose decoder is the end section's beam transport.

The MLP conditional VAE (:class:`~hepchain.accelerator.linac.generative.ConditionalVAE`) learns
the response of the screen to the five end-section actuators from the operators' scans
(+-0.6 around each mode's set point) and extrapolates it beyond them as an MLP does. Here the
network learns only what the log cannot show directly, the beam entering the end section and
the end-section errors, and the *design* end section (element order and lengths, as on any
machine's lattice file; ``lattice.end_section``) transports that beam to the screen::

    (context c, latent z) --MLP--> beam at M_SCR: centroid (x, x', y, y') [m, rad],
                                   per plane a Cholesky factor of the (x, x') covariance,
                                   offsets (x, y) of the three end-section quadrupoles [m]
    actuators s --(learned calibration gains)--> k1 [1/m^2], angles [rad]
    cheetah linear tracking through the end section --> (mu_x, log sigma_x, mu_y, log sigma_y)

so the response to any setting is that of a linear beam line. What is ours: this decoder and
its parameterisation; the tracking is cheetah's (``Lattice.track_end``). The encoder, the
latent prior and the loss are the MLP model's (:func:`~hepchain.accelerator.linac.generative.
cvae_loss`): ``LatticeVAE`` is a drop-in for :class:`ConditionalVAE`::

    model = LatticeVAE(cond_dim=d.cond.shape[1], latent=2, hidden=[128, 128],
                       energies_gev=[7.0, 4.0], y_mean=ys.mean, y_std=ys.scale)
    mean, log_var = model.decode(cond, z)  # standardised screen readings, as ConditionalVAE

A beam line has a beam and errors to randomise, so ``decode`` also takes a per-sample
:class:`BeamShift` (domain randomisation in physical units, :class:`envs.LearnedEnv`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cheetah
import numpy as np
import torch
from torch import Tensor, nn

from hepchain.accelerator.linac.generative import ConditionalVAE
from hepchain.accelerator.linac.lattice import END_ACTUATORS, END_QUADS, Lattice, LatticeSpec
from hepchain.accelerator.linac.machine import END_ANGLE, END_K1
from hepchain.nn.mlp import MLP

N_ACT = len(END_ACTUATORS)
FULL_SCALE = (END_K1,) * 3 + (END_ANGLE,) * 2  # normalised actuator 1 -> k1 [1/m^2], angle [rad]
# scales of the network's outputs: centroid 0.1 mm / 0.1 mrad, beam size 1 mm, divergence
# 0.1 mrad, emittance term 1 um (Cholesky factor), quadrupole offsets 0.1 mm
CENTROID_M, SIZE_M, DIVERGENCE_RAD, EMITTANCE_RAD, OFFSET_M = 1e-4, 1e-3, 1e-4, 1e-6, 1e-4
N_BEAM = 4 + 2 * 3 + 2 * len(END_QUADS)  # centroid, two Cholesky factors, quad offsets


@dataclass
class BeamShift:
    """A per-sample change of the simulated beam line: centroid shift (x, x', y, y')
    [m, rad] (n, 4), size factors (x, y) (n, 2) and extra quadrupole offsets [m]
    (n, quads, 2)."""

    centroid: Tensor
    size: Tensor
    misalignment: Tensor


class LatticeVAE(ConditionalVAE):
    """p(y | s, c, z) with the end section's transport as decoder (module docstring).

    ``cond`` is ``[s, c]`` as for :class:`ConditionalVAE`, with the mode one-hot as the last
    ``len(energies_gev)`` columns of ``c``; ``energies_gev`` are the modes' beam energies
    [GeV]; ``y_mean``, ``y_std`` standardise (mu_x [mm], log sigma_x [log mm], mu_y, log
    sigma_y), the model's output space."""

    def __init__(self, cond_dim: int, latent: int, hidden: list[int],
                 energies_gev: np.ndarray | list[float], y_mean: np.ndarray,
                 y_std: np.ndarray) -> None:
        super().__init__(4, cond_dim, latent, hidden)
        self.decoder = MLP(cond_dim - N_ACT + latent, hidden, N_BEAM, activation=nn.SiLU)
        f32 = lambda a: torch.tensor(np.asarray(a, float), dtype=torch.float32)  # noqa: E731
        self.register_buffer("energies", f32(energies_gev) * 1e9)  # [eV]
        self.register_buffer("full_scale", f32(FULL_SCALE))
        self.register_buffer("y_mean", f32(y_mean))
        self.register_buffer("y_std", f32(y_std))
        self.gain = nn.Parameter(torch.zeros(N_ACT))  # log calibration gain per actuator
        self.noise_log_var = nn.Parameter(torch.zeros(4))  # screen noise (standardised)
        self.lattice = Lattice(LatticeSpec(n_cells=1))  # only its end section is used
        for element in self.lattice.end:  # float64: a strongly correlated beam's screen size
            element.double()  # is a difference of large terms (NaN in float32)

    def beam(self, context: Tensor, z: Tensor, shift: BeamShift | None = None
             ) -> tuple[cheetah.ParameterBeam, Tensor]:
        """The beam at ``M_SCR`` and the quadrupole offsets (n, quads, 2) [m]."""
        out = self.decoder(torch.cat([context, z], -1))
        n = len(out)
        out = out.double()
        centroid = out[:, :4] * CENTROID_M
        chol = out[:, 4:10].reshape(n, 2, 3)  # per plane: log a, b, log c
        a = chol[..., 0].clamp(-8, 4).exp() * SIZE_M * (1.0 if shift is None else shift.size)
        b = chol[..., 1] * DIVERGENCE_RAD * (1.0 if shift is None else shift.size)
        c = chol[..., 2].clamp(-8, 4).exp() * EMITTANCE_RAD * (1.0 if shift is None else shift.size)
        offsets = out[:, 10:].reshape(n, len(END_QUADS), 2) * OFFSET_M
        if shift is not None:  # (float64 shifts)
            centroid, offsets = centroid + shift.centroid, offsets + shift.misalignment
        mu = torch.zeros(n, 7, dtype=out.dtype)
        mu[:, :4], mu[:, 6] = centroid, 1.0
        cov = torch.zeros(n, 7, 7, dtype=out.dtype)
        for p in range(2):  # (x, x') and (y, y') blocks of L L^T, L = [[a, 0], [b, c]]
            i = 2 * p
            cov[:, i, i] = a[:, p] ** 2
            cov[:, i, i + 1] = cov[:, i + 1, i] = a[:, p] * b[:, p]
            cov[:, i + 1, i + 1] = b[:, p] ** 2 + c[:, p] ** 2
        cov[:, 5, 5] = 1e-6  # relative energy spread 1e-3 (no dispersion here)
        energy = context[:, -len(self.energies):].double() @ self.energies.double()
        return cheetah.ParameterBeam(mu, cov, energy), offsets

    def decode(self, cond: Tensor, z: Tensor, shift: BeamShift | None = None
               ) -> tuple[Tensor, Tensor]:
        """Standardised screen readings (mean, log variance) for ``cond = [s, c]``."""
        return self.screen(cond[:, :N_ACT], *self.beam(cond[:, N_ACT:], z, shift))

    def screen(self, settings: Tensor, beam: cheetah.ParameterBeam, offsets: Tensor
               ) -> tuple[Tensor, Tensor]:
        """:meth:`decode` for normalised actuator settings ``s`` (n, 5) and a beam at
        ``M_SCR`` with quadrupole offsets from :meth:`beam`, which depend only on the context
        and the latent: a caller that holds them fixed (an RL episode) computes them once."""
        values = (settings.clamp(-1, 1) * self.full_scale * self.gain.exp()).double()
        screen = self.lattice.track_end(
            beam, {a: values[:, j] for j, a in enumerate(END_ACTUATORS)},
            misalignment={q: offsets[:, k] for k, q in enumerate(END_QUADS)})
        y = torch.stack([screen["E_SCR.x"] * 1e3, screen["E_SCR.sigma_x"].clamp_min(1e-9).log()
                         + np.log(1e3), screen["E_SCR.y"] * 1e3,
                         screen["E_SCR.sigma_y"].clamp_min(1e-9).log() + np.log(1e3)], 1)
        mean = ((y - self.y_mean) / self.y_std).float()
        return mean, self.noise_log_var.clamp(-10, 4).expand_as(mean)
