"""salt's predictions scored with btag's metrics, beside our GN1 on the same files.

``salt test`` (its ``PredictionWriter``) writes ``<checkpoint>__test_<split>.h5`` beside the
checkpoints: the input ``jets`` fields plus ``<model>_pb``, ``<model>_pc``, ``<model>_pu``.
:func:`salt_comparison` reads those of the validation and test files, checks that they hold
the jets of the ``salt-h5`` files in the same order, re-evaluates our saved GN1 (``gn1.pt`` of
a ``hepchain btag run`` on the same jets) on exactly the inputs salt saw, and adds to that
run's ``Result`` the salt rows btag reports for every tagger: light and c rejection at the
working points set on the validation jets, binomial errors, passing counts, the ratio to our
GN1, the test jet cross-entropy of both and the training cost (wall, CPU, jets per wall and
per CPU second). When ``salt test`` ran with ``write_tracks: true``, the test file also holds
salt's auxiliary outputs (``<model>_pPileup`` ... per track, ``VertexIndex``): their
track-origin AUCs and, for salt and our GN1 alike, the vertexing metrics of predicted vertices
are added. salt writes the prediction files with hdf5plugin's LZ4 filter: reading them
needs ``HDF5_PLUGIN_PATH`` pointing at the ``hdf5plugin/plugins`` folder of salt's venv.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
import yaml

from hepchain.core.errors import DataError
from hepchain.core.result import Result
from hepchain.reco.btag import evaluate, performance
from hepchain.reco.btag.export import load_tagger
from hepchain.reco.btag.gn1 import FULL
from hepchain.reco.btag.labels import ORIGIN_CLASSES
from hepchain.reco.btag.models import TASKS
from hepchain.reco.btag.salt.layout import SaltSplit, read_salt_split
from hepchain.reco.btag.training import head_probabilities

VERTEX_SUFFIX = ", pairs in predicted vertices"
"""Row-name suffix of the vertexing metrics computed from predicted vertices."""
PROB_FIELDS: dict[str, str] = {"b": "pb", "c": "pc", "light": "pu", "tau": "ptau"}
"""btag class -> suffix of salt's probability field (ftag ``Flavours[...].px``)."""


def find_prediction(salt_dir: Path, split: str) -> Path:
    """The one ``ckpts/*__test_<split>.h5`` written by ``salt test`` in the run ``salt_dir``."""
    found = sorted(Path(salt_dir).glob(f"ckpts/*__test_{split}.h5"))
    if len(found) != 1:
        raise DataError(f"Expected one salt prediction file ckpts/*__test_{split}.h5 in "
                        f"{salt_dir}, found {len(found)}; run `salt test --config "
                        f"{salt_dir}/config.yaml --data.test_file DST/{split}.h5` once.")
    return found[0]


def salt_probabilities(path: Path, classes: list[str]) -> tuple[np.ndarray, np.ndarray,
                                                                np.ndarray]:
    """``(probabilities (N, C) in ``classes`` order, flavour_label, eventNumber)`` of a salt
    prediction file."""
    import h5py

    try:
        with h5py.File(path, "r") as fh:
            jets = fh["jets"][:]
    except OSError:
        raise DataError(f"Cannot read {path}: salt writes its predictions with the LZ4 filter "
                        "of hdf5plugin; set HDF5_PLUGIN_PATH to the hdf5plugin/plugins folder "
                        "of salt's venv (docs/btag.md).") from None
    names = jets.dtype.names or ()
    cols = [f"{_model_name(path, names)}_{PROB_FIELDS[c]}" for c in classes]
    if missing := [c for c in cols if c not in names]:
        raise DataError(f"{path} lacks the probability field(s) {', '.join(missing)}.")
    probs = np.stack([jets[c].astype(np.float64) for c in cols], axis=-1)
    return probs, jets["flavour_label"].astype(np.int64), jets["eventNumber"]


def _model_name(path: Path, names: tuple[str, ...]) -> str:
    """The salt model's name: the prefix of the one ``<model>_pb`` field of its jets."""
    suffix = f"_{PROB_FIELDS['b']}"
    models = [n[: -len(suffix)] for n in names if n.endswith(suffix)]
    if len(models) != 1:
        raise DataError(f"{path} holds {len(models)} taggers' b probabilities (fields *_pb); "
                        "expected one salt model.")
    return models[0]


def salt_track_outputs(path: Path) -> dict[str, np.ndarray] | None:
    """salt's auxiliary outputs in a prediction file written with ``write_tracks: true``:
    ``{"track": origin probabilities (N, T, 8) in ORIGIN_CLASSES order, "vertex_index":
    predicted vertex per track (N, T)}``; None when the file has no ``tracks``."""
    import h5py

    with h5py.File(path, "r") as fh:
        if "tracks" not in fh:
            return None
        model = _model_name(path, fh["jets"].dtype.names or ())
        tracks = fh["tracks"][:]
    names = tracks.dtype.names or ()
    cols = [f"{model}_p{c[0].upper()}{c[1:]}" for c in ORIGIN_CLASSES]  # salt: pFromB, ...
    if missing := [c for c in [*cols, "VertexIndex"] if c not in names]:
        raise DataError(f"{path} lacks the track output field(s) {', '.join(missing)} of "
                        "salt's track_origin and track_vertexing tasks.")
    return {"track": np.stack([tracks[c] for c in cols], axis=-1),
            "vertex_index": tracks["VertexIndex"].astype(np.int64)}


def gn1_outputs(model: torch.nn.Module, split: SaltSplit, heads: tuple[str, ...] = TASKS,
                batch_size: int = 1024) -> dict[str, np.ndarray]:
    """Our GN1 on a salt file's (already transformed) inputs, for those of ``heads`` it has:
    flavour probabilities ``jet`` (N, C, float64), origin probabilities ``track`` (N, T, 8),
    pair probabilities ``vertex`` (N, T, T)."""
    model = model.eval()
    data = [torch.from_numpy(x) for x in (split.tracks.astype(np.float32), split.mask,
                                           split.jet.astype(np.float32))]
    parts: dict[str, list[np.ndarray]] = {}
    with torch.no_grad():
        for i in range(0, len(split.label), batch_size):
            out = model(*(x[i:i + batch_size] for x in data))
            for key in (k for k in heads if k in out):
                parts.setdefault(key, []).append(head_probabilities(key, out[key]).numpy())
    return {k: np.concatenate(v).astype(np.float64) if k == "jet" else np.concatenate(v)
            for k, v in parts.items()}


def read_time(path: Path) -> tuple[float, float]:
    """``(wall, CPU = user + system)`` seconds from ``/usr/bin/time -f "%e %U %S" -o PATH``."""
    try:
        wall, user, system = (float(x) for x in Path(path).read_text().split()[-3:])
    except (OSError, ValueError):
        raise DataError(f"{path} is not a `/usr/bin/time -f \"%e %U %S\"` output file (three "
                        "numbers: wall, user and system seconds).") from None
    return wall, user + system


def _check_same_jets(name: str, split: SaltSplit, label: np.ndarray, event: np.ndarray,
                     h5_event: np.ndarray) -> None:
    if len(label) != len(split.label) or not (np.array_equal(label, split.label)
                                              and np.array_equal(event, h5_event)):
        raise DataError(f"salt's {name} predictions are not the jets of the salt-h5 {name} "
                        "file in the same order; run `salt test` on that file.")


def salt_comparison(salt_dir: Path, h5_dir: Path, run_dir: Path, time_file: Path | None,
                    name: str = "salt GN1-like") -> Result:
    """The ``Result`` of the btag run ``run_dir`` with the rows of salt's tagger ``name``
    (trained in ``salt_dir`` on the ``salt-h5`` files ``h5_dir``) added; ``time_file``: the
    ``/usr/bin/time`` output of its ``salt fit`` (training cost rows)."""
    import h5py

    run = Result.load(Path(run_dir) / "results.json")
    config = run.provenance.config
    salt_config = _salt_config(Path(salt_dir))
    salt_seed = _check_seed(salt_config, config.get("seed"))
    classes, effs = list(config["classes"]), list(config["efficiencies"])
    splits = {k: read_salt_split(Path(h5_dir) / f"{k}.h5") for k in ("val", "test")}
    if splits["test"].classes != classes:
        raise DataError(f"The salt-h5 files hold classes {splits['test'].classes}, the run "
                        f"{classes}.")
    counts = np.bincount(splits["test"].label, minlength=len(classes))
    for cls, n in zip(classes, counts, strict=True):
        if run.get(f"test {cls}-jets", "data").value != n:
            raise DataError(f"The run {run_dir} tested on other jets than the salt-h5 test file "
                            f"({cls}-jets differ); convert the run's dataset with its preset.")
    model, gn1_classes, _ = load_tagger(Path(run_dir) / "gn1.pt")
    if gn1_classes != classes:
        raise DataError(f"The run's gn1.pt tags {gn1_classes}, the salt files hold {classes}.")
    scores: dict[str, dict[str, np.ndarray]] = {}
    cross_entropy: dict[str, float] = {}
    ours = {"val": gn1_outputs(model, splits["val"], heads=("jet",)),
            "test": gn1_outputs(model, splits["test"])}
    for key, split in splits.items():
        with h5py.File(Path(h5_dir) / f"{key}.h5", "r") as fh:
            h5_event = fh["jets"]["eventNumber"]
        probs, label, event = salt_probabilities(find_prediction(salt_dir, key), classes)
        _check_same_jets(key, split, label, event, h5_event)
        for tagger, p in ((name, probs), (FULL, ours[key]["jet"])):
            scores.setdefault(tagger, {})[key] = evaluate.discriminant(p, classes, config["fc"])
            if key == "test":
                cross_entropy[tagger] = float(-np.log(np.clip(
                    p[np.arange(len(label)), label], 1e-12, None)).mean())
    rej = {n: evaluate.rejections((splits["val"].label, s["val"]),
                                  (splits["test"].label, s["test"]), classes, effs)
           for n, s in scores.items()}
    out = copy.deepcopy(run)
    out.preset, out.figures = f"{run.preset} (salt-eval, {name})", []  # a verb's table
    out.add("parameters", FULL, float(sum(p.numel() for p in model.parameters())))
    for tagger, ce in cross_entropy.items():
        out.add("test jet cross-entropy", tagger, ce, higher_is_better=False)
    for (bkg, eff), row in rej[name].items():
        evaluate.add_rejection_rows(out, name, bkg, eff, row)
        ratio, err = evaluate.rejection_ratio(row, rej[FULL][(bkg, eff)])
        out.add(f"{bkg} rejection ratio {name} / {FULL} @ {eff:.0%}", name, ratio, std=err,
                higher_is_better=True)
        test = splits["test"].label == classes.index(bkg)
        paired = evaluate.paired_ratio_error(
            scores[name]["test"][test] >= row.threshold,
            scores[FULL]["test"][test] >= rej[FULL][(bkg, eff)].threshold)
        out.add(f"{bkg} rejection ratio {name} / {FULL} @ {eff:.0%}, paired bootstrap error",
                name, paired, higher_is_better=False)
        stored = run.get(f"{bkg} rejection @ {eff:.0%} b-eff", FULL).value
        out.notes.append(f"{FULL} re-evaluated on the salt-h5 files: {bkg} rejection @ "
                         f"{eff:.0%} {rej[FULL][(bkg, eff)].rejection:.4g} (run: {stored:.4g}).")
    salt_tracks = salt_track_outputs(find_prediction(salt_dir, "test"))
    if salt_tracks is not None:
        _auxiliary_rows(out, name, salt_tracks, ours["test"], splits["test"], classes)
    _training_cost(out, name, Path(salt_dir), salt_config, time_file)
    out.notes.append(f"{name}: salt-ml run {salt_dir} (seed_everything {salt_seed}), "
                     "predictions of its best checkpoint (lowest validation jet loss); working "
                     "points set on the validation jets.")
    out.notes.append(f"Our taggers: `{run.provenance.command or 'not recorded'}` ({run_dir}; "
                     f"git {run.provenance.git_revision}, {run.provenance.started[:10]}).")
    return out


def _auxiliary_rows(result: Result, name: str, salt: dict[str, np.ndarray],
                    ours: dict[str, np.ndarray], test: SaltSplit, classes: list[str]) -> None:
    """salt's track-origin AUCs (the run holds our GN1's, on the same test jets), their
    differences to ours with the paired bootstrap error over test jets, and both
    taggers' vertexing metrics on the test jets, each tagger's pairs taken from its predicted
    vertices: salt's ``VertexIndex``, the connected components of our pair probabilities
    > 0.5 (the run's own pair rows use our raw pair decisions)."""
    if salt["track"].shape[:2] != test.mask.shape:
        raise DataError(f"salt's track outputs have shape {salt['track'].shape[:2]}, the "
                        f"salt-h5 test tracks {test.mask.shape}; run `salt test` on that file.")
    b_jets = test.label == classes.index("b")
    performance.origin_rows(result, name, salt["track"], test.origin, test.mask)
    if "track" in ours:
        performance.origin_difference_rows(result, name, FULL, salt["track"], ours["track"],
                                           test.origin, test.mask)
    index = {name: salt["vertex_index"]}
    if "vertex" in ours:
        index[FULL] = evaluate.vertex_index(ours["vertex"], test.mask)
    for tagger, idx in index.items():
        performance.vertex_rows(result, tagger, evaluate.same_vertex_pairs(idx, test.mask),
                                test, b_jets, suffix=VERTEX_SUFFIX)
    result.notes.append(f"{name}: track origin and vertexing from salt's test predictions "
                        f"(write_tracks); the vertexing rows ending in '{VERTEX_SUFFIX}' "
                        "count a pair as same-vertex when both tracks are in one predicted "
                        "vertex, for both taggers.")


def _salt_config(salt_dir: Path) -> dict:
    """The ``config.yaml`` salt saved in its training directory ``salt_dir``."""
    config_file = salt_dir / "config.yaml"
    if not config_file.is_file():
        raise DataError(f"{salt_dir} is not a salt training directory (no config.yaml).")
    return yaml.safe_load(config_file.read_text())


def _check_seed(salt_config: dict, run_seed: int | None) -> int | None:
    """salt's ``seed_everything``; a DataError when it is not the seed of our run: the
    comparison is per seed, and ``salt fit --seed_everything S --config F`` silently trains
    with F's seed (a later ``--config`` overrides it)."""
    seed = salt_config.get("seed_everything")
    if seed is not None and run_seed is not None and int(seed) != int(run_seed):
        raise DataError(f"salt trained with seed_everything {seed}, our run with seed "
                        f"{run_seed}; compare runs of the same seed, and give `salt fit` "
                        "--seed_everything after --config (a later --config resets it).")
    return None if seed is None else int(seed)


def _training_cost(result: Result, name: str, salt_dir: Path, salt_config: dict,
                   time_file: Path | None) -> None:
    meta_file = salt_dir / "metadata.yaml"
    if not meta_file.is_file():
        raise DataError(f"{salt_dir} is not a salt training directory (no metadata.yaml).")
    meta = yaml.safe_load(meta_file.read_text())
    epochs = int(salt_config["trainer"]["max_epochs"])
    result.add("parameters", name, float(meta["trainable_params"]))
    result.provenance.versions.update({"salt torch": str(meta.get("torch_version")),
                                       "salt lightning": str(meta.get("lightning_version"))})
    if time_file is None:
        return
    n_train = int(meta["num_train"]) if int(meta["num_train"]) > 0 else int(
        meta["available_train"])
    wall, cpu = read_time(time_file)
    evaluate.add_training_cost(result, name, wall, cpu, n_train * epochs)
    for unit in ("jets/s", "jets/CPU-s"):
        title = f"training throughput ({unit})"
        ours = [m.value for m in result.metrics if m.name == title and m.method == FULL]
        if ours:
            result.add(f"training throughput ratio {FULL} / {name} ({unit})", FULL,
                       ours[0] / result.get(title, name).value, higher_is_better=True)
    result.notes.append(f"{name} training cost: the whole `salt fit` process (start-up, "
                        f"dataset set-up, {epochs} epochs with validation).")
