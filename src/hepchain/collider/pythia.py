"""Pythia 8 set-up and event extraction into flat NumPy arrays.

Pythia's own messages go to the C-level stdout; :func:`make_pythia` captures them while
reading settings so that a refused setting becomes one :class:`UsageError` sentence instead
of a printed warning that is ignored.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import awkward as ak
import numpy as np

from hepchain.core.errors import UsageError


@contextmanager
def _captured_stdout() -> Iterator[list[str]]:
    """Redirect file descriptor 1 (C++ output) to a temporary file; yields the captured lines."""
    lines: list[str] = []
    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 1)
        try:
            yield lines
        finally:
            os.dup2(saved, 1)
            os.close(saved)
            tmp.seek(0)
            lines.extend(tmp.read().decode(errors="replace").splitlines())


#: user hooks of the Pythia instances made here, kept alive for the life of the process
_HOOKS: list = []


def make_pythia(settings: list[str], seed: int, hooks=None):
    """An initialised ``pythia8mc.Pythia`` with ``settings``, ``Random:seed = seed`` and
    optional ``UserHooks`` (referenced from :data:`_HOOKS`: Pythia holds only a pointer)."""
    import pythia8mc

    with _captured_stdout():
        pythia = pythia8mc.Pythia("", False)
        if hooks is not None:
            pythia.setUserHooksPtr(hooks)
            _HOOKS.append(hooks)
        bad = [s for s in [*settings, f"Random:seed = {seed}"] if not pythia.readString(s)]
        ok = not bad and pythia.init()
    if bad:
        raise UsageError(f"Pythia refused the setting {bad[0]!r}; check the option value.")
    if not ok:
        raise UsageError(f"Pythia could not initialise these settings ({_init_error(settings)}); "
                         "check the process options.")
    return pythia


def _init_error(settings: list[str]) -> str:
    """Pythia's first error message for ``settings`` (re-initialised with printing on)."""
    import pythia8mc

    with _captured_stdout() as log:
        pythia = pythia8mc.Pythia("", False)
        for s in settings:
            if not s.startswith("Print:quiet"):
                pythia.readString(s)
        pythia.init()
    errors = [ln.strip() for ln in log if "PYTHIA Error" in ln or "PYTHIA Abort" in ln]
    return errors[0].removeprefix("PYTHIA ") if errors else "no message"


@dataclass
class Particles:
    """The full event records of a batch of events, flattened; ``offsets`` delimit events.

    Momenta and masses in GeV, production vertices in mm (``t`` in mm/c), ``tau`` proper
    lifetime in mm/c. Indices (``mother1`` ...) are local to each event's record.
    """

    offsets: np.ndarray
    pid: np.ndarray
    status: np.ndarray
    mother1: np.ndarray
    mother2: np.ndarray
    daughter1: np.ndarray
    daughter2: np.ndarray
    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    e: np.ndarray
    m: np.ndarray
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    t: np.ndarray

    @property
    def n_events(self) -> int:
        return len(self.offsets) - 1

    @property
    def event(self) -> np.ndarray:
        """Event index of each particle."""
        return np.repeat(np.arange(self.n_events), np.diff(self.offsets))


def _flat(arr: ak.Array, dtype: type) -> np.ndarray:
    return np.ascontiguousarray(ak.to_numpy(ak.fill_none(ak.flatten(arr), 0)), dtype=dtype)


def from_batch(prt: ak.Array) -> Particles:
    """Convert ``pythia.nextBatch(n).prt`` into :class:`Particles`."""
    counts = ak.to_numpy(ak.num(prt)).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    vprod = prt.vProd
    return Particles(
        offsets=offsets, pid=_flat(prt.id, np.int32), status=_flat(prt.status, np.int32),
        mother1=_flat(prt.mother1, np.int32), mother2=_flat(prt.mother2, np.int32),
        daughter1=_flat(prt.daughter1, np.int32), daughter2=_flat(prt.daughter2, np.int32),
        px=_flat(prt.p.px, np.float64), py=_flat(prt.p.py, np.float64),
        pz=_flat(prt.p.pz, np.float64), e=_flat(prt.p.e, np.float64), m=_flat(prt.m, np.float64),
        x=_flat(vprod.px, np.float64), y=_flat(vprod.py, np.float64),
        z=_flat(vprod.pz, np.float64), t=_flat(vprod.e, np.float64))


def generate(pythia, n_events: int, batch: int = 50,
             keep: Callable[[Particles], np.ndarray] | None = None) -> Particles:
    """Generate ``n_events`` events (failed ``next()`` calls are retried by Pythia's batch).

    Each batch is converted to :class:`Particles` as it arrives, so only one batch's full
    Pythia record is held at a time; ``keep`` (a mask over a batch's particles) drops the
    others there, every event staying (pile-up needs only its final-state particles)."""
    parts = []
    left = n_events
    while left > 0:
        p = from_batch(pythia.nextBatch(min(batch, left)).prt)
        parts.append(p if keep is None else select_particles(p, keep(p)))
        left -= p.n_events
    return concat(parts)


def select_particles(p: Particles, mask: np.ndarray) -> Particles:
    """The particles of ``p`` flagged in ``mask``, in the same events (an event may end up
    empty); mother and daughter indices are not renumbered."""
    counts = np.bincount(p.event[mask], minlength=p.n_events)
    fields = {f: getattr(p, f)[mask] for f in Particles.__dataclass_fields__ if f != "offsets"}
    return Particles(offsets=np.concatenate([[0], np.cumsum(counts)]), **fields)


def concat(chunks: list[Particles]) -> Particles:
    """Concatenate several :class:`Particles` batches into one."""
    if len(chunks) == 1:
        return chunks[0]
    sizes = [c.offsets[-1] for c in chunks]
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    offsets = np.concatenate([[0]] + [c.offsets[1:] + s for c, s in zip(chunks, starts, strict=True)])
    fields = {f: np.concatenate([getattr(c, f) for c in chunks])
              for f in Particles.__dataclass_fields__ if f != "offsets"}
    return Particles(offsets=offsets, **fields)
