"""The one pre-training loop both objectives use: the shared :class:`~hepchain.core.trainer.
Trainer` on (features, mask, tokens) of unlabelled jets, the objective's loss per batch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from hepchain.core.trainer import History, TrainConfig, Trainer

Objective = Callable[[nn.Module, tuple[Tensor, ...]], Tensor]  # (model, (x, mask, tokens))


def jet_tensors(features: np.ndarray, mask: np.ndarray, tokens: np.ndarray,
                idx: np.ndarray) -> tuple[Tensor, Tensor, Tensor]:
    """(x (n, P, F), mask (n, P), tokens (n, P)) torch tensors of the jets ``idx``."""
    return (torch.from_numpy(features[idx]), torch.from_numpy(mask[idx]),
            torch.from_numpy(tokens[idx]))


def pretrain(model: nn.Module, objective: Objective, features: np.ndarray, mask: np.ndarray,
             tokens: np.ndarray, train: np.ndarray, val: np.ndarray, settings: dict[str, Any],
             seed: int, name: str) -> History:
    """Minimise ``objective`` on the jets ``train`` (early stopping on ``val``); labels are
    never seen; ``model`` ends on the CPU (``settings`` may train it on a GPU). Returns the
    loss history (``train_total``, ``val_loss`` per epoch)."""
    trainer = Trainer(model, objective, TrainConfig.from_dict(settings, seed=seed), name=name)
    history = trainer.fit(jet_tensors(features, mask, tokens, train),
                          jet_tensors(features, mask, tokens, val))
    model.cpu().eval()
    return history
