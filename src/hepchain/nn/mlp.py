"""A plain multilayer perceptron, the building block of most heads and encoders."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from torch import Tensor, nn


class MLP(nn.Module):
    """``in_dim -> hidden... -> out_dim`` with an activation (and optional dropout / layer norm)
    between layers and none after the last::

        head = MLP(64, [128, 64], 3)        # logits for 3 classes
    """

    def __init__(self, in_dim: int, hidden: Sequence[int], out_dim: int,
                 activation: type[nn.Module] = nn.ReLU, dropout: float = 0.0,
                 norm: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        dims = [in_dim, *hidden]
        for a, b in pairwise(dims):
            layers.append(nn.Linear(a, b))
            if norm:
                layers.append(nn.LayerNorm(b))
            layers.append(activation())
            if dropout:
                layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(dims[-1], out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
