"""The one training loop of the project.

Every PyTorch model in hepchain trains through :class:`Trainer`::

    def loss_fn(model, batch):
        x, y = batch
        return {"bce": F.binary_cross_entropy_with_logits(model(x).squeeze(-1), y)}

    trainer = Trainer(model, loss_fn, TrainConfig(epochs=20, lr=1e-3, patience=5, seed=0))
    history = trainer.fit(train_ds, val_ds)

A loss function may return one tensor or a dict of named tensors; ``weighting`` (see
:mod:`hepchain.core.losses`) combines a dict into the total.

Checkpoints go to ``checkpoint_dir/last.pt``; inside a study run (a
:func:`hepchain.core.checkpoints.checkpoint_scope`) a trainer without ``checkpoint_dir`` gets
one from the scope, named ``name`` or ``trainer-NNN`` by construction order. A checkpoint
holds the model, optimizer, scheduler, weighting, early-stopping state, history and every
global RNG state (Python, NumPy, torch CPU and CUDA), written atomically after each epoch and
once more when ``fit`` ends. ``fit`` on a partial checkpoint continues after its last epoch;
on a finished one it restores the final weights, history and RNG states without training, so
everything a run computes afterwards is identical to an uninterrupted run.

Scalars go to TensorBoard event files in ``log_dir`` (inside a scope with a TensorBoard
directory: ``<that directory>/<name>``; see :mod:`hepchain.core.monitoring`).

Under ``torchrun`` (see :mod:`hepchain.core.distributed`) ``batch_size`` is the global batch:
each of the N processes draws ``batch_size / N`` examples per step from its share
(:class:`~hepchain.core.distributed.RankShare`, a ``DistributedSampler``) of the shuffled
order that one process would use, gradients and losses are averaged over the processes, and
only rank 0 writes checkpoints, event files and the progress bar. Validation runs on the whole validation set in every process, so early
stopping agrees without communication. When the training-set size is a multiple of
``batch_size`` and the loss is a per-example mean without random draws, the weights equal a
one-process training's up to floating-point summation order; random draws (dropout, a VAE's
noise) differ per rank (rank r > 0 seeds torch with ``derive_seed(seed, "rank", r)``).
"""

from __future__ import annotations

import contextlib
import copy
import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from hepchain.core import distributed
from hepchain.core.checkpoints import current_scope
from hepchain.core.errors import DataError, TrainingError, UsageError
from hepchain.core.io import atomic_path
from hepchain.core.losses import LossWeighting, StaticWeights
from hepchain.core.monitoring import TrainingLog, tensorboard_note
from hepchain.core.progress import console, progress_bar
from hepchain.core.seeding import derive_seed, seed_everything
from hepchain.core.threads import set_torch_threads

LossFn = Callable[[nn.Module, Any], "Tensor | dict[str, Tensor]"]
MetricFn = Callable[[nn.Module, DataLoader], dict[str, float]]


@dataclass
class TrainConfig:
    """Training settings (config as data: every study keeps these in its preset YAML)."""

    epochs: int = 20
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    optimizer: Literal["adam", "adamw", "sgd"] = "adamw"
    schedule: Literal["none", "cosine", "onecycle", "plateau"] = "none"
    grad_clip: float | None = None
    patience: int | None = None
    monitor: str = "loss"
    mode: Literal["min", "max"] = "min"
    restore_best: bool = True
    seed: int = 0
    threads: int | None = None
    device: str = "cpu"
    progress: bool = True

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, **overrides: Any) -> TrainConfig:
        """Build from a preset's ``train:`` mapping; unknown keys are a UsageError."""
        merged = {**(data or {}), **overrides}
        unknown = set(merged) - set(cls.__dataclass_fields__)
        if unknown:
            raise UsageError(f"Unknown training settings {sorted(unknown)}; "
                             f"known: {sorted(cls.__dataclass_fields__)}.")
        cfg = cls(**merged)
        if cfg.epochs < 1 or cfg.batch_size < 1 or not cfg.lr > 0:
            raise UsageError("Training needs epochs >= 1, batch_size >= 1 and lr > 0.")
        try:
            device = torch.device(cfg.device)
        except RuntimeError as err:
            raise UsageError(f"Unknown torch device {cfg.device!r} ({err}).") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise UsageError(f"Training device {cfg.device!r} was asked for, but this torch "
                             "sees no CUDA GPU; use device cpu.")
        return cfg


@dataclass
class History:
    """Per-epoch records: train losses, validation metrics, learning rate, weights, time."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1
    best_value: float = float("nan")
    stopped_early: bool = False

    def series(self, key: str) -> list[float]:
        return [e[key] for e in self.epochs if key in e]


def as_dataset(data: Dataset | tuple[Tensor, ...] | Tensor) -> Dataset:
    """Accept a Dataset, a tensor, or a tuple of equally long tensors."""
    if isinstance(data, Dataset):
        return data
    if isinstance(data, Tensor):
        return TensorDataset(data)
    return TensorDataset(*data)


class Trainer:
    """Fit ``model`` by minimising ``loss_fn`` (see module docstring)."""

    def __init__(self, model: nn.Module, loss_fn: LossFn, config: TrainConfig | None = None, *,
                 weighting: LossWeighting | None = None, metrics_fn: MetricFn | None = None,
                 checkpoint_dir: str | Path | None = None, name: str | None = None,
                 log_dir: str | Path | None = None, collate_fn: Callable | None = None,
                 scheduler_fn: Callable[[torch.optim.Optimizer, int], Any] | None = None) -> None:
        self.config = config or TrainConfig()
        if self.config.mode not in ("min", "max"):
            raise UsageError(f"mode must be 'min' or 'max', got {self.config.mode!r}.")
        if self.config.threads:
            set_torch_threads(self.config.threads)
        seed_everything(self.config.seed)
        self.world = distributed.world_size()
        if self.world > 1:
            if self.config.batch_size % self.world:
                raise UsageError(f"batch_size {self.config.batch_size} is the global batch and "
                                 f"must be a multiple of the {self.world} torchrun processes.")
            self.device = distributed.setup(self.config.device)
            self._seed_rank()
        else:
            self.device = torch.device(self.config.device)
        self.model = model.to(self.device)
        self.loss_fn = loss_fn
        self.weighting = (weighting or StaticWeights()).to(self.device)
        if self.world > 1:
            distributed.broadcast_module(self.model)
            distributed.broadcast_module(self.weighting)
        self.metrics_fn = metrics_fn
        self.collate_fn = collate_fn
        self.scheduler_fn = scheduler_fn
        scope = self._scope = current_scope()
        if checkpoint_dir is None and scope is not None:
            self.name, self.checkpoint_dir = scope.claim(name)
            if log_dir is None and scope.tensorboard is not None:
                log_dir = scope.tensorboard / self.name
        else:
            self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
            self.name = name or (self.checkpoint_dir.name if self.checkpoint_dir else "trainer")
        self.log_dir = Path(log_dir) if log_dir else None
        params = list(self.model.parameters()) + list(self.weighting.parameters())
        self._params = [p for p in params if p.requires_grad]
        self.optimizer = self._make_optimizer(params)
        self.scheduler: Any = None
        self.history = History()
        self._best_state: dict[str, Tensor] | None = None
        self._bad_epochs = 0
        self._start_epoch = 0
        self._finished = False

    # ------------------------------------------------------------------ setup
    def _make_optimizer(self, params: list[nn.Parameter]) -> torch.optim.Optimizer:
        c = self.config
        if c.optimizer == "adam":
            return torch.optim.Adam(params, lr=c.lr, weight_decay=c.weight_decay)
        if c.optimizer == "adamw":
            return torch.optim.AdamW(params, lr=c.lr, weight_decay=c.weight_decay)
        if c.optimizer == "sgd":
            return torch.optim.SGD(params, lr=c.lr, momentum=0.9, weight_decay=c.weight_decay)
        raise UsageError(f"Unknown optimizer {c.optimizer!r}; use adam, adamw or sgd.")

    def _make_scheduler(self, steps_per_epoch: int) -> Any:
        c, opt = self.config, self.optimizer
        total = c.epochs * steps_per_epoch
        if self.scheduler_fn is not None:
            return self.scheduler_fn(opt, total)
        if c.schedule == "none":
            return None
        if c.schedule == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
        if c.schedule == "onecycle":
            return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=c.lr, total_steps=total)
        if c.schedule == "plateau":
            return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode=c.mode, factor=0.5,
                                                              patience=2)
        raise UsageError(f"Unknown schedule {c.schedule!r}; use none, cosine, onecycle, plateau.")

    def _seed_rank(self, epoch: int = 0) -> None:
        """Under torchrun, give ranks > 0 their own torch random stream (dropout, noise)."""
        if distributed.rank() > 0:
            torch.manual_seed(derive_seed(self.config.seed, "rank", distributed.rank(), epoch))

    def _loader(self, data: Dataset, shuffle: bool, epoch: int = 0) -> DataLoader:
        seed = derive_seed(self.config.seed, "shuffle", epoch)
        if shuffle and self.world > 1:  # this rank's share of one process's shuffled order
            sampler = distributed.RankShare(data, self.world, distributed.rank(), seed)
            return DataLoader(data, batch_size=self.config.batch_size // self.world,
                              sampler=sampler, collate_fn=self.collate_fn)
        return DataLoader(data, batch_size=self.config.batch_size, shuffle=shuffle,
                          generator=torch.Generator().manual_seed(seed),
                          collate_fn=self.collate_fn)

    def _to_device(self, batch: Any) -> Any:
        if isinstance(batch, Tensor):
            return batch.to(self.device)
        if isinstance(batch, dict):
            return {k: self._to_device(v) for k, v in batch.items()}
        if isinstance(batch, list | tuple):
            return type(batch)(self._to_device(b) for b in batch)
        return batch

    # ------------------------------------------------------------------ core loop
    def _losses(self, batch: Any) -> dict[str, Tensor]:
        out = self.loss_fn(self.model, self._to_device(batch))
        return out if isinstance(out, dict) else {"loss": out}

    def fit(self, train: Dataset | tuple[Tensor, ...], val: Dataset | tuple[Tensor, ...],
            resume: bool = True) -> History:
        """Train with early stopping on the validation monitor; returns the history.

        With a checkpoint directory and ``resume`` true, a previous run's ``last.pt`` is picked
        up: a partial one continues from the epoch after it, a finished one is restored
        without training (see the module docstring).
        """
        train_ds, val_ds = as_dataset(train), as_dataset(val)
        if len(train_ds) == 0 or len(val_ds) == 0:
            raise UsageError("Training and validation sets must both be non-empty.")
        per_rank = math.ceil(len(train_ds) / self.world)
        steps = math.ceil(per_rank / (self.config.batch_size // self.world))
        self.scheduler = self._make_scheduler(steps)
        ckpt = self.checkpoint_dir / "last.pt" if self.checkpoint_dir else None
        c = self.config
        main = distributed.is_main()
        if resume and ckpt is not None and ckpt.exists():
            self._load_checkpoint(ckpt)
            if self._finished:
                if main:
                    console.print(f"{self.name} finished before: restored its final weights, "
                                  "history and RNG states, not retrained", highlight=False,
                                  soft_wrap=True)
                return self.history
            if main:
                console.print(f"resuming {self.name} from epoch {self._start_epoch} of "
                              f"{c.epochs}", highlight=False, soft_wrap=True)
        log = (TrainingLog(self.log_dir, steps_done=self._start_epoch * steps)
               if self.log_dir is not None and main else None)
        if log is not None:
            self._announce_tensorboard()
        with progress_bar(enabled=c.progress and main) as bar, log or contextlib.nullcontext():
            task = bar.add_task("training", total=c.epochs, completed=self._start_epoch, info="")
            for epoch in range(self._start_epoch, c.epochs):
                if self.history.stopped_early:
                    break
                t0 = time.perf_counter()
                train_losses = self._train_epoch(self._loader(train_ds, True, epoch), epoch,
                                                 log, first_step=epoch * steps)
                record = {"epoch": epoch, "time_s": time.perf_counter() - t0,
                          "lr": self.optimizer.param_groups[0]["lr"]}
                record.update({f"train_{k}": v for k, v in train_losses.items()})
                val_metrics = self.evaluate(val_ds)
                record.update({f"val_{k}": v for k, v in val_metrics.items()})
                record.update({f"weight_{k}": v for k, v in self.weighting.current().items()})
                self.weighting.end_epoch({k: v for k, v in train_losses.items() if k != "total"})
                if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                    self.scheduler.step(val_metrics[c.monitor])
                self.history.epochs.append(record)
                if log is not None:
                    log.epoch((epoch + 1) * steps, val_metrics, self.weighting.current())
                self.history.stopped_early = self._early_stopping(epoch, val_metrics)
                self._start_epoch = epoch + 1
                if ckpt is not None and main:
                    self._save_checkpoint(ckpt)
                bar.update(task, advance=1,
                           info=f"{c.monitor}={val_metrics[c.monitor]:.4g}")
        if c.restore_best and self._best_state is not None:
            self.model.load_state_dict(self._best_state)
        self._finished = True
        if ckpt is not None and main:
            self._save_checkpoint(ckpt)
        distributed.barrier()  # no rank moves on (and, say, deletes checkpoints) before rank 0
        return self.history

    def _announce_tensorboard(self) -> None:
        """Print the TensorBoard command once per run, when its first training starts."""
        scope = self._scope
        if (scope is None or scope.tensorboard is None or scope.tensorboard_announced
                or self.log_dir is None or self.log_dir.parent != scope.tensorboard):
            return
        scope.tensorboard_announced = True
        console.print(tensorboard_note(scope.tensorboard), highlight=False, soft_wrap=True)

    def _train_epoch(self, loader: DataLoader, epoch: int, log: TrainingLog | None,
                     first_step: int) -> dict[str, float]:
        """One pass over ``loader``; returns the mean of each loss term and ``total`` (averaged
        over the ranks under torchrun). ``first_step`` optimiser steps came before."""
        self.model.train()
        sums: dict[str, float] = {}
        n = 0
        for step, batch in enumerate(loader):
            losses = self._losses(batch)
            terms = {**losses, "total": self.weighting(losses)}
            self.optimizer.zero_grad(set_to_none=True)
            terms["total"].backward()
            values = torch.stack([v.detach().float() for v in terms.values()])
            if self.world > 1:
                values = distributed.average_gradients(self._params, values)
            current = dict(zip(terms, values.tolist(), strict=True))
            if not math.isfinite(current["total"]):
                bad = [k for k, v in current.items()
                       if k != "total" and not math.isfinite(v)] or ["total"]
                raise TrainingError(
                    f"Training loss became {current['total']} at epoch {epoch}, batch {step} "
                    f"(term {', '.join(bad)}); lower the learning rate or check inputs for NaN/inf."
                )
            if self.config.grad_clip:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
            lr = self.optimizer.param_groups[0]["lr"]
            self.optimizer.step()
            if self.scheduler is not None and not isinstance(
                    self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                self.scheduler.step()
            if log is not None:
                log.step(first_step + step + 1, current, lr)
            for k, v in current.items():
                sums[k] = sums.get(k, 0.0) + v
            n += 1
        return {k: v / n for k, v in sums.items()}

    @torch.no_grad()
    def evaluate(self, data: Dataset | tuple[Tensor, ...]) -> dict[str, float]:
        """Mean (weighted total and per-term) loss on ``data`` plus ``metrics_fn`` values."""
        ds = as_dataset(data)
        loader = self._loader(ds, shuffle=False)
        self.model.eval()
        sums: dict[str, float] = {}
        count = 0
        for batch in loader:
            losses = self._losses(batch)
            size = _batch_size(batch)
            for k, v in {**losses, "loss": self.weighting(losses)}.items():
                sums[k] = sums.get(k, 0.0) + float(v) * size
            count += size
        out = {k: v / count for k, v in sums.items()}
        if self.metrics_fn is not None:
            out.update(self.metrics_fn(self.model, loader))
        return out

    @torch.no_grad()
    def predict(self, data: Dataset | tuple[Tensor, ...],
                fn: Callable[[nn.Module, Any], Tensor] | None = None) -> Tensor:
        """Concatenate ``fn(model, batch)`` (default: ``model(batch[0])``) over ``data``."""
        self.model.eval()
        fn = fn or (lambda m, b: m(b[0]))
        outs = [fn(self.model, self._to_device(b)).cpu()
                for b in self._loader(as_dataset(data), shuffle=False)]
        return torch.cat(outs)

    def _early_stopping(self, epoch: int, metrics: dict[str, float]) -> bool:
        c = self.config
        if c.monitor not in metrics:
            raise UsageError(f"Monitor {c.monitor!r} is not a validation metric; "
                             f"available: {sorted(metrics)}.")
        value = metrics[c.monitor]
        best = self.history.best_value
        improved = math.isnan(best) or (value < best if c.mode == "min" else value > best)
        if improved:
            self.history.best_value, self.history.best_epoch = value, epoch
            self._best_state = copy.deepcopy(self.model.state_dict())
            self._bad_epochs = 0
            return False
        self._bad_epochs += 1
        return c.patience is not None and self._bad_epochs >= c.patience

    # ------------------------------------------------------------------ checkpoints
    def _fingerprint(self) -> dict[str, Any]:
        """What a checkpoint must match to be resumed: training settings and weight shapes."""
        settings = {k: v for k, v in asdict(self.config).items() if k != "progress"}
        return {"config": settings,
                "shapes": {k: list(v.shape) for k, v in self.model.state_dict().items()}}

    def _save_checkpoint(self, path: Path) -> None:
        state = {
            "fingerprint": self._fingerprint(),
            "finished": self._finished,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "weighting": self.weighting.state_dict(),
            "best_state": self._best_state,
            "bad_epochs": self._bad_epochs,
            "start_epoch": self._start_epoch,
            "history": asdict(self.history),
            "rng": {"torch": torch.get_rng_state(), "numpy": _numpy_state(),
                    "python": _python_state(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else []},
        }
        with atomic_path(path) as tmp:
            torch.save(state, tmp)

    def _load_checkpoint(self, path: Path) -> None:
        state = torch.load(path, weights_only=True)
        if state.get("fingerprint") != self._fingerprint():
            raise DataError(f"Checkpoint {path} was written for another model or training "
                            f"config; delete {path.parent} to train {self.name} from scratch.")
        self._finished = state["finished"]
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.weighting.load_state_dict(state["weighting"])
        self._best_state = state["best_state"]
        self._bad_epochs = state["bad_epochs"]
        self._start_epoch = state["start_epoch"]
        self.history = History(**state["history"])
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        if rng["cuda"]:
            torch.cuda.set_rng_state_all(rng["cuda"])
        np_state = rng["numpy"]
        np.random.set_state(("MT19937", np.asarray(np_state["key"], dtype=np.uint32),  # noqa: NPY002
                             np_state["pos"], np_state["has_gauss"], np_state["cached_gaussian"]))
        py_state = rng["python"]
        random.setstate((py_state["version"], tuple(py_state["internal"]),
                         py_state["gauss_next"]))
        self._seed_rank(self._start_epoch)  # rank 0's states were saved; others re-derive

    def save_model(self, path: str | Path, extra: dict[str, Any] | None = None) -> None:
        """Save the model weights (plus ``extra`` tensors/values, e.g. preprocessing)."""
        with atomic_path(path) as tmp:
            torch.save({"model": self.model.state_dict(), "extra": extra or {}}, tmp)


def _numpy_state() -> dict[str, Any]:
    """NumPy's legacy global RNG state, including a cached Gaussian draw."""
    _, key, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002
    return {"key": torch.from_numpy(np.asarray(key, dtype=np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}


def _python_state() -> dict[str, Any]:
    """Python's ``random`` state: Mersenne Twister words (with position) and gauss cache."""
    version, internal, gauss_next = random.getstate()
    return {"version": version, "internal": list(internal), "gauss_next": gauss_next}


def _batch_size(batch: Any) -> int:
    if isinstance(batch, Tensor):
        return batch.shape[0]
    if isinstance(batch, dict):
        return _batch_size(next(iter(batch.values())))
    return _batch_size(batch[0])
