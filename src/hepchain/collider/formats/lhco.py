"""Reader (and a small writer, for tests) of the LHC Olympics 2020 R&D HDF5 files.

The public files are pandas DataFrames stored with ``DataFrame.to_hdf(key="df")`` in the
*fixed* format, which this module reads with h5py (no PyTables needed)::

    /df                      group, attrs pandas_type="frame", nblocks=K
    /df/axis0                column names (bytes)
    /df/axis1                row index (int64)
    /df/block{k}_items       the column names held by block k
    /df/block{k}_values      (N, n_items) values of block k

Two layouts exist (Zenodo 2629073 / 4536377):

- ``events_anomalydetection*.h5``: 2100 columns = 700 hadrons × (pT [GeV], η, φ [rad]),
  zero-padded, plus column 2100 = label (1 = signal W' → XY, 0 = QCD);
- ``events_anomalydetection_v2.features.h5``: the two leading anti-kt R = 1.0 jets,
  ``pxj1 pyj1 pzj1 mj1 tau1j1 tau2j1 tau3j1`` and the same for ``j2`` (GeV), plus ``label``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hepchain.core.errors import DataError
from hepchain.core.io import atomic_path

JET_COLUMNS = ("px", "py", "pz", "m", "tau1", "tau2", "tau3")
FEATURE_COLUMNS = tuple(f"{c}j{j}" for j in (1, 2) for c in JET_COLUMNS)
N_HADRONS = 700


def _decode(names: np.ndarray) -> list[str]:
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]


def read_frame(path: str | Path, key: str = "df", start: int | None = None,
               stop: int | None = None) -> tuple[list[str], np.ndarray]:
    """Column names and the (rows, columns) float64 values of a fixed-format pandas frame."""
    import h5py

    p = Path(path)
    if not p.is_file():
        raise DataError(f"No LHCO file at {p}; download it from Zenodo (record 4536377) or "
                        "check the path.")
    try:
        with h5py.File(p, "r") as fh:
            if key not in fh:
                raise DataError(f"{p} has no '{key}' table (keys: {list(fh)}); pass the key "
                                "the DataFrame was saved under.")
            grp = fh[key]
            if "table" in grp or "block0_values" not in grp:
                raise DataError(f"{p}:{key} is not a pandas fixed-format frame; re-save it "
                                "with DataFrame.to_hdf(path, key, format='fixed').")
            columns = _decode(grp["axis0"][...])
            position = {c: i for i, c in enumerate(columns)}
            n_rows = grp["axis1"].shape[0]
            sl = slice(start, stop)
            values = np.empty((len(range(*sl.indices(n_rows))), len(columns)))
            for k in range(int(grp.attrs.get("nblocks", 1))):
                items = _decode(grp[f"block{k}_items"][...])
                block = np.asarray(grp[f"block{k}_values"][sl], dtype=np.float64)
                values[:, [position[c] for c in items]] = block
    except OSError as exc:
        raise DataError(f"Cannot read {p} as HDF5 ({exc}).") from exc
    return columns, values


def write_frame(path: str | Path, columns: list[str], values: np.ndarray,
                key: str = "df") -> None:
    """Write ``values`` (rows, columns) in the pandas fixed layout (one float64 block)."""
    import h5py

    values = np.asarray(values, dtype=np.float64)
    names = np.array([c.encode() for c in columns])
    with atomic_path(Path(path)) as tmp, h5py.File(tmp, "w") as fh:
        grp = fh.create_group(key)
        for name, val in (("pandas_type", b"frame"), ("pandas_version", b"0.15.2"),
                          ("encoding", b"UTF-8"), ("errors", b"strict"),
                          ("axis0_variety", b"regular"), ("axis1_variety", b"regular")):
            grp.attrs[name] = val
        grp.attrs["ndim"], grp.attrs["nblocks"] = 2, 1
        grp.create_dataset("axis0", data=names).attrs["kind"] = b"string"
        grp.create_dataset("axis1", data=np.arange(len(values), dtype=np.int64)
                           ).attrs["kind"] = b"integer"
        grp.create_dataset("block0_items", data=names).attrs["kind"] = b"string"
        grp.create_dataset("block0_values", data=values).attrs["transposed"] = 1


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
