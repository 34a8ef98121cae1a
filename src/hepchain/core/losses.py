"""Combining named losses into one (static or dynamically adjusted weights), and the masked
cross-entropy the per-object tasks share.

The trainer accepts a loss function returning ``{"jet": l1, "vertex": l2, "track": l3}``;
a weighting turns that into the total, e.g. GN1's ``L = L_jet + 1.5 L_vertex + 0.5 L_track``::

    weighting = StaticWeights({"jet": 1.0, "vertex": 1.5, "track": 0.5})
    weighting = UncertaintyWeights(["tau", "higgs"])   # learned (Kendall et al. 2018)
    weighting = DynamicWeightAverage(["tau", "higgs"])  # loss-rate based (Liu et al. 2019)
    weighting = GradNorm(["tau", "higgs"], shared=list(model.trunk.parameters()))  # Chen 2018
    loss = masked_cross_entropy(track_logits, origin, ignore_index=-1)  # padded tracks: -1
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn


def masked_cross_entropy(logits: Tensor, target: Tensor, ignore_index: int = -100,
                         weight: Tensor | None = None) -> Tensor:
    """Cross-entropy averaged over the entries whose target is not ``ignore_index`` (weighted
    by ``weight[target]`` as in :func:`torch.nn.functional.cross_entropy`); 0, not NaN, for a
    batch without any such entry (e.g. only jets without tracks or leaf pairs)."""
    loss = nn.functional.cross_entropy(logits, target, weight=weight,
                                       ignore_index=ignore_index, reduction="sum")
    valid = target != ignore_index
    norm = weight[target[valid]].sum() if weight is not None else valid.sum()
    return loss / norm.to(loss.dtype).clamp_min(torch.finfo(loss.dtype).tiny)


class LossWeighting(nn.Module):
    """Base class: ``forward(losses) -> total``; ``end_epoch(mean_losses)`` updates state."""

    def forward(self, losses: dict[str, Tensor]) -> Tensor:
        raise NotImplementedError

    def end_epoch(self, mean_losses: dict[str, float]) -> None:
        """Called by the trainer after every epoch with the epoch-mean training losses."""

    def current(self) -> dict[str, float]:
        """The weights in force, for the history."""
        return {}


class StaticWeights(LossWeighting):
    """Fixed weights; names missing from ``weights`` get weight 1."""

    def __init__(self, weights: dict[str, float] | None = None) -> None:
        super().__init__()
        self.weights = dict(weights or {})

    def forward(self, losses: dict[str, Tensor]) -> Tensor:
        return sum(self.weights.get(k, 1.0) * v for k, v in losses.items())  # type: ignore[return-value]

    def current(self) -> dict[str, float]:
        return dict(self.weights)


class UncertaintyWeights(LossWeighting):
    """Homoscedastic-uncertainty weighting: ``sum exp(-s_i) L_i + s_i`` with learned ``s_i``."""

    def __init__(self, names: list[str]) -> None:
        super().__init__()
        self.names = list(names)
        self.log_vars = nn.Parameter(torch.zeros(len(self.names)))

    def forward(self, losses: dict[str, Tensor]) -> Tensor:
        total = torch.zeros((), device=self.log_vars.device)
        for i, name in enumerate(self.names):
            total = total + torch.exp(-self.log_vars[i]) * losses[name] + self.log_vars[i]
        return total

    def current(self) -> dict[str, float]:
        return {n: math.exp(-float(s)) for n, s in zip(self.names, self.log_vars.detach(), strict=True)}


class DynamicWeightAverage(LossWeighting):
    """Weights from each loss's rate of descent over the last two epochs (temperature T)."""

    def __init__(self, names: list[str], temperature: float = 2.0) -> None:
        super().__init__()
        self.names = list(names)
        self.temperature = temperature
        self.register_buffer("weights", torch.ones(len(self.names)))
        self.register_buffer("history", torch.full((2, len(self.names)), float("nan")))

    def forward(self, losses: dict[str, Tensor]) -> Tensor:
        return sum(w * losses[n] for n, w in zip(self.names, self.weights, strict=True))  # type: ignore[return-value]

    def end_epoch(self, mean_losses: dict[str, float]) -> None:
        self.history[0] = self.history[1].clone()
        self.history[1] = torch.tensor([mean_losses[n] for n in self.names])
        if torch.isnan(self.history).any():
            return
        rate = self.history[1] / self.history[0].clamp_min(1e-12)
        w = torch.softmax(rate / self.temperature, dim=0) * len(self.names)
        self.weights.copy_(w)

    def current(self) -> dict[str, float]:
        return {n: float(w) for n, w in zip(self.names, self.weights, strict=True)}


class GradNorm(LossWeighting):
    """GradNorm (Chen et al., ICML 2018): learned weights ``w_i`` that equalise the tasks'
    gradient norms on the ``shared`` parameters, pulled towards each task's relative training
    rate. With ``G_i = w_i ||∇_shared L_i||``, ``r_i = (L_i / L_i(0)) / mean_j (L_j / L_j(0))``
    (``L_i(0)``: the first training batch) and the target ``mean_j G_j · r_i^alpha`` held
    constant, the weights descend ``Σ_i |G_i − target_i|`` while the network descends
    ``Σ_i w_i L_i`` (weights held constant); the weights are renormalised to sum to the number
    of tasks before every step. Outside gradient mode (validation) the total is ``Σ w_i L_i``.
    """

    def __init__(self, names: list[str], shared: Sequence[nn.Parameter],
                 alpha: float = 1.5) -> None:
        super().__init__()
        self.names = list(names)
        self.alpha = alpha
        self.shared = list(shared)  # the model's parameters: not registered here
        self.w = nn.Parameter(torch.ones(len(self.names)))
        self.register_buffer("initial", torch.full((len(self.names),), float("nan")))

    def forward(self, losses: dict[str, Tensor]) -> Tensor:
        with torch.no_grad():
            self.w.clamp_(min=1e-3)
            self.w.mul_(len(self.names) / self.w.sum())
        values = torch.stack([losses[n] for n in self.names])
        total = (self.w.detach() * values).sum()
        if not (torch.is_grad_enabled() and values.requires_grad):
            return total
        norms = torch.stack([self._grad_norm(losses[n]) for n in self.names])
        if torch.isnan(self.initial).any():
            self.initial.copy_(values.detach())
        ratio = values.detach() / self.initial.clamp_min(1e-12)
        g = self.w * norms
        target = (g.mean() * (ratio / ratio.mean()) ** self.alpha).detach()
        return total + (g - target).abs().sum()

    def _grad_norm(self, loss: Tensor) -> Tensor:
        grads = torch.autograd.grad(loss, self.shared, retain_graph=True, allow_unused=True)
        sq = [g.pow(2).sum() for g in grads if g is not None]
        return torch.stack(sq).sum().sqrt().detach() if sq else loss.new_zeros(())

    def current(self) -> dict[str, float]:
        return {n: float(w) for n, w in zip(self.names, self.w.detach(), strict=True)}
