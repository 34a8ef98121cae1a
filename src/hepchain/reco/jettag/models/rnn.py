"""Recurrent tagger over pT-ordered constituents (Guest et al., PRD 94 (2016) 112002; Egan et
al., arXiv:1711.09059): a GRU reads the particles from the hardest to the softest and the
state after the softest real particle feeds a dense head."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from hepchain.nn.mlp import MLP


def pt_order(v: Tensor, mask: Tensor) -> Tensor:
    """(B, P) indices that put the real particles first, by decreasing pT, padding last."""
    pt = (v[..., 0] ** 2 + v[..., 1] ** 2).sqrt()  # not hypot: ONNX has no such operator
    return torch.argsort(torch.where(mask, pt, torch.full_like(pt, -1.0)), dim=1,
                         descending=True)


class GRUTagger(nn.Module):
    """GRU with ``hidden`` units and ``layers`` layers over the particle features, then dense
    ``fc`` widths -> ``n_classes`` logits. Padding sits after the last real particle, so the
    read-out state never sees it: the network is exactly masked and independent of the input
    order (up to particles of exactly equal pT, whose relative order the sort keeps open)."""

    def __init__(self, n_features: int, n_classes: int, hidden: int, layers: int,
                 fc: Sequence[int]) -> None:
        super().__init__()
        self.gru = nn.GRU(n_features, hidden, num_layers=layers, batch_first=True)
        self.head = MLP(hidden, fc, n_classes)

    def forward(self, x: Tensor, v: Tensor, mask: Tensor) -> Tensor:
        """``x`` (B, P, F), ``v`` (B, P, 4) = (px, py, pz, E) [GeV], ``mask`` (B, P) -> (B, C)."""
        order = pt_order(v, mask)
        states, _ = self.gru(torch.gather(x, 1, order[..., None].expand_as(x)))
        last = (mask.sum(1) - 1).clamp(min=0)
        return self.head(states[torch.arange(x.shape[0]), last])
