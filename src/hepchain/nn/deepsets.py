"""Deep Sets (Zaheer et al. 2017; PFN in HEP): ``F(Σ_i Φ(x_i))`` over a padded, masked set.

::

    model = DeepSets(in_dim=20, phi=[64, 64], latent=64, rho=[64], out_dim=3)
    logits = model(x, mask)          # x: (B, T, 20), mask: (B, T) bool, True = real element
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from hepchain.nn.mlp import MLP


class DeepSets(nn.Module):
    """Per-element network Φ, masked sum (or mean) over the set, then network F.

    ``context_dim`` extra per-set features (e.g. jet pT, η) are concatenated to the pooled
    representation before F.
    """

    def __init__(self, in_dim: int, phi: Sequence[int], latent: int, rho: Sequence[int],
                 out_dim: int, context_dim: int = 0, pool: str = "sum") -> None:
        super().__init__()
        if pool not in ("sum", "mean"):
            raise ValueError(f"pool must be 'sum' or 'mean', got {pool!r}.")
        self.pool = pool
        self.phi = MLP(in_dim, phi, latent)
        self.rho = MLP(latent + context_dim, rho, out_dim)

    def forward(self, x: Tensor, mask: Tensor, context: Tensor | None = None) -> Tensor:
        m = mask[..., None].to(x.dtype)
        pooled = (self.phi(x) * m).sum(dim=1)
        if self.pool == "mean":
            pooled = pooled / m.sum(dim=1).clamp(min=1.0)
        if context is not None:
            pooled = torch.cat([pooled, context], dim=-1)
        return self.rho(pooled)
