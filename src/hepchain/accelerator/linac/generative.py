"""Generative simulators of the operations log: plain GAN, VAE, VAE -> latent GAN -> decoder,
conditional GAN (the same GAN given the operating mode and/or machine settings), and a
conditional VAE of the target-screen readings given the end-section settings.

All models see standardised channels (zero mean, unit variance on the training days).

GAN training goes through the core :class:`~hepchain.core.trainer.Trainer` with simultaneous
gradient descent: one loss holds the discriminator terms (generator output detached) and the
non-saturating generator term evaluated through a copy of the discriminator whose parameters
are detached (``torch.func.functional_call``), so one backward pass gives each network the
gradient of its own objective and one optimizer step updates both.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.func import functional_call
from torch.nn import functional as F

from hepchain.core.errors import UsageError
from hepchain.nn.mlp import MLP


class VAE(nn.Module):
    """Gaussian VAE ``x -> (mu, log var) -> z -> x_hat`` with a learned per-channel output
    log-variance when ``learn_variance`` (heteroscedastic likelihood) else unit variance."""

    def __init__(self, dim: int, latent: int, hidden: list[int],
                 learn_variance: bool = False) -> None:
        super().__init__()
        self.latent = latent
        self.encoder = MLP(dim, hidden, 2 * latent, activation=nn.SiLU)
        self.decoder = MLP(latent, hidden[::-1], dim, activation=nn.SiLU)
        self.log_var = nn.Parameter(torch.zeros(dim), requires_grad=learn_variance)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mu, log_var = self.encoder(x).chunk(2, dim=-1)
        return mu, log_var.clamp(-12, 6)

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder(z)

    def forward(self, x: Tensor) -> Tensor:
        """Reconstruction from the posterior mean."""
        return self.decode(self.encode(x)[0])


def vae_loss(beta: float, free_bits: float = 0.0) -> Callable[[VAE, tuple[Tensor, ...]],
                                                                dict[str, Tensor]]:
    """Negative ELBO per channel: Gaussian NLL + ``beta`` * KL (KL per latent floored at
    ``free_bits`` nats to keep latents in use)."""

    def loss(model: VAE, batch: tuple[Tensor, ...]) -> dict[str, Tensor]:
        x = batch[0]
        mu, log_var = model.encode(x)
        z = mu + torch.randn_like(mu) * (0.5 * log_var).exp()
        x_hat = model.decode(z)
        nll = 0.5 * ((x - x_hat).square() * (-model.log_var).exp() + model.log_var).mean()
        kl = 0.5 * (mu.square() + log_var.exp() - 1 - log_var).mean(0)
        kl = kl.clamp_min(free_bits).sum() / x.shape[1]
        return {"nll": nll, "kl": beta * kl}

    return loss


class GAN(nn.Module):
    """MLP generator ``(z, c) -> x`` and discriminator ``(x, c) -> logit``. With ``cond > 0``
    it is a conditional GAN (Mirza & Osindero 2014): both networks see a condition vector ``c``
    (e.g. the operating mode one-hot and the machine settings), so samples of one condition
    cannot drift into another's region. With ``pack > 1`` the discriminator judges ``pack``
    (sample, condition) pairs at once, concatenated (PacGAN, Lin et al. 2018): a generator
    that collapses onto a few modes yields packs that look too alike, which a single-sample
    discriminator cannot see. ``cond = 0``, ``pack = 1`` is the plain GAN::

        gan = GAN(dim=16, noise=16, hidden=[128, 128], pack=4)          # unconditional
        cgan = GAN(dim=16, noise=16, hidden=[128, 128], pack=4, cond=8)  # x | c, c of size 8
    """

    def __init__(self, dim: int, noise: int, hidden: list[int], pack: int = 1,
                 cond: int = 0) -> None:
        super().__init__()
        if pack < 1:
            raise UsageError(f"GAN pack must be at least 1, got {pack}.")
        self.noise, self.pack, self.cond = noise, pack, cond
        self.generator = MLP(noise + cond, hidden, dim, activation=nn.SiLU)
        self.discriminator = MLP((dim + cond) * pack, hidden[::-1], 1,
                                 activation=lambda: nn.LeakyReLU(0.2))

    def generate(self, z: Tensor, cond: Tensor | None = None) -> Tensor:
        """Samples for the noise ``z`` (n, noise) and, if conditional, ``cond`` (n, cond)."""
        return self.generator(z if cond is None else torch.cat([z, cond], -1))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None,
               cond: Tensor | None = None) -> Tensor:
        """``n`` samples; a conditional GAN needs ``cond`` (n, cond), one row per sample."""
        if (cond is None) != (self.cond == 0):
            raise UsageError(f"This GAN has a condition of size {self.cond}; pass cond (n, "
                             f"{self.cond}) exactly when it is conditional.")
        return self.generate(torch.randn(n, self.noise, generator=generator), cond)


def gan_loss(model: GAN, batch: tuple[Tensor, ...]) -> dict[str, Tensor]:
    """Discriminator BCE on real/fake plus the non-saturating generator loss (see module doc);
    ``batch`` is ``(x,)`` or, for a conditional GAN, ``(x, c)``: the fakes get the real rows'
    conditions. Samples are judged in packs of ``model.pack`` (a batch's remainder is dropped;
    a batch smaller than one pack repeats its rows)."""
    real, cond = batch[0], (batch[1] if model.cond else None)
    n = max(1, real.shape[0] // model.pack) * model.pack
    rows = torch.arange(n, device=real.device) % real.shape[0]  # a short batch repeats
    real, cond = real[rows], (None if cond is None else cond[rows])
    fake = model.generate(torch.randn(n, model.noise, device=real.device), cond)
    packed = lambda x: (x if cond is None else torch.cat([x, cond], -1)  # noqa: E731
                        ).reshape(n // model.pack, -1)
    d = model.discriminator
    d_real = d(packed(real))
    d_fake = d(packed(fake.detach()))
    frozen = {k: v.detach() for k, v in d.named_parameters()}
    g_logit = functional_call(d, frozen, (packed(fake),))
    ones, zeros = torch.ones_like(d_real), torch.zeros_like(d_real)
    return {"d_real": F.binary_cross_entropy_with_logits(d_real, ones),
            "d_fake": F.binary_cross_entropy_with_logits(d_fake, zeros),
            "g": F.binary_cross_entropy_with_logits(g_logit, ones)}


class ConditionalVAE(nn.Module):
    """p(y | s, c, z): target-screen readings ``y`` given end-section settings ``s`` and the
    upstream context ``c`` (BPMs, matching screen, energy, mode); ``z ~ N(0, 1)`` stands for
    what the context does not show (e.g. the incoming beam's divergence)."""

    def __init__(self, y_dim: int, cond_dim: int, latent: int, hidden: list[int]) -> None:
        super().__init__()
        self.latent = latent
        self.encoder = MLP(y_dim + cond_dim, hidden, 2 * latent, activation=nn.SiLU)
        self.decoder = MLP(cond_dim + latent, hidden, 2 * y_dim, activation=nn.SiLU)

    def decode(self, cond: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
        mean, log_var = self.decoder(torch.cat([cond, z], -1)).chunk(2, -1)
        return mean, log_var.clamp(-10, 4)

    def forward(self, cond: Tensor, z: Tensor | None = None) -> Tensor:
        """Mean prediction for ``cond`` (prior mean z = 0 unless given)."""
        z = torch.zeros(cond.shape[0], self.latent, device=cond.device) if z is None else z
        return self.decode(cond, z)[0]


def cvae_loss(beta: float) -> Callable[[ConditionalVAE, tuple[Tensor, ...]], dict[str, Tensor]]:
    """Negative conditional ELBO (Gaussian NLL with learned variance + beta * KL)."""

    def loss(model: ConditionalVAE, batch: tuple[Tensor, ...]) -> dict[str, Tensor]:
        cond, y = batch
        mu, log_var = model.encoder(torch.cat([y, cond], -1)).chunk(2, -1)
        log_var = log_var.clamp(-12, 6)
        z = mu + torch.randn_like(mu) * (0.5 * log_var).exp()
        mean, out_lv = model.decode(cond, z)
        nll = 0.5 * ((y - mean).square() * (-out_lv).exp() + out_lv).mean()
        kl = 0.5 * (mu.square() + log_var.exp() - 1 - log_var).sum(-1).mean() / y.shape[1]
        return {"nll": nll, "kl": beta * kl}

    return loss
