"""Reader (and a small writer, for tests) of the LHC Olympics 2020 R&D HDF5 files.

The public files are pandas DataFrames stored with ``DataFrame.to_hdf(key="df")``; both
pandas layouts (*fixed*, as distributed, and *table*) are read with h5py by
:mod:`hepchain.collider.formats.pandas_hdf`, which refuses columns that would need pickle.

Two layouts exist (Zenodo 2629073 / 4536377):

- ``events_anomalydetection*.h5``: 2100 columns = 700 hadrons × (pT [GeV], η, φ [rad]),
  zero-padded, plus column 2100 = label (1 = signal W' → XY, 0 = QCD);
- ``events_anomalydetection_v2.features.h5``: the two leading anti-kt R = 1.0 jets,
  ``pxj1 pyj1 pzj1 mj1 tau1j1 tau2j1 tau3j1`` and the same for ``j2`` (GeV), plus ``label``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hepchain.collider.formats import pandas_hdf
from hepchain.core.errors import DataError

JET_COLUMNS = ("px", "py", "pz", "m", "tau1", "tau2", "tau3")
FEATURE_COLUMNS = tuple(f"{c}j{j}" for j in (1, 2) for c in JET_COLUMNS)
N_HADRONS = 700
WHAT = "LHC Olympics R&D HDF5"


def read_frame(path: str | Path, key: str = "df", start: int | None = None,
               stop: int | None = None) -> tuple[list[str], np.ndarray]:
    """Column names and the (rows, columns) float64 values of a pandas frame (either layout)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"No LHCO file at {p}; download it from Zenodo (record 4536377) or "
                        "check the path.")
    columns = pandas_hdf.read_frame(p, key, start=start, stop=stop, what=WHAT)
    text = [c for c, v in columns.items() if v.dtype.kind not in "biuf"]
    if text:
        raise DataError(f"{p}:{key} has non-numeric columns {text[:3]}; it is not an "
                        "LHCO R&D file.")
    n_rows = len(next(iter(columns.values()))) if columns else 0
    values = np.empty((n_rows, len(columns)))
    for i, v in enumerate(columns.values()):
        values[:, i] = v
    return list(columns), values


def write_frame(path: str | Path, columns: list[str], values: np.ndarray,
                key: str = "df") -> None:
    """Write ``values`` (rows, columns) in the pandas fixed layout (one float64 block)."""
    values = np.asarray(values, dtype=np.float64)
    pandas_hdf.write_frame(path, {c: values[:, i] for i, c in enumerate(columns)}, key)


def read_features(path: str | Path, key: str = "df", start: int | None = None,
                  stop: int | None = None) -> dict[str, np.ndarray]:
    """The jet-feature file as arrays of shape (N, 2) per jet quantity (GeV) plus ``label``.

    Keys: px, py, pz, m, tau1, tau2, tau3 (column 0 = j1, column 1 = j2) and label (N,);
    a file without labels (black boxes) gets label −1.
    """
    columns, values = read_frame(path, key, start, stop)
    missing = [c for c in FEATURE_COLUMNS if c not in columns]
    if missing:
        raise DataError(f"{path} lacks the LHCO jet-feature columns {missing}; is it the "
                        "hadron-level file? Use read_hadrons for that one.")
    col = {c: values[:, i] for i, c in enumerate(columns)}
    out = {q: np.stack([col[f"{q}j1"], col[f"{q}j2"]], axis=1) for q in JET_COLUMNS}
    out["label"] = col["label"].astype(np.int8) if "label" in col else np.full(len(values), -1,
                                                                                np.int8)
    return out


def read_hadrons(path: str | Path, key: str = "df", start: int | None = None,
                 stop: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Hadrons (N, 700, 3) as (pT [GeV], η, φ [rad]), zero-padded, and labels (N,).

    Files with only 2100 columns (black boxes) get label −1.
    """
    columns, values = read_frame(path, key, start, stop)
    if len(columns) not in (3 * N_HADRONS, 3 * N_HADRONS + 1):
        raise DataError(f"{path} has {len(columns)} columns, not the 2100 (+ label) of the "
                        "LHCO hadron-level layout; is it the jet-feature file? Use read_features.")
    hadrons = values[:, :3 * N_HADRONS].reshape(len(values), N_HADRONS, 3)
    labels = (values[:, -1].astype(np.int8) if len(columns) > 3 * N_HADRONS
              else np.full(len(values), -1, np.int8))
    return hadrons, labels
