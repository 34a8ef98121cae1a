"""The b-tagging study's taggers taken to deployment: its DL1-like xgboost (through conifer)
and its GN1 (through ONNX), built and trained by the ``btag`` study's own code.

:func:`train_btag_taggers` reads a ``btag`` preset (``configs/btag.yaml``, with
overrides: :func:`hepchain.reco.btag.gn1.btag_config`), takes its ttbar jets from the shared
dataset cache (the same dataset ``hepchain btag run`` with that preset uses) and runs ``BTagStudy.run``'s steps for these two models
with its functions and seeds: jets and split from :func:`hepchain.reco.btag.gn1.btag_jets`,
IP3D-like and high-level features from :func:`hepchain.reco.btag.gn1.high_level_inputs`,
``fit_xgboost``; GN1 from :func:`hepchain.reco.btag.gn1.fit_gn1` (shared with the
``decayaware`` study). The other btag taggers are not trained.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import Tensor, nn

from hepchain.core.result import Result
from hepchain.core.seeding import derive_seed
from hepchain.reco.btag.gn1 import btag_jets, fit_gn1, high_level_inputs
from hepchain.reco.btag.preprocessing import Preprocessor
from hepchain.reco.btag.training import fit_xgboost


@dataclass
class BTagTaggers:
    """The trained taggers and their test jets: ``xgboost`` (an ``XGBClassifier`` on the
    unstandardised high-level features ``hl_test`` (N, F)), ``gn1`` (eval mode) with its
    preprocessed test inputs ``gn1_test`` = (tracks (N, T, F), mask (N, T), jet (N, 2))."""

    classes: list[str]
    preprocessing: Preprocessor
    xgboost: Any
    hl_test: np.ndarray
    gn1: nn.Module
    gn1_test: tuple[Tensor, Tensor, Tensor]
    y_test: np.ndarray


def train_btag_taggers(config: dict[str, Any], seed: int, result: Result) -> BTagTaggers:
    """Train btag's DL1-like xgboost and GN1 (``config``: a btag preset) for run ``seed``;
    the dataset's manifest goes into ``result``'s provenance."""
    jets = btag_jets(config, result)
    labs = jets.labels
    _, hl = high_level_inputs(config, jets)
    bdt = fit_xgboost(hl["train"], labs["train"], hl["val"], labs["val"], len(jets.classes),
                      dict(config["xgboost"]), derive_seed(seed, "xgb") % 2**31)
    gn1 = fit_gn1(config, jets, seed)
    return BTagTaggers(jets.classes, gn1.preprocessing, bdt, hl["test"], gn1.model,
                       gn1.batches["test"][:3], labs["test"])
