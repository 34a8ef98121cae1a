"""Masked multi-head self-attention over sets of variable size, and attention pooling.

Sets are padded to a common length ``T``; ``mask`` is ``(B, T)`` bool with True for real
elements. Padded elements never act as keys, so they cannot change the real elements'
outputs; their own outputs are meaningless and must be ignored by the caller::

    enc = SetTransformer(dim=64, heads=4, layers=3)
    h = enc(x, mask)                     # (B, T, 64)
    pooled = AttentionPooling(64)(h, mask)  # (B, 64)

Written in plain torch (no fused kernels) so it exports to ONNX with dynamic B and T.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

NEG = -1e9  # large negative logit for masked keys (finite, so an all-padded set gives no NaN)


class MultiHeadSelfAttention(nn.Module):
    """Scaled dot-product self-attention with ``heads`` heads and a key-padding mask."""

    def __init__(self, dim: int, heads: int = 4) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} must be divisible by heads {heads}.")
        self.heads, self.head_dim = heads, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        logits = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim)       # (B, H, T, T)
        logits = logits.masked_fill(~mask[:, None, None, :], NEG)
        att = torch.softmax(logits, dim=-1)
        return self.out((att @ v).transpose(1, 2).reshape(b, t, d))


class TransformerLayer(nn.Module):
    """Pre-norm transformer encoder layer: ``x + MHSA(LN x)``, then ``x + FFN(LN x)``."""

    def __init__(self, dim: int, heads: int = 4, ff_mult: int = 2, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = MultiHeadSelfAttention(dim, heads)
        self.ff = nn.Sequential(nn.Linear(dim, ff_mult * dim), nn.GELU(),
                                nn.Linear(ff_mult * dim, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        x = x + self.drop(self.attn(self.norm1(x), mask))
        return x + self.drop(self.ff(self.norm2(x)))


class SetTransformer(nn.Module):
    """A stack of :class:`TransformerLayer` with a final layer norm (every pair attends)."""

    def __init__(self, dim: int, heads: int = 4, layers: int = 3, ff_mult: int = 2,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.layers = nn.ModuleList(TransformerLayer(dim, heads, ff_mult, dropout)
                                    for _ in range(layers))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x, mask)
        return self.norm(x)


class AttentionPooling(nn.Module):
    """Weighted sum over the set, weights ``softmax_i(w · h_i)`` over the real elements, one
    weight vector per head (heads concatenated, so the output has ``dim`` features)."""

    def __init__(self, dim: int, heads: int = 4) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} must be divisible by heads {heads}.")
        self.heads = heads
        self.score = nn.Linear(dim, heads)
        self.value = nn.Linear(dim, dim)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        b, t, d = x.shape
        logits = self.score(x).masked_fill(~mask[..., None], NEG)         # (B, T, H)
        w = torch.softmax(logits, dim=1)
        v = self.value(x).reshape(b, t, self.heads, d // self.heads)
        return (w[..., None] * v).sum(dim=1).reshape(b, d)
