"""The L1 tagger of the hls4ml benchmark: an MLP 16 → 64 → 32 → 32 → 5 with ReLU (hls4ml
tutorial, part 1), trained on standardised features by the one
:class:`~hepchain.core.trainer.Trainer`; it ends at the logits (softmax is monotonic, the top
class needs none, and on the FPGA it would cost lookup tables)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from hepchain.core.trainer import TrainConfig, Trainer
from hepchain.nn.mlp import MLP


def l1_mlp(n_in: int, hidden: Sequence[int], n_out: int) -> nn.Sequential:
    """``n_in → hidden... → n_out`` with ReLU: a plain ``nn.Sequential`` of ``Linear``/``ReLU``
    (what hls4ml's PyTorch front end converts)."""
    return MLP(n_in, hidden, n_out).net


def fit_classifier(model: nn.Module, x: np.ndarray, y: np.ndarray, train: np.ndarray,
                   val: np.ndarray, settings: dict[str, Any], seed: int, name: str,
                   teacher: tuple[np.ndarray, float] | None = None) -> nn.Module:
    """Train ``model`` (features → logits) with cross-entropy on the jets ``train``, early
    stopping on ``val``; with ``teacher = (teacher logits of all jets, temperature T)`` the loss
    is knowledge distillation, ½ CE + ½ T² KL(softmax(teacher/T) ‖ softmax(student/T))."""
    def tensors(idx: np.ndarray) -> tuple[Tensor, ...]:
        out = (torch.from_numpy(x[idx]), torch.from_numpy(y[idx]))
        return out if teacher is None else (*out, torch.from_numpy(teacher[0][idx]))

    def loss(m: nn.Module, batch: tuple[Tensor, ...]) -> Tensor:
        logits = m(batch[0])
        ce = nn.functional.cross_entropy(logits, batch[1])
        if teacher is None:
            return ce
        t = teacher[1]
        kl = nn.functional.kl_div(nn.functional.log_softmax(logits / t, -1),
                                  nn.functional.log_softmax(batch[2] / t, -1),
                                  log_target=True, reduction="batchmean")
        return 0.5 * ce + 0.5 * t * t * kl

    trainer = Trainer(model, loss, TrainConfig.from_dict(settings, seed=seed), name=name)
    trainer.fit(tensors(train), tensors(val))
    return model.eval()


def logits_of(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """The model's logits of ``x`` (float32 features) as a NumPy array."""
    with torch.no_grad():
        return model(torch.from_numpy(np.ascontiguousarray(x, np.float32))).numpy()
