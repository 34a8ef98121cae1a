"""A Deep Sets / PFN (:class:`hepchain.nn.deepsets.DeepSets`, sum pooling) re-expressed with
layers hls4ml 1.3's PyTorch front end converts, weights copied, on a fixed particle count P.

hls4ml stops at ``DeepSets.forward``'s ``mask.to(dtype)`` and then at its ``sum`` over the
particles (docs/deploy.md, step 11). The same function, written with supported layers::

    Φ       Linear(a, b) per particle  -> Conv1d(a, b, kernel_size=1) over (B, a, P)
    mask    (B, P) bool                -> float (B, 1, P), spread to (B, L, P) by a fixed
                                          Conv1d(1, L, 1) with weights 1 and bias 0
    Σ_i m_i Φ(x_i)                     -> (Φ(x) · mask) [hls4ml Merge multiply], then
                                          AvgPool1d(P) = (1/P) Σ over the P particle slots
    F       Linear layers              -> the same Linear layers, the first one's weights × P

so a padded slot contributes exactly 0 whatever Φ(0) is (Φ ends in a Linear with a bias, so
Φ(0) ≠ 0), as in the float model. Multiplying by P = 2^k is exact in float32; for other P the
folded weights differ from ``P·w`` by one rounding (~1e-7 relative).

In fixed point the average pool sums in its accumulator type, then divides by P:
:func:`pool_types` widens that accumulator by ⌈log2 P⌉ integer bits so the sum of P results
cannot wrap; the division truncates the mean to the pool's result type, and F's first layer
multiplies that step by P.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

from hepchain.deploy.fixedpoint import FixedType
from hepchain.nn.deepsets import DeepSets

POOL = "pool"  # the hls4ml layer name of the average pool (the module's attribute name)


class PointwiseDeepSets(nn.Module):
    """``F(P · mean_slots(Φ(x) · mask))`` on ``x`` (B, features, P) and ``mask`` (B, 1, P)
    in {0, 1}: the sum over real particles of a Deep Sets, as hls4ml converts it."""

    def __init__(self, phi: nn.Sequential, rho: nn.Sequential, n_particles: int) -> None:
        super().__init__()
        latent = next(m for m in reversed(phi) if isinstance(m, nn.Conv1d)).out_channels
        self.phi = phi
        self.spread = nn.Conv1d(1, latent, 1)
        with torch.no_grad():
            self.spread.weight.fill_(1.0)
            self.spread.bias.zero_()
        self.spread.requires_grad_(False)
        self.pool = nn.AvgPool1d(n_particles)
        self.flatten = nn.Flatten()
        self.rho = rho

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        return self.rho(self.flatten(self.pool(self.phi(x) * self.spread(mask))))


def from_deep_sets(model: DeepSets, n_particles: int) -> PointwiseDeepSets:
    """The same function as ``model`` (sum pooling, no context) on ``n_particles`` slots, its
    weights copied (``model`` is not changed); ValueError for a mean-pooled model or MLP
    layers other than Linear, ReLU, Dropout."""
    if model.pool != "sum":
        raise ValueError("only a sum-pooled Deep Sets is re-expressed (a mean needs a division "
                         "by the particle count, which hls4ml's PyTorch front end lacks).")
    if model.rho.net[0].in_features != model.phi.net[-1].out_features:
        raise ValueError("a Deep Sets with context features is not re-expressed.")
    phi = nn.Sequential(*(_pointwise(m) for m in model.phi.net if not isinstance(m, nn.Dropout)))
    rho = nn.Sequential(*(_copy(m) for m in model.rho.net if not isinstance(m, nn.Dropout)))
    with torch.no_grad():
        rho[0].weight.mul_(float(n_particles))
    return PointwiseDeepSets(phi, rho, n_particles).eval()


def channels_first(features: np.ndarray, mask: np.ndarray) -> list[np.ndarray]:
    """The inputs of :class:`PointwiseDeepSets` from the Deep Sets' ``features`` (N, P, F)
    and boolean ``mask`` (N, P): (N, F, P) and (N, 1, P) float32."""
    return [np.ascontiguousarray(features.transpose(0, 2, 1), np.float32),
            np.ascontiguousarray(mask[:, None, :], np.float32)]


def pool_types(n_particles: int, precision: str) -> dict[str, dict[str, str]]:
    """hls4ml types of the pool (``layers`` of :func:`hepchain.deploy.hls.convert`): its
    accumulator ``precision`` widened by ⌈log2 P⌉ integer bits, holding any sum of P values
    of ``precision`` without wrapping, at the same step."""
    t = FixedType.parse(precision)
    extra = math.ceil(math.log2(n_particles))
    wide = FixedType(t.width + extra, t.integer + extra, t.signed, t.rounding, t.overflow)
    return {POOL: {"accum": wide.hls()}}


def _pointwise(layer: nn.Module) -> nn.Module:
    """A Linear as the equal Conv1d(kernel_size=1) over the particle axis; ReLU as is."""
    if isinstance(layer, nn.ReLU):
        return nn.ReLU()
    if not isinstance(layer, nn.Linear):
        raise ValueError(f"Φ layer {type(layer).__name__} is not re-expressed (Linear, ReLU).")
    conv = nn.Conv1d(layer.in_features, layer.out_features, 1)
    with torch.no_grad():
        conv.weight.copy_(layer.weight[..., None])
        conv.bias.copy_(layer.bias)
    return conv


def _copy(layer: nn.Module) -> nn.Module:
    """A copy of an F layer (Linear or ReLU)."""
    if isinstance(layer, nn.ReLU):
        return nn.ReLU()
    if not isinstance(layer, nn.Linear):
        raise ValueError(f"F layer {type(layer).__name__} is not re-expressed (Linear, ReLU).")
    copy = nn.Linear(layer.in_features, layer.out_features)
    copy.load_state_dict(layer.state_dict())
    return copy
