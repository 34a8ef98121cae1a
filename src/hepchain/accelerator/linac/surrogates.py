"""Training and sampling of the generative simulators on an operations log (through the core
Trainer), and the arrays the conditional model and the learned environment use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from hepchain.accelerator.linac.generative import (
    GAN,
    VAE,
    ConditionalVAE,
    cvae_loss,
    gan_loss,
    vae_loss,
)
from hepchain.accelerator.linac.lattice import END_ACTUATORS
from hepchain.accelerator.linac.lattice_vae import LatticeVAE
from hepchain.accelerator.linac.machine import END_ANGLE, END_K1
from hepchain.core.errors import DataError, UsageError
from hepchain.core.standardise import Standardiser
from hepchain.core.trainer import History, TrainConfig, Trainer

SCREEN = ("E_SCR.x", "E_SCR.sigma_x", "E_SCR.y", "E_SCR.sigma_y")
ENVIRONMENT = ("ENV.tilt", "ENV.T_out")
# channels the learned simulator needs from any log (BPM context is checked per lattice)
REQUIRED = (*SCREEN, *END_ACTUATORS, "M_SCR.x", "M_SCR.sigma_x", "M_SCR.y", "M_SCR.sigma_y",
            "SPEC.energy", *ENVIRONMENT)
DECODERS = ("mlp", "lattice")  # decoders of the learned simulator (fit_cvae)
END_SCALE = np.array([END_K1] * 3 + [END_ANGLE * 1e3] * 2)  # log units -> normalised


def _tensor(x: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x), dtype=torch.float32)


def fit_gan(train: np.ndarray, val: np.ndarray, cfg: dict[str, Any], seed: int,
            device: str = "cpu", cond: tuple[np.ndarray, np.ndarray] | None = None
            ) -> tuple[GAN, History]:
    """Train a GAN (no early stopping: a GAN's validation loss does not rank generators) on
    ``device``; with ``cond = (train_cond, val_cond)``, one condition row per sample, a
    conditional GAN. The model is returned on the CPU, as from every ``fit_*`` here."""
    torch.manual_seed(seed)
    width = 0 if cond is None else cond[0].shape[1]
    model = GAN(train.shape[1], cfg["noise"], list(cfg["hidden"]), cfg["pack"], width)
    tc = TrainConfig.from_dict(cfg["train"], seed=seed, patience=None, restore_best=False,
                               device=device)
    data = [(_tensor(x),) if cond is None else (_tensor(x), _tensor(c))
            for x, c in zip((train, val), cond or (None, None), strict=True)]
    history = Trainer(model, gan_loss, tc).fit(*data)
    return model.cpu().eval(), history


def fit_vae(train: np.ndarray, val: np.ndarray, cfg: dict[str, Any], seed: int,
            device: str = "cpu") -> tuple[VAE, History]:
    torch.manual_seed(seed)
    model = VAE(train.shape[1], cfg["latent"], list(cfg["hidden"]), cfg["learn_variance"])
    loss = vae_loss(cfg["beta"], cfg.get("free_bits", 0.0))
    tc = TrainConfig.from_dict(cfg["train"], seed=seed, device=device)
    history = Trainer(model, loss, tc).fit((_tensor(train),), (_tensor(val),))
    return model.cpu().eval(), history


@torch.no_grad()
def reconstruction_mse(vae: VAE, x: np.ndarray) -> float:
    """Mean squared reconstruction error per channel (standardised units) from the posterior
    mean."""
    return float((vae(_tensor(x)) - _tensor(x)).square().mean())


@torch.no_grad()
def latents(vae: VAE, x: np.ndarray) -> np.ndarray:
    return vae.encode(_tensor(x))[0].numpy()


@torch.no_grad()
def sample_gan(gan: GAN, n: int, seed: int, cond: np.ndarray | None = None) -> np.ndarray:
    """``n`` samples; a conditional GAN takes one ``cond`` row per sample."""
    c = None if cond is None else _tensor(cond)
    return gan.sample(n, torch.Generator().manual_seed(seed), c).numpy()


@torch.no_grad()
def sample_latent_gan(vae: VAE, gan: GAN, z_scale: Standardiser, n: int, seed: int
                      ) -> np.ndarray:
    """VAE encoder -> GAN in latent space -> VAE decoder (the seed's fix for mode collapse)."""
    z = z_scale.inverse_transform(sample_gan(gan, n, seed))
    return vae.decode(_tensor(z)).numpy()


# ---------------------------------------------------------------------------- conditional GAN

CONDITIONS = ("mode", "settings", "environment", "klystrons")  # what a cGAN may be given


@dataclass
class Conditioning:
    """What a conditional GAN of the log channels is given and what it generates.

    ``groups`` is a subset of :data:`CONDITIONS`: the operating mode (one-hot), the
    operators' set values (every channel ``c`` with a readback ``c.rb``: magnets, correctors,
    unit voltages and phases), the measured environment (``ENV.*`` and ``Cnn_ENV.*``:
    temperatures, tiltmeter, vacuum) and the klystrons' measured phase and forward power
    (``Cnn_KLY.*``). The generator produces every other channel (readbacks, BPMs, screens,
    energy, and the environment and klystrons unless given)."""

    groups: tuple[str, ...]
    given: np.ndarray  # indices of the channels in the condition
    free: np.ndarray  # indices of the generated channels
    n_modes: int

    @classmethod
    def parse(cls, spec: str, channels: list[str], n_modes: int) -> Conditioning:
        """From a ``+``-joined spec such as ``"mode+settings"`` (UsageError if malformed)."""
        groups = tuple(spec.split("+"))
        if set(groups) - set(CONDITIONS) or len(set(groups)) != len(groups):
            raise UsageError(f"cgan condition {spec!r} must join distinct names from "
                             f"{list(CONDITIONS)} with '+', e.g. 'mode+settings'.")
        names = set(channels)
        given = [j for j, c in enumerate(channels)
                 if ("settings" in groups and f"{c}.rb" in names)
                 or ("environment" in groups and c.split(".")[0].endswith("ENV"))
                 or ("klystrons" in groups and c.split(".")[0].endswith("_KLY"))]
        free = np.setdiff1d(np.arange(len(channels)), given)
        return cls(groups, np.array(given, int), free, n_modes)

    def condition(self, x: np.ndarray, modes: np.ndarray) -> np.ndarray:
        """Condition rows from standardised channels ``x`` and mode indices ``modes``."""
        onehot = np.eye(self.n_modes)[modes] if "mode" in self.groups else x[:, :0]
        return np.concatenate([x[:, self.given], onehot], 1)

    def fill(self, x: np.ndarray, generated: np.ndarray) -> np.ndarray:
        """Full channel rows: the given channels from ``x``, the rest ``generated``."""
        out = x.copy()
        out[:, self.free] = generated
        return out


# ---------------------------------------------------------------------------- conditional VAE


def context_columns(bpms: list[str]) -> list[str]:
    """Upstream readings that describe the beam entering the end section, and the environment
    channels that drive the end section's own drifts: the outdoor temperature (thermal motion
    of its quads) and the tiltmeter (the Earth tide; at its real size of ~0.07 urad it moves
    the quads by tens of nm, so it now carries little; with the earlier 80 um tide it cut the
    vertical-centroid error ~7x, docs/linac.md)."""
    cols = [f"{b}.{q}" for b in bpms[-2:] for q in ("x", "y")]
    return [*cols, "M_SCR.x", "M_SCR.sigma_x", "M_SCR.y", "M_SCR.sigma_y", "SPEC.energy",
            *ENVIRONMENT]


@dataclass
class ConditionalData:
    """Arrays for the conditional model: normalised actuators ``u``, standardised context
    (plus mode one-hot) and standardised target-screen readings (log of the sizes)."""

    u: np.ndarray
    context: np.ndarray
    y: np.ndarray

    @property
    def cond(self) -> np.ndarray:
        return np.concatenate([self.u, self.context], 1)


def screen_targets(frame: pd.DataFrame) -> np.ndarray:
    """(mu_x, log sigma_x, mu_y, log sigma_y) of the target screen [mm, log mm]."""
    y = np.array(frame[list(SCREEN)], dtype=float)
    y[:, [1, 3]] = np.log(np.clip(y[:, [1, 3]], 1e-3, None))
    return y


def conditional_arrays(frame: pd.DataFrame, ctx_cols: list[str], n_modes: int,
                       ctx_scale: Standardiser, y_scale: Standardiser) -> ConditionalData:
    u = frame[list(END_ACTUATORS)].to_numpy(float) / END_SCALE
    onehot = np.eye(n_modes)[frame["mode"].to_numpy()]
    ctx = np.concatenate([ctx_scale.transform(frame[ctx_cols].to_numpy(float)), onehot], 1)
    return ConditionalData(u, ctx, y_scale.transform(screen_targets(frame)))


def fit_cvae(train: ConditionalData, val: ConditionalData, cfg: dict[str, Any], seed: int,
             device: str = "cpu", decoder: str = "mlp", y_scale: Standardiser | None = None,
             energies_gev: np.ndarray | None = None) -> tuple[ConditionalVAE, History]:
    """The learned simulator: a conditional VAE with an MLP decoder (``decoder="mlp"``) or the
    end section's transport (``"lattice"``, :mod:`lattice_vae`; it needs ``y_scale`` and the
    modes' beam energies ``energies_gev``, :func:`mode_energies`, and runs on the CPU)."""
    if decoder not in DECODERS:
        raise UsageError(f"Unknown learned-simulator decoder {decoder!r}; use one of {DECODERS}.")
    torch.manual_seed(seed)
    if decoder == "lattice":
        model = LatticeVAE(train.cond.shape[1], cfg["latent"], list(cfg["hidden"]),
                           energies_gev, y_scale.mean, y_scale.scale)
        device = "cpu"  # cheetah's elements live on the CPU
    else:
        model = ConditionalVAE(train.y.shape[1], train.cond.shape[1], cfg["latent"],
                               list(cfg["hidden"]))
    tc = TrainConfig.from_dict(cfg["train"], seed=seed, device=device)
    history = Trainer(model, cvae_loss(cfg["beta"]), tc).fit(
        (_tensor(train.cond), _tensor(train.y)), (_tensor(val.cond), _tensor(val.y)))
    return model.cpu().eval(), history


@torch.no_grad()
def cvae_screen_mae(model: ConditionalVAE, data: ConditionalData, y_scale: Standardiser
                    ) -> np.ndarray:
    """MAE [mm] of the prior-mean prediction of each of (mu_x, sigma_x, mu_y, sigma_y)."""
    pred = y_scale.inverse_transform(model(_tensor(data.cond)).numpy())
    true = y_scale.inverse_transform(data.y)
    for y in (pred, true):
        y[:, [1, 3]] = np.exp(y[:, [1, 3]])
    return np.abs(pred - true).mean(0)


def mode_energies(frame: pd.DataFrame, n_modes: int) -> np.ndarray:
    """Per mode the median final energy ``SPEC.energy`` [GeV] of the log rows (DataError if a
    mode never appears)."""
    energy = frame.groupby("mode")["SPEC.energy"].median()
    missing = sorted(set(range(n_modes)) - set(energy.index))
    if missing:
        raise DataError(f"Operating mode(s) {missing} never appear in the training days of the "
                        "log; log more days so that every mode is seen.")
    return energy.loc[list(range(n_modes))].to_numpy(float)


def operating_points(frame: pd.DataFrame, n_modes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per mode: the operating beam on the target screen (mu_x, sigma_x, mu_y, sigma_y) [mm]
    and the normalised end-section set point, as medians of the normal-operation rows (all
    rows of the mode if it was only ever tuned). DataError if a mode never appears."""
    targets, points = np.zeros((n_modes, 4)), np.zeros((n_modes, len(END_ACTUATORS)))
    for m in range(n_modes):
        rows = frame[(frame["mode"] == m) & (frame["tuning"] == 0)]
        rows = rows if len(rows) else frame[frame["mode"] == m]
        if not len(rows):
            raise DataError(f"Operating mode {m} never appears in the training days of the "
                            "log; log more days so that every mode is seen.")
        targets[m] = rows[list(SCREEN)].median().to_numpy()
        points[m] = (rows[list(END_ACTUATORS)] / END_SCALE).median().to_numpy()
    return targets, points
