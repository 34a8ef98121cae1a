"""The one dataset cache: every study gets its generated datasets here.

::

    ds = cached_dataset("ttbar", n_events=3000, seed=7, options={"mu": "20"})
    events = ShardedDataset(ds.path).read()
    ds.generation_s            # wall seconds of the run that generated it (NaN if unknown)

A dataset is keyed by the sha256 of its producer (module name and, when the producer exposes
``shard_settings``, its full validated generator settings, which contain the options, so that
``mx=500`` and ``mx="500.0"`` share a dataset; otherwise the normalised options), the process,
the event count, the seed and the shard size, and lives in
``<root>/<process>-<n_events>-s<seed>-<key[:10]>``. The root is the ``root`` argument, else
the ``HEPCHAIN_DATA`` environment variable, else ``data/`` relative to the working directory.

Beside the manifest, ``cache.json`` records the key, the request, the date and the generation
cost [s] when the dataset is complete: measured by the run that generated every shard, and
unknown (NaN) for a resumed dataset or one made outside the cache. A dataset whose manifest
does not match the request (settings, event count, seed or shard size) is deleted and
regenerated, never reused; an interrupted generation resumes from its complete shards. A
per-dataset file lock (``<root>/.locks/``) makes concurrent requests generate it once.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import multiprocessing as mp
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hepchain.core.checkpoints import current_scope
from hepchain.core.dataset import MANIFEST, Manifest
from hepchain.core.errors import DataError, UsageError
from hepchain.core.io import atomic_write_text

ENV = "HEPCHAIN_DATA"
DEFAULT_ROOT = "data"
CACHE_FILE = "cache.json"


@dataclass(frozen=True)
class CachedDataset:
    """A complete dataset of the cache: its key, directory, manifest and generation cost [s]."""

    key: str
    path: Path
    manifest: Manifest
    generation_s: float


@dataclass(frozen=True)
class CacheEntry:
    """One directory of the cache as ``hepchain data ls`` shows it (size in bytes, cost in s)."""

    name: str
    path: Path
    key: str
    process: str
    n_events: int
    seed: int
    options: dict[str, Any]
    bytes: int
    generation_s: float
    complete: bool


def data_root(root: str | Path | None = None) -> Path:
    """The cache root: ``root``, else ``$HEPCHAIN_DATA``, else ``data/`` (relative to the cwd)."""
    return Path(root or os.environ.get(ENV) or DEFAULT_ROOT)


def normalise_options(options: dict[str, Any] | None) -> dict[str, Any]:
    """Producer options as producers receive them: scalars as strings (like ``--set``),
    mappings and lists (structured settings) as JSON values, keys sorted."""
    out = {}
    for key in sorted(options or {}):
        value = options[key]
        out[str(key)] = value if isinstance(value, dict | list) else str(value)
    return json.loads(json.dumps(out, sort_keys=True))


def _request(process: str, n_events: int, seed: int, options: dict[str, Any],
             shard_size: int | None) -> tuple[dict[str, Any], Any]:
    """The keyed request (JSON-normal) and the producer module."""
    from hepchain.producers import find_producer

    if int(n_events) < 1:
        raise UsageError(f"The event count of {process} must be at least 1, got {n_events}.")
    module = find_producer(process)
    settings = getattr(module, "shard_settings", None)
    request = {"producer": module.__name__, "process": process, "n_events": int(n_events),
               "seed": int(seed),
               "shard_size": int(shard_size or getattr(module, "DEFAULT_SHARD_SIZE", 0)) or None,
               "settings": settings(process, options) if settings else None,
               "options": None if settings else options}
    return json.loads(json.dumps(request, sort_keys=True)), module


def cache_key(process: str, *, n_events: int, seed: int, options: dict[str, Any] | None = None,
              shard_size: int | None = None) -> str:
    """The sha256 (hex) that names a request in the cache (see the module docstring)."""
    request, _ = _request(process, n_events, seed, normalise_options(options), shard_size)
    return _digest(request)


def _digest(request: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()


def _mismatch(manifest: Manifest, request: dict[str, Any]) -> str | None:
    """What of ``request`` the existing ``manifest`` contradicts (None if it matches)."""
    if manifest.seed != request["seed"]:
        return f"seed {manifest.seed} instead of {request['seed']}"
    if manifest.n_events != request["n_events"]:
        return f"{manifest.n_events} events instead of {request['n_events']}"
    if request["shard_size"] is not None and manifest.shard_size != request["shard_size"]:
        return f"shard size {manifest.shard_size} instead of {request['shard_size']}"
    if request["settings"] is not None and manifest.settings != request["settings"]:
        return "other generator settings"
    return None


def _lock_file(directory: Path) -> Path:
    locks = directory.parent / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    return locks / directory.name


def _existing(path: Path, request: dict[str, Any]) -> tuple[Manifest | None, str | None]:
    """The manifest already at ``path`` (None if none) and why it cannot serve ``request``."""
    if not (path / MANIFEST).is_file():
        return None, None
    try:
        manifest = Manifest.load(path)
    except DataError:
        return None, "an unreadable manifest"
    return manifest, _mismatch(manifest, request)


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``directory`` so that two processes asking for the same
    dataset (parallel seeds, two studies) generate it once."""
    if getattr(mp.current_process(), "_inheriting", False):
        # a spawned worker still importing the parent's script, which asks for the dataset
        # its parent holds the lock of: without this it would wait for that lock forever.
        # SystemExit ends the worker with this one line; the parent then reports it.
        raise SystemExit("A worker process started to generate data while importing your "
                         "script: put the code that asks for datasets under "
                         "`if __name__ == \"__main__\":` (worker processes import the script).")
    with open(_lock_file(directory), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _place(request: dict[str, Any], root: str | Path | None) -> tuple[str, Path]:
    """(key, directory) of ``request``."""
    key = _digest(request)
    name = f"{request['process']}-{request['n_events']}-s{request['seed']}-{key[:10]}"
    return key, data_root(root) / name


def find_cached(process: str, *, n_events: int, seed: int,
                options: dict[str, Any] | None = None, shard_size: int | None = None,
                root: str | Path | None = None) -> CachedDataset | None:
    """The complete cached dataset that :func:`cached_dataset` would reuse for this request,
    or None (nothing is generated)."""
    request, _ = _request(process, n_events, seed, normalise_options(options), shard_size)
    key, path = _place(request, root)
    manifest, reason = _existing(path, request)
    if manifest is None or reason is not None or not manifest.complete:
        return None
    return CachedDataset(key, path, manifest, _cost(path))


def cached_dataset(process: str, *, n_events: int, seed: int,
                   options: dict[str, Any] | None = None, shard_size: int | None = None,
                   workers: int = 1, scheduler: str | None = None,
                   root: str | Path | None = None, progress: bool = True) -> CachedDataset:
    """The complete dataset of ``n_events`` events of ``process`` with ``seed``, ``options``
    and ``shard_size``: reused from the cache when its manifest matches, else generated (or
    resumed) there with ``workers`` local processes or the Dask ``scheduler``."""
    from hepchain.core.executors import make_executor
    from hepchain.core.progress import console

    opts = normalise_options(options)
    request, module = _request(process, n_events, seed, opts, shard_size)
    key, path = _place(request, root)
    with _locked(path):
        old, reason = _existing(path, request)
        if reason is not None:
            console.print(f"[yellow]cache:[/yellow] {path} holds a dataset with {reason}; "
                          "deleting and regenerating it.")
            shutil.rmtree(path)
            old = None
        if old is not None and old.complete:
            return _read(key, path, old)
        fresh = old is None or not old.shards
        t0 = time.perf_counter()
        with make_executor(workers, scheduler) as ex:
            manifest = module.produce(process, path, n_events=int(n_events), seed=int(seed),
                                      executor=ex, shard_size=request["shard_size"],
                                      options=opts, progress=progress)
        seconds = round(time.perf_counter() - t0, 3) if fresh else None
        _write_info(path, {"key": key, "request": request, "options": opts,
                           "created": datetime.now(UTC).isoformat(timespec="seconds"),
                           "generation_s": seconds})
        return _read(key, path, manifest)


def _read(key: str, path: Path, manifest: Manifest) -> CachedDataset:
    """The dataset handed to a run, recorded in its checkpoint scope (if any)."""
    scope = current_scope()
    if scope is not None:
        scope.record_dataset([s.sha256 for s in manifest.shards])
    return CachedDataset(key, path, manifest, _cost(path))


def _read_info(path: Path) -> dict[str, Any]:
    try:
        return json.loads((path / CACHE_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def _write_info(path: Path, info: dict[str, Any]) -> None:
    path.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path / CACHE_FILE, json.dumps(info, indent=2, sort_keys=True))


def _cost(path: Path) -> float:
    """The recorded generation seconds of ``path`` (NaN when unknown)."""
    value = _read_info(path).get("generation_s")
    return float("nan") if value is None else float(value)


def list_entries(root: str | Path | None = None) -> list[CacheEntry]:
    """Every dataset directory under the cache root, sorted by name."""
    base = data_root(root)
    if not base.is_dir():
        return []
    entries = []
    for path in sorted(p for p in base.iterdir() if (p / MANIFEST).is_file()):
        info = _read_info(path)
        request = info.get("request", {})
        try:
            manifest = Manifest.load(path)
        except DataError:  # listed (and removable) even when its manifest is unreadable
            manifest = Manifest(name=request.get("process", "?"), generator="?", format="?",
                                settings={}, seed=request.get("seed", -1),
                                n_events=request.get("n_events", 0), shard_size=0)
        entries.append(CacheEntry(
            name=path.name, path=path, key=info.get("key", ""),
            process=request.get("process", manifest.name), n_events=manifest.n_events,
            seed=manifest.seed, options=info.get("options", {}),
            bytes=sum(f.stat().st_size for f in path.iterdir() if f.is_file()),
            generation_s=_cost(path), complete=manifest.complete))
    return entries


def remove_entry(query: str, root: str | Path | None = None) -> CacheEntry:
    """Delete the one cache entry whose key or directory name starts with ``query``."""
    entries = list_entries(root)
    hits = [e for e in entries if query and (e.key.startswith(query)
                                             or e.name.startswith(query))]
    if len(hits) != 1:
        problem = "matches no cached dataset" if not hits else \
            f"matches {len(hits)} cached datasets"
        raise UsageError(f"{query!r} {problem} in {data_root(root)}; give a unique key prefix "
                         "or directory name from `hepchain data ls`.")
    entry = hits[0]
    try:
        shutil.rmtree(entry.path)
        _lock_file(entry.path).unlink(missing_ok=True)
    except OSError as exc:
        raise DataError(f"Cannot remove {entry.path} ({exc.strerror}).") from exc
    return entry
