"""Checkpoint scopes: where the trainers of one study run keep their checkpoints.

:func:`hepchain.core.study.run_study` opens one scope per run, so every study resumes after a
kill without code of its own::

    root = run_checkpoint_dir(workdir, study, preset, config, seed)
    with checkpoint_scope(root):
        study.run(config, workdir, seed)   # Trainer(...) -> root/trainer-000, trainer-001, ...
    discard_checkpoints(root)              # the run completed: nothing left to resume

Inside a scope, every :class:`~hepchain.core.trainer.Trainer` built without an explicit
``checkpoint_dir`` checkpoints into ``root/<name>`` (and, when the scope has a
``tensorboard`` directory, logs to ``tensorboard/<name>``); ``name`` is the caller's or
``trainer-NNN`` by construction order, so the same code with the same config finds the same
checkpoints again. Datasets read through the cache (:func:`hepchain.core.cache.cached_dataset`)
before a trainer is built are recorded in the scope, and the trainer's directory carries a
digest of their shards' sha256 (``root/<name>@<digest>``): a run resumed after its data
changed (a new detector version, say) trains afresh instead of resuming models trained on
other events. The scope is a :class:`contextvars.ContextVar`: it is seen by code called
from the run, not by threads started inside it nor by worker processes (a study that trains in
workers passes ``root`` explicitly in its tasks).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shutil
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hepchain.core.errors import UsageError

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass
class CheckpointScope:
    """Hands out one checkpoint directory per trainer below ``root`` (and one TensorBoard
    directory below ``tensorboard`` when set)."""

    root: Path
    tensorboard: Path | None = None
    tensorboard_announced: bool = False  # the first logging trainer says where to look
    _count: int = 0
    _claimed: set[str] = field(default_factory=set)
    _datasets: set[str] = field(default_factory=set)

    def record_dataset(self, shard_digests: list[str]) -> None:
        """Note a dataset the run reads (its shards' sha256) for the checkpoint directories
        claimed from now on."""
        self._datasets.add(hashlib.sha256("".join(shard_digests).encode()).hexdigest())

    def claim(self, name: str | None = None) -> tuple[str, Path]:
        """``(name, directory)`` for the next trainer; unnamed ones are numbered in order."""
        if name is None:
            name = f"trainer-{self._count:03d}"
            self._count += 1
        elif not _NAME.fullmatch(name):
            raise UsageError(f"Trainer name {name!r} must be letters, digits, '.', '_' or '-'.")
        if name in self._claimed:
            raise UsageError(f"Two trainers of one run are both named {name!r}; give each its "
                             "own name.")
        self._claimed.add(name)
        if not self._datasets:
            return name, self.root / name
        data = hashlib.sha256("".join(sorted(self._datasets)).encode()).hexdigest()[:12]
        return name, self.root / f"{name}@{data}"


_SCOPE: ContextVar[CheckpointScope | None] = ContextVar("hepchain_checkpoint_scope",
                                                        default=None)


def current_scope() -> CheckpointScope | None:
    """The innermost open scope, or None outside :func:`checkpoint_scope`."""
    return _SCOPE.get()


@contextlib.contextmanager
def checkpoint_scope(root: str | Path, tensorboard: str | Path | None = None
                     ) -> Iterator[CheckpointScope]:
    """Give every trainer built inside the block a checkpoint directory below ``root`` and,
    with ``tensorboard``, an event-file directory below it (same trainer names)."""
    scope = CheckpointScope(Path(root), Path(tensorboard) if tensorboard else None)
    token = _SCOPE.set(scope)
    try:
        yield scope
    finally:
        _SCOPE.reset(token)


def kept_piece(name: str) -> Path | None:
    """Where the current run keeps one finished piece of work that is not a training (one
    controller's evaluation, say) until the run completes: ``<root>/pieces/<name>.json``, so
    the same run started again after a kill finds it; None outside a scope. ``name`` should
    carry a digest of everything the piece depends on beyond the run's config and seed (which
    the scope's root already encodes)::

        path = kept_piece(f"control-{digest}")
        if path is not None and path.is_file():
            ...  # reuse it instead of computing it again
    """
    if not _NAME.fullmatch(name):
        raise UsageError(f"Piece name {name!r} must be letters, digits, '.', '_' or '-'.")
    scope = current_scope()
    return None if scope is None else scope.root / "pieces" / f"{name}.json"


def run_checkpoint_dir(workdir: Path, study: str, preset: str, config: dict[str, Any],
                       seed: int) -> Path:
    """``<workdir>/checkpoints/<key>``, ``key`` a hash of (study, preset, config, seed), so a
    run with any other setting never picks up these checkpoints."""
    text = json.dumps([study, preset, config, seed], sort_keys=True, default=str)
    return workdir / "checkpoints" / hashlib.sha256(text.encode()).hexdigest()[:16]


def discard_checkpoints(root: Path) -> None:
    """Delete a completed run's checkpoints (and ``checkpoints/`` once it is empty)."""
    shutil.rmtree(root, ignore_errors=True)
    with contextlib.suppress(OSError):  # other runs' checkpoints are still there
        root.parent.rmdir()
