"""Jets from any salt-layout HDF5 files as inputs of btag's track taggers.

A salt training config says what such files hold: ``data.input_map`` (salt's input name ->
HDF5 dataset, default the identity), ``data.variables`` (the jet and track inputs),
``data.train_file`` / ``val_file`` / ``test_file`` / ``norm_dict`` (their names) and the
``label`` of its track ``ClassificationTask`` whose label names an origin (with
``class_names``) and of its ``VertexingTask``. Two are built in:

- ``open-data``: the Salt tutorial's open ttbar sample (Zenodo 10371998, Delphes, μ = 50):
  ``jets`` and ``consts``, 9 track inputs, ``truth_origin_label``, ``truth_vertex_idx``
  (``open-data.yaml``);
- ``salt-h5``: what ``hepchain convert SRC DST --to salt-h5`` writes (``GN1-like.yaml``;
  files ``train.h5``, ``val.h5``, ``test.h5``).

The jet class comes from the jet's truth flavour (``HadronConeExclTruthLabelID``, else
``flavour``: 5 b, 4 c, 0 light, 15 τ); jets of other classes are left out. Origin classes are
mapped by name onto GN1's (:data:`labels.ORIGIN_CLASSES`; the tutorial's ``fromS`` and
``secondary`` become ``otherSecondary``). Inputs are standardised with the ``norm_dict`` file
when it is there (salt's ``InputNorm``: (x − mean) / std), else with means and standard
deviations of the training file's real tracks and jets; padding is 0 as in salt::

    layout = H5Layout.named("open-data")
    split = read_split(Path("pp_output_val.h5"), layout, ["b", "c", "light"], 10_000, 50)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from hepchain.core.errors import DataError
from hepchain.core.provenance import machine_info
from hepchain.core.standardise import Standardiser
from hepchain.reco.btag.labels import ORIGIN_CLASSES

SPLIT_FILES: dict[str, str] = {"train": "train_file", "val": "val_file", "test": "test_file"}
"""Split -> the salt config's ``data`` key naming its file."""
DEFAULT_FILES: dict[str, str] = {"train_file": "train.h5", "val_file": "val.h5",
                                 "test_file": "test.h5", "norm_dict": "norm_dict.yaml"}
"""File names of a config that does not name them (those of ``--to salt-h5``)."""
BUILT_IN: dict[str, str] = {"open-data": "open-data.yaml", "salt-h5": "GN1-like.yaml"}
FLAVOURS: dict[int, str] = {5: "b", 4: "c", 0: "light", 15: "tau"}
"""Truth flavour label (``HadronConeExclTruthLabelID`` convention) -> btag class."""
FLAVOUR_FIELDS: tuple[str, ...] = ("HadronConeExclTruthLabelID", "flavour")
READ_COPIES = 3
"""Copies of the read columns alive while a split is prepared (the columns, the stacked f4
inputs, the standardised ones): a read that would not fit the machine's memory is refused."""
ORIGIN_NAMES: dict[str, str] = {
    **{c.lower(): c for c in ORIGIN_CLASSES}, "secondary": "otherSecondary",
    "froms": "otherSecondary"}
"""Origin class name (lower case, without ``*``) -> GN1 origin class."""
SALT_ORIGIN_DEFAULT: dict[str, tuple[str, ...]] = {"ftagTruthOriginLabel": ORIGIN_CLASSES}
"""salt's default ``class_names`` of a label (``salt/utils/class_names.py``; GN1's order)."""


@dataclass(frozen=True)
class H5Layout:
    """Datasets, inputs, labels and file names of salt-layout files (see the module text)."""

    jets: str
    tracks: str
    jet_variables: tuple[str, ...]
    track_variables: tuple[str, ...]
    origin_label: str | None
    origin_map: tuple[int, ...]  # the file's origin class index -> GN1 origin class index
    vertex_label: str | None
    files: dict[str, str]  # split or "norm_dict" -> file name
    source: str | None = None  # where the files come from (named when one is missing)

    @classmethod
    def named(cls, layout: str) -> H5Layout:
        """A built-in layout (``open-data``, ``salt-h5``) or a salt config file's."""
        if layout in BUILT_IN:
            path = Path(__file__).with_name(BUILT_IN[layout])
        else:
            path = Path(layout)
            if not path.is_file():
                raise DataError(f"data.h5.layout {layout!r} is neither {' nor '.join(BUILT_IN)} "
                                "nor a salt config file.")
        try:
            config = yaml.safe_load(path.read_text())
        except yaml.YAMLError:
            raise DataError(f"{path} is not YAML; data.h5.layout needs a salt config.") from None
        return cls.from_salt_config(config, str(path))

    @classmethod
    def from_salt_config(cls, config: Any, source: str = "the salt config") -> H5Layout:
        """The layout a salt training config (parsed YAML) describes."""
        data = config.get("data") if isinstance(config, dict) else None
        variables = (data or {}).get("variables") or {}
        if not {"jets", "tracks"} <= set(variables):
            raise DataError(f"{source} has no data.variables with jets and tracks.")
        names = {**{k: k for k in variables}, **(data.get("input_map") or {})}
        origin_label = vertex_label = None
        origin_map: tuple[int, ...] = ()
        for task in _tasks(config):
            args = task.get("init_args") or {}
            if args.get("input_name") != "tracks":
                continue
            label = str(args.get("label", ""))
            if str(task.get("class_path", "")).endswith("VertexingTask"):
                vertex_label = label
            elif (str(task.get("class_path", "")).endswith("ClassificationTask")
                  and "origin" in label.lower()):
                origin_label = label
                origin_map = _origin_map(args.get("class_names")
                                         or SALT_ORIGIN_DEFAULT.get(origin_label), source)
        files = {split: Path(str(data.get(key) or DEFAULT_FILES[key])).name
                 for split, key in SPLIT_FILES.items()}
        files["norm_dict"] = Path(str(data.get("norm_dict") or DEFAULT_FILES["norm_dict"])).name
        return cls(names["jets"], names["tracks"], tuple(variables["jets"]),
                   tuple(variables["tracks"]), origin_label, origin_map, vertex_label, files,
                   config.get("source"))


def _tasks(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The task entries of a salt config's model (none when it has no model section)."""
    try:
        return list(config["model"]["model"]["init_args"]["tasks"]["init_args"]["modules"])
    except (KeyError, TypeError):
        return []


def _origin_map(names: Any, source: str) -> tuple[int, ...]:
    """GN1 origin class index of each of the file's origin class ``names``."""
    if not names:
        raise DataError(f"{source}: the track-origin task needs class_names (its label has no "
                        "salt default).")
    unknown = [n for n in names if str(n).lower().rstrip("*") not in ORIGIN_NAMES]
    if unknown:
        raise DataError(f"{source}: origin classes {unknown} have no GN1 origin class "
                        f"(known: {sorted(ORIGIN_NAMES)}).")
    return tuple(ORIGIN_CLASSES.index(ORIGIN_NAMES[str(n).lower().rstrip("*")]) for n in names)


@dataclass
class H5Split:
    """One split's jets, inputs as read (:func:`standardise` scales them in place): tracks
    (N, T, F) f4 in ``track_variables`` order, mask (N, T) True for real tracks, jet (N, J)
    f4, label (N,) index into the classes, origin (N, T) GN1 origin class and vertex (N, T)
    truth vertex (−1: none, padding, or the file has no such label)."""

    tracks: np.ndarray
    mask: np.ndarray
    jet: np.ndarray
    label: np.ndarray
    origin: np.ndarray
    vertex: np.ndarray
    n_read: int         # jets read from the file
    tracks_dropped: int  # real tracks beyond max_tracks


def read_split(path: Path, layout: H5Layout, classes: list[str], n_jets: int | None,
               max_tracks: int) -> H5Split:
    """``n_jets`` jets (None: all; else every k-th jet from the first, k = jets // n_jets) of
    the file ``path`` whose flavour is one of ``classes``, with their first ``max_tracks``
    tracks; a file without the layout's datasets or fields, or with non-finite inputs, is one
    DataError naming what is wrong."""
    import h5py

    if not path.is_file():
        files = [layout.files[k] for k in SPLIT_FILES]
        where = f"; they are {layout.source}" if layout.source else ""
        raise DataError(f"{path} does not exist (data.h5.dir holds the layout's files "
                        f"{', '.join(files)} and optionally {layout.files['norm_dict']}{where}).")
    try:
        with h5py.File(path, "r") as fh:
            jets = _fields(fh, path, layout.jets, layout.jet_variables, FLAVOUR_FIELDS, n_jets)
            labels = [f for f in (layout.origin_label, layout.vertex_label) if f]
            tracks = _fields(fh, path, layout.tracks, (*layout.track_variables, "valid",
                                                       *labels), (), n_jets)
    except OSError:
        raise DataError(f"{path} is not an HDF5 file.") from None
    flavour = next(jets[f] for f in FLAVOUR_FIELDS if f in (jets.dtype.names or ()))
    label = np.full(len(flavour), -1, dtype=np.int64)
    for code, name in FLAVOURS.items():
        if name in classes:
            label[flavour == code] = classes.index(name)
    keep = label >= 0
    tracks = tracks[keep]
    dropped = int(tracks["valid"][:, max_tracks:].sum())
    tracks = tracks[:, :max_tracks]
    mask = tracks["valid"].astype(bool)
    origin = np.full(mask.shape, -1)
    if layout.origin_label:
        code = np.where(mask, tracks[layout.origin_label], 0)
        if code.min() < 0 or code.max() >= len(layout.origin_map):
            raise DataError(f"{path}: {layout.origin_label} of a real track is outside the "
                            f"{len(layout.origin_map)} origin classes of the layout.")
        origin = np.asarray(layout.origin_map)[code]
    vertex = (tracks[layout.vertex_label].astype(np.int64) if layout.vertex_label
              else np.full(mask.shape, -1, dtype=np.int64))
    inputs = np.stack([tracks[v] for v in layout.track_variables], -1).astype(np.float32)
    jet = np.stack([jets[v][keep] for v in layout.jet_variables], -1).astype(np.float32)
    bad = [v for i, v in enumerate(layout.track_variables)
           if not np.isfinite(inputs[..., i][mask]).all()]
    bad += [v for i, v in enumerate(layout.jet_variables) if not np.isfinite(jet[:, i]).all()]
    if bad:
        raise DataError(f"{path}: non-finite {', '.join(bad)} (real tracks and jets only).")
    return H5Split(
        tracks=inputs,
        mask=mask,
        jet=jet,
        label=label[keep],
        origin=np.where(mask, origin, -1).astype(np.int64),
        vertex=np.where(mask, vertex, -1),
        n_read=len(label),
        tracks_dropped=dropped)


def _fields(fh: Any, path: Path, dataset: str, fields: tuple[str, ...],
            any_of: tuple[str, ...], n: int | None) -> np.ndarray:
    """The ``fields`` and the first present of ``any_of`` of ``n`` rows of ``dataset`` spread
    over it (every k-th row from the first, k = len // n, so at least half of it is spanned;
    None: all) -- a file written class by class still gives every class. Only those columns
    are read."""
    if dataset not in fh:
        raise DataError(f"{path} has no dataset {dataset!r} (has: {', '.join(fh)}).")
    ds = fh[dataset]
    names = set(ds.dtype.names or ())
    missing = [f for f in fields if f not in names]
    if any_of and not names & set(any_of):
        missing.append(" or ".join(any_of))
    if missing:
        raise DataError(f"{path}: dataset {dataset!r} lacks the field(s) {', '.join(missing)}.")
    wanted = [*dict.fromkeys(fields), *[f for f in any_of if f in names][:1]]
    size = len(ds)
    rows = size if n is None else min(n, size)
    need = READ_COPIES * rows * int(np.prod(ds.shape[1:])) * sum(
        ds.dtype[f].itemsize for f in wanted) / 2**30
    memory = float(machine_info().get("memory_gb", np.inf))
    if need > memory:
        raise DataError(f"{path}: reading {rows} jets of {dataset!r} needs ~{need:.2g} GiB, this "
                        f"machine has {memory:.2g} GiB; set data.h5.n_jets (e.g. "
                        f"{int(rows * memory / need / 2):d}).")
    step = 1 if n is None or n >= size else size // n
    return ds.fields(wanted)[:step * rows:step]


def standardise(splits: dict[str, H5Split], layout: H5Layout, norm_dict: Path) -> str:
    """Standardise every split's inputs in place, (x − mean) / std with the constants of the
    ``norm_dict`` file (salt's format: dataset -> variable -> mean, std) when it exists, else
    fitted on the training split's real tracks and jets (:class:`core.standardise.Standardiser`);
    padding stays 0. Returns where the constants came from."""
    train = splits["train"]
    if norm_dict.is_file():
        norm = yaml.safe_load(norm_dict.read_text()) or {}
        trk = _norm_dict_standardiser(norm, norm_dict, layout.tracks, layout.track_variables)
        jet = _norm_dict_standardiser(norm, norm_dict, layout.jets, layout.jet_variables)
        source = str(norm_dict)
    else:
        trk, jet = Standardiser.fit(train.tracks[train.mask]), Standardiser.fit(train.jet)
        source = f"the training file's real tracks and jets ({norm_dict.name} not found)"
    for split in splits.values():
        split.tracks = np.where(split.mask[..., None], trk.transform(split.tracks),
                                0.0).astype(np.float32)
        split.jet = jet.transform(split.jet).astype(np.float32)
    return source


def _norm_dict_standardiser(norm: dict[str, Any], path: Path, dataset: str,
                            variables: tuple[str, ...]) -> Standardiser:
    """The means and standard deviations of ``variables`` of ``dataset`` in a salt norm dict."""
    table = norm.get(dataset) or {}
    missing = [v for v in variables if v not in table]
    if missing:
        raise DataError(f"{path} has no mean and std for {dataset} {', '.join(missing)}.")
    mean = np.array([float(table[v]["mean"]) for v in variables])
    std = np.array([float(table[v]["std"]) for v in variables])
    if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()):
        raise DataError(f"{path}: {dataset} has a non-finite mean or a std that is not positive.")
    return Standardiser(mean, std)
