"""Training of the tau-ID networks through the one :class:`~hepchain.core.trainer.Trainer`:
a pT-weighted real-vs-fake cross-entropy plus the decay-mode cross-entropy on real τ of known
mode, combined by :class:`~hepchain.core.losses.StaticWeights`."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from hepchain.core.losses import StaticWeights
from hepchain.core.trainer import TrainConfig, Trainer
from hepchain.reco.tauid.candidates import Candidates
from hepchain.reco.tauid.data import Inputs


@dataclass(frozen=True)
class Fitted:
    """A trained tau-ID network: τ score (sigmoid of the ID logit) and decay-mode
    probabilities of every candidate, its parameter count and training time [s]."""

    score: np.ndarray
    mode_probs: np.ndarray
    parameters: int
    train_seconds: float
    history: list[dict[str, float]]


def tensors(x: Inputs, c: Candidates, idx: np.ndarray) -> tuple[Tensor, ...]:
    """(objects, mask, high_level, is_tau, mode, weight) of the candidates ``idx``."""
    return (torch.from_numpy(x.objects[idx]), torch.from_numpy(x.mask[idx]),
            torch.from_numpy(x.high_level[idx]),
            torch.from_numpy(c.is_tau[idx].astype(np.float32)),
            torch.from_numpy(c.mode[idx].astype(np.int64)), torch.from_numpy(x.weight[idx]))


def tau_losses(out: Tensor, is_tau: Tensor, mode: Tensor, weight: Tensor) -> dict[str, Tensor]:
    """``id``: weighted binary cross-entropy of the first logit; ``mode``: cross-entropy of
    the decay-mode logits over the candidates with a known mode (0 if none in the batch)."""
    bce = nn.functional.binary_cross_entropy_with_logits(out[:, 0], is_tau, reduction="none")
    known = mode >= 0
    ce = (nn.functional.cross_entropy(out[known, 1:], mode[known]) if known.any()
          else out.sum() * 0.0)
    return {"id": (weight * bce).mean(), "mode": ce}


def fit_tagger(model: nn.Module, x: Inputs, c: Candidates, train: np.ndarray, val: np.ndarray,
               settings: dict[str, Any], mode_weight: float, seed: int, name: str) -> Fitted:
    """Train ``model`` on ``train`` (early stopping on ``val``) and score every candidate."""
    def loss(m: nn.Module, batch: tuple[Tensor, ...]) -> dict[str, Tensor]:
        return tau_losses(m(*batch[:3]), *batch[3:])

    trainer = Trainer(model, loss, TrainConfig.from_dict(settings, seed=seed), name=name,
                      weighting=StaticWeights({"id": 1.0, "mode": mode_weight}))
    t0 = time.process_time()
    history = trainer.fit(tensors(x, c, train), tensors(x, c, val))
    seconds = time.process_time() - t0
    out = trainer.predict(tensors(x, c, np.arange(len(c)))[:3], fn=lambda m, b: m(*b))
    return Fitted(torch.sigmoid(out[:, 0]).numpy(), torch.softmax(out[:, 1:], -1).numpy(),
                  sum(p.numel() for p in model.parameters() if p.requires_grad), seconds,
                  history.epochs)
