"""Training of the taggers through the core Trainer (track models, DL1-like MLP) and xgboost.

Multi-task loss of the GN1-style model, combined by ``core.losses.StaticWeights``::

    L = L_jet + α L_vertex + β L_track,   α = 1.5, β = 0.5 (Salt GN1/GN2 configs)

with L_jet the flavour cross-entropy, L_track the class-weighted origin cross-entropy over real
tracks and L_vertex the binary cross-entropy over all ordered pairs of distinct real tracks
(:func:`vertex_loss`: by default their mean; salt's GN1/GN2 weights the pairs of two
heavy-flavour tracks 2 and divides the sum by the number of same-vertex pairs).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hepchain.core.errors import UsageError
from hepchain.core.losses import StaticWeights, masked_cross_entropy
from hepchain.core.trainer import History, TrainConfig, Trainer
from hepchain.reco.btag.labels import edge_labels, edge_weights


def track_batch(tracks: np.ndarray, mask: np.ndarray, jet: np.ndarray, label: np.ndarray,
                origin: np.ndarray, vertex: np.ndarray) -> tuple[Tensor, ...]:
    """Tensors in the order the loss functions expect."""
    return (torch.from_numpy(tracks), torch.from_numpy(mask), torch.from_numpy(jet),
            torch.from_numpy(label), torch.from_numpy(origin), torch.from_numpy(vertex))


VERTEX_NORMALISATIONS: tuple[str, ...] = ("pairs", "same_vertex_pairs")


def check_vertex_loss(settings: dict[str, Any]) -> None:
    """UsageError for ``vertex_loss`` settings :func:`vertex_loss` cannot use."""
    if float(settings["hf_pair_weight"]) <= 0:
        raise UsageError(f"vertex_loss.hf_pair_weight must be positive, got "
                         f"{settings['hf_pair_weight']}.")
    if settings["normalise"] not in VERTEX_NORMALISATIONS:
        raise UsageError(f"vertex_loss.normalise must be one of {list(VERTEX_NORMALISATIONS)}, "
                         f"got {settings['normalise']!r}.")


def vertex_loss(logits: Tensor, vertex: Tensor, mask: Tensor, origin: Tensor,
                hf_pair_weight: float = 1.0, normalise: str = "pairs") -> Tensor:
    """Same-vertex binary cross-entropy of the pair ``logits`` (B, T, T) over the pairs of
    distinct real tracks, pairs of two heavy-flavour tracks weighted ``hf_pair_weight``;
    divided by the number of those pairs (``normalise="pairs"``) or of the same-vertex pairs
    among them (``"same_vertex_pairs"``, as salt's ``VertexingTask``)."""
    target, valid = edge_labels(vertex, mask)
    weight = None if hf_pair_weight == 1.0 else edge_weights(origin, hf_pair_weight)[valid]
    loss = F.binary_cross_entropy_with_logits(logits[valid], target[valid], weight=weight)
    if normalise == "same_vertex_pairs":
        loss = loss * valid.sum() / target[valid].sum().clamp(min=1.0)
    return loss


def make_track_loss(tasks: tuple[str, ...], origin_weights: np.ndarray,
                    vertex_settings: dict[str, Any] | None = None):
    """``loss_fn(model, batch) -> {"jet", "track"?, "vertex"?}`` for the enabled tasks;
    ``vertex_settings``: :func:`vertex_loss`'s keyword arguments."""
    w = torch.as_tensor(origin_weights, dtype=torch.float32)
    vertex_kw = dict(vertex_settings or {})

    def loss_fn(model: nn.Module, batch: tuple[Tensor, ...]) -> dict[str, Tensor]:
        tracks, mask, jet, label, origin, vertex = batch
        out = model(tracks, mask, jet)
        losses = {"jet": F.cross_entropy(out["jet"], label)}
        if "track" in tasks:
            losses["track"] = masked_cross_entropy(out["track"].flatten(0, 1), origin.flatten(),
                                                   -1, w.to(tracks.device))
        if "vertex" in tasks:
            losses["vertex"] = vertex_loss(out["vertex"], vertex, mask, origin, **vertex_kw)
        return losses

    return loss_fn


def fit_track_model(model: nn.Module, tasks: tuple[str, ...], train: tuple[Tensor, ...],
                    val: tuple[Tensor, ...], train_cfg: dict[str, Any], seed: int,
                    loss_weights: dict[str, float], origin_weights: np.ndarray,
                    vertex_settings: dict[str, Any] | None = None) -> tuple[Trainer, History]:
    """Train a DeepSets/GN1 model; early stopping monitors the validation jet loss."""
    cfg = TrainConfig.from_dict({"monitor": "jet", **train_cfg}, seed=seed)
    weights = StaticWeights({k: v for k, v in loss_weights.items() if k in tasks})
    trainer = Trainer(model, make_track_loss(tasks, origin_weights, vertex_settings), cfg,
                      weighting=weights)
    return trainer, trainer.fit(train, val)


def predict_track_model(trainer: Trainer, data: tuple[Tensor, ...]) -> dict[str, np.ndarray]:
    """Softmax jet probabilities (N, C), origin probabilities (N, T, 8) and pair probabilities
    (N, T, T) where the model has those heads."""
    model = trainer.model
    out: dict[str, np.ndarray] = {}
    keys = ["jet"] + [k for k in ("track", "vertex") if k in getattr(model, "tasks", ("jet",))]
    for key in keys:
        def fn(m: nn.Module, b: tuple[Tensor, ...], key: str = key) -> Tensor:
            return head_probabilities(key, m(b[0], b[1], b[2])[key])
        out[key] = trainer.predict(data, fn).numpy()
    return out


def head_probabilities(key: str, logits: Tensor) -> Tensor:
    """A track model's head output as probabilities: sigmoid of the ``vertex`` pair logits,
    softmax over classes for ``jet`` and ``track``."""
    return torch.sigmoid(logits) if key == "vertex" else torch.softmax(logits, -1)


def fit_mlp(model: nn.Module, train: tuple[Tensor, Tensor], val: tuple[Tensor, Tensor],
            train_cfg: dict[str, Any], seed: int) -> tuple[Trainer, History]:
    """Train the DL1-like MLP on standardised high-level features (cross-entropy)."""
    def loss_fn(m: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
        x, y = batch
        return F.cross_entropy(m(x), y)

    trainer = Trainer(model, loss_fn, TrainConfig.from_dict(train_cfg, seed=seed))
    return trainer, trainer.fit(train, val)


def fit_xgboost(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
                n_classes: int, params: dict[str, Any], seed: int):
    """Multi-class gradient-boosted trees (softprob) with early stopping on validation."""
    import xgboost as xgb

    model = xgb.XGBClassifier(objective="multi:softprob", num_class=n_classes,
                              random_state=seed, n_jobs=params.get("n_jobs", 1),
                              early_stopping_rounds=params.get("early_stopping_rounds", 20),
                              **{k: v for k, v in params.items()
                                 if k not in ("n_jobs", "early_stopping_rounds")})
    model.fit(x_train, y_train, eval_set=[(x_val, y_val)], verbose=False)
    return model
