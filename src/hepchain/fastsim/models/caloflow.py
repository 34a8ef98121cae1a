"""CaloFlow-like model (Krause & Shih, arXiv:2106.05285) with zuko flows.

Flow I: p(u | c), a masked autoregressive flow over the L standardised log layer energies.
Flow II: p(x | c, u), a RealNVP (affine coupling) flow over the L·V standardised voxel-fraction
logits, conditioned on the condition and the layer energies — coupling layers sample in one
pass, as CaloFlow's distilled student does (the teacher's MAF needs L·V passes). Both are
trained at once by maximum likelihood (the loss is the sum of their negative log-likelihoods;
their parameters are disjoint, so this is two independent fits).
"""

from __future__ import annotations

import zuko
from torch import Tensor, cat

from hepchain.fastsim.codec import ShowerCodec
from hepchain.fastsim.models.base import ShowerModel


class CaloFlow(ShowerModel):
    kind = "caloflow"

    def __init__(self, codec: ShowerCodec, transforms_energy: int = 4,
                 hidden_energy: tuple[int, ...] = (64, 64), transforms_voxels: int = 4,
                 hidden_voxels: tuple[int, ...] = (256,)) -> None:
        super().__init__(codec, transforms_energy=transforms_energy,
                         hidden_energy=list(hidden_energy), transforms_voxels=transforms_voxels,
                         hidden_voxels=list(hidden_voxels))
        L = codec.n_layers
        self.flow_energy = zuko.flows.MAF(L, context=1, transforms=transforms_energy,
                                          hidden_features=list(hidden_energy), randperm=True)
        self.flow_voxels = zuko.flows.RealNVP(codec.dim - L, context=1 + L,
                                              transforms=transforms_voxels,
                                              hidden_features=list(hidden_voxels), randmask=True)

    def nll(self, z: Tensor, c: Tensor) -> dict[str, Tensor]:
        """Mean negative log-likelihood per shower of each flow (nats)."""
        L = self.codec.n_layers
        u, x = z[:, :L], z[:, L:]
        return {"nll_energy": -self.flow_energy(c).log_prob(u).mean(),
                "nll_voxels": -self.flow_voxels(cat([c, u], 1)).log_prob(x).mean()}

    def sample_z(self, c: Tensor) -> Tensor:
        u = self.flow_energy(c).sample()
        return cat([u, self.flow_voxels(cat([c, u], 1)).sample()], 1)


def loss(model: CaloFlow, batch: tuple[Tensor, Tensor]) -> dict[str, Tensor]:
    return model.nll(*batch)
