"""Train a calibration regressor with the shared Trainer and predict energies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from hepchain.core.seeding import seed_everything
from hepchain.core.trainer import TrainConfig, Trainer
from hepchain.reco.calibration.models import relative_mse

GEV_PER_MEV_VISIBLE = 1.0 / 15.0
"""Input scale: visible Si energy [MeV] × this ≈ incident energy [GeV] (sampling ≈ 1.5 %)."""


def to_inputs(showers: np.ndarray) -> Tensor:
    """Pixel images [MeV] → float tensor in GeV-equivalent units."""
    return torch.as_tensor(np.asarray(showers, dtype=np.float32) * GEV_PER_MEV_VISIBLE)


class BatchedTensors(TensorDataset):
    """A TensorDataset that the DataLoader indexes one whole batch at a time (fast)."""

    def __getitems__(self, index: list[int]) -> tuple[Tensor, ...]:
        idx = torch.as_tensor(index)
        return tuple(t[idx] for t in self.tensors)


def _whole_batch(batch: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    return batch


def make_trainer(model: nn.Module, loss_fn: Any, train_cfg: dict[str, Any], seed: int) -> Trainer:
    """The shared Trainer, fed by whole-batch tensor indexing."""
    return Trainer(model, loss_fn, TrainConfig.from_dict(train_cfg, seed=seed),
                   collate_fn=_whole_batch)


def _loss(model: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
    x, energy = batch
    return relative_mse(model(x), energy)


def seeded_model(build: Callable[[], nn.Module], seed: int) -> nn.Module:
    """``build()`` after seeding every RNG with ``seed``: the initial weights are the seed's."""
    seed_everything(seed)
    return build()


def fit_regressor(build: Callable[[], nn.Module], train: tuple[Tensor, Tensor],
                  val: tuple[Tensor, Tensor], train_cfg: dict[str, Any], seed: int,
                  loss_fn: Any = _loss) -> Trainer:
    """Build the model (x → E [GeV]) after seeding with ``seed`` (so a re-run starts from the
    same weights) and fit it by the relative MSE; returns the trainer (best weights)."""
    trainer = make_trainer(seeded_model(build, seed), loss_fn, train_cfg, seed)
    trainer.fit(BatchedTensors(*train), BatchedTensors(*val))
    return trainer


def predict(trainer: Trainer, x: Tensor) -> np.ndarray:
    """Predicted energies [GeV] for inputs ``x``."""
    dummy = torch.zeros(x.shape[0])
    return trainer.predict(BatchedTensors(x, dummy)).numpy().astype(float)
