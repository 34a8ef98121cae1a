"""Dataset manifests, atomic shards, resume after a kill, checksums, executors."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from _helpers import stop_process_group, toy_events, toy_images
from hepchain.core.dataset import Manifest, ShardedDataset, build_dataset
from hepchain.core.errors import DataError, HepchainError, UsageError
from hepchain.core.executors import DaskExecutor, LocalExecutor

HERE = Path(__file__).parent
SETTINGS = {"process": "toy", "ptmin": 20.0}


def shard_bytes(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.glob("shard-*"))}


def make(out: Path, seed: int = 7, n: int = 250, **kw) -> Manifest:
    return build_dataset(out, generator="toy", settings=kw.pop("settings", SETTINGS),
                         n_events=n, shard_size=100, seed=seed, make_shard=kw.pop("fn", toy_events),
                         progress=False, **kw)


def test_manifest_and_same_seed_same_bytes(tmp_path):
    m = make(tmp_path / "a")
    make(tmp_path / "b")
    assert m.complete and m.n_written == 250 and [s.n_events for s in m.shards] == [100, 100, 50]
    assert shard_bytes(tmp_path / "a") == shard_bytes(tmp_path / "b")
    ma, mb = Manifest.load(tmp_path / "a"), Manifest.load(tmp_path / "b")
    assert (ma.name, mb.name) == ("a", "b") and ma.shards == mb.shards
    data = json.loads((tmp_path / "a/manifest.json").read_text())
    assert data["settings"] == SETTINGS and "awkward" in data["versions"]
    assert len({s["seed"] for s in data["shards"]}) == 3
    events = ShardedDataset(tmp_path / "a").read()
    assert len(events) == 250 and list(events.event[:3]) == [0, 1, 2]
    make(tmp_path / "c", seed=8)
    assert shard_bytes(tmp_path / "c") != shard_bytes(tmp_path / "a")


def test_hdf5_same_bytes_and_read(tmp_path):
    for d in ("a", "b"):
        build_dataset(tmp_path / d, generator="toy", settings={}, n_events=120, shard_size=50,
                      seed=1, make_shard=toy_images, fmt="hdf5", progress=False)
    assert shard_bytes(tmp_path / "a") == shard_bytes(tmp_path / "b")
    data = ShardedDataset(tmp_path / "a").read()
    assert data["showers"].shape == (120, 48) and data["incident_energies"].shape == (120, 1)


def test_rerun_skips_complete_shards_and_refuses_other_settings(tmp_path):
    make(tmp_path / "a")
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "a").glob("shard-*")}
    make(tmp_path / "a")
    assert before == {p: p.stat().st_mtime_ns for p in (tmp_path / "a").glob("shard-*")}
    with pytest.raises(DataError, match="other settings"):
        make(tmp_path / "a", settings={**SETTINGS, "ptmin": 30.0})
    with pytest.raises(UsageError, match="at least 1"):
        make(tmp_path / "z", n=0)


def test_corrupted_shard_is_named_and_regenerated(tmp_path):
    make(tmp_path / "a")
    shard = tmp_path / "a/shard-00001.parquet"
    good = shard.read_bytes()
    shard.write_bytes(good[: len(good) // 2])  # truncated
    with pytest.raises(DataError, match=r"shard-00001\.parquet is corrupted"):
        ShardedDataset(tmp_path / "a").read()
    make(tmp_path / "a")
    assert shard.read_bytes() == good


def test_a_run_that_completes_no_shard_leaves_no_dataset(tmp_path):
    def refused(task):
        raise UsageError("Pythia refused the setting 'Foo:bar = 1'; check the option value.")

    def second_fails(task):
        if task.index == 1:
            raise DataError("disk full")
        return toy_events(task)

    with pytest.raises(UsageError, match="refused"):
        make(tmp_path / "new", fn=refused)
    assert not (tmp_path / "new").exists()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine/notes.txt").write_text("kept")
    with pytest.raises(UsageError, match="refused"):
        make(tmp_path / "mine", fn=refused)
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]
    with pytest.raises(DataError, match="disk full"):
        make(tmp_path / "half", fn=second_fails)  # shard 0 was complete: kept for the resume
    assert [s.index for s in Manifest.load(tmp_path / "half").shards] == [0]
    make(tmp_path / "half")
    make(tmp_path / "ref")
    assert shard_bytes(tmp_path / "half") == shard_bytes(tmp_path / "ref")


def test_kill_mid_shard_then_resume_gives_identical_bytes(tmp_path):
    make(tmp_path / "ref", n=400)
    out, marks = tmp_path / "run", tmp_path / "marks"
    marks.mkdir()
    settings = {**SETTINGS, "sleep": 0.4, "marker_dir": str(marks)}
    code = (f"import sys; sys.path.insert(0, {str(HERE)!r}); from _helpers import toy_events; "
            "from hepchain.core.dataset import build_dataset; "
            f"build_dataset({str(out)!r}, generator='toy', settings={settings!r}, n_events=400, "
            "shard_size=100, seed=7, make_shard=toy_events, progress=False)")
    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.time() + 60
    while not (marks / "started-2").exists() and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)  # killed while shard 2 is being made
    proc.wait()
    manifest = Manifest.load(out)
    assert not manifest.complete and [s.index for s in manifest.shards] == [0, 1]
    with pytest.raises(DataError, match="incomplete"):
        ShardedDataset(out)
    # the reference run had no sleep/marker settings, but they do not change the events
    build_dataset(out, generator="toy", settings=settings,
                  n_events=400, shard_size=100, seed=7, make_shard=toy_events, progress=False)
    assert shard_bytes(out) == shard_bytes(tmp_path / "ref")
    assert not list(out.glob("*.tmp-*"))
    assert len(ShardedDataset(out).read()) == 400


def test_local_process_pool_gives_same_bytes(tmp_path):
    make(tmp_path / "serial", n=300)
    env_path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = f"{HERE}{os.pathsep}{env_path}"  # spawned workers import _helpers
    try:
        with LocalExecutor(2) as ex:
            make(tmp_path / "pool", n=300, executor=ex)
    finally:
        os.environ["PYTHONPATH"] = env_path
    assert shard_bytes(tmp_path / "pool") == shard_bytes(tmp_path / "serial")


@pytest.mark.parametrize("workers", [1, 2])
def test_submit_returns_a_future_and_defers_the_error_to_result(workers):
    """``submit`` runs one job in a worker (or at once in-process for one worker); its value
    and its error come back through the future."""
    with LocalExecutor(workers) as ex:
        ok, bad = ex.submit(math.sqrt, 16.0), ex.submit(math.sqrt, -1.0)
        assert ok.result() == 4.0
        with pytest.raises(ValueError, match="math domain error"):
            bad.result()


def test_a_dead_worker_of_submit_is_one_sentence():
    """A worker killed under a submitted job (here it exits at once) reaches ``result()``
    as the same sentence ``map`` gives, not concurrent.futures' BrokenProcessPool."""
    with LocalExecutor(2) as ex:
        died = ex.submit(os._exit, 1)
        with pytest.raises(HepchainError, match="worker process ended abruptly"):
            died.result(timeout=60)


@pytest.mark.parametrize("sigint", ["handled", "ignored"])
def test_an_error_beside_a_submitted_job_does_not_wait_for_it(sigint):
    """An error raised in the caller while a submitted job runs leaves the ``with`` block at
    once: the running job is interrupted as by Ctrl-C instead of run to its end — also when
    this process ignores SIGINT (started with ``&`` from a script), which its workers inherit."""
    previous = signal.getsignal(signal.SIGINT)
    if sigint == "ignored":
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        t0 = time.perf_counter()
        with pytest.raises(ValueError, match="beside"), LocalExecutor(2) as ex:
            ex.submit(time.sleep, 60.0)
            time.sleep(3.0)  # the worker has started and is sleeping
            raise ValueError("failed beside the job")
        assert time.perf_counter() - t0 < 30.0
    finally:
        signal.signal(signal.SIGINT, previous)


def test_ctrl_c_stops_pool_workers_at_once_without_tracebacks(tmp_path):
    out, marks = tmp_path / "run", tmp_path / "marks"
    marks.mkdir()
    settings = {**SETTINGS, "sleep": 60.0, "marker_dir": str(marks)}
    code = ("import sys; from _helpers import toy_events; "
            "from hepchain.core.dataset import build_dataset; "
            "from hepchain.core.executors import LocalExecutor\n"
            "try:\n"
            "    with LocalExecutor(2) as ex:\n"
            f"        build_dataset({str(out)!r}, generator='toy', settings={settings!r}, "
            "n_events=300, shard_size=100, seed=7, make_shard=toy_events, progress=False, "
            "executor=ex)\n"
            "except KeyboardInterrupt:\n"
            "    print('interrupted', file=sys.stderr); sys.exit(130)\n")
    env = {**os.environ, "PYTHONPATH": f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    # SIGINT handled as at a terminal, even when the tests run as a background job of a
    # script (then SIGINT is ignored and every child inherits that)
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE,
                            text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 60
    while len(list(marks.glob("started-*"))) < 2 and time.time() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the whole process group, workers too
    start = time.time()
    try:
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:  # still waiting for a queued job: leave nothing behind
            stop_process_group(proc)
    # both workers stopped mid-shard and the third shard was never started: no 60-s waits
    assert proc.returncode == 130 and time.time() - start < 20
    assert stderr.strip() == "interrupted", stderr
    assert not out.exists()  # no shard was complete: nothing is left, the same command restarts


def test_pool_workers_of_a_process_that_ignores_ctrl_c_ignore_it_too(tmp_path):
    """A command started with ``&`` from a script ignores SIGINT; so must its workers, or the
    interrupt they get would break the pool under a parent that goes on."""
    marks = tmp_path / "marks"
    marks.mkdir()
    settings = {**SETTINGS, "sleep": 60.0, "marker_dir": str(marks)}
    code = ("from _helpers import toy_events; from hepchain.core.dataset import build_dataset; "
            "from hepchain.core.executors import LocalExecutor\n"
            "with LocalExecutor(2) as ex:\n"
            f"    build_dataset({str(tmp_path / 'run')!r}, generator='toy', "
            f"settings={settings!r}, n_events=200, shard_size=100, seed=7, "
            "make_shard=toy_events, progress=False, executor=ex)\n")
    env = {**os.environ, "PYTHONPATH": f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE,
                            text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        deadline = time.time() + 60
        while len(list(marks.glob("started-*"))) < 2 and time.time() < deadline:
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGINT)
        time.sleep(2.0)
        assert proc.poll() is None  # still generating: neither it nor a worker stopped
    finally:
        stop_process_group(proc)


def test_a_worker_that_dies_is_one_sentence_not_a_broken_pool_traceback():
    with LocalExecutor(2) as ex, pytest.raises(HepchainError, match="ended abruptly"):
        list(ex.map(os._exit, [3]))  # the worker process exits mid-job


def test_dask_cluster_of_two_workers_gives_same_bytes(tmp_path):
    from distributed import Client, LocalCluster

    make(tmp_path / "serial", n=300)
    with (LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                       dashboard_address=None) as cluster, Client(cluster) as client):
        client.run(sys.path.insert, 0, str(HERE))
        with DaskExecutor(client) as ex:
            assert ex.n_workers == 2
            make(tmp_path / "dask", n=300, executor=ex)
    assert shard_bytes(tmp_path / "dask") == shard_bytes(tmp_path / "serial")


def test_bad_scheduler_and_unwritable_output(tmp_path):
    with pytest.raises(UsageError, match="Dask scheduler"):
        DaskExecutor("tcp://127.0.0.1:1")
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(DataError, match="Cannot create"):
        make(blocker / "out")
