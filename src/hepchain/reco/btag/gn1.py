"""The b-tagging study's jets and GN1 for other studies: the steps of ``BTagStudy.run`` that
another study needs to train btag's GN1 on btag's own jets and splits, with btag's functions
and seeds (used by ``deploy`` and ``analysis.decayaware``).

- :func:`btag_config`: a ``btag`` preset with overrides, checked like ``--set``;
- :func:`btag_jets`: the preset's ttbar jets (dataset cache), jet selection, lepton flag,
  padded track table and event split;
- :func:`fit_gn1`: the track preprocessing and ``GN1Tagger`` with the ``GN1`` variant's tasks
  trained by ``fit_track_model``, seeded as in ``BTagStudy.run``;
- :func:`db_scores`: D_b (btag's ``fc``) of any jets for a trained GN1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from hepchain.core.config import leaves, load_presets, preset_config
from hepchain.core.result import Result
from hepchain.core.seeding import derive_seed, seed_everything
from hepchain.reco.btag.data import load_events, select_jets, split_events, with_lepton_flag
from hepchain.reco.btag.evaluate import discriminant
from hepchain.reco.btag.labels import origin_class_weights
from hepchain.reco.btag.models import GN1Tagger, JetProbabilities
from hepchain.reco.btag.preprocessing import Preprocessor
from hepchain.reco.btag.study import FULL
from hepchain.reco.btag.table import JetTable, build_table
from hepchain.reco.btag.training import fit_track_model, track_batch


@dataclass
class BTagJets:
    """btag's selected jets by split (``tables``, ``labels`` per key train / val / test),
    the event index of every selected jet and the split masks over them."""

    classes: list[str]
    tables: dict[str, JetTable]
    labels: dict[str, np.ndarray]
    event: np.ndarray
    split: dict[str, np.ndarray]


@dataclass
class GN1Fit:
    """A trained GN1 (eval mode), its fitted preprocessing and the preprocessed batches
    (tracks, mask, jet, label, origin, vertex) of every split."""

    model: nn.Module
    preprocessing: Preprocessor
    batches: dict[str, tuple[Tensor, ...]]


def btag_config(preset: str, overrides: dict[str, Any] | None) -> dict[str, Any]:
    """The ``btag`` study's ``preset`` with the settings of the nested mapping ``overrides``
    (e.g. ``{"xgboost": {"n_jobs": 1}}``) replaced one by one, checked like ``--set``."""
    return preset_config(load_presets("btag"), preset, leaves(overrides or {}), study="btag")


def btag_jets(config: dict[str, Any], result: Result) -> BTagJets:
    """btag's jets for the btag preset ``config`` (the dataset manifest goes into
    ``result``'s provenance)."""
    events, manifest = load_events(config["data"])
    result.provenance.datasets.append(manifest.summary())
    classes, sel = list(config["classes"]), config["selection"]
    jets, label, event = select_jets(events, classes, sel["pt_min"], sel["eta_max"])
    table = build_table(with_lepton_flag(jets, str(config["lepton_flag"])),
                        int(config["max_tracks"]))
    split = split_events(event, config["split"], int(config["data"]["seed"]))
    return BTagJets(classes, {k: table.select(m) for k, m in split.items()},
                    {k: label[m] for k, m in split.items()}, event, split)


def fit_gn1(config: dict[str, Any], jets: BTagJets, seed: int) -> GN1Fit:
    """btag's ``GN1`` variant trained on ``jets`` for run ``seed`` (as ``BTagStudy.run``)."""
    prep = Preprocessor.fit(jets.tables["train"])
    batches = {}
    for k, t in jets.tables.items():
        tracks, jet = prep.transform(t)
        batches[k] = track_batch(tracks, t.mask, jet, jets.labels[k], t.origin, t.vertex)
    tasks = tuple(config["gn1_variants"][FULL])
    seed_everything(derive_seed(seed, FULL))
    model = GN1Tagger(len(prep.track_features), len(prep.jet_features), len(jets.classes),
                      tasks=tasks, **config["gn1"])
    trainer, _ = fit_track_model(model, tasks, batches["train"], batches["val"],
                                 config["train"], derive_seed(seed, FULL),
                                 dict(config["loss_weights"]),
                                 origin_class_weights(jets.tables["train"].origin))
    return GN1Fit(trainer.model.eval(), prep, batches)


def db_scores(model: nn.Module, prep: Preprocessor, table: JetTable, classes: list[str],
              fc: float, batch_size: int = 1024) -> np.ndarray:
    """GN1 D_b of every jet of ``table`` (raw inputs; ``prep`` scales them)."""
    tracks, jet = prep.transform(table)
    data = (torch.from_numpy(tracks), torch.from_numpy(table.mask), torch.from_numpy(jet))
    probs = JetProbabilities(model).eval()
    with torch.no_grad():
        p = [probs(*(x[i:i + batch_size] for x in data)).numpy()
             for i in range(0, len(table), batch_size)]
    return discriminant(np.concatenate(p) if p else np.zeros((0, len(classes))), classes, fc)
