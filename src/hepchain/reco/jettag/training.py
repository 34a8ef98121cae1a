"""Training of the particle-level networks: the one :class:`~hepchain.core.trainer.Trainer`
(checkpointed, so a killed run resumes) with cross-entropy, the same settings for every model."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from hepchain.core.trainer import TrainConfig, Trainer
from hepchain.reco.jettag.data import ParticleTensors

Scorer = Callable[[np.ndarray], np.ndarray]  # jet indices -> (n, n_classes) probabilities


@dataclass(frozen=True)
class Fitted:
    """A trained network: its class-probability scorer, trainable parameters and measured
    throughput [jets/s] on this machine: training (optimisation passes only) and inference
    (the validation jets, batch size of the training settings)."""

    score: Scorer
    parameters: int
    train_jets_per_s: float
    infer_jets_per_s: float
    model: nn.Module
    history: list[dict[str, float]]


def tensors_of(t: ParticleTensors, idx: np.ndarray,
               labels: np.ndarray | None = None) -> tuple[Tensor, ...]:
    """(x, v, mask[, y]) torch tensors of the jets ``idx``."""
    out = (torch.from_numpy(t.features[idx]), torch.from_numpy(t.vectors[idx]),
           torch.from_numpy(t.mask[idx]))
    return out if labels is None else (*out, torch.from_numpy(labels[idx]))


def fit_network(model: nn.Module, t: ParticleTensors, labels: np.ndarray, train: np.ndarray,
                val: np.ndarray, settings: dict[str, Any], seed: int, name: str) -> Fitted:
    """Train ``model`` on the jets ``train`` (early stopping on ``val``) with ``settings``
    (a ``train:`` block of :class:`TrainConfig`)."""
    def loss(m: nn.Module, batch: tuple[Tensor, ...]) -> Tensor:
        return nn.functional.cross_entropy(m(*batch[:3]), batch[3])

    trainer = Trainer(model, loss, TrainConfig.from_dict(settings, seed=seed), name=name)
    history = trainer.fit(tensors_of(t, train, labels), tensors_of(t, val, labels))
    seconds = history.series("time_s")  # training passes only, kept across a resume
    train_rate = len(seconds) * train.size / max(sum(seconds), 1e-9)

    def score(idx: np.ndarray) -> np.ndarray:
        probs = trainer.predict(tensors_of(t, idx),
                                fn=lambda m, b: torch.softmax(m(*b[:3]), dim=-1))
        return probs.numpy()

    t0 = time.perf_counter()
    score(val)
    infer_rate = val.size / max(time.perf_counter() - t0, 1e-9)
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return Fitted(score, n_params, train_rate, infer_rate, model.eval(), history.epochs)
