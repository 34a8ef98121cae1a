"""Long runs survive a kill: every trainer of a study run checkpoints into the run's scope and
the same command resumes it (a killed training from its last epoch, a finished one restored).

Tolerance: none. On CPU a resumed run's metrics equal an uninterrupted run's bit for bit.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from _helpers import TwoTrainerStudy, bce_loss, blobs
from hepchain.core.checkpoints import checkpoint_scope, kept_piece
from hepchain.core.errors import UsageError
from hepchain.core.result import Result
from hepchain.core.study import run_study
from hepchain.core.trainer import TrainConfig, Trainer
from hepchain.studies import extra_studies

TESTS = Path(__file__).parent
SRC = TESTS.parent / "src"
STUDY = "twotrainer"


@pytest.fixture
def two_trainer_study(monkeypatch):
    """Register the test study with two trainings (see ``_helpers.TwoTrainerStudy``)."""
    from hepchain import studies

    monkeypatch.setattr(studies, "REGISTRY", {STUDY: "_helpers:TwoTrainerStudy"})
    return STUDY


def _metrics(workdir: Path) -> list[tuple[str, str, float]]:
    return [(m.name, m.method, m.value) for m in Result.load(workdir / "results.json").metrics]


def _rng_draws() -> tuple[float, float, float]:
    return torch.rand(1).item(), float(np.random.rand()), random.random()  # noqa: NPY002


def _noisy_fit(root: Path, calls: list[int]) -> tuple[Trainer, tuple[float, float, float]]:
    """Fit a dropout model whose metric draws from NumPy and Python RNGs inside a scope at
    ``root``; returns the trainer and three RNG draws made right after ``fit``."""
    x, y = blobs(300, seed=5)

    def loss_fn(model: nn.Module, batch) -> torch.Tensor:
        calls.append(1)
        return bce_loss(model, batch)

    def metrics_fn(model: nn.Module, loader) -> dict[str, float]:
        return {"jitter": float(np.random.rand()) + random.random()}  # noqa: NPY002

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.Dropout(0.3), nn.Linear(16, 1))
    with checkpoint_scope(root):
        trainer = Trainer(model, loss_fn, TrainConfig(epochs=4, lr=0.05, progress=False),
                          metrics_fn=metrics_fn)
        trainer.fit((x[:200], y[:200]), (x[200:], y[200:]))
    return trainer, _rng_draws()


def test_finished_trainer_is_restored_not_retrained(tmp_path, capsys):
    calls: list[int] = []
    first, draws = _noisy_fit(tmp_path, calls)
    assert calls and (tmp_path / "trainer-000" / "last.pt").is_file()

    calls.clear()
    second, redraws = _noisy_fit(tmp_path, calls)
    assert calls == []  # no training step ran
    assert "trainer-000 finished before" in capsys.readouterr().err
    assert second.history == first.history
    for key, value in first.model.state_dict().items():
        assert torch.equal(second.model.state_dict()[key], value)
    assert redraws == draws  # torch, NumPy and Python RNGs continue as after the first fit


def test_kill_after_the_early_stopping_epoch_trains_no_further(tmp_path, monkeypatch):
    x, y = blobs(300, seed=4)
    cfg = TrainConfig(epochs=50, lr=0.5, patience=2, progress=False, optimizer="sgd")
    saved: list[bytes] = []
    save = Trainer._save_checkpoint

    def save_and_keep(self, path):
        save(self, path)
        saved.append(path.read_bytes())

    monkeypatch.setattr(Trainer, "_save_checkpoint", save_and_keep)
    first = Trainer(nn.Linear(4, 1), bce_loss, cfg, checkpoint_dir=tmp_path)
    history = first.fit((x[:200], y[:200]), (x[200:], y[200:]))
    assert history.stopped_early and len(history.epochs) < cfg.epochs
    (tmp_path / "last.pt").write_bytes(saved[-2])  # killed before fit's final save

    calls: list[int] = []
    second = Trainer(nn.Linear(4, 1), lambda m, b: calls.append(1) or bce_loss(m, b), cfg,
                     checkpoint_dir=tmp_path)
    assert second.fit((x[:200], y[:200]), (x[200:], y[200:])) == history
    assert calls == []
    for key, value in first.model.state_dict().items():  # the best epoch's weights
        assert torch.equal(second.model.state_dict()[key], value)


def test_scope_names_trainers_in_order_and_refuses_duplicates(tmp_path):
    with checkpoint_scope(tmp_path) as scope:
        names = [Trainer(nn.Linear(2, 1), bce_loss).name,
                 Trainer(nn.Linear(2, 1), bce_loss, name="flow").name,
                 Trainer(nn.Linear(2, 1), bce_loss).name]
        assert names == ["trainer-000", "flow", "trainer-001"]
        assert scope.claim()[1] == tmp_path / "trainer-002"
        with pytest.raises(UsageError, match="both named 'flow'"):
            Trainer(nn.Linear(2, 1), bce_loss, name="flow")
    assert Trainer(nn.Linear(2, 1), bce_loss).checkpoint_dir is None  # outside any scope


def test_kept_pieces_live_in_the_scope_and_refuse_unsafe_names(tmp_path):
    assert kept_piece("control-ab12") is None  # outside any scope nothing is kept
    with checkpoint_scope(tmp_path):
        assert kept_piece("control-ab12") == tmp_path / "pieces" / "control-ab12.json"
        with pytest.raises(UsageError, match="Piece name"):
            kept_piece("../escape")


def test_completed_run_leaves_no_checkpoints(two_trainer_study, tmp_path):
    run_study(STUDY, workdir=tmp_path)  # so the same command later trains again
    assert (tmp_path / "results.json").is_file() and not (tmp_path / "checkpoints").exists()


def test_failed_run_resumes_and_changed_config_does_not(two_trainer_study, tmp_path,
                                                        monkeypatch, capsys):
    reference = tmp_path / "reference"
    run_study(STUDY, workdir=reference)

    def crash(self, workdir):
        raise OSError("disk full")

    wd = tmp_path / "run"
    with monkeypatch.context() as m:  # the run fails after both trainings, before results.json
        m.setattr(Result, "save", crash)
        with pytest.raises(OSError):
            run_study(STUDY, workdir=wd)
    [ckpt] = (wd / "checkpoints").iterdir()
    assert sorted(p.name for p in ckpt.iterdir()) == ["trainer-000", "trainer-001"]

    capsys.readouterr()
    run_study(STUDY, workdir=wd, overrides={"n": 600})  # another config: trains from scratch
    err = capsys.readouterr().err
    assert "finished before" not in err and "resuming" not in err
    assert ckpt.is_dir()  # the other config's checkpoints are left alone

    run_study(STUDY, workdir=wd)  # the failed command again: both trainings restored
    err = capsys.readouterr().err
    assert err.count("finished before") == 2
    assert _metrics(wd) == _metrics(reference)
    assert not (wd / "checkpoints").exists()


def _checkpoint(workdir: Path, trainer: str) -> dict | None:
    found = list(workdir.glob(f"checkpoints/*/{trainer}/last.pt"))
    return torch.load(found[0], weights_only=True) if found else None


def test_killed_study_run_resumes_to_the_same_metrics(tmp_path):
    epochs = TwoTrainerStudy().presets()["quick"]["train"]["epochs"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HEPCHAIN_EXTRA_STUDIES":
           f"{STUDY}=_helpers:TwoTrainerStudy",
           "PYTHONPATH": os.pathsep.join([str(SRC), str(TESTS)])}

    def command(workdir: Path) -> list[str]:
        return [sys.executable, "-m", "hepchain.cli", STUDY, "run", "--workdir", str(workdir),
                "--set", "sleep_s=0.03"]

    killed = tmp_path / "killed"
    proc = subprocess.Popen(command(killed), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        state = _checkpoint(killed, "trainer-001")
        if state is not None and state["start_epoch"] >= 2:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run ended before it was killed"
    assert not (killed / "results.json").exists()
    assert _checkpoint(killed, "trainer-000")["finished"]
    assert not _checkpoint(killed, "trainer-001")["finished"]

    rerun = subprocess.run(command(killed), env=env, check=True, capture_output=True, text=True)
    reference = tmp_path / "reference"  # the same command, never interrupted
    subprocess.run(command(reference), env=env, check=True, capture_output=True)
    assert "trainer-000 finished before" in rerun.stderr
    resumed_at = re.search(rf"resuming trainer-001 from epoch (\d+) of {epochs}", rerun.stderr)
    assert resumed_at and 2 <= int(resumed_at.group(1)) < epochs
    assert _metrics(killed) == _metrics(reference)  # exact, metric by metric
    assert not (killed / "checkpoints").exists()


def test_extra_studies_hook_parses_entries_and_refuses_bad_ones():
    assert extra_studies(" a=pkg.mod:A , b=m:B ,") == {"a": "pkg.mod:A", "b": "m:B"}
    with pytest.raises(UsageError, match="name=module:Class"):
        extra_studies("a=pkg.mod")
    with pytest.raises(UsageError, match="built-in study"):
        extra_studies("btag=pkg.mod:A")
