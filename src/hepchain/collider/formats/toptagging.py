"""Top-tagging-landscape HDF5 (Kasieczka et al., SciPost Phys. 7, 014 (2019)): a pandas
DataFrame under key ``table``, one row per jet, columns ``E_i, PX_i, PY_i, PZ_i`` (i = 0..199,
constituents by decreasing pT, zero-padded), ``truthE, truthPX, truthPY, truthPZ``, ``ttv``
and ``is_signal_new``. The public files are pandas *fixed* format; *table* format (what
``to_hdf(format="table")`` writes) reads the same. Read and written with h5py by
:mod:`hepchain.collider.formats.pandas_hdf` (never unpickling), so pandas/PyTables read our
files and we read theirs. GeV.

Required: the four-momentum columns of every constituent slot and ``is_signal_new``;
``truth*`` and ``ttv`` are returned when the file has them.
"""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np

from hepchain.collider.formats import pandas_hdf
from hepchain.core.errors import DataError

N_CONST = 200
KEY = "table"
FOUR = ("E", "PX", "PY", "PZ")
TRUTH = tuple(f"truth{c}" for c in FOUR)
WHAT = "top-tagging landscape HDF5"


def write_toptagging(four: np.ndarray, is_signal: np.ndarray, path: str | Path,
                     truth: np.ndarray | None = None, ttv: np.ndarray | None = None) -> Path:
    """Write jets as the landscape layout.

    ``four``: (n_jets, <=200, 4) constituent (E, px, py, pz) [GeV], pT-ordered, zero-padded
    (written as 200 slots); ``truth``: (n_jets, 4) truth top four-momentum [GeV] (zeros for
    background; omitted when None); ``ttv``: 0 train, 1 test, 2 validation (0 when None, as
    the landscape files always carry it).
    """
    n = len(four)
    padded = np.zeros((n, N_CONST, 4), np.float32)
    k = min(four.shape[1], N_CONST)
    padded[:, :k] = four[:, :k]
    columns = {f"{c}_{i}": padded[:, i, j] for i in range(N_CONST) for j, c in enumerate(FOUR)}
    if truth is not None:
        columns.update({name: np.asarray(truth, np.float32)[:, j]
                        for j, name in enumerate(TRUTH)})
    columns["ttv"] = np.zeros(n, np.int64) if ttv is None else np.asarray(ttv, np.int64)
    columns["is_signal_new"] = np.asarray(is_signal, np.int64)
    return pandas_hdf.write_frame(path, columns, KEY)


def read_toptagging(path: str | Path, start: int | None = None,
                    stop: int | None = None) -> dict[str, np.ndarray]:
    """Jets ``start:stop`` of a landscape file (fixed or table format): ``four``
    (n, n_const, 4) as (E, px, py, pz) [GeV] and ``is_signal`` (n,), plus ``truth`` (n, 4)
    [GeV] and ``ttv`` (n,) when present."""
    columns = pandas_hdf.read_frame(path, KEY, start=start, stop=stop, what=WHAT)
    n_const = 0
    while f"E_{n_const}" in columns:
        n_const += 1
    need = ["E_0", *(f"{c}_{i}" for i in range(n_const) for c in FOUR), "is_signal_new"]
    missing = [c for c in need if c not in columns]
    if missing:
        raise DataError(f"{path} lacks the landscape columns {missing[:4]}; it is not a "
                        f"{WHAT} file (E_i, PX_i, PY_i, PZ_i, is_signal_new).")
    four = np.stack([np.stack([columns[f"{c}_{i}"] for c in FOUR], -1)
                     for i in range(n_const)], axis=1)
    out = {"four": four, "is_signal": columns["is_signal_new"].astype(np.int64)}
    if all(t in columns for t in TRUTH):
        out["truth"] = np.stack([columns[t] for t in TRUTH], 1)
    if "ttv" in columns:
        out["ttv"] = columns["ttv"].astype(np.int64)
    return out


def from_fatjets(jets: ak.Array) -> np.ndarray:
    """(n_jets, 200, 4) (E, px, py, pz) arrays from hepchain large-R jets with constituents
    (already pT-ordered), zero-padded or truncated to 200."""
    c = jets["constituents"]
    out = np.zeros((len(jets), N_CONST, 4), np.float32)
    for k, f in enumerate(("e", "px", "py", "pz")):
        padded = ak.fill_none(ak.pad_none(c[f], N_CONST, axis=1, clip=True), 0.0)
        out[:, :, k] = ak.to_numpy(padded)
    return out


def landscape_selection(events: ak.Array, pt_range: tuple[float, float] = (550.0, 650.0),
                        eta_max: float = 2.0,
                        match_dr: float = 0.8) -> tuple[ak.Array, np.ndarray]:
    """The landscape selection on a ``top_qcd`` sample: the leading large-R jet with
    pt_range[0] < pT < pt_range[1] GeV and |eta| < eta_max; signal jets must have a top quark
    within ΔR < match_dr. Returns ``(jets, is_signal)``: the selected ``fatjets`` records."""
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
    return lead[keep], ak.to_numpy(signal)[keep].astype(np.int64)


def landscape_jets(events: ak.Array, pt_range: tuple[float, float] = (550.0, 650.0),
                   eta_max: float = 2.0, match_dr: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
    """:func:`landscape_selection` as ``(four, is_signal)`` for :func:`write_toptagging`."""
    jets, is_signal = landscape_selection(events, pt_range, eta_max, match_dr)
    return from_fatjets(jets), is_signal
