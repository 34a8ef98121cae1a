"""Learned sampling masks trained jointly with the calibration network.

- :class:`LoupeMask` (Bahadir et al., arXiv:1901.01960): p = sigmoid(s·logits), rescaled to the
  kept fraction α (p' = p·α/p̄ if p̄ ≥ α else 1 − (1−p)(1−α)/(1−p̄)), relaxed Bernoulli mask
  m = sigmoid(12·(p' − u)), u ~ U(0, 1); evaluation uses p'.
- :class:`GumbelTopK` (after Xie & Ermon, arXiv:1901.10517): keys = logits + Gumbel noise, the
  hard top-k of the keys in the forward pass and the gradient of the relaxation
  sigmoid((key − k-th key)/T) (straight-through), T annealed exponentially from T0 to T_min.

Both are exported as a fixed binary pattern (the top-k of p' or of the logits) at the requested
rate, and the calibration is then retrained on that fixed pattern.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from hepchain.daq.patterns import n_keep, top_k_pattern
from hepchain.reco.calibration.models import MLPRegressor
from hepchain.reco.calibration.train import fit_regressor


class LoupeMask(nn.Module):
    """LOUPE probabilistic mask over ``n`` pixels keeping a fraction ``keep`` on average."""

    def __init__(self, n: int, keep: float, slope: float = 20.0, sample_slope: float = 12.0
                 ) -> None:
        super().__init__()
        u = torch.rand(n).clamp(1e-3, 1 - 1e-3)
        self.logits = nn.Parameter(torch.log(u / (1 - u)) / slope)
        self.keep, self.slope, self.sample_slope = keep, slope, sample_slope

    def probs(self) -> Tensor:
        p = torch.sigmoid(self.slope * self.logits)
        mean = p.mean()
        if mean >= self.keep:
            return p * self.keep / mean
        return 1 - (1 - p) * (1 - self.keep) / (1 - mean)

    def forward(self, x: Tensor) -> Tensor:
        p = self.probs()
        if not self.training:
            return x * p
        u = torch.rand_like(x)
        return x * torch.sigmoid(self.sample_slope * (p - u))

    def scores(self) -> np.ndarray:
        return self.probs().detach().cpu().numpy()


class GumbelTopK(nn.Module):
    """Straight-through Gumbel top-k selection of ``k`` of ``n`` pixels."""

    def __init__(self, n: int, k: int, total_steps: int, t0: float = 1.0, t_min: float = 0.01
                 ) -> None:
        super().__init__()
        self.logits = nn.Parameter(0.01 * torch.randn(n))
        self.k, self.total_steps, self.t0, self.t_min = k, max(total_steps, 1), t0, t_min
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def temperature(self) -> float:
        frac = min(float(self.step) / self.total_steps, 1.0)
        return self.t0 * math.exp(frac * math.log(self.t_min / self.t0))

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            hard = torch.zeros_like(self.logits)
            hard[torch.topk(self.logits, self.k).indices] = 1.0
            return x * hard
        g = -torch.log(-torch.log(torch.rand(x.shape[0], self.logits.numel()).clamp(1e-10, 1)))
        keys = self.logits + g
        kth = torch.kthvalue(keys, keys.shape[1] - self.k + 1, dim=1, keepdim=True).values
        soft = torch.sigmoid((keys - kth) / self.temperature())
        hard = (keys >= kth).float()
        self.step += 1
        return x * (hard + soft - soft.detach())

    def scores(self) -> np.ndarray:
        return self.logits.detach().cpu().numpy()


class MaskedRegressor(nn.Module):
    """A mask over the flattened pixels followed by the calibration regressor."""

    def __init__(self, mask: nn.Module, regressor: nn.Module) -> None:
        super().__init__()
        self.mask, self.regressor = mask, regressor

    def forward(self, x: Tensor) -> Tensor:
        return self.regressor(self.mask(x.flatten(1)))


def learn_pattern(kind: str, train: tuple[Tensor, Tensor], val: tuple[Tensor, Tensor],
                  rate: float, hidden: list[int], train_cfg: dict[str, Any], seed: int,
                  mask_cfg: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Train a ``kind`` ("loupe" or "gumbel") mask jointly with an MLP calibration and
    export it: (boolean pattern of the image shape, per-pixel scores)."""
    shape = tuple(train[0].shape[1:])
    n = int(np.prod(shape))
    if kind not in ("loupe", "gumbel"):
        raise ValueError(kind)

    def build() -> MaskedRegressor:
        if kind == "loupe":
            mask: nn.Module = LoupeMask(n, 1.0 - rate, slope=float(mask_cfg.get("slope", 20.0)))
        else:
            steps = math.ceil(len(train[0]) / int(train_cfg.get("batch_size", 256)))
            mask = GumbelTopK(n, n_keep(n, rate), steps * int(train_cfg.get("epochs", 20)),
                              t0=float(mask_cfg.get("t0", 1.0)),
                              t_min=float(mask_cfg.get("t_min", 0.01)))
        return MaskedRegressor(mask, MLPRegressor(n, hidden))

    cfg = {**train_cfg, "patience": None}  # the mask needs its full annealing schedule
    trainer = fit_regressor(build, train, val, cfg, seed)
    scores = trainer.model.mask.scores().reshape(shape)
    return top_k_pattern(scores, rate), scores
