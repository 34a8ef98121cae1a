"""Conditional GAN of whole showers (CaloGAN / FastCaloGAN-like, MLPs).

The generator maps noise and the condition to the standardised layer energies and
voxel-fraction logits (one vector, :mod:`hepchain.fastsim.codec`); the discriminator judges
(features, condition). Trained through the core Trainer with simultaneous gradient descent,
as ``accelerator.linac.generative``: one loss holds the discriminator's BCE terms (generator
output detached) and the non-saturating generator term through a parameter-detached copy of
the discriminator (``torch.func.functional_call``), so one backward pass gives each network
the gradient of its own objective.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.func import functional_call
from torch.nn import functional as F

from hepchain.fastsim.codec import ShowerCodec
from hepchain.fastsim.models.base import ShowerModel
from hepchain.nn.mlp import MLP


class ShowerGAN(ShowerModel):
    kind = "gan"

    def __init__(self, codec: ShowerCodec, noise: int = 64,
                 hidden: tuple[int, ...] = (256, 256)) -> None:
        super().__init__(codec, noise=noise, hidden=list(hidden))
        self.noise = noise
        self.generator = MLP(noise + 1, list(hidden), codec.dim, activation=nn.SiLU)
        self.discriminator = MLP(codec.dim + 1, list(hidden)[::-1], 1,
                                 activation=lambda: nn.LeakyReLU(0.2))

    def sample_z(self, c: Tensor) -> Tensor:
        return self.generator(torch.cat([torch.randn(len(c), self.noise), c], 1))


def loss(model: ShowerGAN, batch: tuple[Tensor, Tensor]) -> dict[str, Tensor]:
    real, c = batch
    fake = model.sample_z(c)
    d = model.discriminator
    d_real = d(torch.cat([real, c], 1))
    d_fake = d(torch.cat([fake.detach(), c], 1))
    frozen = {k: v.detach() for k, v in d.named_parameters()}
    g_logit = functional_call(d, frozen, (torch.cat([fake, c], 1),))
    ones, zeros = torch.ones_like(d_real), torch.zeros_like(d_real)
    return {"d_real": F.binary_cross_entropy_with_logits(d_real, ones),
            "d_fake": F.binary_cross_entropy_with_logits(d_fake, zeros),
            "g": F.binary_cross_entropy_with_logits(g_logit, ones)}
