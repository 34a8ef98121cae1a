"""NN energy regressors on pixel images (inputs in GeV-equivalent units, output E in GeV).

Both have a linear path (a learnable weighted pixel sum, the physics baseline) plus a
non-linear correction whose last layer starts at zero, so the untrained model is the plain
pixel sum (inputs are scaled so that this sum is roughly E in GeV).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from hepchain.nn.mlp import MLP


class MLPRegressor(nn.Module):
    """E = w·x + MLP(x) on the flattened pixels x (N, layers·n_pix²)."""

    def __init__(self, n_inputs: int, hidden: Sequence[int] = (128, 32)) -> None:
        super().__init__()
        self.linear = nn.Linear(n_inputs, 1)
        self.mlp = MLP(n_inputs, list(hidden), 1)
        _start_as_sum(self.linear, self.mlp)

    def forward(self, x: Tensor) -> Tensor:
        x = x.flatten(1)
        return (self.linear(x) + self.mlp(x)).squeeze(-1)


class CNNRegressor(nn.Module):
    """E = w·x + head(sum-pooled conv features); layers are the input channels."""

    def __init__(self, n_layers: int, channels: int = 16, hidden: Sequence[int] = (32,)) -> None:
        super().__init__()
        self.linear = nn.Linear(1, 1)
        self.layer_weights = nn.Parameter(torch.ones(n_layers))
        self.conv = nn.Sequential(
            nn.Conv2d(n_layers, channels, 3, padding=1), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU())
        self.head = MLP(channels, list(hidden), 1)
        _start_as_sum(self.linear, self.head)

    def forward(self, x: Tensor) -> Tensor:
        raw = (x.sum(dim=(2, 3)) * self.layer_weights).sum(dim=1, keepdim=True)
        feats = self.conv(x).mean(dim=(2, 3))
        return (self.linear(raw) + self.head(feats)).squeeze(-1)


def _start_as_sum(linear: nn.Linear, correction: MLP) -> None:
    with torch.no_grad():
        linear.weight.fill_(1.0)
        linear.bias.zero_()
        last = correction.net[-1]
        last.weight.zero_()
        last.bias.zero_()


def relative_mse(pred: Tensor, energy: Tensor) -> Tensor:
    """Mean of (E_pred − E)²/E: least squares with a stochastic-term variance ∝ E."""
    return ((pred - energy) ** 2 / energy.clamp_min(1e-3)).mean()
