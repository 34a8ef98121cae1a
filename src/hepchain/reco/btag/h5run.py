"""The btag study on jets from salt-layout HDF5 files (``data.h5.dir`` set): the Salt
tutorial's open ttbar sample (Zenodo 10371998), a ``--to salt-h5`` export, or any files a salt
config describes (:mod:`.salt.h5input`)::

    hepchain btag bench --preset open-data --seeds 3 --set data.h5.dir=/data/salt-tutorial

(``open-data`` reads ``data/salt-tutorial`` by default: the unpacked Zenodo archive.)

Only the track taggers are trained (Deep Sets and every ``gn1_variants`` entry, btag's models
and trainer): the IP3D-like and DL1-like baselines need raw tracks and the secondary-vertex
finder, which such files do not hold, so GN1 is compared with Deep Sets (rejection ratios
with binomial errors) and with its own no-aux ablation on the same inputs. Working points
are set on the validation file and applied to the test file (binomial errors)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from hepchain.core.cache import data_root
from hepchain.core.result import Result
from hepchain.reco.btag import performance
from hepchain.reco.btag.gn1 import FULL
from hepchain.reco.btag.labels import origin_class_weights
from hepchain.reco.btag.plots import study_figures
from hepchain.reco.btag.salt.h5input import H5Layout, H5Split, read_split, standardise
from hepchain.reco.btag.taggers import train_track_taggers
from hepchain.reco.btag.training import track_batch

HEAD_BYTES = 64 * 2**20
"""Bytes of each file hashed for the provenance (the tutorial's files are 1.4-24 GB)."""


def run_h5(config: dict[str, Any], workdir: Path, seed: int) -> Result:
    """btag's track taggers trained on the ``data.h5`` files for run ``seed``, scored with
    btag's metrics; figures in ``workdir``."""
    classes, effs = list(config["classes"]), list(config["efficiencies"])
    result = Result(study="btag", preset="")
    splits = read_h5_jets(config["data"]["h5"], classes, int(config["max_tracks"]), result)
    batches = {k: track_batch(s.tracks, s.mask, s.jet, s.label, s.origin, s.vertex)
               for k, s in splits.items()}
    taggers = train_track_taggers(config, batches, len(classes),
                                  origin_class_weights(splits["train"].origin), seed, result)
    scores = taggers.scores(classes, float(config["fc"]))
    labels = {k: s.label for k, s in splits.items()}
    performance.rejection_rows(result, scores, labels, classes, effs, None, ("DeepSets",))
    confusions = performance.aux_rows(result, taggers.outputs, splits["test"], labels["test"],
                                      classes)
    result.figures += study_figures({k: s["test"] for k, s in scores.items()}, labels["test"],
                                    classes, "DeepSets", {}, [], effs[0], confusions,
                                    taggers.histories, FULL, workdir)
    result.notes.append(f"D_b = ln(p_b / (f_c p_c + (1 - f_c) p_light)) with f_c = "
                        f"{config['fc']}; no DL1-like baseline (the files hold no raw tracks).")
    return result


def read_h5_jets(settings: dict[str, Any], classes: list[str], max_tracks: int,
                 result: Result) -> dict[str, H5Split]:
    """The standardised train / val / test jets of the ``data.h5`` settings (a relative
    ``dir`` is under the data cache root, :func:`core.cache.data_root`); the files go
    into ``result``'s provenance, a note per file and the test class counts into its rows."""
    layout = H5Layout.named(str(settings["layout"]))
    folder = data_root() / settings["dir"]
    splits = {}
    for split in ("train", "val", "test"):
        path = folder / layout.files[split]
        n = settings["n_jets"][split]
        splits[split] = s = read_split(path, layout, classes, None if n is None else int(n),
                                       max_tracks)
        result.provenance.datasets.append(_file_summary(path, s.n_read))
        result.notes.append(f"{path.name}: {s.n_read} jets read, {len(s.label)} of the classes "
                            f"{classes} kept, {s.tracks_dropped} real tracks beyond "
                            f"max_tracks {max_tracks} dropped.")
    source = standardise(splits, layout, folder / layout.files["norm_dict"])
    result.notes.append(f"Inputs of layout {settings['layout']} ({len(layout.track_variables)} "
                        f"track, {len(layout.jet_variables)} jet) standardised with {source}.")
    for i, name in enumerate(classes):
        result.add(f"test {name}-jets", "data", float((splits["test"].label == i).sum()))
    return splits


def _file_summary(path: Path, n_read: int) -> dict[str, Any]:
    """Name, size [bytes], jets read and the sha256 of the first :data:`HEAD_BYTES` of a file."""
    with path.open("rb") as fh:
        head = hashlib.sha256(fh.read(HEAD_BYTES)).hexdigest()
    return {"name": path.name, "path": str(path.resolve()), "bytes": path.stat().st_size,
            "jets_read": n_read, "sha256_first_64MiB": head[:16]}
