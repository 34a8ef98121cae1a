"""Generative next-token pre-training (OmniJet-α, Birk, Hallin, Kasieczka, arXiv:2403.05618):
the constituents in decreasing pT are a sequence; with causal attention, slot i sees the
constituents before it (a hidden start slot, then particle i − 1's features) and predicts
particle i's token, or *stop* after the last one. Sampling tokens one by one and decoding them
with the tokeniser generates jets.

Ours: the inputs are the continuous features (as in arXiv:2512.04149's hybrid), the targets
the tokens; OmniJet-α feeds token embeddings to a GPT.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from hepchain.reco.jetfm.backbone import JetBackbone
from hepchain.reco.jetfm.tokeniser import VQVAE

IGNORE = -100


def shift_right(x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(inputs, mask, hidden) of the sequence shifted by one slot: slot 0 is the hidden start
    slot, slot i > 0 holds particle i − 1; slot n (after the last of n particles) is real
    (it predicts *stop*) when n < P."""
    x_in = torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], 1)
    mask_in = torch.cat([torch.ones_like(mask[:, :1]), mask[:, :-1]], 1)
    hidden = torch.zeros_like(mask)
    hidden[:, 0] = True
    return x_in, mask_in, hidden


def next_token_targets(tokens: Tensor, mask: Tensor, stop: int) -> Tensor:
    """Target per slot of :func:`shift_right`: the token of particle i, ``stop`` at slot n < P,
    :data:`IGNORE` elsewhere."""
    targets = torch.where(mask, tokens, torch.full_like(tokens, IGNORE))
    n = mask.sum(1)
    rows = torch.nonzero(n < mask.shape[1]).squeeze(1)
    targets[rows, n[rows]] = stop
    return targets


class NextTokenModel(nn.Module):
    """Causal backbone + a linear head giving logits over the tokens and *stop* (B, P, codes + 1)
    for the next particle."""

    def __init__(self, backbone: JetBackbone, codes: int) -> None:
        super().__init__()
        if not backbone.causal:
            raise ValueError("next-token prediction needs a causal backbone")
        self.backbone, self.head, self.stop = backbone, nn.Linear(backbone.width, codes + 1), codes

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """Next-token logits of every slot of the jets ``x`` (unshifted, B, P, F)."""
        return self.head(self.backbone(*shift_right(x, mask)))


def next_token_loss(model: nn.Module, batch: tuple[Tensor, ...]) -> Tensor:
    """Mean cross-entropy of the next token (or *stop*) over the real slots."""
    x, mask, tokens = batch
    logits = model(x, mask)
    targets = next_token_targets(tokens, mask, model.stop)
    return nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(),
                                       ignore_index=IGNORE)


@torch.no_grad()
def generate(model: NextTokenModel, tokeniser: VQVAE, n_jets: int, seed: int,
             temperature: float = 1.0, batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """``n_jets`` sampled jets: decoded features (n, P, F) and mask (n, P); every jet has at
    least one constituent (stop is not sampled first)."""
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    n_slots, n_features = model.backbone.max_particles, model.backbone.hparams["n_features"]
    feats, masks = [], []
    for start in range(0, n_jets, batch_size):
        b = min(batch_size, n_jets - start)
        x = torch.zeros(b, n_slots, n_features)
        mask = torch.zeros(b, n_slots, dtype=torch.bool)
        alive = torch.ones(b, dtype=torch.bool)
        for i in range(n_slots):
            logits = model(x, mask)[:, i] / temperature  # slot i sees particles < i
            if i == 0:
                logits[:, model.stop] = -torch.inf
            token = torch.multinomial(torch.softmax(logits, -1), 1, generator=gen).squeeze(1)
            alive &= token != model.stop
            if not alive.any():
                break
            x[alive, i] = tokeniser.decode(token[alive])
            mask[alive, i] = True
        feats.append(x.numpy())
        masks.append(mask.numpy())
    return np.concatenate(feats), np.concatenate(masks)
