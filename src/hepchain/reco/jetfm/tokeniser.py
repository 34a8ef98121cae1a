"""VQ-VAE constituent tokeniser (van den Oord et al. 2017; as used by MPM, arXiv:2401.13537,
and OmniJet-α, arXiv:2403.05618): each constituent's standardised features -> an MLP encoder ->
the nearest of ``codes`` codewords (its token) -> an MLP decoder back to the features.

Ours: a per-constituent MLP (OmniJet-α's tokeniser is a transformer that sees the whole jet),
straight-through gradients, the codebook and commitment losses of the original VQ-VAE, and a
data-dependent codebook start (codewords = encodings of random training constituents); the
features are standardised per feature (:class:`~hepchain.core.standardise.Standardiser` on the
training constituents) so that the angles count as much as the wide log-momenta, and the
kinematic columns (log pT, Δη, Δφ: what the pair inputs and the jet mass are made of) divided by
a further ``emphasis`` so that their reconstruction error counts ``emphasis``² times more.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from hepchain.core.standardise import Standardiser
from hepchain.core.trainer import History, TrainConfig, Trainer
from hepchain.nn.mlp import MLP


class VQVAE(nn.Module):
    """Tokeniser of (…, n_features) constituent features into ``codes`` tokens."""

    def __init__(self, n_features: int, hidden: Sequence[int], latent: int, codes: int,
                 beta: float = 0.25, dead_below: float = 0.0) -> None:
        super().__init__()
        self.encoder = MLP(n_features, hidden, latent)
        self.decoder = MLP(latent, list(hidden)[::-1], n_features)
        self.codebook = nn.Parameter(torch.randn(codes, latent))
        self.beta, self.dead_below = beta, dead_below
        self.register_buffer("usage", torch.ones(codes))  # EMA of hits per training batch
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("scale", torch.ones(n_features))

    def set_scaling(self, scaler: Standardiser, emphasis: dict[int, float] | None = None
                    ) -> None:
        """Use the per-feature ``scaler`` (fitted on training constituents), the scale of
        column ``k`` divided by ``emphasis[k]``."""
        self.mean.copy_(torch.as_tensor(scaler.mean))
        self.scale.copy_(torch.as_tensor(scaler.scale))
        for k, factor in (emphasis or {}).items():
            self.scale[k] /= factor

    @property
    def codes(self) -> int:
        return self.codebook.shape[0]

    def assign(self, z: Tensor) -> Tensor:
        """Index of the nearest codeword (Euclidean) of each latent vector (…, latent)."""
        flat = z.reshape(-1, z.shape[-1])
        return torch.cdist(flat, self.codebook).argmin(-1).reshape(z.shape[:-1])

    def encode(self, x: Tensor) -> Tensor:
        """Tokens (…) of constituent features (…, n_features)."""
        return self.assign(self.encoder((x - self.mean) / self.scale))

    def decode(self, tokens: Tensor) -> Tensor:
        """Constituent features (…, n_features) of tokens (…)."""
        return self.decoder(self.codebook[tokens]) * self.scale + self.mean

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(reconstruction error per feature in standardised units (n, F), tokens,
        codebook + β·commitment loss) of features (n, F)."""
        target = (x - self.mean) / self.scale
        z = self.encoder(target)
        tokens = self.assign(z)
        q = self.codebook[tokens]
        if self.training and self.dead_below > 0:
            self._restart_dead_codes(z.detach(), tokens)
        vq = nn.functional.mse_loss(q, z.detach()) + self.beta * nn.functional.mse_loss(
            z, q.detach())
        return self.decoder(z + (q - z).detach()) - target, tokens, vq


    @torch.no_grad()
    def _restart_dead_codes(self, z: Tensor, tokens: Tensor) -> None:
        """Codewords hit less than ``dead_below`` times per batch (EMA, decay 0.99) move to
        random encodings of the batch (the codebook restart of Jukebox, arXiv:2005.00341)."""
        self.usage.mul_(0.99).add_(torch.bincount(tokens, minlength=self.codes), alpha=0.01)
        dead = torch.nonzero(self.usage < self.dead_below).squeeze(1)
        if dead.numel():
            self.codebook.data[dead] = z[torch.randint(len(z), (dead.numel(),))]
            self.usage[dead] = 1.0


def constituents(features: np.ndarray, mask: np.ndarray) -> Tensor:
    """The real constituents' features (n, F) of padded jets (N, P, F)."""
    return torch.from_numpy(features[mask])


def fit_tokeniser(features: np.ndarray, mask: np.ndarray, train: np.ndarray, val: np.ndarray,
                  spec: dict[str, Any], settings: dict[str, Any], seed: int,
                  kin_index: Sequence[int] = ()) -> tuple[VQVAE, History]:
    """Train a :class:`VQVAE` of sizes ``spec`` on the constituents of jets ``train``
    (early stopping on ``val``) with the ``settings`` of :class:`TrainConfig`; the columns
    ``kin_index`` get ``spec["emphasis"]``; ``seed`` also seeds the initialisation; the model ends on the CPU."""
    torch.manual_seed(seed)
    model = VQVAE(features.shape[-1], spec["hidden"], int(spec["latent"]), int(spec["codes"]),
                  float(spec["beta"]), float(spec["dead_below"]))
    x_train, x_val = constituents(features[train], mask[train]), constituents(features[val],
                                                                              mask[val])
    model.set_scaling(Standardiser.fit(x_train.numpy(), min_scale=1e-2),
                      dict.fromkeys(kin_index, float(spec["emphasis"])))
    with torch.no_grad():  # data-dependent start: no dead codewords on the first step
        pick = torch.randperm(len(x_train))[:model.codes]
        model.codebook.copy_(model.encoder((x_train[pick] - model.mean) / model.scale))

    def loss(m: nn.Module, batch: tuple[Tensor]) -> Tensor:
        error, _, vq = m(batch[0])
        return error.square().mean() + vq

    trainer = Trainer(model, loss, TrainConfig.from_dict(settings, seed=seed), name="tokeniser")
    history = trainer.fit((x_train,), (x_val,))
    return model.cpu().eval(), history


@dataclass(frozen=True)
class TokenQuality:
    """Codebook usage and reconstruction on held-out constituents: perplexity exp(H) of the
    token frequencies, fraction of codewords used, and the mean squared reconstruction error
    per feature (in the units of the particle features, weaver-standardised) with its
    standard error."""

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
