"""TensorBoard event files for watching a training, as weaver-core and salt users expect.

Inside a study run every trainer logs to ``<workdir>/tensorboard/<trainer name>/`` (the names
of :mod:`hepchain.core.checkpoints`); ``tensorboard --logdir <workdir>/tensorboard`` shows
them all. The step axis is the number of optimiser steps taken:

- ``loss/<term>`` (each named loss and ``total``) and ``lr`` after every step,
- ``val/<metric>`` (every validation metric) and ``weight/<term>`` (loss weights) after every
  epoch, at the step that ended the epoch.

A resumed training reopens its directory with ``purge_step`` one past the last step of its
checkpoint, so TensorBoard hides what the interrupted run logged after that checkpoint and
every step appears once.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

_NOTE = "TensorBoard: tensorboard --logdir "


def tensorboard_note(logdir: str | Path) -> str:
    """The line a report shows for a run's event files."""
    return f"{_NOTE}{logdir}"


def is_tensorboard_note(note: str) -> bool:
    """Whether ``note`` is a :func:`tensorboard_note`."""
    return note.startswith(_NOTE)


class TrainingLog:
    """Scalars of one trainer in one event-file directory; ``steps_done`` optimiser steps were
    logged by an earlier run that this one resumes (0 for a fresh training)."""

    def __init__(self, logdir: str | Path, steps_done: int = 0) -> None:
        from torch.utils.tensorboard import SummaryWriter  # ~0.4 s import: only when used

        self.logdir = Path(logdir)
        self._writer = SummaryWriter(str(self.logdir), purge_step=steps_done + 1)

    def step(self, step: int, losses: dict[str, float], lr: float) -> None:
        """Losses and learning rate after optimiser step ``step`` (counted from 1)."""
        for name, value in losses.items():
            self._writer.add_scalar(f"loss/{name}", value, step)
        self._writer.add_scalar("lr", lr, step)

    def epoch(self, step: int, val: dict[str, float], weights: dict[str, float]) -> None:
        """Validation metrics and loss weights of the epoch that ended at ``step``."""
        for name, value in val.items():
            self._writer.add_scalar(f"val/{name}", value, step)
        for name, value in weights.items():
            self._writer.add_scalar(f"weight/{name}", value, step)

    def close(self) -> None:
        self._writer.close()

    def __enter__(self) -> TrainingLog:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
