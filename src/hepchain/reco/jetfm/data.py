"""The jets of the study: the labelled sample of the jet-tagging study (``data``) for
fine-tuning, and the unlabelled pre-training jets — either that sample's training split with
its labels unused (``pretrain_data: null``) or a sample of its own, e.g. all JetClass classes;
both through :func:`hepchain.reco.jettag.data.load_jets` (the dataset cache)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hepchain.core.result import Result
from hepchain.core.seeding import derive_seed
from hepchain.reco.jettag.data import ParticleTensors, load_jets, particle_features, split


@dataclass(frozen=True)
class PretrainJets:
    """Unlabelled jets: features (N, P, F), mask (N, P) and the indices for pre-training,
    its validation (early stopping) and held-out jets (tokeniser and generation metrics)."""

    features: np.ndarray
    mask: np.ndarray
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def pretraining_jets(config: dict[str, Any], labelled: ParticleTensors,
                     splits: tuple[np.ndarray, np.ndarray, np.ndarray], result: Result,
                     seed: int) -> PretrainJets:
    """The pre-training jets of ``config["pretrain_data"]``; with null, the labelled sample's
    own ``splits`` (its test jets are never pre-trained on)."""
    spec = config["pretrain_data"]
    if spec is None:
        return PretrainJets(labelled.features, labelled.mask, *splits)
    jets = load_jets(spec, result)
    t = particle_features(jets.records, config["features"], int(config["max_particles"]))
    train, val, test = split(len(t.mask), {"train": 0.8, "val": 0.1},
                             derive_seed(seed, "pretrain"))
    return PretrainJets(t.features, t.mask, train, val, test)
