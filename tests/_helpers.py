"""Test-only code importable by subprocesses and worker processes (tests/ is put on sys.path)."""

from __future__ import annotations

import math
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import awkward as ak
import numpy as np
import torch
from torch import nn

from hepchain.core import metrics, plotting
from hepchain.core.dataset import ShardTask
from hepchain.core.result import Reference, Result
from hepchain.core.seeding import seed_everything
from hepchain.core.study import Study
from hepchain.core.trainer import TrainConfig, Trainer


def blobs(n: int, seed: int, shift: float = 1.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Two 4-d Gaussian classes separated by ``shift`` along every axis."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g).float()
    x = torch.randn(n, 4, generator=g) + shift * y[:, None]
    return x, y


def bayes_auc(shift: float = 1.5, dim: int = 4) -> float:
    """The best possible AUC on :func:`blobs`: two unit-covariance Gaussians whose means differ
    by ``shift`` on each of ``dim`` axes are separated best by the sum of the coordinates; its
    class means differ by shift·dim and its standard deviation is √dim in both classes, so the
    separation is Δ = shift·√dim standard deviations and AUC = Φ(Δ/√2) = ½·(1 + erf(Δ/2))."""
    return 0.5 * (1.0 + math.erf(shift * math.sqrt(dim) / 2.0))


def bce_loss(model: nn.Module, batch) -> torch.Tensor:
    x, y = batch
    return nn.functional.binary_cross_entropy_with_logits(model(x).squeeze(-1), y)


class ToyStudy(Study):
    """A logistic regression on blobs: exercises run/bench/demo/report without physics."""

    name = "toy"
    description = "test-only logistic regression"
    seed_doc = "-"

    def presets(self) -> dict[str, dict]:
        train = {"epochs": 10, "lr": 0.05, "progress": False, "threads": 64}
        return {"quick": {"n": 600, "train": train}, "paper": {"n": 2000, "train": train}}

    def run(self, config: dict, workdir: Path, seed: int) -> Result:
        x, y = blobs(config["n"], seed)
        n = len(y) // 3
        model = nn.Linear(4, 1)
        trainer = Trainer(model, bce_loss, TrainConfig.from_dict(config["train"], seed=seed))
        trainer.fit((x[:n], y[:n]), (x[n:2 * n], y[n:2 * n]))
        score = trainer.predict((x[2 * n:],)).squeeze(-1).numpy()
        result = Result(study=self.name, preset="")
        result.add("AUC", "logistic", metrics.roc_auc(y[2 * n:].numpy(), score),
                   reference=Reference(bayes_auc(), "analytic optimum (Bayes AUC)",
                                       same_dataset=True))
        path = plotting.roc_curves({"logistic": (y[2 * n:].numpy(), score)}, workdir / "roc.png")
        result.figures.append(path.name)
        result.add("torch threads", "logistic", torch.get_num_threads())  # the core share
        return result


def toy_events(task: ShardTask) -> ak.Array:
    """Jagged toy 'events' for dataset tests; sleeps ``settings['sleep']`` s per shard and
    writes a marker file when ``settings['marker_dir']`` is set (to time a kill)."""
    rng = np.random.default_rng(task.seed)
    counts = rng.integers(0, 6, task.n_events)
    pt = rng.exponential(30.0, counts.sum())
    marker = task.settings.get("marker_dir")
    if marker:
        Path(marker, f"started-{task.index}").touch()
    time.sleep(task.settings.get("sleep", 0.0))
    return ak.zip({"event": np.arange(task.n_events) + 1000 * task.index,
                   "jets": ak.unflatten(ak.zip({"pt": pt, "eta": rng.normal(0, 1.5, pt.size)}),
                                        counts)}, depth_limit=1)


def toy_images(task: ShardTask) -> dict[str, np.ndarray]:
    """Dense toy 'showers' (CaloChallenge-like keys) for HDF5 dataset tests."""
    rng = np.random.default_rng(task.seed)
    energy = rng.uniform(1, 10, (task.n_events, 1))
    return {"incident_energies": energy,
            "showers": rng.poisson(energy[:, :, None] * np.ones((1, 3, 16))).reshape(
                task.n_events, -1).astype(np.float32)}


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def stop_process_group(proc: subprocess.Popen) -> None:
    """End a subprocess started with ``start_new_session`` and its pool workers. SIGTERM, not
    SIGKILL: the pool's multiprocessing resource tracker (same group) ignores it, outlives the
    others and unlinks their named semaphores, which SIGKILL would leave in /dev/shm."""
    os.killpg(proc.pid, signal.SIGTERM)
    proc.communicate()


def train_blobs(ckpt_dir: str, out: str, epochs: int = 6, seed: int = 3,
                batch_sleep: float = 0.0) -> None:
    """Train a small dropout MLP with a cosine schedule and save its final weights to ``out``
    (used by the resume-after-kill test, which SIGKILLs this in a subprocess)."""
    from hepchain.nn.mlp import MLP

    torch.set_num_threads(1)
    x, y = blobs(800, seed=11)

    def loss_fn(model, batch):
        time.sleep(batch_sleep)
        xb, yb = batch
        return {"bce": nn.functional.binary_cross_entropy_with_logits(model(xb).squeeze(-1), yb)}

    seed_everything(seed)  # model initialisation must not depend on the caller's RNG state
    model = MLP(4, [32, 32], 1, dropout=0.2)
    cfg = TrainConfig(epochs=epochs, batch_size=64, lr=3e-3, schedule="cosine", seed=seed,
                      progress=False, restore_best=False)
    Trainer(model, loss_fn, cfg, checkpoint_dir=ckpt_dir).fit((x[:600], y[:600]),
                                                             (x[600:], y[600:]))
    torch.save(model.state_dict(), out)


class TwoTrainerStudy(Study):
    """Two dropout MLPs trained one after the other on blobs, for the kill-and-resume tests.

    Training draws from every global RNG (batches augmented with NumPy noise and a
    Python-``random`` scale, dropout from torch), and what follows the first training draws
    from them again (a NumPy reshuffle of the split, torch initialisation), so a resumed run
    reproduces an uninterrupted one only if a finished trainer restores the RNG states it
    ended with. ``sleep_s`` per training batch lets a test kill the run mid-training.
    """

    name = "twotrainer"
    description = "test-only pair of trainings for kill and resume"
    seed_doc = "-"

    def presets(self) -> dict[str, dict]:
        train = {"epochs": 8, "batch_size": 50, "lr": 0.01, "schedule": "cosine",
                 "patience": 4, "progress": False}
        return {"quick": {"n": 900, "sleep_s": 0.0, "train": train}}

    def run(self, config: dict, workdir: Path, seed: int) -> Result:
        from hepchain.nn.mlp import MLP

        x, y = blobs(config["n"], seed, shift=0.7)
        third = len(y) // 3
        result = Result(study=self.name, preset="")

        def loss_fn(model: nn.Module, batch) -> torch.Tensor:
            time.sleep(config["sleep_s"])
            xb, yb = batch
            noise = torch.from_numpy(np.random.normal(0.0, 0.1, xb.shape)).float()  # noqa: NPY002
            return bce_loss(model, (xb * random.uniform(0.9, 1.1) + noise, yb))

        for i in range(2):
            perm = torch.from_numpy(np.random.permutation(len(y)))  # noqa: NPY002 - global RNG
            xi, yi = x[perm], y[perm]
            model = MLP(4, [16, 16], 1, dropout=0.3)
            trainer = Trainer(model, loss_fn, TrainConfig.from_dict(config["train"], seed=seed))
            hist = trainer.fit((xi[:third], yi[:third]), (xi[third:2 * third], yi[third:2 * third]))
            score = trainer.predict((xi[2 * third:],)).squeeze(-1).numpy()
            method = f"model {i}"
            result.add("AUC", method, metrics.roc_auc(yi[2 * third:].numpy(), score))
            result.add("best validation loss", method, hist.best_value)
            result.add("epochs trained", method, len(hist.epochs))
        return result


class SeedOutcomesStudy(Study):
    """Test-only: what a seed gives depends on the seed, to exercise bench's aggregation.

    ``x`` is finite, NaN or inf by seed (``x_values``); ``rejection`` comes from
    ``metrics.rejection_at_efficiency`` and is a lower limit for the seeds in ``limit_seeds``
    (no background passes); seeds in ``fail_seeds`` raise a DataError.
    """

    name = "outcomes"
    description = "test-only study whose outcome depends on the seed"
    seed_doc = "-"

    def presets(self) -> dict[str, dict]:
        return {"quick": {"x_values": [1.0, float("nan"), float("inf"), 3.0],
                          "limit_seeds": [1], "fail_seeds": [3]}}

    def run(self, config: dict, workdir: Path, seed: int) -> Result:
        from hepchain.core.errors import DataError

        if seed in config["fail_seeds"]:
            raise DataError(f"seed {seed} has no data.")
        result = Result(study=self.name, preset="")
        result.add("x", "toy", config["x_values"][seed])
        signal = 100.0 + np.arange(50)
        n_pass = 0 if seed in config["limit_seeds"] else 1 + seed  # background above the cut
        background = np.r_[np.full(n_pass, 200.0), np.zeros(100 - n_pass)]
        y = np.r_[np.ones(signal.size), np.zeros(background.size)]
        rej = metrics.rejection_at_efficiency(y, np.r_[signal, background], 0.5)
        result.add_rejection("rejection", "toy", rej, higher_is_better=True)
        return result


def measured_values(result: Result) -> dict[tuple[str, str], float]:
    """Every (metric, method) -> value of a result except timings and compute costs, which
    differ between identical runs."""
    timing = ("time", "seconds", "compute", "/s")
    return {(m.name, m.method): m.value for m in result.metrics
            if not any(t in m.name for t in timing)}


def assert_seed_reproducible(study: str, overrides: dict, tmp_path: Path) -> None:
    """Seed 0 twice gives identical measured values; seed 1 gives different ones."""
    from hepchain.core.study import run_study

    runs = [measured_values(run_study(study, "quick", tmp_path / f"run{i}", seed=seed,
                                      overrides=overrides))
            for i, seed in enumerate((0, 0, 1))]
    np.testing.assert_equal(runs[0], runs[1])  # NaN == NaN here
    assert runs[0].keys() == runs[2].keys()
    assert any(runs[0][k] != runs[2][k] for k in runs[0] if np.isfinite(runs[0][k]))
