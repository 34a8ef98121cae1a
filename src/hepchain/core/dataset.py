"""Sharded datasets with a manifest: atomic shard writes, resume, checksums.

A dataset is a directory::

    out/manifest.json          generator, settings, seed, versions, per-shard seeds/counts/sha256
    out/shard-00000.parquet    jagged events (awkward -> Parquet), or
    out/shard-00000.h5         dense arrays (HDF5, one dataset per key)

Producing one::

    def make_shard(task: ShardTask) -> ak.Array | dict[str, np.ndarray]:
        rng = np.random.default_rng(task.seed)
        ...                                    # task.n_events events from task.settings

    manifest = build_dataset("data/ttbar", generator="pythia8", settings={...},
                             n_events=10_000, shard_size=1_000, seed=1,
                             make_shard=make_shard, fmt="parquet")

``make_shard`` must be a module-level function (it runs in worker processes). Each shard's
seed is derived from (run seed, shard index), so the same command gives the same bytes, and
re-running skips complete shards: an interrupted generation resumes with nothing lost or
duplicated. Reading checks each shard's sha256 and names the corrupted file.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np

from hepchain.core.errors import DataError, UsageError
from hepchain.core.executors import Executor, LocalExecutor
from hepchain.core.io import atomic_path, atomic_write_text, sha256_file
from hepchain.core.progress import progress_bar
from hepchain.core.provenance import package_versions
from hepchain.core.seeding import derive_seed

Format = Literal["parquet", "hdf5"]
SUFFIX: dict[str, str] = {"parquet": ".parquet", "hdf5": ".h5"}
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class ShardTask:
    """One unit of generation: ``n_events`` events with ``seed`` and the dataset settings."""

    index: int
    n_events: int
    seed: int
    settings: dict[str, Any]


@dataclass
class ShardRecord:
    index: int
    file: str
    n_events: int
    seed: int
    sha256: str
    bytes: int


@dataclass
class Manifest:
    """The ``manifest.json`` of a dataset."""

    name: str
    generator: str
    format: str
    settings: dict[str, Any]
    seed: int
    n_events: int
    shard_size: int
    versions: dict[str, str] = field(default_factory=dict)
    shards: list[ShardRecord] = field(default_factory=list)
    complete: bool = False

    @property
    def n_written(self) -> int:
        return sum(s.n_events for s in self.shards)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True, default=_jsonable)

    @classmethod
    def load(cls, directory: str | Path) -> Manifest:
        path = Path(directory) / MANIFEST
        if not path.is_file():
            raise DataError(f"{directory} is not a hepchain dataset (no {MANIFEST}); "
                            "generate it first or check the path.")
        try:
            data = json.loads(path.read_text())
            data["shards"] = [ShardRecord(**s) for s in data.get("shards", [])]
            return cls(**data)
        except (json.JSONDecodeError, TypeError) as exc:
            raise DataError(f"{path} is not a valid manifest ({exc}).") from exc

    def summary(self) -> dict[str, Any]:
        """A compact description for run provenance."""
        return {"name": self.name, "generator": self.generator, "seed": self.seed,
                "n_events": self.n_written, "shards": len(self.shards),
                "sha256": [s.sha256[:16] for s in self.shards]}


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, tuple | set):
        return list(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _normalise(settings: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(settings, sort_keys=True, default=_jsonable))


# ---------------------------------------------------------------------------- writing


def write_shard(path: Path, payload: Any, fmt: Format) -> None:
    """Write one shard atomically (a killed writer leaves only a ``*.tmp-*`` file)."""
    with atomic_path(path) as tmp:
        if fmt == "parquet":
            import awkward as ak

            ak.to_parquet(payload, tmp, compression="zstd", row_group_size=None)
        elif fmt == "hdf5":
            import h5py

            with h5py.File(tmp, "w", libver="latest") as fh:
                for key in sorted(payload):
                    arr = np.asarray(payload[key])
                    fh.create_dataset(key, data=arr, track_times=False,
                                      compression="gzip" if arr.ndim > 1 else None,
                                      compression_opts=4 if arr.ndim > 1 else None)
        else:
            raise UsageError(f"Unknown dataset format {fmt!r}; use parquet or hdf5.")


def _count(payload: Any, fmt: Format) -> int:
    if fmt == "parquet":
        return len(payload)
    return len(next(iter(payload.values()))) if payload else 0


def _produce(task: ShardTask, make_shard: Callable[[ShardTask], Any], directory: str,
             fmt: Format) -> ShardRecord:
    """Worker side: make one shard, write it atomically, return its record."""
    payload = make_shard(task)
    n = _count(payload, fmt)
    if n != task.n_events:
        raise DataError(f"Shard {task.index} produced {n} events instead of {task.n_events}.")
    name = f"shard-{task.index:05d}{SUFFIX[fmt]}"
    path = Path(directory) / name
    write_shard(path, payload, fmt)
    return ShardRecord(task.index, name, n, task.seed, sha256_file(path), path.stat().st_size)


def plan_shards(n_events: int, shard_size: int, seed: int,
                settings: dict[str, Any]) -> list[ShardTask]:
    """Split ``n_events`` into shards with seeds derived from (seed, index)."""
    if n_events < 1:
        raise UsageError(f"--events must be at least 1, got {n_events}.")
    if shard_size < 1:
        raise UsageError(f"shard size must be at least 1, got {shard_size}.")
    tasks = []
    for i, start in enumerate(range(0, n_events, shard_size)):
        tasks.append(ShardTask(i, min(shard_size, n_events - start),
                               derive_seed(seed, "shard", i) % 900_000_000, settings))
    return tasks


def build_dataset(out: str | Path, *, generator: str, settings: dict[str, Any], n_events: int,
                  shard_size: int, seed: int, make_shard: Callable[[ShardTask], Any],
                  fmt: Format = "parquet", name: str | None = None,
                  executor: Executor | None = None, progress: bool = True) -> Manifest:
    """Generate (or resume generating) a sharded dataset; returns the final manifest.

    An existing directory with a manifest of other settings, seed, generator or format is
    refused rather than mixed. Complete shards whose checksum matches are kept; missing,
    partial or corrupted ones are regenerated. A run that fails before any shard is complete
    (e.g. a setting the generator refuses) leaves no dataset behind.
    """
    directory = Path(out)
    created = not directory.exists()
    settings = _normalise(settings)
    if fmt not in SUFFIX:
        raise UsageError(f"Unknown dataset format {fmt!r}; use parquet or hdf5.")
    tasks = plan_shards(n_events, shard_size, seed, settings)
    manifest = Manifest(name=name or directory.name, generator=generator, format=fmt,
                        settings=settings, seed=seed, n_events=n_events, shard_size=shard_size,
                        versions=package_versions())
    done: dict[int, ShardRecord] = {}
    if (directory / MANIFEST).exists():
        old = Manifest.load(directory)
        same = (old.generator, old.format, old.settings, old.seed, old.shard_size) == (
            generator, fmt, settings, seed, shard_size)
        if not same:
            raise DataError(f"{directory} already holds a dataset made with other settings, "
                            "seed or format; choose another --out or delete it.")
        planned = {t.index: t for t in tasks}
        for rec in old.shards:
            task = planned.get(rec.index)
            path = directory / rec.file
            if (task is not None and rec.n_events == task.n_events and rec.seed == task.seed
                    and path.is_file() and sha256_file(path) == rec.sha256):
                done[rec.index] = rec
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"Cannot create {directory} ({exc.strerror}); choose another --out.") from exc
    for stale in directory.glob("*.tmp-*"):
        stale.unlink()
    todo = [t for t in tasks if t.index not in done]
    manifest.shards = sorted(done.values(), key=lambda r: r.index)
    _save(directory, manifest)
    ex = executor or LocalExecutor(1)
    work = partial(_produce, make_shard=make_shard, directory=str(directory), fmt=fmt)
    try:
        with progress_bar(enabled=progress) as bar:
            task_id = bar.add_task(f"{manifest.name}", total=n_events,
                                   completed=sum(r.n_events for r in done.values()), info="")
            for rec in ex.map(work, todo):
                done[rec.index] = rec
                manifest.shards = sorted(done.values(), key=lambda r: r.index)
                _save(directory, manifest)
                bar.advance(task_id, rec.n_events)
    except BaseException:
        if not done:
            _discard(directory, created)
        raise
    finally:
        if executor is None:
            ex.close()
    manifest.complete = True
    _save(directory, manifest)
    return manifest


def _save(directory: Path, manifest: Manifest) -> None:
    atomic_write_text(directory / MANIFEST, manifest.to_json())


def _discard(directory: Path, created: bool) -> None:
    """Undo a run that completed no shard: its manifest and temporary files, and the
    directory itself if the run created it."""
    if created:
        shutil.rmtree(directory, ignore_errors=True)
        return
    (directory / MANIFEST).unlink(missing_ok=True)
    for stale in directory.glob("*.tmp-*"):
        stale.unlink(missing_ok=True)


# ---------------------------------------------------------------------------- reading


class ShardedDataset:
    """Read a dataset written by :func:`build_dataset`, verifying checksums::

        ds = ShardedDataset("data/ttbar")
        events = ds.read()                  # ak.Array (parquet) or dict of arrays (hdf5)
        for shard in ds.iter_shards(): ...
    """

    def __init__(self, directory: str | Path, require_complete: bool = True) -> None:
        self.directory = Path(directory)
        self.manifest = Manifest.load(self.directory)
        if require_complete and not self.manifest.complete:
            raise DataError(f"Dataset {self.directory} is incomplete "
                            f"({self.manifest.n_written}/{self.manifest.n_events} events); "
                            "re-run the same generate command to finish it.")

    def __len__(self) -> int:
        return self.manifest.n_written

    def verify(self) -> None:
        """Raise DataError naming the first missing or corrupted shard."""
        for rec in self.manifest.shards:
            self._check(rec)

    def _check(self, rec: ShardRecord) -> Path:
        path = self.directory / rec.file
        if not path.is_file():
            raise DataError(f"Shard {path} is missing; re-run the generate command to restore it.")
        if sha256_file(path) != rec.sha256:
            raise DataError(f"Shard {path} is corrupted (sha256 mismatch); delete it and re-run "
                            "the generate command to regenerate it.")
        return path

    def iter_shards(self, columns: list[str] | None = None) -> Iterator[Any]:
        """Yield each shard's content after verifying its checksum."""
        for rec in self.manifest.shards:
            path = self._check(rec)
            yield _read_shard(path, self.manifest.format, columns)

    def read(self, columns: list[str] | None = None) -> Any:
        """All shards concatenated: an ``ak.Array`` or a dict of NumPy arrays."""
        parts = list(self.iter_shards(columns))
        if self.manifest.format == "parquet":
            import awkward as ak

            return ak.concatenate(parts) if parts else ak.Array([])
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else {}


def _read_shard(path: Path, fmt: str, columns: list[str] | None) -> Any:
    try:
        if fmt == "parquet":
            import awkward as ak

            return ak.from_parquet(path, columns=columns)
        import h5py

        with h5py.File(path, "r") as fh:
            keys = columns or list(fh.keys())
            return {k: fh[k][...] for k in keys}
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"Cannot read shard {path} ({exc}).") from exc
