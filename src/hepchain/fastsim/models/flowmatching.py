"""Conditional flow matching (Lipman et al. 2023; CaloDREAM, arXiv:2405.09629, uses it with
transformers — ours is an MLP on the whole shower).

Straight paths z_t = (1 − t) z₀ + t z₁ from Gaussian noise z₀ to the standardised shower
features z₁; an MLP v(z_t, t, c) regresses the velocity z₁ − z₀ (mean squared error).
Sampling integrates dz/dt = v from t = 0 to 1 with ``steps`` midpoint (RK2) steps.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hepchain.fastsim.codec import ShowerCodec
from hepchain.fastsim.models.base import ShowerModel
from hepchain.nn.mlp import MLP


class FlowMatching(ShowerModel):
    kind = "cfm"

    def __init__(self, codec: ShowerCodec, hidden: tuple[int, ...] = (512, 512),
                 steps: int = 20) -> None:
        super().__init__(codec, hidden=list(hidden), steps=steps)
        self.steps = steps
        self.velocity = MLP(codec.dim + 2, list(hidden), codec.dim, activation=nn.SiLU)

    def v(self, z: Tensor, t: Tensor, c: Tensor) -> Tensor:
        return self.velocity(torch.cat([z, t, c], 1))

    def sample_z(self, c: Tensor) -> Tensor:
        z = torch.randn(len(c), self.codec.dim)
        dt = 1.0 / self.steps
        for i in range(self.steps):
            t = torch.full((len(c), 1), i * dt)
            mid = z + 0.5 * dt * self.v(z, t, c)
            z = z + dt * self.v(mid, t + 0.5 * dt, c)
        return z


def loss(model: FlowMatching, batch: tuple[Tensor, Tensor]) -> Tensor:
    z1, c = batch
    z0 = torch.randn_like(z1)
    t = torch.rand(len(z1), 1)
    return (model.v((1 - t) * z0 + t * z1, t, c) - (z1 - z0)).square().mean()
