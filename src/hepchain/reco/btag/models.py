"""Track-based taggers: Deep Sets and the GN1-style attention network with auxiliary heads.

GN1-style (ATL-PHYS-PUB-2022-027, Salt's GN1/GN2 configs), on padded track sets:

- per-track encoder: MLP on [track inputs, jet pT, η] → ``dim``;
- ``layers`` transformer layers in which every track attends to every other real track
  (and to ``registers`` learned tokens appended to every jet, as salt's ``num_registers``;
  they take part in the pooling, not in the track heads);
- attention pooling → jet representation ``g``;
- heads: jet flavour MLP(g ⊕ jet inputs); track origin MLP(h_i ⊕ g) → 8 classes;
  same-vertex pair logit e_ij = w·ReLU(A h_i + A h_j + a) + (B h_i)·(B h_j)/√k, symmetric in
  i, j and linear in the number of pairs times ``k`` (cheap enough for all T² pairs on CPU).

Heads for tasks not in ``tasks`` are not built (ablations train exactly what they use).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from hepchain.nn.attention import AttentionPooling, SetTransformer
from hepchain.nn.deepsets import DeepSets
from hepchain.nn.mlp import MLP
from hepchain.reco.btag.labels import ORIGIN_CLASSES

TASKS: tuple[str, ...] = ("jet", "track", "vertex")


class PairHead(nn.Module):
    """Symmetric pairwise logits (B, T, T) from track representations (B, T, D)."""

    def __init__(self, dim: int, hidden: int = 16) -> None:
        super().__init__()
        self.a = nn.Linear(dim, hidden)
        self.b = nn.Linear(dim, hidden, bias=False)
        self.w = nn.Linear(hidden, 1)
        self.scale = 1.0 / math.sqrt(hidden)

    def forward(self, h: Tensor) -> Tensor:
        a = self.a(h)
        pair = self.w(torch.relu(a[:, :, None, :] + a[:, None, :, :])).squeeze(-1)
        b = self.b(h)
        return pair + (b @ b.transpose(1, 2)) * self.scale


class GN1Tagger(nn.Module):
    """GN1-style tagger; ``forward`` returns a dict with ``jet`` logits (B, C) and, if those
    tasks are enabled, ``track`` logits (B, T, 8) and ``vertex`` pair logits (B, T, T)."""

    def __init__(self, n_track_features: int, n_jet_features: int, n_classes: int,
                 dim: int = 64, heads: int = 4, layers: int = 3, dropout: float = 0.0,
                 tasks: Sequence[str] = TASKS, registers: int = 0) -> None:
        super().__init__()
        unknown = set(tasks) - set(TASKS)
        if unknown or "jet" not in tasks:
            raise ValueError(f"tasks must include 'jet' and be among {TASKS}, got {tasks}.")
        if registers < 0:
            raise ValueError(f"registers must be 0 or more, got {registers}.")
        self.tasks = tuple(tasks)
        self.init = MLP(n_track_features + n_jet_features, [dim], dim)
        self.registers = nn.Parameter(1e-4 * torch.randn(registers, dim)) if registers else None
        self.encoder = SetTransformer(dim, heads, layers, dropout=dropout)
        self.pool = AttentionPooling(dim, heads)
        self.jet_head = MLP(dim + n_jet_features, [dim, dim // 2], n_classes)
        self.track_head = (MLP(2 * dim, [dim], len(ORIGIN_CLASSES)) if "track" in tasks
                           else None)
        self.vertex_head = PairHead(dim) if "vertex" in tasks else None

    def forward(self, tracks: Tensor, mask: Tensor, jet: Tensor) -> dict[str, Tensor]:
        t = tracks.shape[1]
        x = torch.cat([tracks, jet[:, None, :].expand(-1, t, -1)], dim=-1)
        h, m = self.init(x), mask
        if self.registers is not None:
            reg = self.registers.expand(h.shape[0], -1, -1)
            h = torch.cat([h, reg], dim=1)
            m = torch.cat([mask, mask.new_ones(reg.shape[:2])], dim=1)
        h = self.encoder(h, m)
        g = self.pool(h, m)
        h = h[:, :t]
        out = {"jet": self.jet_head(torch.cat([g, jet], dim=-1))}
        if self.track_head is not None:
            out["track"] = self.track_head(torch.cat([h, g[:, None, :].expand(-1, t, -1)], -1))
        if self.vertex_head is not None:
            out["vertex"] = self.vertex_head(h)
        return out


class DeepSetsTagger(nn.Module):
    """Deep Sets over tracks (Φ on [track inputs, jet inputs], masked sum, F with jet inputs)."""

    def __init__(self, n_track_features: int, n_jet_features: int, n_classes: int,
                 phi: Sequence[int] = (64, 64), latent: int = 64, rho: Sequence[int] = (64, 32)
                 ) -> None:
        super().__init__()
        self.net = DeepSets(n_track_features + n_jet_features, phi, latent, rho, n_classes,
                            context_dim=n_jet_features)

    def forward(self, tracks: Tensor, mask: Tensor, jet: Tensor) -> dict[str, Tensor]:
        t = tracks.shape[1]
        x = torch.cat([tracks, jet[:, None, :].expand(-1, t, -1)], dim=-1)
        return {"jet": self.net(x, mask, jet)}


class JetProbabilities(nn.Module):
    """Export wrapper: preprocessed (tracks, mask, jet) → flavour probabilities (B, C)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, tracks: Tensor, mask: Tensor, jet: Tensor) -> Tensor:
        return torch.softmax(self.model(tracks, mask, jet)["jet"], dim=-1)
