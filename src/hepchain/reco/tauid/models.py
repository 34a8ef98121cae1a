"""The tau-ID networks, all with one interface: ``model(objects, mask, high_level)`` returns
(B, 1 + 5) logits — real-vs-fake, then the five decay modes of :data:`~.truth.DECAY_MODES`.

``objects`` (B, T, F) are a candidate's particle-flow objects sorted by decreasing pT and
zero-padded, ``mask`` (B, T) True for real ones, ``high_level`` (B, H) the hand-built
variables. The MLPs see a fixed-size view, the LSTM an ordered sequence; Deep Sets, the graph
attention network and the transformer are invariant under permutations of the objects.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from hepchain.core.errors import UsageError
from hepchain.nn.attention import AttentionPooling, SetTransformer
from hepchain.nn.deepsets import DeepSets
from hepchain.nn.mlp import MLP
from hepchain.reco.tauid.truth import DECAY_MODES

N_OUT = 1 + len(DECAY_MODES)


class HighLevelMLP(nn.Module):
    """MLP on the hand-built variables only (the classic tau ID)."""

    def __init__(self, n_high: int, hidden: list[int]) -> None:
        super().__init__()
        self.net = MLP(n_high, hidden, N_OUT)

    def forward(self, objects: Tensor, mask: Tensor, high_level: Tensor) -> Tensor:
        return self.net(high_level)


class PaddedMLP(nn.Module):
    """MLP on the flattened, pT-ordered, zero-padded objects."""

    def __init__(self, n_features: int, max_objects: int, hidden: list[int]) -> None:
        super().__init__()
        self.net = MLP(n_features * max_objects, hidden, N_OUT)

    def forward(self, objects: Tensor, mask: Tensor, high_level: Tensor) -> Tensor:
        return self.net((objects * mask[..., None]).flatten(1))


class LSTMTagger(nn.Module):
    """LSTM over the objects in decreasing pT (as the ATLAS RNN tau ID); its state after the
    last real object goes to an MLP head (objects are padded at the end, so padding never
    enters that state)."""

    def __init__(self, n_features: int, hidden: int, head: list[int]) -> None:
        super().__init__()
        self.lstm = nn.LSTM(n_features, hidden, batch_first=True)
        self.head = MLP(hidden, head, N_OUT)

    def forward(self, objects: Tensor, mask: Tensor, high_level: Tensor) -> Tensor:
        states, _ = self.lstm(objects)                                     # (B, T, hidden)
        last = (mask.sum(1) - 1).clamp(min=0)
        return self.head(states[torch.arange(len(states)), last])


class DeepSetsTagger(nn.Module):
    """Deep Sets (:class:`hepchain.nn.deepsets.DeepSets`) with sum pooling."""

    def __init__(self, n_features: int, phi: list[int], latent: int, rho: list[int]) -> None:
        super().__init__()
        self.net = DeepSets(n_features, phi, latent, rho, N_OUT)

    def forward(self, objects: Tensor, mask: Tensor, high_level: Tensor) -> Tensor:
        return self.net(objects, mask)


class GraphAttention(nn.Module):
    """One GATv2 layer (Brody et al. 2022) on the fully connected graph of a candidate's
    objects: ``h_i' = ELU(h_i + Σ_j α_ij W h_j)``, ``α_ij = softmax_j a·LeakyReLU(W_s h_i +
    W_t h_j)`` over the real objects j, ``heads`` heads concatenated."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise UsageError(f"GAT width {dim} must be divisible by its heads ({heads}).")
        self.heads, self.head_dim = heads, dim // heads
        self.source, self.target = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.att = nn.Parameter(torch.randn(heads, self.head_dim) / self.head_dim ** 0.5)

    def forward(self, h: Tensor, mask: Tensor) -> Tensor:
        b, t, _ = h.shape
        s = self.source(h).view(b, t, self.heads, self.head_dim)
        v = self.target(h).view(b, t, self.heads, self.head_dim)
        pair = nn.functional.leaky_relu(s[:, :, None] + v[:, None], 0.2)  # (B, T, T, H, D)
        logits = (pair * self.att).sum(-1).masked_fill(~mask[:, None, :, None], -1e9)
        alpha = torch.softmax(logits, dim=2)                               # over neighbours j
        out = torch.einsum("bijh,bjhd->bihd", alpha, v).reshape(b, t, -1)
        return nn.functional.elu(h + out)


class GATTagger(nn.Module):
    """Graph attention network: embedding, ``layers`` :class:`GraphAttention` layers, masked
    mean and max pooling, MLP head."""

    def __init__(self, n_features: int, dim: int, heads: int, layers: int,
                 head: list[int]) -> None:
        super().__init__()
        self.embed = nn.Linear(n_features, dim)
        self.layers = nn.ModuleList(GraphAttention(dim, heads) for _ in range(layers))
        self.head = MLP(2 * dim, head, N_OUT)

    def forward(self, objects: Tensor, mask: Tensor, high_level: Tensor) -> Tensor:
        h = self.embed(objects)
        for layer in self.layers:
            h = layer(h, mask)
        m = mask[..., None].to(h.dtype)
        mean = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
        peak = h.masked_fill(~mask[..., None], -1e9).amax(1)
        return self.head(torch.cat([mean, peak], dim=-1))


class TransformerTagger(nn.Module):
    """Small transformer: embedding, :class:`~hepchain.nn.attention.SetTransformer`,
    attention pooling, MLP head."""

    def __init__(self, n_features: int, dim: int, heads: int, layers: int,
                 head: list[int]) -> None:
        super().__init__()
        self.embed = nn.Linear(n_features, dim)
        self.encoder = SetTransformer(dim, heads, layers)
        self.pool = AttentionPooling(dim, heads)
        self.head = MLP(dim, head, N_OUT)

    def forward(self, objects: Tensor, mask: Tensor, high_level: Tensor) -> Tensor:
        return self.head(self.pool(self.encoder(self.embed(objects), mask), mask))


#: config key -> (display name, class)
MODELS: dict[str, tuple[str, type[nn.Module]]] = {
    "hl_mlp": ("MLP (high-level)", HighLevelMLP),
    "padded_mlp": ("MLP (padded objects)", PaddedMLP),
    "lstm": ("LSTM", LSTMTagger),
    "deepsets": ("Deep Sets", DeepSetsTagger),
    "gat": ("GAT", GATTagger),
    "transformer": ("Transformer", TransformerTagger),
}


def build_model(key: str, spec: dict[str, Any], n_features: int, n_high: int,
                max_objects: int) -> nn.Module:
    """The network ``key`` of :data:`MODELS` with the sizes of ``spec``."""
    if key not in MODELS:
        raise UsageError(f"Unknown tau-ID model {key!r}; use some of {', '.join(MODELS)}.")
    cls = MODELS[key][1]
    if cls is HighLevelMLP:
        return cls(n_high, **spec)
    if cls is PaddedMLP:
        return cls(n_features, max_objects, **spec)
    return cls(n_features, **spec)
