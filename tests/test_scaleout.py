"""Scale-out: TensorBoard logs of a study run, bench seeds on a Dask cluster, and the trainer
under torchrun (2 CPU processes, gloo) against one process.

Run as a script (``torchrun --nproc_per_node 2 tests/test_scaleout.py OUT CKPT TB``) it is the
training that the torchrun test launches.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))  # as a torchrun script: make _helpers importable

from _helpers import bce_loss, blobs  # noqa: E402
from hepchain.core.trainer import TrainConfig, Trainer  # noqa: E402


def _cli(args: list[str]) -> None:
    """Run ``hepchain ARGS`` in-process; it must succeed."""
    from hepchain.cli import main

    with pytest.raises(SystemExit) as done:
        main(args)
    assert done.value.code == 0


def _event_steps(logdir: Path, tag: str) -> list[int]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logdir))
    acc.Reload()
    return [e.step for e in acc.Scalars(tag)]


def test_study_run_logs_tensorboard_per_trainer_and_says_where(toy_study, tmp_path, capsys):
    workdir = tmp_path / "run"
    _cli(["toy", "run", "--workdir", str(workdir), "--set", "train.epochs=3"])
    logdir = workdir / "tensorboard"
    note = f"TensorBoard: tensorboard --logdir {logdir}"
    printed = capsys.readouterr()
    assert note in printed.err and note in printed.out  # when training starts; in the summary
    assert json.loads((workdir / "results.json").read_text())["notes"] == [note]
    # toy: 600 blobs, 200 for training in batches of 256 -> one step per epoch
    assert _event_steps(logdir / "trainer-000", "loss/total") == [1, 2, 3]
    assert _event_steps(logdir / "trainer-000", "val/loss") == [1, 2, 3]
    assert not (workdir / "checkpoints").exists()


def test_bench_seeds_on_a_dask_cluster_equal_local_seeds(toy_study, tmp_path, capsys):
    from distributed import Client, LocalCluster, get_task_stream

    from hepchain.core.study import bench_study

    local = bench_study(toy_study, "quick", tmp_path / "local", seeds=2)
    with (LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                       dashboard_address=None) as cluster, Client(cluster) as client):
        client.run(sys.path.insert, 0, str(HERE))  # workers import _helpers (the toy study)
        with get_task_stream(client) as tasks:
            _cli(["toy", "bench", "--preset", "quick", "--seeds", "2", "--workdir",
                  str(tmp_path / "dask"), "--scheduler", cluster.scheduler_address])
    assert sum(t["key"].startswith("_run_seed") for t in tasks.data) == 2  # ran on the cluster
    assert f"--logdir {tmp_path / 'dask'}" in capsys.readouterr().out
    seeds = json.loads((tmp_path / "dask" / "seeds.json").read_text())
    local_seeds = json.loads((tmp_path / "local" / "seeds.json").read_text())
    assert [s["provenance"]["seeds"] for s in seeds] == [[0], [1]]
    for remote, here in zip(seeds, local_seeds, strict=True):
        assert [m["value"] for m in remote["metrics"]] == [m["value"] for m in here["metrics"]]
    dask = json.loads((tmp_path / "dask" / "results.json").read_text())
    assert [m["value"] for m in dask["metrics"]] == [m.value for m in local.metrics]


def train_tiny(out: Path, checkpoint_dir: Path | None = None,
               log_dir: Path | None = None) -> None:
    """A 4-8-1 MLP on 256 blobs, global batch 32, 3 epochs with a cosine schedule and gradient
    clipping; rank 0 saves the final weights and validation losses to ``out``."""
    from hepchain.core import distributed

    x, y = blobs(320, seed=11)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
    cfg = TrainConfig(epochs=3, batch_size=32, lr=2e-2, schedule="cosine", grad_clip=1.0,
                      progress=False)
    trainer = Trainer(model, bce_loss, cfg, checkpoint_dir=checkpoint_dir, log_dir=log_dir)
    hist = trainer.fit((x[:256], y[:256]), (x[256:], y[256:]))
    if distributed.is_main():
        torch.save({"model": trainer.model.state_dict(),
                    "val_loss": torch.tensor(hist.series("val_loss")),
                    "train_total": torch.tensor(hist.series("train_total")),
                    "world": distributed.world_size()}, out)


def test_torchrun_two_processes_equal_one_process(tmp_path):
    train_tiny(tmp_path / "one.pt")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                    "--nproc_per_node", "2", __file__, str(tmp_path / "two.pt"),
                    str(tmp_path / "ckpt"), str(tmp_path / "tb")],
                   env=env, check=True, timeout=120)
    one, two = torch.load(tmp_path / "one.pt"), torch.load(tmp_path / "two.pt")
    assert two["world"] == 2
    # equal up to float32 summation order (two half-batch mean gradients averaged vs one
    # mean): measured max |Δw| = 6e-8 after 24 steps
    for key, weight in one["model"].items():
        torch.testing.assert_close(two["model"][key], weight, rtol=1e-5, atol=1e-6)
    for key in ("val_loss", "train_total"):
        torch.testing.assert_close(two[key], one[key], rtol=1e-5, atol=1e-6)
    # rank 0 alone wrote the checkpoint and the event file
    assert torch.load(tmp_path / "ckpt" / "last.pt", weights_only=True)["finished"]
    assert len(list((tmp_path / "tb").glob("events.out.tfevents.*"))) == 1
    assert _event_steps(tmp_path / "tb", "loss/total") == list(range(1, 25))


def test_global_batch_must_split_evenly_over_torchrun_processes(monkeypatch):
    from hepchain.core.errors import UsageError

    monkeypatch.setenv("WORLD_SIZE", "3")  # as torchrun --nproc_per_node 3 sets it
    with pytest.raises(UsageError, match=r"batch_size 32 is the global batch.*3 torchrun"):
        Trainer(nn.Linear(4, 1), bce_loss, TrainConfig(batch_size=32, progress=False))


if __name__ == "__main__":
    train_tiny(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
