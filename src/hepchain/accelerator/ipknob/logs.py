"""Real scan logs: the documented CSV/Parquet schema and its loader.

One row per readout sample (≈1 Hz), long format; the rows of one scan share ``scan_id``.
The loader turns a log into the same scan records the simulator writes (see :mod:`.scan`), so
:func:`.dataset.prepare` applies the same filters, resampling and scalers to both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hepchain.core.errors import DataError

#: column -> meaning and unit (all numeric except scan_id and knob)
SCHEMA: dict[str, str] = {
    "scan_id": "scan identifier (string or integer); all rows of one scan share it",
    "time": "readout time [s], any origin, increasing within a scan",
    "knob": "knob name, e.g. LER_R1 (one knob per scan)",
    "knob_value": "knob setting [knob units]",
    "lsp": "specific luminosity L/(n_b I_b+ I_b-) (any fixed unit)",
    "ler_beam_size": "LER vertical beam size at the X-ray monitor [um]",
    "her_beam_size": "HER vertical beam size at the X-ray monitor [um]",
    "ler_background": "LER-induced background rate (any fixed unit)",
    "her_background": "HER-induced background rate (any fixed unit)",
    "ler_current": "LER stored current [mA]",
    "her_current": "HER stored current [mA]",
    "luminosity": "luminosity [1e34 cm^-2 s^-1]",
    "set_value": "set value chosen after the scan [knob units], the same on every row of a scan",
}
#: optional column -> meaning (default when absent)
OPTIONAL: dict[str, str] = {"abort": "1 if the beam aborted during the scan, else 0 (default 0)"}
_RENAME = {"ler_beam_size": "ler_size", "her_beam_size": "her_size"}
_NUMERIC = [c for c in SCHEMA if c not in ("scan_id", "knob")]


def _read_table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"Scan log {path} does not exist; check the path.")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path)
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"Cannot read scan log {path} ({exc}); is it a valid "
                        f"{suffix[1:]} file?") from exc
    raise DataError(f"Scan log {path} has suffix {suffix!r}; use .csv or .parquet.")


def _validate(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    missing = [c for c in SCHEMA if c not in df.columns]
    if missing:
        raise DataError(f"Scan log {path} lacks column(s) {missing}; the schema (docs/ipknob.md) "
                        f"needs {list(SCHEMA)}.")
    cols = list(SCHEMA) + [c for c in OPTIONAL if c in df.columns]
    df = df[cols].copy()
    for c in _NUMERIC + [c for c in OPTIONAL if c in df.columns]:
        if not pd.api.types.is_numeric_dtype(df[c]):
            bad = pd.to_numeric(df[c], errors="coerce").isna() & df[c].notna()
            row = int(np.flatnonzero(bad.to_numpy())[0]) if bad.any() else 0
            raise DataError(f"Column {c!r} of scan log {path} is not numeric (row {row}: "
                            f"{df[c].iloc[row]!r}); fix or remove those rows.")
    nan = df.isna()
    if nan.to_numpy().any():
        rows = np.flatnonzero(nan.any(axis=1).to_numpy())
        cols_nan = [c for c in df.columns if nan[c].any()]
        raise DataError(f"Scan log {path} has {len(rows)} row(s) with NaN or empty values "
                        f"(columns {cols_nan}; first at row {rows[0]}, scan "
                        f"{df['scan_id'].iloc[rows[0]]!r}); remove or fill them.")
    return df


def load_scan_log(path: str | Path, n_segments: int = 100) -> list[dict[str, Any]]:
    """Read a CSV/Parquet scan log into scan records, with a DataError for any malformed
    input (missing column, non-numeric or NaN values, a scan with several knobs or set values,
    or fewer samples than ``n_segments``)."""
    path = Path(path)
    df = _validate(_read_table(path), path)
    scans = []
    for scan_id, rows in df.groupby("scan_id", sort=False):
        rows = rows.sort_values("time", kind="stable")
        for col in ("knob", "set_value"):
            if rows[col].nunique() != 1:
                raise DataError(f"Scan {scan_id!r} in {path} has {rows[col].nunique()} different "
                                f"values of {col!r}; one scan must have exactly one.")
        if len(rows) < n_segments:
            raise DataError(f"Scan {scan_id!r} in {path} has {len(rows)} samples, fewer than the "
                            f"{n_segments} segments it is resampled to; drop it or lower "
                            "n_segments.")
        rec: dict[str, Any] = {"scan_id": scan_id, "knob": str(rows["knob"].iloc[0]),
                               "set_value": float(rows["set_value"].iloc[0]),
                               "aborted": bool(rows["abort"].any()) if "abort" in rows else False}
        for c in _NUMERIC:
            if c != "set_value":
                rec[_RENAME.get(c, c)] = rows[c].to_numpy(dtype=float)
        scans.append(rec)
    if not scans:
        raise DataError(f"Scan log {path} has no rows.")
    return scans
