"""Scan datasets: simulated generation (sharded Parquet with manifest) and the preprocessing
shared with real logs — 2024-style filters, resampling to segments, per-knob scalers, splits.

Generation (the study gets them through the dataset cache, process ``ipknob_scans``)::

    manifest = generate_scans(out, n_scans=900, seed=1, settings=cfg["simulation"])
    scans = read_scans(out)                       # list of scan records (see .scan)
    data = prepare(scans, n_segments=100, filters=cfg["filters"])
    split = data.split(seed, n_val=50, n_test=50, n_train=667)
    scalers = KnobScalers.fit(data, split.train)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from hepchain.accelerator.ipknob.machine import Machine
from hepchain.accelerator.ipknob.operators import operators_from_config
from hepchain.accelerator.ipknob.scan import CHANNELS, ScanPlan, simulate_scan, step_means
from hepchain.accelerator.ipknob.simulator import Noise
from hepchain.core.dataset import Manifest, ShardedDataset, ShardTask, build_dataset
from hepchain.core.errors import DataError, UsageError
from hepchain.core.executors import Executor
from hepchain.core.standardise import Standardiser

GENERATOR = "hepchain.ipknob.simulator"
PROCESS = "ipknob_scans"
PROCESSES: dict[str, str] = {
    PROCESS: "SuperKEKB-like IP-knob scans, set values chosen by simulated operators (seed 004)"}
DEFAULT_SHARD_SIZE = 300
SERIES = ("time", "knob_value", "lsp", "ler_size", "her_size", "ler_background",
          "her_background", "ler_current", "her_current", "luminosity")


def make_scan_shard(task: ShardTask) -> ak.Array:
    """Simulate ``task.n_events`` scans, each chosen by a random simulated operator.

    With probability ``glitch_zero`` the logged set value is 0 (a missing log entry, which the
    2024 filters drop).
    """
    cfg = task.settings
    rng = np.random.default_rng(task.seed)
    machine = Machine(**cfg.get("machine", {}))
    noise, plan = Noise.from_dict(cfg.get("noise")), ScanPlan.from_dict(cfg.get("plan"))
    ops = operators_from_config(cfg["operators"])
    records = []
    for _ in range(task.n_events):
        knob = str(rng.choice(cfg["knobs"]))
        op = ops[int(rng.integers(len(ops)))]
        _, scan, _ = simulate_scan(rng, machine, noise, plan, knob)
        chosen = op.choose(scan, rng)
        scan["set_value"] = 0.0 if rng.random() < cfg.get("glitch_zero", 0.0) else chosen
        scan["operator"] = op.name
        records.append(scan)
    return ak.Array(records)


def shard_settings(name: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The simulation settings of ``ipknob_scans``: the ipknob quick preset's ``simulation``
    block with each option replacing a whole key (``knobs``, ``operators``, ``noise`` ...)."""
    from hepchain.core.study import get_study
    from hepchain.producers import merge_options

    return merge_options(name, get_study("ipknob").config("quick")["simulation"], options)


def generate_scans(out: str | Path, *, n_scans: int, seed: int, settings: dict[str, Any],
                   shard_size: int = DEFAULT_SHARD_SIZE, executor: Executor | None = None,
                   progress: bool = True) -> Manifest:
    """Simulate ``n_scans`` scans into ``out`` (Parquet shards + manifest; resumable)."""
    if not settings.get("knobs") or not settings.get("operators"):
        raise UsageError("Scan simulation needs non-empty 'knobs' and 'operators' settings.")
    return build_dataset(out, generator=GENERATOR, settings=settings, n_events=n_scans,
                         shard_size=shard_size, seed=seed, make_shard=make_scan_shard,
                         fmt="parquet", name=PROCESS, executor=executor, progress=progress)


def produce(name: str, out: str | Path, *, n_events: int, seed: int,
            executor: Executor | None = None, shard_size: int | None = None,
            options: dict[str, Any] | None = None, progress: bool = True) -> Manifest:
    """The producer entry point (:mod:`hepchain.producers`): ``n_events`` simulated scans."""
    return generate_scans(out, n_scans=n_events, seed=seed, settings=shard_settings(name, options),
                          shard_size=shard_size or DEFAULT_SHARD_SIZE, executor=executor,
                          progress=progress)


def read_scans(directory: str | Path) -> list[dict[str, Any]]:
    """Load a generated scan dataset as a list of scan records (checksums verified)."""
    arr = ShardedDataset(directory).read()
    counts = ak.to_numpy(ak.num(arr["time"]))
    cuts = np.cumsum(counts)[:-1]
    series = {k: np.split(ak.to_numpy(ak.flatten(arr[k])).astype(float), cuts) for k in SERIES}
    offsets = ak.to_numpy(arr["offsets"])
    targets = ak.to_numpy(arr["target_current"])
    scans = []
    for i in range(len(arr)):
        scans.append({**{k: series[k][i] for k in SERIES}, "knob": str(arr["knob"][i]),
                      "aborted": bool(arr["aborted"][i]), "set_value": float(arr["set_value"][i]),
                      "optimum": float(arr["optimum"][i]), "offsets": offsets[i],
                      "target_current": targets[i], "operator": str(arr["operator"][i])})
    return scans


# ---------------------------------------------------------------------------- preprocessing


@dataclass(frozen=True)
class Filters:
    """2024-style selection (seed 004): currents in mA, luminosity in 10³⁴ cm⁻² s⁻¹."""

    min_ler_current: float = 500.0
    min_luminosity: float = 1.0
    drop_aborts: bool = True
    edge_steps: float = 0.25  # set value within this many steps of a scan end = "at the edge"
    drop_zero: bool = True

    @classmethod
    def from_dict(cls, data: dict | None) -> Filters:
        return cls(**(data or {}))

    def reason(self, scan: dict[str, Any], lo: float, hi: float, step: float) -> str | None:
        """Why ``scan`` is dropped (None if kept)."""
        s = scan["set_value"]
        if self.drop_zero and s == 0.0:
            return "set value 0"
        if self.drop_aborts and scan.get("aborted", False):
            return "beam abort"
        if float(np.mean(scan["ler_current"])) < self.min_ler_current:
            return "LER current"
        if float(np.mean(scan["luminosity"])) < self.min_luminosity:
            return "luminosity"
        if s < lo + self.edge_steps * step or s > hi - self.edge_steps * step:
            return "set value at scan edge"
        return None


def resample(series: np.ndarray, n_segments: int) -> np.ndarray:
    """Mean of ``series`` in ``n_segments`` consecutive, nearly equal segments (last axis)."""
    x = np.asarray(series, float)
    edges = np.linspace(0, x.shape[-1], n_segments + 1).round().astype(int)
    return np.add.reduceat(x, edges[:-1], axis=-1) / np.diff(edges)


@dataclass
class Split:
    """Indices into a :class:`ScanData` (train / validation / test)."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


@dataclass
class ScanData:
    """Preprocessed scans: raw-unit inputs (N, 6, n_segments) and per-scan metadata."""

    x: np.ndarray
    knob: np.ndarray  # (N,) knob names
    set_value: np.ndarray  # (N,) knob units
    step: np.ndarray  # (N,) scan step, knob units
    lo: np.ndarray
    hi: np.ndarray
    steps: list[tuple[np.ndarray, np.ndarray]]  # per scan: step knob values, step-mean L_sp
    truth: list[dict[str, Any]] | None = None
    dropped: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.x)

    def split(self, seed: int, n_val: int, n_test: int, n_train: int | None = None) -> Split:
        """A seeded reshuffle into test, validation and train (at most ``n_train``)."""
        if len(self) < n_val + n_test + 10:
            raise DataError(f"Only {len(self)} scans pass the filters; need at least "
                            f"{n_val + n_test + 10} for the {n_val}/{n_test} val/test split "
                            "(generate or load more scans).")
        perm = np.random.default_rng(seed).permutation(len(self))
        train = perm[n_val + n_test:]
        return Split(train=train[:n_train] if n_train else train, val=perm[n_test:n_test + n_val],
                     test=perm[:n_test])


def prepare(scans: list[dict[str, Any]], n_segments: int = 100,
            filters: Filters | None = None) -> ScanData:
    """Filter scans and resample the six channels to ``n_segments`` each.

    A scan with fewer samples than ``n_segments`` is a DataError naming the scan.
    """
    filters = filters or Filters()
    dropped: dict[str, int] = {}
    xs, meta, steps, truth = [], [], [], []
    for i, scan in enumerate(scans):
        n = len(scan["time"])
        if n < n_segments:
            name = scan.get("scan_id", i)
            raise DataError(f"Scan {name} has {n} samples, fewer than the {n_segments} segments "
                            "it must be resampled to; drop it or lower n_segments.")
        u, lsp = step_means(scan["knob_value"], scan["lsp"])
        if len(u) < 3:
            raise DataError(f"Scan {scan.get('scan_id', i)} has {len(u)} knob steps; a scan "
                            "needs at least 3 distinct knob values.")
        lo, hi = float(u.min()), float(u.max())
        step = (hi - lo) / (len(u) - 1)
        why = filters.reason(scan, lo, hi, step)
        if why is not None:
            dropped[why] = dropped.get(why, 0) + 1
            continue
        xs.append(np.stack([resample(scan[c], n_segments) for c in CHANNELS]))
        meta.append((scan["knob"], scan["set_value"], step, lo, hi))
        steps.append((u, lsp))
        if "optimum" in scan:
            truth.append({k: scan[k] for k in ("optimum", "offsets", "target_current")})
    if not xs:
        raise DataError("No scan passes the filters; check the log's currents, luminosity and "
                        "set values, or relax the filters in the config.")
    knob, set_value, step, lo, hi = (np.array(v) for v in zip(*meta, strict=True))
    return ScanData(x=np.stack(xs), knob=knob, set_value=set_value.astype(float),
                    step=step.astype(float), lo=lo.astype(float), hi=hi.astype(float),
                    steps=steps, truth=truth if len(truth) == len(xs) else None,
                    dropped=dropped)


@dataclass
class KnobScalers:
    """Per-knob standard scalers of the six channels (the knob channel's also maps the set
    value), fitted on training scans and kept with the data so outputs map back to knob units."""

    by_knob: dict[str, Standardiser]

    @classmethod
    def fit(cls, data: ScanData, idx: np.ndarray) -> KnobScalers:
        """One :class:`Standardiser` per knob over its training scans' samples (n, 6, S)."""
        return cls({str(knob): Standardiser.fit(
                        data.x[idx[data.knob[idx] == knob]].transpose(0, 2, 1))
                    for knob in np.unique(data.knob[idx])})

    def _params(self, knobs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        missing = sorted(set(knobs) - set(self.by_knob))
        if missing:
            raise DataError(f"No scaler for knob(s) {missing}; the training scans must include "
                            "every knob that is evaluated.")
        mu = np.array([self.by_knob[k].mean for k in knobs])
        sd = np.array([self.by_knob[k].scale for k in knobs])
        return mu, sd

    def transform(self, x: np.ndarray, knobs: np.ndarray) -> np.ndarray:
        mu, sd = self._params(knobs)
        return (x - mu[:, :, None]) / sd[:, :, None]

    def knob_to_norm(self, values: np.ndarray, knobs: np.ndarray) -> np.ndarray:
        """Knob units -> normalised knob units."""
        mu, sd = self._params(knobs)
        return (np.asarray(values) - mu[:, -1]) / sd[:, -1]

    def knob_from_norm(self, values: np.ndarray, knobs: np.ndarray) -> np.ndarray:
        """Normalised knob units -> knob units."""
        mu, sd = self._params(knobs)
        return np.asarray(values) * sd[:, -1] + mu[:, -1]

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({k: v.state_dict() for k, v in self.by_knob.items()},
                                         indent=1))
