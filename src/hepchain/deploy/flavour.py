"""The b-tagging study's taggers taken to deployment: its DL1-like xgboost (through conifer)
and its GN1 (through ONNX), built and trained by the ``btag`` study's own code.

:func:`train_btag_taggers` reads a ``btag`` preset (``configs/btag.yaml``, with
overrides), takes its ttbar jets from the shared dataset cache (the same dataset ``hepchain
btag run`` with that preset uses) and repeats ``BTagStudy.run``'s steps for these two models
with its functions and seeds: jet selection, event split, IP3D-like templates (out-of-fold for
the training jets), high-level features, ``fit_xgboost``; the track preprocessing,
``GN1Tagger`` with the ``GN1`` variant's tasks, ``fit_track_model``. The other btag taggers
are not trained.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import Tensor, nn

from hepchain.core.config import leaves, load_presets, preset_config
from hepchain.core.result import Result
from hepchain.core.seeding import derive_seed, seed_everything
from hepchain.reco.btag.data import load_events, select_jets, split_events, with_lepton_flag
from hepchain.reco.btag.highlevel import high_level_features
from hepchain.reco.btag.ip3d import IPTemplates, llr_features, out_of_fold_llr
from hepchain.reco.btag.labels import origin_class_weights
from hepchain.reco.btag.models import GN1Tagger
from hepchain.reco.btag.preprocessing import Preprocessor
from hepchain.reco.btag.study import FULL
from hepchain.reco.btag.table import build_table
from hepchain.reco.btag.training import fit_track_model, fit_xgboost, track_batch


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


def btag_config(preset: str, overrides: dict[str, Any] | None) -> dict[str, Any]:
    """The ``btag`` study's ``preset`` with the settings of the nested mapping ``overrides``
    (e.g. ``{"xgboost": {"n_jobs": 1}}``) replaced one by one, checked like ``--set``."""
    return preset_config(load_presets("btag"), preset, leaves(overrides or {}), study="btag")


def train_btag_taggers(config: dict[str, Any], seed: int, result: Result) -> BTagTaggers:
    """Train btag's DL1-like xgboost and GN1 (``config``: a btag preset) for run ``seed``;
    the dataset's manifest goes into ``result``'s provenance."""
    events, manifest = load_events(config["data"])
    result.provenance.datasets.append(manifest.summary())
    classes, sel = list(config["classes"]), config["selection"]
    jets, label, event = select_jets(events, classes, sel["pt_min"], sel["eta_max"])
    table = build_table(with_lepton_flag(jets, str(config["lepton_flag"])),
                        int(config["max_tracks"]))
    split = split_events(event, config["split"], int(config["data"]["seed"]))
    tabs = {k: table.select(m) for k, m in split.items()}
    labs = {k: label[m] for k, m in split.items()}
    train, n_bins = tabs["train"], int(config["ip3d"]["n_bins"])
    templates = IPTemplates.fit(train.track("sd0"), train.track("sz0"), train.mask,
                                labs["train"], classes, n_bins=n_bins)
    llr = {k: llr_features(templates, tabs[k].track("sd0"), tabs[k].track("sz0"), tabs[k].mask)
           for k in ("val", "test")}
    llr["train"] = out_of_fold_llr(train.track("sd0"), train.track("sz0"), train.mask,
                                   labs["train"], event[split["train"]], classes,
                                   int(config["ip3d"]["folds"]), int(config["data"]["seed"]),
                                   n_bins=n_bins)
    hl = {k: high_level_features(t, llr[k], config["sv"]) for k, t in tabs.items()}
    bdt = fit_xgboost(hl["train"], labs["train"], hl["val"], labs["val"], len(classes),
                      dict(config["xgboost"]), derive_seed(seed, "xgb") % 2**31)

    prep = Preprocessor.fit(tabs["train"])
    batches = {}
    for k, t in tabs.items():
        tracks, jet = prep.transform(t)
        batches[k] = track_batch(tracks, t.mask, jet, labs[k], t.origin, t.vertex)
    tasks = tuple(config["gn1_variants"][FULL])
    seed_everything(derive_seed(seed, FULL))
    model = GN1Tagger(len(prep.track_features), len(prep.jet_features), len(classes),
                      tasks=tasks, **config["gn1"])
    trainer, _ = fit_track_model(model, tasks, batches["train"], batches["val"],
                                 config["train"], derive_seed(seed, FULL),
                                 dict(config["loss_weights"]),
                                 origin_class_weights(tabs["train"].origin))
    return BTagTaggers(classes, prep, bdt, hl["test"], trainer.model.eval(),
                       batches["test"][:3], labs["test"])
