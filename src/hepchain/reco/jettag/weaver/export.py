"""Our train / validation / test jets as JetClass-layout ROOT files, and weaver's data YAML
that turns them into exactly the inputs of :func:`hepchain.reco.jettag.data.particle_features`.

Files (written with :func:`hepchain.collider.formats.jetclass.write_jetclass`, one per split
and class)::

    <dir>/train_<class>.root  <dir>/val_<class>.root  <dir>/test_<class>.root
    <dir>/data.yaml

Every jet carries the branch ``jet_index`` (its row in the study's jet array), which weaver
copies into its prediction files as an observer, so its scores map back to our jets whatever
order it reads them in. The constituents are written pT-ordered, as JetClass is, so weaver's
truncation to ``max_particles`` keeps the same particles as ours. The YAML follows
``particle_transformer/data/JetClass/JetClass_full.yaml`` (same derived variables, centres and
scales) with two choices that make the inputs equal to ours rather than to JetClass's
training: ``pad_mode: constant`` (JetClass pads the features by repeating the particles,
``wrap``; ours pads with zeros, which matters for batch normalisation over padded slots) and
``length: max_particles``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import yaml

from hepchain.collider.formats.jetclass import LABELS, write_jetclass
from hepchain.core.errors import DataError, UsageError
from hepchain.core.io import atomic_write_text
from hepchain.reco.jettag.data import FEATURE_SETS, require_fields, standardisation

INDEX = "jet_index"
SPLITS = ("train", "val", "test")
#: our class names that are not JetClass's
_JETCLASS_NAME = {"top": "Tbqq"}
#: weaver's derived variables (JetClass_full.yaml ``new_variables``)
NEW_VARIABLES = {
    "part_mask": "ak.ones_like(part_energy)",
    "part_pt": "np.hypot(part_px, part_py)",
    "part_pt_log": "np.log(part_pt)",
    "part_e_log": "np.log(part_energy)",
    "part_logptrel": "np.log(part_pt/jet_pt)",
    "part_logerel": "np.log(part_energy/jet_energy)",
    "part_deltaR": "np.hypot(part_deta, part_dphi)",
    "part_d0": "np.tanh(part_d0val)",
    "part_dz": "np.tanh(part_dzval)",
}
#: constituent and jet fields that write_jetclass writes
_WRITTEN = {"px", "py", "pz", "e", "deta", "dphi", "d0", "d0err", "dz", "dzerr", "charge", "pid"}
_JET_WRITTEN = ("pt", "eta", "phi", "msd", "tau1", "tau2", "tau3")
#: features that JetClass clips to [0, 1] instead of standardising
_UNIT_CLIP = ("part_d0err", "part_dzerr")


def jetclass_names(classes: Sequence[str]) -> list[str]:
    """The JetClass label of each of our classes (``top`` is ``Tbqq``); UsageError for a
    class JetClass does not have."""
    names = [_JETCLASS_NAME.get(c, c) for c in classes]
    unknown = [c for c, n in zip(classes, names, strict=True) if n not in LABELS]
    if unknown:
        raise UsageError(f"Classes {unknown} have no JetClass label; the comparison with "
                         f"weaver-core needs classes among {', '.join(LABELS)} (or top).")
    return names


def pt_ordered(jets: ak.Array) -> ak.Array:
    """``jets`` with their constituents sorted by decreasing pT (as JetClass stores them)."""
    c = jets["constituents"]
    return ak.with_field(jets, c[ak.argsort(-np.hypot(c["px"], c["py"]), axis=1)],
                         "constituents")


def export_splits(jets: ak.Array, labels: np.ndarray, classes: Sequence[str],
                  splits: Mapping[str, np.ndarray], directory: Path) -> dict[str, list[Path]]:
    """Write the jets of each split (``splits[name]`` = row indices) as one JetClass ROOT
    file per class present; returns the files per split."""
    names = jetclass_names(classes)
    require_fields(jets, {"px", "py", "pz", "e"}, "the JetClass export for weaver-core")
    missing = sorted((set(_WRITTEN) - set(ak.fields(jets["constituents"])))
                     | (set(_JET_WRITTEN) - set(ak.fields(jets))))
    if missing:
        raise DataError(f"The jets lack {', '.join(missing)}, which the JetClass export for "
                        "weaver-core writes; compare needs JetClass-like jets (generated or "
                        "public JetClass, not top-tagging HDF5).")
    jets = pt_ordered(jets)
    directory.mkdir(parents=True, exist_ok=True)
    files: dict[str, list[Path]] = {}
    for split, idx in splits.items():
        files[split] = []
        for k, name in enumerate(names):
            rows = np.sort(idx[labels[idx] == k])
            if rows.size:
                files[split].append(write_jetclass(
                    jets[rows], directory / f"{split}_{name}.root", name, {INDEX: rows}))
    return files


def data_config(feature_set: str, max_particles: int, classes: Sequence[str]) -> dict[str, Any]:
    """weaver's data config (as a mapping) for feature set ``feature_set`` of
    :data:`~hepchain.reco.jettag.data.FEATURE_SETS`, padded to ``max_particles``."""
    if feature_set not in FEATURE_SETS:
        raise UsageError(f"Feature set {feature_set!r} is unknown; use one of "
                         f"{', '.join(FEATURE_SETS)}.")

    def group(variables: list[list[Any]]) -> dict[str, Any]:
        return {"length": int(max_particles), "pad_mode": "constant", "vars": variables}

    features = []
    for name in FEATURE_SETS[feature_set]:
        centre, scale = standardisation(name)
        if name in _UNIT_CLIP:
            features.append([name, centre, scale, 0, 1])
        elif (centre, scale) == (0.0, 1.0):  # unchanged, as JetClass writes them (null)
            features.append([name, None])
        else:
            features.append([name, centre, scale])
    return {
        "treename": "tree",
        "selection": None,
        "new_variables": dict(NEW_VARIABLES),
        "preprocess": {"method": "manual", "data_fraction": 0.5},
        "inputs": {
            "pf_points": group([["part_deta", None], ["part_dphi", None]]),
            "pf_features": group(features),
            "pf_vectors": group([[f"part_{v}", None] for v in ("px", "py", "pz", "energy")]),
            "pf_mask": group([["part_mask", None]]),
        },
        "labels": {"type": "simple",
                   "value": [f"label_{name}" for name in jetclass_names(classes)]},
        "observers": [INDEX],
        "weights": None,
    }


def write_data_config(path: Path, feature_set: str, max_particles: int,
                      classes: Sequence[str]) -> Path:
    """Write :func:`data_config` as YAML at ``path``."""
    atomic_write_text(path, yaml.safe_dump(data_config(feature_set, max_particles, classes),
                                           sort_keys=False))
    return path
