"""Operations logs: the machine running over simulated days, written as Parquet + manifest.

One shard is one simulated day of ``shard_size`` equally spaced samples. The day is cut into
blocks (exponential, mean ``block_minutes``) each run in one operating mode drawn with the
modes' shares; a fraction ``tuning_fraction`` of blocks are tuning sessions in which the
operators scan the end-section actuators uniformly within +-``scan_range`` (normalised units)
around the set point (the rest hold the set point with small touch-ups). The orbit feedback acts throughout.

Log schema (one row per sample; the same layout is expected from real logs, see
``docs/linac.md``):

=====================  ======  ===============================================================
column                 unit    meaning
=====================  ======  ===============================================================
``time_min``           min     time since the start of the day
``day``                --      day index (integer)
``mode``               --      operating-mode index (integer, 0-based)
``tuning``             --      1 during an end-section tuning session, else 0
``<EL>.k1``            1/m^2   quadrupole set value (``.k1.rb``: power-supply readback)
``<EL>.angle``         mrad    corrector set value (``.angle.rb``: readback)
``<EL>.voltage``       MV      accelerating-unit voltage (``.voltage.rb``: readback)
``<EL>.phase``         deg     accelerating-unit phase set value (``.phase.rb``: readback)
``<BPM>.x``, ``.y``    mm      beam position;  ``<BPM>.charge``  nC  bunch charge
``<SCR>.x``, ``.y``    mm      screen centroid; ``.sigma_x``, ``.sigma_y``  mm  beam size
``SPEC.energy``        GeV     final energy (spectrometer)
``ENV.T_out``          C       outdoor temperature; ``ENV.tilt``  urad  tiltmeter
``<Cnn>_ENV.T_air``    C       tunnel air temperature of cell nn (``T_water``: cooling water)
``<Cnn>_ENV.vacuum``   --      log10(pressure / Pa)
``<Cnn>_KLY.phase``    deg     measured klystron phase; ``<Cnn>_KLY.power``  MW  forward power
=====================  ======  ===============================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import pandas as pd

from hepchain.accelerator.linac.lattice import LatticeSpec
from hepchain.accelerator.linac.machine import DriftState, Machine, modes_from_config
from hepchain.core.dataset import Manifest, ShardTask, build_dataset
from hepchain.core.errors import DataError, UsageError
from hepchain.core.executors import Executor

PROCESS = "linac_oplog"
PROCESSES: dict[str, str] = {PROCESS: "Operations log of the simulated cheetah linac, one shard "
                                      "per simulated day (seed 000)"}
DEFAULT_SHARD_SIZE = 500  # samples per simulated day
META = ("time_min", "day", "mode", "tuning")
UNIT_SCALE = {"k1": 1.0, "angle": 1e3, "voltage": 1e-6, "phase": 1.0}  # SI -> log units
READBACK_NOISE = {"k1": 1e-3, "angle": 1e-3, "voltage": 0.05, "phase": 0.1}  # log units


@lru_cache(maxsize=4)
def _machine(n_cells: int, screen_every: int, structure_m: float, machine_seed: int,
             gradient_mv_m: float, tide_urad: float,
             modes: tuple[tuple[tuple[str, Any], ...], ...]) -> Machine:
    return Machine(LatticeSpec(n_cells, screen_every, structure_m=structure_m),
                   modes_from_config([dict(m) for m in modes]), machine_seed, gradient_mv_m,
                   tide_urad)


def machine_from_settings(settings: dict[str, Any]) -> Machine:
    """The (cached) machine described by a log's ``machine`` settings."""
    m = settings["machine"]
    modes = tuple(tuple(sorted(d.items())) for d in m["modes"])
    return _machine(int(m["n_cells"]), int(m["screen_every"]), float(m["structure_m"]),
                    int(m["machine_seed"]), float(m["gradient_mv_m"]), float(m["tide_urad"]),
                    modes)


def schedule(rng: np.random.Generator, t: np.ndarray, shares: np.ndarray, block_minutes: float,
             tuning_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Mode index and tuning flag per sample for blocks of exponential length."""
    modes = np.empty(len(t), int)
    tuning = np.empty(len(t), int)
    start = t[0] if len(t) else 0.0
    i = 0
    while i < len(t):
        end = start + rng.exponential(block_minutes)
        j = int(np.searchsorted(t, end, side="right"))
        j = max(j, i + 1)
        modes[i:j] = rng.choice(len(shares), p=shares)
        tuning[i:j] = rng.random() < tuning_fraction
        i, start = j, end
    return modes, tuning


def channel_table(machine: Machine, modes: np.ndarray, settings: np.ndarray,
                  readings: dict[str, np.ndarray], state: DriftState,
                  rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Logged channels (log units, with instrument noise) from true settings and readings."""
    out: dict[str, np.ndarray] = {}
    n = len(settings)
    mode_charge = np.array([machine.modes[m].charge_nc for m in modes])
    for j, name in enumerate(machine.lattice.setting_names):
        attr = name.rsplit(".", 1)[1]
        value = settings[:, j] * UNIT_SCALE[attr]
        out[name] = value
        out[f"{name}.rb"] = value + rng.normal(0, READBACK_NOISE[attr], n)
    for bpm in machine.lattice.bpms:
        out[f"{bpm}.x"] = readings[f"{bpm}.x"] * 1e3 + rng.normal(0, 0.01, n)
        out[f"{bpm}.y"] = readings[f"{bpm}.y"] * 1e3 + rng.normal(0, 0.01, n)
        out[f"{bpm}.charge"] = mode_charge * readings[f"{bpm}.transmission"] * (
            1 + rng.normal(0, 0.01, n))
    for scr in machine.lattice.screens:
        for q in ("x", "y"):
            out[f"{scr}.{q}"] = readings[f"{scr}.{q}"] * 1e3 + rng.normal(0, 0.005, n)
            out[f"{scr}.sigma_{q}"] = readings[f"{scr}.sigma_{q}"] * 1e3 * (
                1 + rng.normal(0, 0.02, n))
    out["SPEC.energy"] = readings["energy"] * 1e-9 * (1 + rng.normal(0, 1e-4, n))
    out["ENV.T_out"] = state.t_out + rng.normal(0, 0.1, n)
    out["ENV.tilt"] = machine.tide * 1e6 * state.tilt + rng.normal(0, 0.005, n)
    volt = settings[:, [machine.lattice.setting_names.index(f"{c}_ACC.voltage")
                        for c in machine.lattice.cells]]
    set_phase = settings[:, [machine.lattice.setting_names.index(f"{c}_ACC.phase")
                             for c in machine.lattice.cells]]
    for i, c in enumerate(machine.lattice.cells):
        out[f"{c}_ENV.T_air"] = state.t_air[:, i] + rng.normal(0, 0.02, n)
        out[f"{c}_ENV.T_water"] = state.t_water[:, i] + rng.normal(0, 0.01, n)
        out[f"{c}_ENV.vacuum"] = state.vacuum[:, i]
        out[f"{c}_KLY.phase"] = set_phase[:, i] + state.phase_offset[:, i] + rng.normal(0, 0.2, n)
        out[f"{c}_KLY.power"] = 40.0 * (volt[:, i] / machine.v_max) ** 2 + rng.normal(0, 0.2, n)
    return out


@dataclass
class Day:
    """One simulated day before logging: the machine, sample times ``t`` [min], operating
    modes, tuning flags, true settings (SI units, after the orbit feedback), the drift state,
    and the day's random stream (positioned for the instrument noise)."""

    machine: Machine
    t: np.ndarray
    modes: np.ndarray
    tuning: np.ndarray
    settings: np.ndarray
    state: DriftState
    rng: np.random.Generator


def simulate_day(s: dict[str, Any], seed: int, n: int) -> Day:
    """Day ``seed`` of ``n`` samples with the generator settings ``s``: the mode schedule,
    the drifts, the operators' tuning scans and touch-ups, and the orbit feedback."""
    machine = machine_from_settings(s)
    rng = np.random.default_rng(seed)
    t = np.arange(n) * (1440.0 / n)
    modes, tuning = schedule(rng, t, machine.shares, s["block_minutes"], s["tuning_fraction"])
    state = machine.drift(rng, t)
    settings = machine.nominal[modes].copy()
    end = machine.to_unit(settings[:, machine.end_idx])
    end += rng.normal(0, s["touch_up"], end.shape)
    scan = np.clip(end + rng.uniform(-s["scan_range"], s["scan_range"], end.shape), -1, 1)
    end = np.where(tuning[:, None] == 1, scan, end)
    settings[:, machine.end_idx] = machine.from_unit(end)
    settings = machine.feedback(modes, settings, state, rng, s["feedback_every"],
                                s["feedback_gain"])
    return Day(machine, t, modes, tuning, settings, state, rng)


def make_day(task: ShardTask) -> ak.Array:
    """One simulated day of operation (module level: runs in worker processes)."""
    import torch

    torch.set_num_threads(1)
    d = simulate_day(task.settings, task.seed, task.n_events)
    readings = d.machine.track(d.modes, d.settings, d.state)
    table = {"time_min": d.t, "day": np.full(len(d.t), task.index), "mode": d.modes,
             "tuning": d.tuning,
             **channel_table(d.machine, d.modes, d.settings, readings, d.state, d.rng)}
    return ak.zip({k: np.ascontiguousarray(v) for k, v in table.items()}, depth_limit=1)


def twin_day(day: Day, hidden: tuple[str, ...], twin_seed: int) -> pd.DataFrame:
    """The log generator as a conditional simulator of a logged ``day``
    (:func:`simulate_day`): the same schedule, settings (feedback included) and environment,
    with the ``hidden`` drift processes (:data:`~hepchain.accelerator.linac.machine.HIDDEN`)
    and the instrument noise drawn anew, from their prior, with ``twin_seed``. Its rows are
    what the exact physics gives for the day's known conditions when those drifts are not
    inferred from them. Columns: :func:`channel_table`'s."""
    rng = np.random.default_rng(twin_seed)
    state = day.machine.redraw(day.state, rng, day.t, hidden)
    readings = day.machine.track(day.modes, day.settings, state)
    return pd.DataFrame(channel_table(day.machine, day.modes, day.settings, readings, state,
                                      rng))


def log_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The generator settings (recorded in the log's manifest) of a linac study config."""
    log = config["log"]
    return {"machine": dict(config["machine"]),
            **{k: log[k] for k in ("block_minutes", "tuning_fraction", "scan_range", "touch_up",
                                   "feedback_every", "feedback_gain")}}


def shard_settings(name: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The settings of ``linac_oplog``: those of the linac quick preset with each option
    replacing a whole key (``machine``, ``block_minutes``, ``tuning_fraction`` ...)."""
    from hepchain.core.study import get_study
    from hepchain.producers import merge_options

    return merge_options(name, log_settings(get_study("linac").config("quick")), options)


def generate(out: str | Path, settings: dict[str, Any], days: int, samples_per_day: int,
             seed: int, executor: Executor | None = None, progress: bool = True) -> Manifest:
    """Write ``days`` simulated days (Parquet shards + manifest.json) to ``out``."""
    return build_dataset(out, generator="hepchain.linac", settings=settings,
                         n_events=days * samples_per_day, shard_size=samples_per_day,
                         seed=seed, make_shard=make_day, fmt="parquet", name=PROCESS,
                         executor=executor, progress=progress)


def produce(name: str, out: str | Path, *, n_events: int, seed: int,
            executor: Executor | None = None, shard_size: int | None = None,
            options: dict[str, Any] | None = None, progress: bool = True) -> Manifest:
    """The producer entry point (:mod:`hepchain.producers`): ``n_events`` log samples in days
    of ``shard_size`` samples (one shard per day)."""
    per_day = shard_size or DEFAULT_SHARD_SIZE
    if n_events < 1 or n_events % per_day:
        raise UsageError(f"{name} needs a whole number of days: the event count {n_events} "
                         f"must be a positive multiple of the samples per day ({per_day}).")
    return generate(out, shard_settings(name, options), n_events // per_day, per_day, seed,
                    executor=executor, progress=progress)


# ---------------------------------------------------------------------------- reading


def _read_frame(path: Path) -> pd.DataFrame:
    if path.is_dir() and (path / "manifest.json").exists():
        from hepchain.core.dataset import ShardedDataset

        arr = ShardedDataset(path).read()
        return pd.DataFrame({f: ak.to_numpy(arr[f]) for f in arr.fields})
    if path.is_dir():
        files = sorted(path.glob("*.parquet"))
        if not files:
            raise DataError(f"{path} holds no .parquet files; point to a log file or directory.")
        return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    if path.suffix == ".csv":
        return pd.read_csv(path)
    return pd.read_parquet(path)


def load_log(path: str | Path, required: list[str] | tuple[str, ...] = ()) -> pd.DataFrame:
    """Read an operations log (our dataset dir, a Parquet file/dir or a CSV) and validate it.

    Raises DataError with one sentence naming the problem: missing file, missing meta or
    ``required`` channel columns, non-numeric columns, NaN/inf values, negative modes or time
    running backwards within a day.
    """
    p = Path(path)
    if not p.exists():
        raise DataError(f"Operations log {p} does not exist; generate one with "
                        "`hepchain linac generate` or point to your log.")
    try:
        frame = _read_frame(p)
    except (OSError, ValueError) as exc:
        raise DataError(f"Cannot read operations log {p} ({exc}); it must be Parquet or CSV.") \
            from exc
    missing = [c for c in (*META, *required) if c not in frame.columns]
    if missing:
        raise DataError(f"Operations log {p} lacks column(s) {missing[:5]}"
                        f"{' ...' if len(missing) > 5 else ''}; see the schema in docs/linac.md.")
    bad_type = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad_type:
        raise DataError(f"Operations log {p} has non-numeric column(s) {bad_type[:5]}; "
                        "every channel must be a number in the documented unit.")
    values = frame.to_numpy(dtype=float)
    if not np.isfinite(values).all():
        col = frame.columns[np.where(~np.isfinite(values))[1][0]]
        raise DataError(f"Operations log {p} has NaN/inf values (first in column {col!r}); "
                        "drop or fill those rows before loading.")
    if (frame["mode"] < 0).any() or (frame["mode"] % 1 != 0).any():
        raise DataError(f"Operations log {p} has a 'mode' that is not a non-negative integer.")
    backwards = frame.groupby("day")["time_min"].apply(lambda s: bool((np.diff(s) < 0).any()))
    if backwards.any():
        raise DataError(f"Operations log {p}: time_min runs backwards within day "
                        f"{int(backwards.idxmax())}; sort the rows by (day, time_min).")
    frame["mode"] = frame["mode"].astype(int)
    frame["day"] = frame["day"].astype(int)
    return frame


def data_channels(frame: pd.DataFrame) -> list[str]:
    """All channel columns (everything except the meta columns)."""
    return [c for c in frame.columns if c not in META]
