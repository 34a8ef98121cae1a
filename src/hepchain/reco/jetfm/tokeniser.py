"""VQ-VAE constituent tokeniser (van den Oord et al. 2017; as used by MPM, arXiv:2401.13537,
and OmniJet-α, arXiv:2403.05618): each constituent's standardised features -> an MLP encoder ->
the nearest of ``codes`` codewords (its token) -> an MLP decoder back to the features.

Ours: a per-constituent MLP (OmniJet-α's tokeniser is a transformer that sees the whole jet),
straight-through gradients, the codebook and commitment losses of the original VQ-VAE, and a
data-dependent codebook start (codewords = encodings of random training constituents).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from hepchain.core.trainer import History, TrainConfig, Trainer
from hepchain.nn.mlp import MLP


class VQVAE(nn.Module):
    """Tokeniser of (…, n_features) constituent features into ``codes`` tokens."""

    def __init__(self, n_features: int, hidden: Sequence[int], latent: int, codes: int,
                 beta: float = 0.25) -> None:
        super().__init__()
        self.encoder = MLP(n_features, hidden, latent)
        self.decoder = MLP(latent, list(hidden)[::-1], n_features)
        self.codebook = nn.Parameter(torch.randn(codes, latent))
        self.beta = beta

    @property
    def codes(self) -> int:
        return self.codebook.shape[0]

    def assign(self, z: Tensor) -> Tensor:
        """Index of the nearest codeword (Euclidean) of each latent vector (…, latent)."""
        flat = z.reshape(-1, z.shape[-1])
        return torch.cdist(flat, self.codebook).argmin(-1).reshape(z.shape[:-1])

    def encode(self, x: Tensor) -> Tensor:
        """Tokens (…) of constituent features (…, n_features)."""
        return self.assign(self.encoder(x))

    def decode(self, tokens: Tensor) -> Tensor:
        """Constituent features (…, n_features) of tokens (…)."""
        return self.decoder(self.codebook[tokens])

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(reconstruction, tokens, codebook + β·commitment loss) of features (n, F)."""
        z = self.encoder(x)
        tokens = self.assign(z)
        q = self.codebook[tokens]
        vq = nn.functional.mse_loss(q, z.detach()) + self.beta * nn.functional.mse_loss(
            z, q.detach())
        return self.decoder(z + (q - z).detach()), tokens, vq


def constituents(features: np.ndarray, mask: np.ndarray) -> Tensor:
    """The real constituents' features (n, F) of padded jets (N, P, F)."""
    return torch.from_numpy(features[mask])


def fit_tokeniser(features: np.ndarray, mask: np.ndarray, train: np.ndarray, val: np.ndarray,
                  spec: dict[str, Any], settings: dict[str, Any], seed: int
                  ) -> tuple[VQVAE, History]:
    """Train a :class:`VQVAE` of sizes ``spec`` on the constituents of jets ``train``
    (early stopping on ``val``) with the ``settings`` of :class:`TrainConfig`."""
    model = VQVAE(features.shape[-1], spec["hidden"], int(spec["latent"]), int(spec["codes"]),
                  float(spec["beta"]))
    x_train, x_val = constituents(features[train], mask[train]), constituents(features[val],
                                                                              mask[val])
    with torch.no_grad():  # data-dependent start: no dead codewords on the first step
        pick = torch.randperm(len(x_train))[:model.codes]
        model.codebook.copy_(model.encoder(x_train[pick]))

    def loss(m: nn.Module, batch: tuple[Tensor]) -> Tensor:
        recon, _, vq = m(batch[0])
        return nn.functional.mse_loss(recon, batch[0]) + vq

    trainer = Trainer(model, loss, TrainConfig.from_dict(settings, seed=seed), name="tokeniser")
    history = trainer.fit((x_train,), (x_val,))
    return model.eval(), history


@dataclass(frozen=True)
class TokenQuality:
    """Codebook usage and reconstruction on held-out constituents: perplexity exp(H) of the
    token frequencies, fraction of codewords used, and the mean squared reconstruction error
    per feature (standardised units) with its standard error."""

    perplexity: float
    used_fraction: float
    mse: float
    mse_error: float
    mse_per_feature: np.ndarray


@torch.no_grad()
def token_quality(model: VQVAE, x: Tensor) -> TokenQuality:
    """:class:`TokenQuality` of ``model`` on constituent features ``x`` (n, F)."""
    tokens = model.encode(x)
    p = torch.bincount(tokens, minlength=model.codes).double() / tokens.numel()
    entropy = -(p[p > 0] * p[p > 0].log()).sum()
    err = (model.decode(tokens) - x).square()
    per_particle = err.mean(-1).numpy()
    return TokenQuality(float(entropy.exp()), float((p > 0).double().mean()),
                        float(per_particle.mean()),
                        float(per_particle.std(ddof=1) / np.sqrt(per_particle.size)),
                        err.mean(0).numpy())


@torch.no_grad()
def tokenise(model: VQVAE, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Tokens (N, P) of padded jets, −1 on padding."""
    tokens = model.encode(torch.from_numpy(features)).numpy()
    return np.where(mask, tokens, -1)
