"""The decay-aware set transformer: objects → per-object embeddings → event class, plus two
optional auxiliary heads on the same embeddings.

- class head: attention pooling + MLP → one logit (ttH vs tt̄ + jets);
- hop head (seed 002): for each object pair a symmetric pair embedding [h_i + h_j, h_i ⊙ h_j]
  → MLP → logits over hop counts 0 .. ``n_hops`` − 1 (larger counts in the last class);
- assignment head (SPANet-style, per jet): logits over the jet roles (other, b_had, b_lep,
  q from W_had, b from H), the symmetric partners (q₁ q₂, b_H₁ b_H₂) sharing a role.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hepchain.nn.attention import AttentionPooling, SetTransformer
from hepchain.nn.mlp import MLP


class DecayAwareTransformer(nn.Module):
    """``forward(x, mask) -> (class logit (B,), hop logits (B, T, T, n_hops),
    role logits (B, T, n_roles))``."""

    def __init__(self, n_features: int, dim: int, heads: int, layers: int, n_hops: int,
                 n_roles: int) -> None:
        super().__init__()
        self.embed = MLP(n_features, [dim], dim)
        self.encoder = SetTransformer(dim, heads, layers)
        self.pool = AttentionPooling(dim, heads)
        self.classify = MLP(dim, [dim], 1)
        self.hop = MLP(2 * dim, [dim], n_hops)
        self.role = MLP(dim, [dim], n_roles)

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        h = self.encoder(self.embed(x), mask)
        logit = self.classify(self.pool(h, mask)).squeeze(-1)
        hi, hj = h[:, :, None, :], h[:, None, :, :]
        pairs = self.hop(torch.cat([hi + hj, hi * hj], dim=-1))  # (B, T, T, 2 dim)
        return logit, pairs, self.role(h)

