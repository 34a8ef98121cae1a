"""Training of the decay-aware transformer through the one :class:`~hepchain.core.trainer.Trainer`:
``L = L_class + α L_hop + β L_assign`` (``core.losses.StaticWeights``), early-stopped on the
validation classification loss alone so that every α is selected by the same criterion."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from hepchain.analysis.decayaware.model import DecayAwareTransformer
from hepchain.analysis.decayaware.objects import FEATURES, N_CONTINUOUS, ROLES, EventObjects
from hepchain.core.losses import StaticWeights
from hepchain.core.standardise import Standardiser
from hepchain.core.trainer import History, TrainConfig, Trainer


@dataclass
class Fitted:
    """A trained network's outputs: validation and test event scores, predicted hop counts
    (N_test, T, T) and role probabilities (N_test, T, n_roles), and its training history."""

    val_scores: np.ndarray
    scores: np.ndarray
    hops: np.ndarray
    roles: np.ndarray
    history: History


def _tensors(obj: EventObjects, scale: Standardiser, labels: np.ndarray) -> tuple[Tensor, ...]:
    x = obj.x.copy()
    x[..., :N_CONTINUOUS] = np.where(obj.mask[..., None],
                                     scale.transform(x[..., :N_CONTINUOUS].reshape(-1, N_CONTINUOUS)
                                                     ).reshape(*x.shape[:2], N_CONTINUOUS), 0.0)
    return (torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(obj.mask),
            torch.as_tensor(labels, dtype=torch.float32), torch.as_tensor(obj.hops),
            torch.as_tensor(obj.roles))


def _loss(alpha: float, beta: float, n_hops: int):
    def loss(model: nn.Module, batch: tuple[Tensor, ...]) -> dict[str, Tensor]:
        x, mask, y, hops, roles = batch
        logit, hop_logits, role_logits = model(x, mask)
        out = {"cls": nn.functional.binary_cross_entropy_with_logits(logit, y)}
        if alpha > 0:
            eye = torch.eye(hops.shape[1], dtype=torch.bool)
            valid = (hops >= 0) & ~eye
            out["hop"] = (nn.functional.cross_entropy(hop_logits[valid],
                                                      hops[valid].clamp(max=n_hops - 1))
                          if valid.any() else hop_logits.sum() * 0.0)
        if beta > 0:
            valid = roles >= 0
            out["assign"] = nn.functional.cross_entropy(role_logits[valid], roles[valid])
        return out
    return loss


def fit_network(obj: EventObjects, labels: np.ndarray, train: np.ndarray, val: np.ndarray,
                test: np.ndarray, config: dict[str, Any], alpha: float, beta: float,
                seed: int) -> Fitted:
    """Train one network (hop weight ``alpha``, assignment weight ``beta``) on ``train``,
    early-stopped on ``val``; return its outputs on ``test``."""
    m, n_hops = config["model"], int(config["model"]["n_hops"])
    real = obj.x[train][obj.mask[train]][:, :N_CONTINUOUS]
    scale = Standardiser.fit(real)
    model = DecayAwareTransformer(len(FEATURES), int(m["dim"]), int(m["heads"]),
                                  int(m["layers"]), n_hops, len(ROLES))
    train_cfg = TrainConfig.from_dict({"monitor": "cls", **config["train"]}, seed=seed)
    trainer = Trainer(model, _loss(alpha, beta, n_hops), train_cfg,
                      weighting=StaticWeights({"cls": 1.0, "hop": alpha, "assign": beta}))
    history = trainer.fit(_tensors(obj.take(train), scale, labels[train]),
                          _tensors(obj.take(val), scale, labels[val]))
    def score(idx: np.ndarray) -> np.ndarray:
        data = _tensors(obj.take(idx), scale, labels[idx])
        return torch.sigmoid(trainer.predict(data, lambda mod, b: mod(b[0], b[1])[0])).numpy()

    data = _tensors(obj.take(test), scale, labels[test])
    hops = trainer.predict(data, lambda mod, b: mod(b[0], b[1])[1].argmax(-1)).numpy()
    roles = torch.softmax(trainer.predict(data, lambda mod, b: mod(b[0], b[1])[2]), -1).numpy()
    return Fitted(score(val), score(test), hops, roles, history)
