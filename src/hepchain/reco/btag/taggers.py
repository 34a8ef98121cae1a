"""Every tagger of the btag study trained on btag's jets, and their class probabilities.

- :func:`fit_high_level_taggers`: the IP3D-like b/light LLR, and the DL1-like MLP and xgboost
  on the high-level (IP + secondary-vertex + soft-lepton) features;
- :func:`fit_track_taggers`: Deep Sets and every ``gn1_variants`` entry (GN1 with its
  auxiliary tasks and the ablations), trained through the core Trainer, with their training
  cost rows (:func:`train_track_taggers` on any preprocessed batches, e.g. a salt file's).

Both return a :class:`Taggers`; ``a | b`` joins them, and :meth:`Taggers.scores` turns the
probabilities into the discriminant D_b (:func:`evaluate.discriminant`)::

    taggers = fit_high_level_taggers(config, jets, seed) | fit_track_taggers(config, jets, seed, result)
    scores = taggers.scores(jets.classes, config["fc"])
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from hepchain.core.result import Result
from hepchain.core.seeding import derive_seed, seed_everything
from hepchain.core.standardise import Standardiser
from hepchain.nn.mlp import MLP
from hepchain.reco.btag import evaluate
from hepchain.reco.btag.gn1 import BTagJets, high_level_inputs, track_batches
from hepchain.reco.btag.labels import origin_class_weights
from hepchain.reco.btag.models import DeepSetsTagger, GN1Tagger
from hepchain.reco.btag.preprocessing import Preprocessor
from hepchain.reco.btag.training import (
    fit_mlp,
    fit_track_model,
    fit_xgboost,
    predict_track_model,
)

BASELINES = ("DL1-like MLP", "DL1-like xgboost")
"""The DL1-like baselines; the stronger on validation is GN1's reference."""
SPLITS = ("val", "test")
"""The splits every tagger is evaluated on (working points on val, numbers on test)."""


@dataclass
class Taggers:
    """Trained taggers by name: class probabilities (N, C) per split in ``probs``, or a
    ready score in ``llr`` (IP3D-like); the high-level features per split (``features``,
    :data:`highlevel.HL_FEATURES` columns); the track models' test outputs (``outputs``: jet,
    track-origin and pair probabilities), modules (``models``), per-epoch histories, and the
    track preprocessing with its batches."""

    probs: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    llr: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    features: dict[str, np.ndarray] = field(default_factory=dict)
    outputs: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    models: dict[str, nn.Module] = field(default_factory=dict)
    histories: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    preprocessing: Preprocessor | None = None
    batches: dict[str, tuple[Tensor, ...]] = field(default_factory=dict)

    def __or__(self, other: Taggers) -> Taggers:
        return Taggers(self.probs | other.probs, self.llr | other.llr,
                       self.features | other.features, self.outputs | other.outputs,
                       self.models | other.models, self.histories | other.histories,
                       self.preprocessing or other.preprocessing, self.batches | other.batches)

    def scores(self, classes: list[str], fc: float) -> dict[str, dict[str, np.ndarray]]:
        """Per tagger and split the b-tag score: the LLR, or D_b with charm fraction ``fc``."""
        return self.llr | {name: {k: evaluate.discriminant(p[k], classes, fc) for k in SPLITS}
                           for name, p in self.probs.items()}


def fit_high_level_taggers(config: dict[str, Any], jets: BTagJets, seed: int) -> Taggers:
    """IP3D-like LLR, DL1-like MLP and xgboost for run ``seed``; the MLP is built from the
    global torch generator as it stands (after ``seed_everything(seed)`` in a run)."""
    llr, hl = high_level_inputs(config, jets)
    labs, n_classes = jets.labels, len(jets.classes)
    scale = Standardiser.fit(hl["train"])
    x = {k: torch.from_numpy(scale.transform(v).astype(np.float32)) for k, v in hl.items()}
    y = {k: torch.from_numpy(v) for k, v in labs.items()}
    mlp = MLP(hl["train"].shape[1], config["dl1"]["hidden"], n_classes)
    trainer, hist = fit_mlp(mlp, (x["train"], y["train"]), (x["val"], y["val"]),
                            config["train_dl1"], derive_seed(seed, "dl1"))
    bdt = fit_xgboost(hl["train"], labs["train"], hl["val"], labs["val"], n_classes,
                      dict(config["xgboost"]), derive_seed(seed, "xgb") % 2**31)
    probs = {BASELINES[0]: {k: torch.softmax(trainer.predict((x[k],)), -1).numpy()
                            for k in SPLITS},
             BASELINES[1]: {k: bdt.predict_proba(hl[k]) for k in SPLITS}}
    return Taggers(probs=probs, llr={"IP3D-like": {k: llr[k]["ip3d_llr_bl"] for k in SPLITS}},
                   features=hl, histories={BASELINES[0]: hist.epochs})


def track_models(config: dict[str, Any], n_track: int, n_jet: int, n_classes: int, seed: int
                 ) -> dict[str, tuple[nn.Module, tuple[str, ...]]]:
    """Deep Sets (jet task only) and one GN1Tagger per ``gn1_variants`` entry with its tasks
    on ``n_track`` track and ``n_jet`` jet inputs; each GN1 variant is initialised from
    ``derive_seed(seed, name)``."""
    models: dict[str, tuple[nn.Module, tuple[str, ...]]] = {
        "DeepSets": (DeepSetsTagger(n_track, n_jet, n_classes, **config["deepsets"]), ("jet",))}
    for name, tasks in config["gn1_variants"].items():
        seed_everything(derive_seed(seed, name))
        models[name] = (GN1Tagger(n_track, n_jet, n_classes, tasks=tuple(tasks), **config["gn1"]),
                        tuple(tasks))
    return models


def fit_track_taggers(config: dict[str, Any], jets: BTagJets, seed: int,
                      result: Result) -> Taggers:
    """:func:`train_track_taggers` on the preprocessed tracks of ``jets``."""
    prep, batches = track_batches(jets)
    out = train_track_taggers(config, batches, len(jets.classes),
                              origin_class_weights(jets.tables["train"].origin), seed, result)
    out.preprocessing = prep
    return out


def train_track_taggers(config: dict[str, Any], batches: dict[str, tuple[Tensor, ...]],
                        n_classes: int, origin_weights: np.ndarray, seed: int,
                        result: Result) -> Taggers:
    """Train :func:`track_models` on the preprocessed ``batches`` (tracks, mask, jet, label,
    origin, vertex per split) with the track-origin class weights ``origin_weights``; adds each
    model's training cost rows and a note (epochs, time, parameters) to ``result``."""
    out = Taggers(batches=batches)
    n_train = len(batches["train"][3])
    n_track, n_jet = batches["train"][0].shape[-1], batches["train"][2].shape[-1]
    for name, (model, tasks) in track_models(config, n_track, n_jet, n_classes, seed).items():
        t1, cpu1 = time.perf_counter(), time.process_time()
        trainer, hist = fit_track_model(model, tasks, batches["train"], batches["val"],
                                        config["train"], derive_seed(seed, name),
                                        dict(config["loss_weights"]), origin_weights,
                                        config["vertex_loss"])
        wall = time.perf_counter() - t1
        evaluate.add_training_cost(result, name, wall, time.process_time() - cpu1,
                                   n_train * len(hist.epochs))
        out.outputs[name] = predict_track_model(trainer, batches["test"])
        out.probs[name] = {"test": out.outputs[name]["jet"],
                           "val": predict_track_model(trainer, batches["val"])["jet"]}
        out.models[name] = trainer.model
        out.histories[name] = hist.epochs
        result.notes.append(f"{name}: {len(hist.epochs)} epochs (best {hist.best_epoch}), "
                            f"{time.perf_counter() - t1:.0f} s, "
                            f"{sum(p.numel() for p in model.parameters())} parameters.")
    return out
