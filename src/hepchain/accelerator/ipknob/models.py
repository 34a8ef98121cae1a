"""Set-value models of seed 004: a two-layer CNN and the weighted-sum (WS) model.

Both take the six normalised channels resampled to S segments, shape (B, 6, S), with the
normalised knob value as the last channel, and return the set value in normalised knob units.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

KNOB_CHANNEL = -1


def per_scan_norm(x: Tensor) -> Tensor:
    """Standardise the readout channels of each scan over its segments (operators judge the
    shape of a scan, not its level); the knob channel is passed through unchanged."""
    r = x[:, :KNOB_CHANNEL]
    r = (r - r.mean(-1, keepdim=True)) / (r.std(-1, keepdim=True) + 1e-6)
    return torch.cat([r, x[:, KNOB_CHANNEL:]], dim=1)


class SetValueCNN(nn.Module):
    """Two 1-d convolutions (continuity of the response in time) and a linear read-out.

    The scan is put in a canonical frame first: reversed if the knob was stepped downwards,
    and the read-out is the set value's offset from the scan centre in units of the scan's
    own knob spread, ŷ = ū + σ_u f(x). The convolutions then only have to locate the
    operators' preferred point along the scan, which is the same task for every range and
    direction.
    """

    def __init__(self, channels: int = 6, segments: int = 100, hidden: int = 16,
                 kernel: int = 5, dropout: float = 0.1) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv1d(channels, hidden, kernel, padding=kernel // 2), nn.ReLU(),
            nn.Conv1d(hidden, hidden, kernel, padding=kernel // 2), nn.ReLU(),
            nn.AvgPool1d(2), nn.Flatten(), nn.Dropout(dropout))
        self.head = nn.Linear(hidden * (segments // 2), 1)

    def forward(self, x: Tensor) -> Tensor:
        knob = x[:, KNOB_CHANNEL]
        centre, spread = knob.mean(-1), knob.std(-1) + 1e-6
        down = knob[:, -1] < knob[:, 0]
        x = torch.where(down[:, None, None], x.flip(-1), x)
        x = torch.cat([per_scan_norm(x)[:, :KNOB_CHANNEL],
                       ((x[:, KNOB_CHANNEL] - centre[:, None]) / spread[:, None])[:, None]], 1)
        return centre + spread * self.head(self.conv(x)).squeeze(-1)


class WeightedSum(nn.Module):
    """Score-weighted mean of the scanned knob values: ŷ = Σ_t softmax(s)_t u_t.

    The score is s_t = Σ_c w_c (k_c * x_c)_t [+ MLP(x_t)]: each channel c is smoothed by its
    own positive, normalised kernel k_c and weighted by w_c (the learned per-channel weights,
    see :meth:`channel_weights`); ``hidden > 0`` adds a small per-segment MLP for interactions
    (then w_c is only the linear part of the score). The output always lies inside the scanned
    range.
    """

    def __init__(self, channels: int = 6, kernel: int = 5, hidden: int = 0) -> None:
        super().__init__()
        self.kernel_logits = nn.Parameter(torch.zeros(channels, 1, kernel))
        self.weights = nn.Parameter(torch.zeros(channels))
        self.mlp = nn.Sequential(nn.Conv1d(channels, hidden, 1), nn.Tanh(),
                                 nn.Conv1d(hidden, 1, 1)) if hidden > 0 else None
        self.channels, self.kernel = channels, kernel

    def scores(self, x: Tensor) -> Tensor:
        """Per-segment scores (B, S)."""
        x = per_scan_norm(x)
        k = torch.softmax(self.kernel_logits, dim=-1)
        smooth = nn.functional.conv1d(x, k, padding=self.kernel // 2, groups=self.channels)
        score = torch.einsum("c,bcs->bs", self.weights, smooth)
        return score if self.mlp is None else score + self.mlp(x).squeeze(1)

    def forward(self, x: Tensor) -> Tensor:
        w = torch.softmax(self.scores(x), dim=-1)
        return (w * x[:, KNOB_CHANNEL]).sum(-1)

    def channel_weights(self) -> Tensor:
        """The learned linear score weight w_c of each input channel."""
        return self.weights.detach().clone()


def l1_loss(model: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
    """Mean |ŷ − y| in normalised knob units (the seed's loss).

    In training, half of the scans are reversed in time: the scan direction does not change
    the set value, so this doubles the data without inventing any.
    """
    x, y = batch
    if model.training:
        flip = torch.rand(x.shape[0], device=x.device) < 0.5
        x = torch.where(flip[:, None, None], x.flip(-1), x)
    return (model(x) - y).abs().mean()


def build_model(kind: str, cfg: dict, segments: int) -> nn.Module:
    """``kind`` 'cnn' or 'ws' with the preset's model settings."""
    if kind == "cnn":
        return SetValueCNN(segments=segments, **cfg)
    if kind == "ws":
        return WeightedSum(**cfg)
    raise ValueError(f"unknown model kind {kind!r}")
