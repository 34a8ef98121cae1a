"""Fine-tuning with few labels: a pre-trained backbone fine-tuned end to end, the same backbone
frozen with a linear probe on its pooled embedding, and the same architecture trained from
scratch — the same labelled jets and head (masked mean pool -> linear); fine-tuned and scratch
share one training budget, the probe is trained to convergence on the frozen embeddings."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from hepchain.core.io import atomic_write_bytes
from hepchain.core.seeding import derive_seed
from hepchain.core.trainer import History, TrainConfig, Trainer
from hepchain.reco.jetfm.backbone import JetBackbone

Scorer = Callable[[np.ndarray], np.ndarray]  # jet indices -> (n, n_classes) probabilities
MODES = ("fine-tuned", "linear probe", "scratch")


def pool(h: Tensor, mask: Tensor) -> Tensor:
    """Mean of the particle embeddings (B, P, D) over the real slots -> (B, D)."""
    m = mask[..., None].to(h.dtype)
    return (h * m).sum(1) / m.sum(1).clamp(min=1.0)


class JetClassifier(nn.Module):
    """Backbone -> mean pool -> linear: (x (B, P, F), mask (B, P)) -> (B, n_classes) logits."""

    def __init__(self, backbone: JetBackbone, n_classes: int) -> None:
        super().__init__()
        self.backbone, self.head = backbone, nn.Linear(backbone.width, n_classes)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        return self.head(pool(self.backbone(x, mask), mask))


def label_subset(idx: np.ndarray, labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """``fraction`` of the jets ``idx``, drawn per class (at least 2 of each class)."""
    rng = np.random.default_rng(derive_seed(seed, "labels", fraction))
    keep = [rng.permutation(idx[labels[idx] == k])[:max(2, round(fraction * np.sum(
        labels[idx] == k)))] for k in np.unique(labels[idx])]
    return np.sort(np.concatenate(keep))


def _tensors(features: np.ndarray, mask: np.ndarray, idx: np.ndarray,
             labels: np.ndarray | None = None) -> tuple[Tensor, ...]:
    out = (torch.from_numpy(features[idx]), torch.from_numpy(mask[idx]))
    return out if labels is None else (*out, torch.from_numpy(labels[idx]))


def _cross_entropy(m: nn.Module, batch: tuple[Tensor, ...]) -> Tensor:
    return nn.functional.cross_entropy(m(*batch[:-1]), batch[-1])


def fit_classifier(model: JetClassifier, features: np.ndarray, mask: np.ndarray,
                   labels: np.ndarray, train: np.ndarray, val: np.ndarray,
                   settings: dict[str, Any], seed: int, name: str
                   ) -> tuple[Scorer, History]:
    """Train ``model`` end to end on the jets ``train`` (early stopping on ``val``); return
    its class-probability scorer and history."""
    trainer = Trainer(model, _cross_entropy, TrainConfig.from_dict(settings, seed=seed),
                      name=name)
    history = trainer.fit(_tensors(features, mask, train, labels),
                          _tensors(features, mask, val, labels))
    model.eval()

    def score(idx: np.ndarray) -> np.ndarray:
        fn = lambda m, b: torch.softmax(m(*b), -1)  # noqa: E731
        return trainer.predict(_tensors(features, mask, idx), fn=fn).numpy()
    return score, history


@torch.no_grad()
def embed(backbone: JetBackbone, features: np.ndarray, mask: np.ndarray,
          batch_size: int = 512) -> np.ndarray:
    """Pooled embeddings (N, D) of all jets by the frozen ``backbone`` (eval mode)."""
    backbone.eval()
    out = [pool(backbone(torch.from_numpy(features[i:i + batch_size]),
                         torch.from_numpy(mask[i:i + batch_size])),
                torch.from_numpy(mask[i:i + batch_size]))
           for i in range(0, len(features), batch_size)]
    return torch.cat(out).numpy()


def fit_linear_probe(embedding: np.ndarray, labels: np.ndarray, train: np.ndarray,
                     val: np.ndarray, n_classes: int, settings: dict[str, Any], seed: int,
                     name: str) -> tuple[Scorer, History, nn.Module]:
    """A linear classifier on frozen embeddings (N, D), trained to convergence: ``settings``
    is the probe's own budget (many cheap epochs on the precomputed embeddings, early stopping
    on the validation jets ``val``), not the fine-tuning budget, whose few optimiser steps at
    small label fractions leave a linear head near its random start. The head's
    initialisation is seeded by ``seed``."""
    torch.manual_seed(derive_seed(seed, "probe init"))
    head = nn.Linear(embedding.shape[1], n_classes)
    emb = torch.from_numpy(embedding)
    y = torch.from_numpy(labels)
    trainer = Trainer(head, _cross_entropy, TrainConfig.from_dict(settings, seed=seed),
                      name=name)
    history = trainer.fit((emb[train], y[train]), (emb[val], y[val]))
    head.cpu().eval()

    def score(idx: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return torch.softmax(head(emb[idx]), -1).numpy()
    return score, history, head


def save_classifier(model: JetClassifier, path: Path, feature_names: list[str],
                    classes: list[str]) -> Path:
    """Write a fine-tuned classifier, loadable with ``torch.load(weights_only=True)``."""
    buf = io.BytesIO()
    torch.save({"state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
                "hparams": model.backbone.hparams,
                "n_classes": model.head.out_features, "feature_names": feature_names,
                "classes": classes}, buf)
    atomic_write_bytes(path, buf.getvalue())
    return path
