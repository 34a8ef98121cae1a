"""Tag the jets of any dataset with a saved GN1 (``hepchain btag tag``).

Reads a dataset directory with ``events.jets.tracks`` (``hepchain generate ttbar``, or your own
Parquet data with the fields of :mod:`schema`; no truth fields needed), runs the tagger saved
by ``hepchain btag run`` (``gn1.pt``: weights, classes and track preprocessing) on every jet,
and writes one HDF5 file with a structured dataset ``jets``: ``event`` (index of the event in
the dataset), ``jet`` (index of the jet in its event), ``pt`` [GeV], ``eta``, one ``p_<class>``
per class and ``db`` (D_b with charm fraction ``fc``)::

    n_jets = tag_dataset("data/my-ttbar", "runs/btag/gn1.pt", "scores.h5")
"""

from __future__ import annotations

import json
from pathlib import Path

import awkward as ak
import numpy as np

from hepchain.core.dataset import ShardedDataset
from hepchain.core.errors import UsageError
from hepchain.core.io import atomic_path, sha256_file
from hepchain.reco.btag.evaluate import discriminant
from hepchain.reco.btag.export import load_tagger
from hepchain.reco.btag.gn1 import jet_probabilities
from hepchain.reco.btag.schema import flatten_jets
from hepchain.reco.btag.table import build_table


def tag_dataset(src: str | Path, model_path: str | Path, out: str | Path,
                fc: float = 0.05) -> int:
    """Write the tagger's probabilities and D_b for every jet of the dataset ``src`` to
    ``out`` (HDF5, written atomically); returns the number of jets."""
    if not 0.0 <= fc <= 1.0:
        raise UsageError(f"--fc must be a charm fraction in [0, 1], got {fc}.")
    model, classes, prep = load_tagger(model_path)
    events = ShardedDataset(src).read()
    jets = flatten_jets(events)
    table = build_table(jets, prep.max_tracks, truth=False)
    probs = jet_probabilities(model, prep, table, len(classes))
    n_per_event = ak.to_numpy(ak.num(events.jets, axis=1))
    rec = np.zeros(len(table), dtype=[("event", "i8"), ("jet", "i4"), ("pt", "f4"),
                                      ("eta", "f4")]
                   + [(f"p_{c}", "f4") for c in classes] + [("db", "f4")])
    rec["event"] = np.repeat(np.arange(len(events)), n_per_event)
    rec["jet"] = ak.to_numpy(ak.flatten(ak.local_index(events.jets, axis=1)))
    rec["pt"], rec["eta"] = table.jet[:, 0], table.jet[:, 1]
    for i, c in enumerate(classes):
        rec[f"p_{c}"] = probs[:, i]
    rec["db"] = discriminant(probs, classes, fc)
    _write(Path(out), rec, {"classes": classes, "fc": fc, "source": str(Path(src).resolve()),
                            "model": str(Path(model_path).resolve()),
                            "model_sha256": sha256_file(Path(model_path))})
    return len(rec)


def _write(path: Path, rec: np.ndarray, info: dict) -> None:
    import h5py

    with atomic_path(path) as tmp, h5py.File(tmp, "w") as fh:
        fh.create_dataset("jets", data=rec)
        fh.attrs["hepchain"] = json.dumps(info)
