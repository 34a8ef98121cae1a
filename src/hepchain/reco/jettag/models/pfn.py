"""Particle Flow Network (Komiske, Metodiev, Thaler, JHEP 01 (2019) 121): ``F(Σ_i Φ(x_i))``
over all particle features, the Deep Sets of :mod:`hepchain.nn.deepsets`."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from hepchain.nn.deepsets import DeepSets


class PFN(nn.Module):
    """Φ widths ``phi`` (the last is the latent size), F widths ``f``, ``n_classes`` logits."""

    def __init__(self, n_features: int, n_classes: int, phi: Sequence[int],
                 f: Sequence[int]) -> None:
        super().__init__()
        self.net = DeepSets(n_features, phi[:-1], phi[-1], f, n_classes)

    def forward(self, x: Tensor, v: Tensor, mask: Tensor) -> Tensor:
        """``x`` (B, P, F) features, ``v`` (B, P, 4) unused, ``mask`` (B, P) -> (B, C)."""
        return self.net(x, mask)
