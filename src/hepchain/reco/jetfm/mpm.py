"""Masked particle modelling (Golling et al., arXiv:2401.13537): hide a fraction of each jet's
constituents (features and four-vectors removed from the backbone's inputs, a hidden flag
set) and predict their VQ-VAE tokens from the rest; cross-entropy on the hidden slots only.
MPMv2 (Leigh et al., arXiv:2409.12589): the same masking, a regression head predicting the
hidden constituents' continuous features instead of tokens (mean squared error)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hepchain.reco.jetfm.backbone import JetBackbone


def mask_particles(mask: Tensor, fraction: float,
                   generator: torch.Generator | None = None) -> Tensor:
    """Hidden slots (B, P): each real constituent with probability ``fraction`` and at least
    one per jet; padding is never hidden."""
    r = torch.rand(mask.shape, generator=generator, device=mask.device)
    hidden = (r < fraction) & mask
    first = torch.where(mask, r, 2.0).argmin(1)  # the real slot with the smallest draw
    rows = torch.arange(mask.shape[0], device=mask.device)
    hidden[rows, first] |= mask[rows, first]
    return hidden


class MaskedParticleModel(nn.Module):
    """Backbone + a linear head giving token logits (B, P, codes) per slot."""

    def __init__(self, backbone: JetBackbone, codes: int) -> None:
        super().__init__()
        self.backbone, self.head = backbone, nn.Linear(backbone.width, codes)

    def forward(self, x: Tensor, mask: Tensor, hidden: Tensor) -> Tensor:
        return self.head(self.backbone(x, mask, hidden))


class MaskedFeatureModel(nn.Module):
    """Backbone + a linear head regressing the features (B, P, F) per slot, in the units
    ``(x − mean) / scale`` (the tokeniser's standardisation, so both MPM variants weigh the
    features alike)."""

    def __init__(self, backbone: JetBackbone, mean: Tensor, scale: Tensor) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(backbone.width, backbone.hparams["n_features"])
        self.register_buffer("mean", mean.detach().clone())
        self.register_buffer("scale", scale.detach().clone())

    def forward(self, x: Tensor, mask: Tensor, hidden: Tensor) -> Tensor:
        return self.head(self.backbone(x, mask, hidden))

    def targets(self, x: Tensor) -> Tensor:
        """The regression targets of features ``x`` (…, F)."""
        return (x - self.mean) / self.scale


def masked_token_loss(logits: Tensor, tokens: Tensor, hidden: Tensor) -> Tensor:
    """Mean cross-entropy of the hidden slots' tokens; other slots do not enter."""
    return nn.functional.cross_entropy(logits[hidden], tokens[hidden])


def mpm_objective(fraction: float):
    """The per-batch MPM loss for :func:`~hepchain.reco.jetfm.pretraining.pretrain` (a new
    random mask per batch, drawn from torch's seeded generator)."""
    def loss(model: nn.Module, batch: tuple[Tensor, ...]) -> Tensor:
        x, mask, tokens = batch
        hidden = mask_particles(mask, fraction)
        return masked_token_loss(model(x, mask, hidden), tokens, hidden)
    return loss


def mpmv2_objective(fraction: float):
    """The per-batch MPMv2 loss: the MPM mask, mean squared error of the hidden slots'
    standardised features (the tokens of the batch are unused)."""
    def loss(model: nn.Module, batch: tuple[Tensor, ...]) -> Tensor:
        x, mask, _ = batch
        hidden = mask_particles(mask, fraction)
        return nn.functional.mse_loss(model(x, mask, hidden)[hidden],
                                      model.targets(x)[hidden])
    return loss
