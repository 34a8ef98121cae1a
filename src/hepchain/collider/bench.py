"""Speed benchmark: end-to-end dataset production vs bare ``pythia.next()`` in the same run.

Rates are events per second per core; the end-to-end rate includes Pythia initialisation,
detector response, jet clustering, truth labels and writing the Parquet shard. Before each
timed run the executor is warmed up (worker start-up, imports and numba compilation
happen once per worker), as in any long generation.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from hepchain.collider.produce import produce, shard_settings
from hepchain.collider.pythia import make_pythia
from hepchain.core.executors import LocalExecutor
from hepchain.core.seeding import derive_seed


@dataclass
class SpeedResult:
    bare_rate: float  # events/s, bare pythia.next() loop
    pipeline_rate: float  # events/s, one worker, end to end
    two_worker_rate: float  # events/s, two workers, end to end
    bytes_per_event: float

    @property
    def ratio(self) -> float:
        return self.pipeline_rate / self.bare_rate

    @property
    def speedup(self) -> float:
        return self.two_worker_rate / self.pipeline_rate


def bare_rate(process: str, n_events: int, seed: int) -> float:
    """Events/s of a bare ``pythia.next()`` loop (after initialisation)."""
    pythia = make_pythia(shard_settings(process)["pythia"], seed)
    start = time.perf_counter()
    for _ in range(n_events):
        pythia.next()
    return n_events / (time.perf_counter() - start)


def _timed_produce(process: str, out: Path, n_events: int, seed: int, workers: int,
                   shard_size: int) -> tuple[float, int]:
    shutil.rmtree(out, ignore_errors=True)
    with LocalExecutor(workers) as ex:
        # one tiny shard per worker first: process start-up, imports and numba compilation
        # are paid once per worker, not per event, so they are kept out of the rate
        warm = out.with_name(out.name + "-warmup")
        produce(process, warm, n_events=2 * workers, seed=derive_seed(seed, "warm-up"), executor=ex,
                shard_size=2, progress=False)
        shutil.rmtree(warm, ignore_errors=True)
        start = time.perf_counter()
        manifest = produce(process, out, n_events=n_events, seed=seed, executor=ex,
                           shard_size=shard_size, progress=False)
        elapsed = time.perf_counter() - start
    return n_events / elapsed, sum(s.bytes for s in manifest.shards)


def speed(process: str, n_events: int, workdir: Path, seed: int) -> SpeedResult:
    """Measure the bare and end-to-end rates (1 and 2 workers) and bytes per event."""
    bare = bare_rate(process, n_events, seed)
    one, size = _timed_produce(process, workdir / "one", n_events, seed, 1, n_events)
    two, _ = _timed_produce(process, workdir / "two", 2 * n_events, seed, 2, n_events)
    for sub in ("one", "two"):
        shutil.rmtree(workdir / sub, ignore_errors=True)
    return SpeedResult(bare, one, two, size / n_events)
