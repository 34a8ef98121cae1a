"""pandas DataFrames saved with ``DataFrame.to_hdf``, read and written with h5py, never
running code from the file.

pandas writes two layouts (both used by the public top-tagging and LHC Olympics files)::

    fixed  (format="fixed", the default)    table  (format="table", PyTables Table)
    /key  attrs pandas_type="frame"          /key  attrs pandas_type="frame_table",
    /key/axis0  column names                            non_index_axes = [(1, [columns])]
    /key/axis1  row index                    /key/table  compound dataset, one row per row:
    /key/block{k}_items  names of block k        index, values_block_{k} (n_k,) and one field
    /key/block{k}_values (rows, n_k)             per data column; the column names of each
                                                 field in its attribute ``<field>_kind``

A fixed-format column of pandas *object* dtype (Python strings, mixed types) is stored as a
pickle (a PyTables ``VLARRAY``); unpickling a downloaded file can run arbitrary code, so such
a frame is refused with one sentence. The table layout keeps its column names in PyTables
attributes that are protocol-0 pickles of lists of strings; those are decoded only after
checking that every opcode builds a literal (str, int, float, list, tuple, dict, None): a
pickle that names any class or function is refused, so nothing in the file can execute.
"""

from __future__ import annotations

import contextlib
import pickle
import pickletools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from hepchain.core.errors import DataError
from hepchain.core.io import atomic_path

LITERAL_OPCODES = frozenset({
    "PROTO", "FRAME", "STOP", "MARK", "POP", "POP_MARK", "DUP", "NONE", "NEWTRUE", "NEWFALSE",
    "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT",
    "STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "SHORT_BINUNICODE", "BINUNICODE",
    "BINUNICODE8", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "EMPTY_LIST", "LIST", "APPEND",
    "APPENDS", "EMPTY_TUPLE", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3", "EMPTY_DICT", "DICT",
    "SETITEM", "SETITEMS", "PUT", "BINPUT", "LONG_BINPUT", "GET", "BINGET", "LONG_BINGET",
    "MEMOIZE",
})
"""Pickle opcodes that only build literals; GLOBAL, REDUCE, BUILD, INST, OBJ, NEWOBJ, EXT*
and PERSID (the ones that import or call anything) are absent."""


def literal_pickle(data: bytes, where: str) -> Any:
    """The literal (str/int/float/list/tuple/dict/None) pickled in ``data``; DataError naming
    ``where`` if the pickle would import or call anything."""
    try:
        ops = [op.name for op, _, _ in pickletools.genops(data)]
    except (ValueError, EOFError) as exc:
        raise DataError(f"{where} holds a corrupt pandas attribute ({exc}).") from exc
    unsafe = sorted(set(ops) - LITERAL_OPCODES)
    if unsafe:
        raise DataError(f"{where} holds a pandas attribute that needs pickle code "
                        f"({', '.join(unsafe)}); hepchain never unpickles downloaded files.")
    return pickle.loads(data)  # vetted above: builds literals only


def _names(values: Any) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def _refuse_pickled(dataset: Any, where: str, what: str) -> None:
    if dataset.attrs.get("CLASS") == b"VLARRAY" or dataset.dtype.kind == "O":
        raise DataError(f"{where}: {what} has pandas object dtype, which is stored as a "
                        "pickle that hepchain never loads from downloaded files; re-save it as "
                        "numbers or fixed-width strings (e.g. df[col].astype(float)).")


def _damaged(where: str, what: str) -> DataError:
    return DataError(f"{where} is a pandas frame without {what}; the file is damaged or not "
                     "written by pandas.")


def _name_list(attribute: Any, where: str) -> list[str]:
    """A PyTables attribute that pickles a list of column names, as strings."""
    names = literal_pickle(bytes(attribute), where)
    if not isinstance(names, list) or not all(isinstance(n, str | int) for n in names):
        raise _damaged(where, "a list of column names in its attributes")
    return [str(n) for n in names]


def _read_fixed(group: Any, where: str, rows: slice) -> dict[str, np.ndarray]:
    if "axis0" not in group:
        raise _damaged(where, "its column axis")
    _refuse_pickled(group["axis0"], where, "the column index")
    order = _names(group["axis0"][...])
    columns: dict[str, np.ndarray] = {}
    for k in range(int(group.attrs.get("nblocks", 0))):
        if f"block{k}_items" not in group or f"block{k}_values" not in group:
            raise _damaged(where, f"block {k}")
        items, values = group[f"block{k}_items"], group[f"block{k}_values"]
        _refuse_pickled(items, where, f"the names of block {k}")
        names = _names(items[...])
        _refuse_pickled(values, where, f"column(s) {names[:3]}")
        block = values[rows]
        columns.update({name: block[:, i] for i, name in enumerate(names)})
    return {name: columns[name] for name in order if name in columns}


def _read_table(group: Any, where: str, rows: slice) -> dict[str, np.ndarray]:
    if "table" not in group or group["table"].dtype.names is None:
        raise _damaged(where, "its 'table' dataset")
    table = group["table"]
    data = table[rows]
    columns: dict[str, np.ndarray] = {}
    for field in table.dtype.names:
        kind = table.attrs.get(f"{field}_kind")
        if field == "index" or kind is None:
            continue
        values = data[field].reshape(len(data), -1)
        names = _name_list(kind, where)
        if len(names) != values.shape[1]:
            raise _damaged(where, f"one name per column of {field}")
        columns.update({name: values[:, i] for i, name in enumerate(names)})
    axes = literal_pickle(bytes(group.attrs.get("non_index_axes", b"N.")), where)
    try:  # [(1, [column names in frame order])]
        order = [str(c) for c in axes[0][1]]
    except (TypeError, IndexError, KeyError):
        order = list(columns)
    return {name: columns[name] for name in order if name in columns}


@contextlib.contextmanager
def _frame(path: str | Path, key: str, what: str) -> Iterator[tuple[Any, str, bytes]]:
    """The HDF5 group of the DataFrame under ``key``, its name for errors, and its
    pandas_type (b"frame" or b"frame_table"); one sentence for a file not in either layout."""
    import h5py

    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p} does not exist; pass a {what} file.")
    try:
        with h5py.File(p, "r") as fh:
            if key not in fh:
                raise DataError(f"{p} has no '{key}' table (keys: {list(fh)}); pass the key the "
                                f"DataFrame was saved under, or a {what} file.")
            group = fh[key]
            kind = group.attrs.get("pandas_type") if isinstance(group, h5py.Group) else None
            if kind not in (b"frame", b"frame_table"):
                raise DataError(f"{p}:{key} is not a pandas DataFrame (no pandas_type 'frame' "
                                f"or 'frame_table'); pass a {what} file.")
            yield group, f"{p}:{key}", bytes(kind)
    except OSError as exc:
        raise DataError(f"Cannot read {p} as HDF5 ({exc}).") from exc


def n_rows(path: str | Path, key: str, what: str = "pandas HDF5") -> int:
    """Number of rows of the DataFrame saved under ``key`` (either layout)."""
    with _frame(path, key, what) as (group, _, kind):
        return int(group["axis1" if kind == b"frame" else "table"].shape[0])


def read_frame(path: str | Path, key: str, *, start: int | None = None, stop: int | None = None,
               what: str = "pandas HDF5") -> dict[str, np.ndarray]:
    """The columns (in frame order, native dtypes) of rows ``start:stop`` of the DataFrame
    saved under ``key``, in either pandas layout; ``what`` names the expected file in errors."""
    with _frame(path, key, what) as (group, where, kind):
        read = _read_fixed if kind == b"frame" else _read_table
        return read(group, where, slice(start, stop))


def _set_text(obj: Any, name: str, text: str) -> None:
    """A string attribute as PyTables writes one (fixed-length, UTF-8), which pandas decodes."""
    import h5py

    data = text.encode()
    obj.attrs.create(name, np.bytes_(data), dtype=h5py.string_dtype("utf-8", len(data)))


def write_frame(path: str | Path, columns: dict[str, np.ndarray], key: str) -> Path:
    """Write equal-length numeric ``columns`` as a pandas fixed-format DataFrame (one block per
    dtype, in first-seen order, as pandas consolidates them), readable by ``pd.read_hdf``."""
    import h5py

    arrays = {name: np.asarray(v) for name, v in columns.items()}
    length = len(next(iter(arrays.values()))) if arrays else 0
    blocks: dict[np.dtype, list[str]] = {}
    for name, values in arrays.items():
        if values.shape != (length,) or values.dtype.kind not in "biuf":
            raise DataError(f"Column {name!r} must be a 1-D numeric array of {length} rows "
                            f"(got {values.dtype} {values.shape}).")
        blocks.setdefault(values.dtype, []).append(name)
    path = Path(path)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as fh:
        group = fh.create_group(key)
        for name, text in (("pandas_type", "frame"), ("pandas_version", "0.15.2"),
                           ("encoding", "UTF-8"), ("errors", "strict"),
                           ("axis0_variety", "regular"), ("axis1_variety", "regular")):
            _set_text(group, name, text)
        group.attrs["ndim"], group.attrs["nblocks"] = 2, len(blocks)
        axes = (("axis0", np.array([c.encode() for c in arrays]), "string"),
                ("axis1", np.arange(length, dtype=np.int64), "integer"))
        for name, data, kind in axes:
            _set_text(group.create_dataset(name, data=data), "kind", kind)
        for k, names in enumerate(blocks.values()):
            _set_text(group, f"block{k}_items_variety", "regular")
            items = group.create_dataset(f"block{k}_items",
                                         data=np.array([c.encode() for c in names]))
            _set_text(items, "kind", "string")
            group.create_dataset(f"block{k}_values", compression="gzip",
                                 data=np.stack([arrays[c] for c in names], axis=1)
                                 ).attrs["transposed"] = 1
    return path
