"""The b-tagging study's pipeline steps, shared by ``BTagStudy.run`` and the studies that reuse
btag's taggers on btag's own jets, splits and seeds (``deploy``, ``analysis.decayaware``).

- :func:`btag_config`: a ``btag`` preset with overrides, checked like ``--set``;
- :func:`btag_jets`: the preset's ttbar jets (dataset cache), jet selection, lepton flag,
  padded track table and event split, the test jets from their own dataset when
  ``data.n_test_events`` > 0;
- :func:`high_level_inputs`: IP3D-like log-likelihood ratios (templates fitted on the
  training jets, out-of-fold for them) and the high-level (DL1-like) features of every split;
- :func:`track_batches`: the fitted track preprocessing and the preprocessed batches;
- :func:`fit_gn1`: the track preprocessing and ``GN1Tagger`` with the ``GN1`` variant's tasks
  trained by ``fit_track_model``, seeded as in ``BTagStudy.run``;
- :func:`jet_probabilities`, :func:`db_scores`: class probabilities and D_b (btag's ``fc``)
  of any jets for a trained GN1.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from hepchain.core.config import leaves, load_presets, preset_config
from hepchain.core.errors import UsageError
from hepchain.core.result import Result
from hepchain.core.seeding import derive_seed, seed_everything
from hepchain.reco.btag.data import (
    check_selection,
    evaluation_sample,
    load_events,
    select_jets,
    split_events,
    with_lepton_flag,
)
from hepchain.reco.btag.evaluate import discriminant
from hepchain.reco.btag.highlevel import high_level_features
from hepchain.reco.btag.ip3d import IPTemplates, llr_features, out_of_fold_llr
from hepchain.reco.btag.labels import origin_class_weights
from hepchain.reco.btag.models import GN1Tagger, JetProbabilities
from hepchain.reco.btag.preprocessing import Preprocessor
from hepchain.reco.btag.table import JetTable, build_table
from hepchain.reco.btag.training import check_vertex_loss, fit_track_model, track_batch

FULL = "GN1"  # the full GN1 variant (all auxiliary tasks) of ``gn1_variants``


@dataclass
class BTagJets:
    """btag's selected jets by split (``tables``, ``labels`` per key train / val / test),
    the event index of every selected jet of the training dataset and the split masks over
    them; ``n_test_events`` is the size of the separate test dataset (0: the test jets are the
    split's test events of the training dataset)."""

    classes: list[str]
    tables: dict[str, JetTable]
    labels: dict[str, np.ndarray]
    event: np.ndarray
    split: dict[str, np.ndarray]
    n_events: int
    n_test_events: int = 0


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
    config = preset_config(load_presets("btag"), preset, leaves(overrides or {}), study="btag")
    check_gn1(config)
    return config


def check_gn1(config: dict[str, Any]) -> None:
    """UsageError for a btag ``config`` whose ``gn1`` settings no GN1Tagger can be built with
    or whose ``vertex_loss`` settings no loss can use (checked before any data is read)."""
    check_vertex_loss(config["vertex_loss"])
    settings = config["gn1"]
    dim, heads = int(settings["dim"]), int(settings["heads"])
    if dim < 1 or heads < 1 or dim % heads:
        raise UsageError(f"gn1.dim must be a positive multiple of gn1.heads, got dim {dim} "
                         f"and heads {heads}.")
    if int(settings.get("registers", 0)) < 0:
        raise UsageError(f"gn1.registers must be 0 or more, got {settings['registers']}.")


def btag_jets(config: dict[str, Any], result: Result, test: bool = True,
              test_path: str | Path | None = None) -> BTagJets:
    """btag's jets for the btag preset ``config`` (the dataset manifests go into
    ``result``'s provenance). With ``data.n_test_events`` > 0 (generated data) the test jets
    come from their own dataset (:func:`data.evaluation_sample`), with ``test_path`` from the
    existing dataset there, and the split's test events are left unused; ``test=False``
    returns the training and validation jets only (and does not generate that dataset)."""
    data = config["data"]
    check_selection(config["selection"])
    table, label, event, n_events = _selected_jets(config, data, result)
    split = split_events(event, config["split"], int(data["seed"]))
    test_data = evaluation_sample(data) if test_path is None else {**data, "path": str(test_path)}
    if test_data is not None or not test:
        split.pop("test")
    tables = {k: table.select(m) for k, m in split.items()}
    labels = {k: label[m] for k, m in split.items()}
    n_test = 0
    if test_data is not None and test:
        tables["test"], labels["test"], _, n_test = _selected_jets(config, test_data, result)
    return BTagJets(list(config["classes"]), tables, labels, event, split, n_events, n_test)


def _selected_jets(config: dict[str, Any], data: dict[str, Any], result: Result
                   ) -> tuple[JetTable, np.ndarray, np.ndarray, int]:
    """The padded track table, labels and event index of the selected jets of the dataset
    ``data`` (its manifest goes into ``result``'s provenance) and its number of events."""
    events, manifest = load_events(data)
    result.provenance.datasets.append(manifest.summary())
    sel = config["selection"]
    jets, label, event, removed = select_jets(events, list(config["classes"]),
                                              sel["pt_min"], sel["eta_max"],
                                              sel.get("hard_scatter_dr"),
                                              sel.get("lepton_overlap_dr"))
    mu = float(manifest.settings.get("options", {}).get("mu") or 0.0)
    if sel.get("hard_scatter_dr") is not None:
        result.notes.append(f"{manifest.name} (seed {manifest.seed}, mu {mu:g}): "
                            f"{removed['pileup']} jets removed: no hard-scatter truth jet "
                            f"within dR < {sel['hard_scatter_dr']} (pile-up jets; muons "
                            f"clustered as jets), {len(label)} kept.")
    elif mu > 0:
        result.notes.append(f"mu {mu:g} without selection.hard_scatter_dr: the classes include "
                            "pile-up jets (mostly light; no JVT in the substrate).")
    if sel.get("lepton_overlap_dr") is not None:
        result.notes.append(f"{manifest.name}: {removed['lepton_overlap']} jets removed by the "
                            f"lepton-jet overlap removal (dR < {sel['lepton_overlap_dr']} of an "
                            "isolated electron, or of an isolated muon with < 3 tracks).")
    table = build_table(with_lepton_flag(jets, str(config["lepton_flag"])),
                        int(config["max_tracks"]))
    return table, label, event, len(events)


def high_level_inputs(config: dict[str, Any], jets: BTagJets
                      ) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, np.ndarray]]:
    """IP3D-like LLR features and high-level features per split. The templates are fitted on
    the training jets; the training jets' own LLRs are out-of-fold (folds by event)."""
    tabs, labs, train = jets.tables, jets.labels, jets.tables["train"]
    n_bins = int(config["ip3d"]["n_bins"])
    templates = IPTemplates.fit(train.track("sd0"), train.track("sz0"), train.mask,
                                labs["train"], jets.classes, n_bins=n_bins)
    llr = {k: llr_features(templates, t.track("sd0"), t.track("sz0"), t.mask)
           for k, t in tabs.items() if k != "train"}
    llr["train"] = out_of_fold_llr(train.track("sd0"), train.track("sz0"), train.mask,
                                   labs["train"], jets.event[jets.split["train"]], jets.classes,
                                   int(config["ip3d"]["folds"]), int(config["data"]["seed"]),
                                   n_bins=n_bins)
    return llr, {k: high_level_features(t, llr[k], config["sv"]) for k, t in tabs.items()}


def track_batches(jets: BTagJets) -> tuple[Preprocessor, dict[str, tuple[Tensor, ...]]]:
    """The track preprocessing fitted on the training jets and the preprocessed batches
    (tracks, mask, jet, label, origin, vertex) of every split."""
    prep = Preprocessor.fit(jets.tables["train"])
    batches = {}
    for k, t in jets.tables.items():
        tracks, jet = prep.transform(t)
        batches[k] = track_batch(tracks, t.mask, jet, jets.labels[k], t.origin, t.vertex)
    return prep, batches


def fit_gn1(config: dict[str, Any], jets: BTagJets, seed: int) -> GN1Fit:
    """btag's ``GN1`` variant trained on ``jets`` for run ``seed`` (as ``BTagStudy.run``)."""
    prep, batches = track_batches(jets)
    tasks = tuple(config["gn1_variants"][FULL])
    seed_everything(derive_seed(seed, FULL))
    model = GN1Tagger(len(prep.track_features), len(prep.jet_features), len(jets.classes),
                      tasks=tasks, **config["gn1"])
    trainer, _ = fit_track_model(model, tasks, batches["train"], batches["val"],
                                 config["train"], derive_seed(seed, FULL),
                                 dict(config["loss_weights"]),
                                 origin_class_weights(jets.tables["train"].origin),
                                 config["vertex_loss"])
    return GN1Fit(trainer.model.eval(), prep, batches)


def jet_probabilities(model: nn.Module, prep: Preprocessor, table: JetTable, n_classes: int,
                      batch_size: int = 1024) -> np.ndarray:
    """GN1 class probabilities (N, ``n_classes``) of every jet of ``table`` (raw inputs;
    ``prep`` scales them)."""
    tracks, jet = prep.transform(table)
    data = (torch.from_numpy(tracks), torch.from_numpy(table.mask), torch.from_numpy(jet))
    probs = JetProbabilities(model).eval()
    with torch.no_grad():
        p = [probs(*(x[i:i + batch_size] for x in data)).numpy()
             for i in range(0, len(table), batch_size)]
    return np.concatenate(p) if p else np.zeros((0, n_classes), dtype=np.float32)


def db_scores(model: nn.Module, prep: Preprocessor, table: JetTable, classes: list[str],
              fc: float, batch_size: int = 1024) -> np.ndarray:
    """GN1 D_b of every jet of ``table`` (raw inputs; ``prep`` scales them)."""
    return discriminant(jet_probabilities(model, prep, table, len(classes), batch_size),
                        classes, fc)
