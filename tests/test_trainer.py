"""The shared trainer: learning, multi-task losses, NaN detection, early stopping, resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from _helpers import bce_loss, blobs, train_blobs
from hepchain.core import metrics
from hepchain.core.errors import TrainingError, UsageError
from hepchain.core.losses import (
    DynamicWeightAverage,
    StaticWeights,
    UncertaintyWeights,
    masked_cross_entropy,
)
from hepchain.core.trainer import TrainConfig, Trainer

HERE = Path(__file__).parent


def test_learns_separable_blobs():
    x, y = blobs(1200, seed=0)  # Bayes-optimal AUC = Φ(3/√2) = 0.983
    torch.manual_seed(0)
    trainer = Trainer(nn.Linear(4, 1), bce_loss, TrainConfig(epochs=20, lr=5e-2, progress=False))
    hist = trainer.fit((x[:800], y[:800]), (x[800:1000], y[800:1000]))
    score = trainer.predict((x[1000:],)).squeeze(-1)
    assert metrics.roc_auc(y[1000:].numpy(), score.numpy()) > 0.9
    losses = hist.series("train_total")
    assert losses[-1] < losses[0]


def test_nan_loss_stops_with_clear_message():
    x, y = blobs(200, seed=1)
    x[5, 0] = float("nan")
    trainer = Trainer(nn.Linear(4, 1), bce_loss, TrainConfig(epochs=2, progress=False))
    with pytest.raises(TrainingError, match=r"became nan at epoch 0.*check inputs"):
        trainer.fit((x[:150], y[:150]), (x[150:], y[150:]))


def test_static_weights_combine_named_losses():
    x, y = blobs(100, seed=2)
    model = nn.Linear(4, 2)

    def two_losses(m, batch):
        xb, yb = batch
        out = m(xb)
        return {"a": nn.functional.binary_cross_entropy_with_logits(out[:, 0], yb),
                "b": (out[:, 1] ** 2).mean()}

    trainer = Trainer(model, two_losses, TrainConfig(epochs=1, progress=False),
                      weighting=StaticWeights({"a": 1.0, "b": 1.5}))
    ev = trainer.evaluate((x, y))
    assert ev["loss"] == pytest.approx(ev["a"] + 1.5 * ev["b"], rel=1e-6)


def test_dynamic_weightings_change_during_training():
    x, y = blobs(400, seed=3)

    def two_losses(m, batch):
        xb, yb = batch
        out = m(xb)
        return {"a": nn.functional.binary_cross_entropy_with_logits(out[:, 0], yb),
                "b": ((out[:, 1] - 3.0) ** 2).mean()}

    unc = UncertaintyWeights(["a", "b"])
    Trainer(nn.Linear(4, 2), two_losses, TrainConfig(epochs=3, lr=5e-2, progress=False),
            weighting=unc).fit((x[:300], y[:300]), (x[300:], y[300:]))
    assert not torch.allclose(unc.log_vars.detach(), torch.zeros(2))
    dwa = DynamicWeightAverage(["a", "b"])
    hist = Trainer(nn.Linear(4, 2), two_losses, TrainConfig(epochs=4, progress=False),
                   weighting=dwa).fit((x[:300], y[:300]), (x[300:], y[300:]))
    weights = hist.series("weight_a")
    assert weights[0] == 1.0 and weights[-1] != 1.0
    assert sum(dwa.current().values()) == pytest.approx(2.0)


def test_early_stopping_and_bad_monitor():
    x, y = blobs(300, seed=4)
    cfg = TrainConfig(epochs=50, lr=0.5, patience=2, progress=False, optimizer="sgd")
    hist = Trainer(nn.Linear(4, 1), bce_loss, cfg).fit((x[:200], y[:200]), (x[200:], y[200:]))
    assert hist.stopped_early and len(hist.epochs) < 50
    bad = TrainConfig(epochs=2, monitor="auc", progress=False)
    with pytest.raises(UsageError, match="Monitor 'auc'"):
        Trainer(nn.Linear(4, 1), bce_loss, bad).fit((x[:200], y[:200]), (x[200:], y[200:]))
    with pytest.raises(UsageError, match="Unknown training settings"):
        TrainConfig.from_dict({"epoch": 3})
    with pytest.raises(UsageError, match="Unknown torch device"):
        TrainConfig.from_dict({"device": "gpu0"})
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="sees no CUDA GPU"):
            TrainConfig.from_dict({"device": "cuda"})


def test_restore_best_leaves_the_best_epochs_weights():
    x, y = blobs(300, seed=4)
    cfg = TrainConfig(epochs=50, lr=0.5, patience=2, progress=False, optimizer="sgd")
    trainer = Trainer(nn.Linear(4, 1), bce_loss, cfg)
    hist = trainer.fit((x[:200], y[:200]), (x[200:], y[200:]))
    last = hist.epochs[-1]["val_loss"]
    assert hist.best_epoch < len(hist.epochs) - 1 and last != hist.best_value
    assert trainer.evaluate((x[200:], y[200:]))["loss"] == hist.best_value


def test_resume_after_kill_gives_same_weights(tmp_path):
    epochs = 6
    ref_out = tmp_path / "ref.pt"
    train_blobs(str(tmp_path / "ref_ckpt"), str(ref_out), epochs=epochs)

    ckpt, out = tmp_path / "ckpt", tmp_path / "resumed.pt"
    code = (f"import sys; sys.path.insert(0, {str(HERE)!r}); from _helpers import train_blobs; "
            f"train_blobs({str(ckpt)!r}, {str(out)!r}, epochs={epochs}, batch_sleep=0.02)")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env)
    deadline = time.time() + 120
    while time.time() < deadline:
        if (ckpt / "last.pt").exists() and torch.load(
                ckpt / "last.pt", weights_only=True)["start_epoch"] >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists(), "the run should have been killed before finishing"
    killed_at = torch.load(ckpt / "last.pt", weights_only=True)["start_epoch"]
    assert 2 <= killed_at < epochs

    subprocess.run([sys.executable, "-c", code.replace("batch_sleep=0.02", "batch_sleep=0.0")],
                   env=env, check=True)
    ref, resumed = torch.load(ref_out), torch.load(out)
    for key in ref:
        torch.testing.assert_close(resumed[key], ref[key], rtol=1e-6, atol=1e-7)


def _scalars(logdir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar series of one TensorBoard directory as (step, value) pairs, read the way
    TensorBoard reads them (a restart's purge applied)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logdir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


class _Interrupted(Exception):
    pass


def _interrupted_after(n_steps: int):
    """``bce_loss`` that raises on training batch ``n_steps + 1`` (a Ctrl-C mid-epoch)."""
    calls = 0

    def loss(model, batch):
        nonlocal calls
        calls += int(model.training)
        if calls > n_steps:
            raise _Interrupted
        return bce_loss(model, batch)

    return loss


def _blob_trainer(loss, tmp_path: Path, name: str) -> Trainer:
    torch.manual_seed(0)
    cfg = TrainConfig(epochs=4, batch_size=50, lr=0.05, schedule="cosine", progress=False)
    return Trainer(nn.Linear(4, 1), loss, cfg, checkpoint_dir=tmp_path / name / "ckpt",
                   log_dir=tmp_path / name / "tb")


def test_tensorboard_logs_every_step_and_epoch_once_across_a_resume(tmp_path):
    x, y = blobs(300, seed=6)
    train, val = (x[:200], y[:200]), (x[200:], y[200:])  # 4 steps per epoch, 16 in all
    _blob_trainer(bce_loss, tmp_path, "ref").fit(train, val)
    ref = _scalars(tmp_path / "ref" / "tb")
    assert {"loss/total", "loss/loss", "lr", "val/loss"} <= set(ref)
    assert [s for s, _ in ref["loss/total"]] == list(range(1, 17))
    assert [s for s, _ in ref["val/loss"]] == [4, 8, 12, 16]
    lrs = [v for _, v in ref["lr"]]
    assert lrs[0] == pytest.approx(0.05) and lrs[-1] < lrs[0]  # the cosine schedule

    with pytest.raises(_Interrupted):  # killed 2 steps into epoch 2: steps 9, 10 were logged
        _blob_trainer(_interrupted_after(10), tmp_path, "cut").fit(train, val)
    assert [s for s, _ in _scalars(tmp_path / "cut" / "tb")["loss/total"]][-1] == 10
    _blob_trainer(bce_loss, tmp_path, "cut").fit(train, val)  # resumes after epoch 1
    resumed = _scalars(tmp_path / "cut" / "tb")
    for tag, series in ref.items():
        assert [s for s, _ in resumed[tag]] == [s for s, _ in series], tag
        assert [v for _, v in resumed[tag]] == pytest.approx([v for _, v in series], rel=1e-6)


def test_masked_cross_entropy_matches_torch_and_is_zero_without_targets() -> None:
    torch.manual_seed(0)
    logits, target = torch.randn(6, 4), torch.tensor([0, 3, -1, 1, -1, 2])
    weight = torch.tensor([0.5, 2.0, 1.0, 4.0])
    for w in (None, weight):
        assert torch.isclose(masked_cross_entropy(logits, target, -1, w),
                             nn.functional.cross_entropy(logits, target, weight=w,
                                                         ignore_index=-1))
        empty = masked_cross_entropy(logits, torch.full((6,), -1), -1, w)
        assert empty.item() == 0.0  # torch's mean gives NaN: a batch of jets without tracks
