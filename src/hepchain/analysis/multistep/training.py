"""The four strategies, every network trained by the one :class:`~hepchain.core.trainer.Trainer`
with early stopping on the validation events' step-(b) loss (step (a)'s for its own stage):

1. ``hand-built``: step (b) on the kinematics and the hand-built tau variables only;
2. ``serial``: train step (a) alone, freeze it, train step (b) on its logits;
3. ``connected, w_a = w``: both steps end to end with ``L = w L_a + (1 − w) L_b`` (Saito et
   al.'s static weighting, :class:`~hepchain.core.losses.StaticWeights`), step (a) starting
   from the step (a) trained alone (Saito et al. pre-train, then re-optimise jointly) or from
   scratch (setting ``connected_init``);
4. ``connected, DWA`` / ``uncertainty`` / ``GradNorm``: end to end with
   :class:`~hepchain.core.losses.DynamicWeightAverage`,
   :class:`~hepchain.core.losses.UncertaintyWeights` or :class:`~hepchain.core.losses.GradNorm`
   (gradient norms on the last layer of step (a), the layer both losses reach).

Training cost is the CPU time of all training passes of a strategy, including the step (a)
pretraining it starts from.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from hepchain.analysis.multistep.data import KINEMATICS, Inputs
from hepchain.analysis.multistep.models import EventStep, TauStep, TwoStep
from hepchain.core.losses import LossWeighting, StaticWeights
from hepchain.core.trainer import TrainConfig, Trainer
from hepchain.reco.tauid.candidates import OBJECT_FEATURES
from hepchain.reco.tauid.features import HIGH_LEVEL

bce = nn.functional.binary_cross_entropy_with_logits


@dataclass(frozen=True)
class Outcome:
    """A trained strategy: event score of every event, tau score (N, 2) or None, CPU s."""

    event_score: np.ndarray
    tau_score: np.ndarray | None
    cpu_seconds: float
    history: list[dict[str, float]]


def tensors(x: Inputs, idx: np.ndarray) -> tuple[Tensor, ...]:
    """(objects, mask, high_level, kinematics, is_tau, is_signal) of the events ``idx``."""
    return tuple(torch.from_numpy(np.ascontiguousarray(a[idx])) for a in (
        x.objects, x.mask, x.high_level, x.kinematics, x.is_tau.astype(np.float32),
        x.is_signal.astype(np.float32)))


def _fit(model: nn.Module, loss, x: Inputs, train: np.ndarray, val: np.ndarray,
         settings: dict[str, Any], seed: int, name: str, monitor: str,
         weighting: LossWeighting | None = None) -> tuple[Trainer, list[dict[str, float]], float]:
    trainer = Trainer(model, loss, TrainConfig.from_dict(settings, seed=seed, monitor=monitor),
                      weighting=weighting, name=name)
    t0 = time.process_time()
    history = trainer.fit(tensors(x, train), tensors(x, val))
    return trainer, history.epochs, time.process_time() - t0


def tau_step(spec: dict[str, Any]) -> TauStep:
    return TauStep(len(OBJECT_FEATURES), **spec)


def fit_hand_built(x: Inputs, train: np.ndarray, val: np.ndarray, config: dict[str, Any],
                   seed: int) -> Outcome:
    """Strategy 1: step (b) on the kinematics and the hand-built tau variables."""
    model = EventStep(len(KINEMATICS), len(HIGH_LEVEL), config["event"]["hidden"])

    def loss(m: nn.Module, b: tuple[Tensor, ...]) -> dict[str, Tensor]:
        return {"b": bce(m(b[3], b[2]), b[5])}

    trainer, hist, sec = _fit(model, loss, x, train, val, config["train"], seed, "hand-built",
                              "b")
    out = trainer.predict(tensors(x, np.arange(len(x.is_signal))), fn=lambda m, b: m(b[3], b[2]))
    return Outcome(torch.sigmoid(out).numpy(), None, sec, hist)


def _two_step_loss(m: nn.Module, b: tuple[Tensor, ...]) -> dict[str, Tensor]:
    tau_logits, event_logit = m(b[0], b[1], b[3])
    return {"a": bce(tau_logits, b[4]), "b": bce(event_logit, b[5])}


def _scores(trainer: Trainer, x: Inputs, seconds: float, hist: list[dict[str, float]]
            ) -> Outcome:
    data = tensors(x, np.arange(len(x.is_signal)))
    tau = trainer.predict(data, fn=lambda m, b: m(b[0], b[1], b[3])[0])
    event = trainer.predict(data, fn=lambda m, b: m(b[0], b[1], b[3])[1])
    return Outcome(torch.sigmoid(event).numpy(), torch.sigmoid(tau).numpy(), seconds, hist)


@dataclass(frozen=True)
class PretrainedTau:
    """Step (a) trained alone: its weights, CPU seconds and history."""

    state: dict[str, Tensor]
    cpu_seconds: float
    history: list[dict[str, float]]


def pretrain_tau(x: Inputs, train: np.ndarray, val: np.ndarray, config: dict[str, Any],
                 seed: int) -> PretrainedTau:
    """Step (a) trained alone on the candidates of the training events."""
    tau = tau_step(config["tau"])

    def loss_a(m: nn.Module, b: tuple[Tensor, ...]) -> dict[str, Tensor]:
        return {"a": bce(m(b[0], b[1]), b[4])}

    _, hist, sec = _fit(tau, loss_a, x, train, val, config["train"], seed, "tau-alone", "a")
    return PretrainedTau({k: v.clone() for k, v in tau.state_dict().items()}, sec, hist)


def two_step(config: dict[str, Any], init: PretrainedTau | None) -> TwoStep:
    """A fresh connected model; step (a) starts from ``init`` when given."""
    model = TwoStep(tau_step(config["tau"]), EventStep(len(KINEMATICS), 1,
                                                       config["event"]["hidden"]))
    if init is not None:
        model.tau.load_state_dict(init.state)
    return model


def fit_serial(x: Inputs, train: np.ndarray, val: np.ndarray, config: dict[str, Any],
               seed: int, pre: PretrainedTau) -> Outcome:
    """Strategy 2: the pretrained step (a), frozen, then step (b) on its logits."""
    model = two_step(config, pre)
    model.tau.requires_grad_(False)
    trainer, hist, sec = _fit(model, _two_step_loss, x, train, val, config["train"], seed,
                              "serial-b", "b", StaticWeights({"a": 0.0, "b": 1.0}))
    return _scores(trainer, x, pre.cpu_seconds + sec, pre.history + hist)


def fit_connected(x: Inputs, train: np.ndarray, val: np.ndarray, config: dict[str, Any],
                  seed: int, weighting: Callable[[TwoStep], LossWeighting], name: str,
                  init: PretrainedTau | None) -> Outcome:
    """Strategies 3 and 4: both steps end to end with the loss weighting ``weighting(model)``
    (a function of the model, as GradNorm needs its shared parameters), step (a) starting
    from ``init`` (its pretraining CPU time is charged to the strategy) or from scratch."""
    model = two_step(config, init)
    trainer, hist, sec = _fit(model, _two_step_loss, x, train, val, config["train"], seed,
                              name, "b", weighting(model))
    spent = sec + (init.cpu_seconds if init is not None else 0.0)
    return _scores(trainer, x, spent, hist)
