"""btag's jets in salt-ml's HDF5 input layout (the layout umami-preprocessing writes).

One file per split (``train.h5``, ``val.h5``, ``test.h5``), each with two structured datasets:

- ``jets`` (N,): the jet inputs ``pt_btagJes``, ``eta_btagJes`` (f4), the class index
  ``flavour_label`` (i4, class names in the dataset attribute ``flavour_label``, salt's
  ``bjets, cjets, ujets`` order = btag's ``b, c, light``), the producer's flavour code as
  ``HadronConeExclTruthLabelID`` (5, 4, 0), the raw jet ``pt`` [GeV] and ``eta``, and the
  jet's ``eventNumber`` (index of its event in the source dataset);
- ``tracks`` (N, T): the 22 track inputs under their ATLAS names (:data:`TRACK_NAMES`, f4),
  ``ftagTruthOriginLabel`` (i4, GN1 origin classes 0..7), ``ftagTruthVertexIndex`` (i4, the
  truth vertex, −1 for pile-up, fake and padded tracks) and ``valid`` (bool, False in padding).

The inputs are btag's **transformed** inputs (``Preprocessor``: ln / signed ln, then
standardised with training-track constants and clipped to ±5; padding 0), so both taggers
see exactly the same numbers; ``norm_dict.yaml`` is therefore the identity (mean 0, std 1)
and ``class_dict.yaml`` holds btag's origin class weights (inverse frequency, capped at 20) for
salt's ``use_class_dict``. ``salt-h5.json`` records the btag settings and the source dataset.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from hepchain.core.errors import DataError
from hepchain.core.io import atomic_path, atomic_write_text
from hepchain.reco.btag.gn1 import BTagJets, track_batches
from hepchain.reco.btag.labels import ORIGIN_CLASSES, origin_class_weights
from hepchain.reco.btag.schema import JET_INPUTS, TRACK_INPUTS

SPLITS: tuple[str, ...] = ("train", "val", "test")
JET_NAMES: dict[str, str] = {"pt": "pt_btagJes", "eta": "eta_btagJes"}
"""btag jet input -> salt (ATLAS) variable name."""
TRACK_NAMES: dict[str, str] = {
    "qoverp": "qOverP", "deta": "deta", "dphi": "dphi", "d0": "d0",
    "z0sintheta": "z0SinTheta", "sigma_qoverp": "qOverPUncertainty",
    "sigma_theta": "thetaUncertainty", "sigma_phi": "phiUncertainty",
    "sd0": "IP3D_signed_d0_significance", "sz0": "IP3D_signed_z0_significance",
    "n_pix_hits": "numberOfPixelHits", "n_sct_hits": "numberOfSCTHits",
    "n_ibl_hits": "numberOfInnermostPixelLayerHits",
    "n_bl_hits": "numberOfNextToInnermostPixelLayerHits",
    "n_ibl_shared": "numberOfInnermostPixelLayerSharedHits",
    "n_ibl_split": "numberOfInnermostPixelLayerSplitHits",
    "n_pix_shared": "numberOfPixelSharedHits", "n_pix_split": "numberOfPixelSplitHits",
    "n_sct_shared": "numberOfSCTSharedHits", "n_pix_holes": "numberOfPixelHoles",
    "n_sct_holes": "numberOfSCTHoles", "lepton_id": "leptonID",
}
"""btag track input -> salt (ATLAS) variable name, in :data:`TRACK_INPUTS` order."""
SALT_CLASSES: dict[str, str] = {"b": "bjets", "c": "cjets", "light": "ujets", "tau": "taujets"}
"""btag class name -> salt/umami flavour name (its probability field ``<model>_pb`` etc.)."""


@dataclass
class SaltSplit:
    """One split read back from a salt file: transformed inputs and labels (numpy)."""

    tracks: np.ndarray  # (N, T, 22) f4, TRACK_INPUTS order
    mask: np.ndarray    # (N, T) bool, True for real tracks (the file's `valid`)
    jet: np.ndarray     # (N, 2) f4, JET_INPUTS order
    label: np.ndarray   # (N,) class index
    origin: np.ndarray  # (N, T) origin class, -1 in padding
    vertex: np.ndarray  # (N, T) truth vertex, -1: none / padding
    pt: np.ndarray      # (N,) raw jet pT [GeV]
    classes: list[str]  # btag class names in flavour_label order


def jets_dtype() -> np.dtype:
    return np.dtype([(JET_NAMES[f], "f4") for f in JET_INPUTS]
                    + [("flavour_label", "i4"), ("HadronConeExclTruthLabelID", "i4"),
                       ("pt", "f4"), ("eta", "f4"), ("eventNumber", "i8")])


def tracks_dtype() -> np.dtype:
    return np.dtype([(TRACK_NAMES[f], "f4") for f in TRACK_INPUTS]
                    + [("ftagTruthOriginLabel", "i4"), ("ftagTruthVertexIndex", "i4"),
                       ("valid", "?")])


def write_salt_files(jets: BTagJets, dst: Path, info: dict[str, Any]) -> dict[str, int]:
    """Write the splits of ``jets`` (btag's selected, split jets) to ``dst`` in salt's layout
    with btag's track preprocessing fitted on the training jets, plus ``norm_dict.yaml``,
    ``class_dict.yaml`` and ``salt-h5.json`` (``info`` and the jet counts); returns the number
    of jets per split."""
    unknown = [c for c in jets.classes if c not in SALT_CLASSES]
    if unknown:
        raise DataError(f"Classes {unknown} have no salt flavour name; use b, c, light, tau.")
    prep, batches = track_batches(jets)
    events = {k: jets.event[m] for k, m in jets.split.items()}
    counts = {}
    for split in SPLITS:
        tracks, mask, jet, label, origin, vertex = (x.numpy() for x in batches[split])
        table = jets.tables[split]
        rec = np.zeros(len(label), dtype=jets_dtype())
        for i, f in enumerate(JET_INPUTS):
            rec[JET_NAMES[f]] = jet[:, i]
        rec["flavour_label"] = label
        rec["HadronConeExclTruthLabelID"] = table.flavour
        rec["pt"], rec["eta"] = table.jet[:, 0], table.jet[:, 1]
        rec["eventNumber"] = events.get(split, np.full(len(label), -1))
        trk = np.zeros(mask.shape, dtype=tracks_dtype())
        for i, f in enumerate(TRACK_INPUTS):
            trk[TRACK_NAMES[f]] = tracks[..., i]
        trk["ftagTruthOriginLabel"] = origin
        trk["ftagTruthVertexIndex"] = vertex
        trk["valid"] = mask
        _write_h5(dst / f"{split}.h5", rec, trk, [SALT_CLASSES[c] for c in jets.classes])
        counts[split] = len(label)
    norm = {"jets": {JET_NAMES[f]: {"mean": 0.0, "std": 1.0} for f in JET_INPUTS},
            "tracks": {TRACK_NAMES[f]: {"mean": 0.0, "std": 1.0} for f in TRACK_INPUTS}}
    weights = origin_class_weights(jets.tables["train"].origin)
    classes = {"jets": {"flavour_label": [1.0] * len(jets.classes)},
               "tracks": {"ftagTruthOriginLabel": [float(w) for w in weights]}}
    atomic_write_text(dst / "norm_dict.yaml", yaml.safe_dump(norm, sort_keys=False))
    atomic_write_text(dst / "class_dict.yaml", yaml.safe_dump(classes, sort_keys=False))
    meta = {**info, "classes": jets.classes, "jets": counts, "max_tracks": prep.max_tracks,
            "origin_classes": list(ORIGIN_CLASSES), "preprocessing": prep.to_dict()}
    atomic_write_text(dst / "salt-h5.json", json.dumps(meta, indent=1, default=str))
    return counts


def _write_h5(path: Path, jets: np.ndarray, tracks: np.ndarray, flavours: list[str]) -> None:
    import h5py

    with atomic_path(path) as tmp, h5py.File(tmp, "w") as fh:
        fh.attrs["unique_jets"] = len(jets)
        fh.attrs["inputs"] = ("hepchain btag transformed inputs (ln / signed ln, "
                              "standardised on training tracks, clipped to +-5)")
        fh.create_dataset("jets", data=jets)
        fh["jets"].attrs["flavour_label"] = flavours
        fh.create_dataset("tracks", data=tracks, compression="gzip", compression_opts=1)


def read_salt_split(path: str | Path) -> SaltSplit:
    """One split file written by :func:`write_salt_files`, back as arrays; a file that is not
    in this layout is one DataError naming what is missing."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist; write it with `hepchain convert SRC DST "
                        "--to salt-h5`.")
    try:
        with h5py.File(path, "r") as fh:
            if not {"jets", "tracks"} <= set(fh):
                raise DataError(f"{path} has no 'jets' and 'tracks' datasets; it is not a "
                                "salt input file.")
            jets, tracks = fh["jets"][:], fh["tracks"][:]
            flavours = [str(f) for f in fh["jets"].attrs.get("flavour_label", [])]
    except OSError:
        raise DataError(f"{path} is not an HDF5 file.") from None
    missing = sorted(set(jets_dtype().names) - set(jets.dtype.names or ())) + sorted(
        set(tracks_dtype().names) - set(tracks.dtype.names or ()))
    if missing:
        raise DataError(f"{path} lacks the field(s) {', '.join(missing)} of the salt-h5 layout.")
    by_salt = {v: k for k, v in SALT_CLASSES.items()}
    return SaltSplit(
        tracks=np.stack([tracks[TRACK_NAMES[f]] for f in TRACK_INPUTS], axis=-1),
        mask=tracks["valid"].astype(bool),
        jet=np.stack([jets[JET_NAMES[f]] for f in JET_INPUTS], axis=-1),
        label=jets["flavour_label"].astype(np.int64),
        origin=tracks["ftagTruthOriginLabel"].astype(np.int64),
        vertex=tracks["ftagTruthVertexIndex"].astype(np.int64),
        pt=jets["pt"].astype(np.float64),
        classes=[by_salt.get(f, f) for f in flavours])
