"""Top-tagging-landscape HDF5 (Kasieczka et al., SciPost Phys. 7, 014 (2019)): a pandas
"fixed" DataFrame under key ``table``, one row per jet, columns ``E_i, PX_i, PY_i, PZ_i``
(i = 0..199, constituents by decreasing pT, zero-padded), ``truthE, truthPX, truthPY,
truthPZ``, ``ttv`` and ``is_signal_new``. Written and read with h5py in the pandas block
layout (``axis0``, ``axis1``, ``block<k>_items``, ``block<k>_values``), so pandas/PyTables
can read our files and we can read the public ones. GeV.
"""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np

from hepchain.core.errors import DataError
from hepchain.core.io import atomic_path

N_CONST = 200
KEY = "table"


def _columns() -> list[str]:
    const = [f"{c}_{i}" for i in range(N_CONST) for c in ("E", "PX", "PY", "PZ")]
    return [*const, "truthE", "truthPX", "truthPY", "truthPZ"]


def write_toptagging(four: np.ndarray, is_signal: np.ndarray, path: str | Path,
                     truth: np.ndarray | None = None, ttv: np.ndarray | None = None) -> Path:
    """Write jets as the landscape layout.

    ``four``: (n_jets, <=200, 4) constituent (E, px, py, pz), pT-ordered, zero-padded;
    ``truth``: (n_jets, 4) truth top four-momentum (zeros for background); ``ttv``: 0 train,
    1 test, 2 validation.
    """
    import h5py

    n = len(four)
    block0 = np.zeros((n, 4 * N_CONST + 4), np.float32)
    k = min(four.shape[1], N_CONST)
    block0[:, :4 * k] = four[:, :k, :].reshape(n, 4 * k)
    if truth is not None:
        block0[:, 4 * N_CONST:] = truth
    block1 = np.stack([np.zeros(n, np.int64) if ttv is None else np.asarray(ttv, np.int64),
                       np.asarray(is_signal, np.int64)], axis=1)
    items0 = np.array(_columns(), dtype="S")
    items1 = np.array(["ttv", "is_signal_new"], dtype="S")
    path = Path(path)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as fh:
        g = fh.create_group(KEY)
        for key, value in {"pandas_type": b"frame", "pandas_version": b"0.15.2",
                           "encoding": b"UTF-8", "errors": b"strict", "ndim": 2,
                           "axis0_variety": b"regular", "axis1_variety": b"regular",
                           "nblocks": 2, "block0_items_variety": b"regular",
                           "block1_items_variety": b"regular"}.items():
            g.attrs[key] = value
        g.create_dataset("axis0", data=np.concatenate([items0, items1]))
        g.create_dataset("axis1", data=np.arange(n, dtype=np.int64))
        g.create_dataset("block0_items", data=items0)
        g.create_dataset("block0_values", data=block0, compression="gzip")
        g.create_dataset("block1_items", data=items1)
        g.create_dataset("block1_values", data=block1)
    return path


def read_toptagging(path: str | Path) -> dict[str, np.ndarray]:
    """Read a landscape file: ``four`` (n, 200, 4) as (E, px, py, pz), ``is_signal``,
    ``truth`` (n, 4) and ``ttv``."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist; pass a top-tagging landscape HDF5 file.")
    columns: dict[str, np.ndarray] = {}
    try:
        with h5py.File(path, "r") as fh:
            if KEY not in fh:
                raise DataError(f"{path} has no '{KEY}' group; it is not a landscape file.")
            g = fh[KEY]
            for b in range(int(g.attrs.get("nblocks", 0))):
                names = [x.decode() for x in g[f"block{b}_items"][...]]
                values = g[f"block{b}_values"][...]
                for i, name in enumerate(names):
                    columns[name] = values[:, i]
    except OSError as exc:
        raise DataError(f"Cannot read {path} as HDF5 ({exc}).") from exc
    missing = [c for c in ("E_0", "PX_0", "is_signal_new") if c not in columns]
    if missing:
        raise DataError(f"{path} lacks landscape columns {missing}; wrong layout.")
    n_const = sum(1 for c in columns if c.startswith("E_"))
    four = np.stack([np.stack([columns[f"{c}_{i}"] for c in ("E", "PX", "PY", "PZ")], -1)
                     for i in range(n_const)], axis=1)
    truth = (np.stack([columns[f"truth{c}"] for c in ("E", "PX", "PY", "PZ")], 1)
             if "truthE" in columns else np.zeros((len(four), 4)))
    ttv = columns.get("ttv", np.zeros(len(four))).astype(np.int64)
    return {"four": four, "is_signal": columns["is_signal_new"].astype(np.int64),
            "truth": truth, "ttv": ttv}


def from_fatjets(jets: ak.Array) -> np.ndarray:
    """(n_jets, 200, 4) (E, px, py, pz) arrays from hepchain large-R jets with constituents
    (already pT-ordered), zero-padded or truncated to 200."""
    c = jets["constituents"]
    out = np.zeros((len(jets), N_CONST, 4), np.float32)
    for k, f in enumerate(("e", "px", "py", "pz")):
        padded = ak.fill_none(ak.pad_none(c[f], N_CONST, axis=1, clip=True), 0.0)
        out[:, :, k] = ak.to_numpy(padded)
    return out


def landscape_jets(events: ak.Array, pt_range: tuple[float, float] = (550.0, 650.0),
                   eta_max: float = 2.0, match_dr: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
    """The landscape selection on a ``top_qcd`` sample: the leading large-R jet with
    550 < pT < 650 GeV and |eta| < 2; signal jets must have a top quark within ΔR < 0.8.
    Returns ``(four, is_signal)`` for :func:`write_toptagging`."""
    lead = ak.firsts(events["fatjets"])
    has = ~ak.is_none(lead)
    events, lead = events[has], lead[has]
    ok = (lead["pt"] > pt_range[0]) & (lead["pt"] < pt_range[1]) & (abs(lead["eta"]) < eta_max)
    partons = events["partons"]
    tops = partons[abs(partons["pid"]) == 6]
    dphi = (tops["phi"] - lead["phi"] + np.pi) % (2 * np.pi) - np.pi
    matched = ak.any((tops["eta"] - lead["eta"]) ** 2 + dphi**2 < match_dr**2, axis=1)
    signal = events["is_signal"] == 1
    keep = ak.to_numpy(ok & (~signal | matched))
    return from_fatjets(lead[keep]), ak.to_numpy(signal)[keep].astype(np.int64)
