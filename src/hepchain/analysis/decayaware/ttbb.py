"""The speed-up of filtering ``ttbb`` before hadronisation, measured on the producer itself.

Both variants run the collider producer's shard function (:func:`hepchain.collider.events.
make_events`: generation, filter, detector response and reconstruction of the accepted
events) for the same number of accepted events in this process, after a warm-up shard (imports,
numba compilation, Pythia data files) that neither variant is charged for; the ratio of their
CPU seconds is the speed-up (same machine, same run, as the project's speed rule asks).

The events each variant generated are counted (without the prefilter: the events Pythia
returned; with it: the events the parton-level test saw), which splits the CPU per accepted
event into CPU per generated event (precise) over the acceptance per generated event
(binomial error √(ε(1 − ε)/n_generated)). With n accepted events the acceptance, and so the
CPU per accepted event, fluctuates by ≈ 1/√n relative (10 % for 100 events)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from unittest import mock

import awkward as ak

from hepchain.collider import events, prefilter
from hepchain.collider.produce import shard_settings
from hepchain.core.dataset import ShardTask
from hepchain.core.errors import UsageError


@dataclass(frozen=True)
class Variant:
    """One variant's accepted and generated event counts, CPU seconds and mean number of
    ghost-b jets per accepted event."""

    accepted: int
    generated: int
    cpu_s: float
    b_jets: float

    @property
    def acceptance(self) -> tuple[float, float]:
        """Accepted per generated event and its binomial error."""
        eps = self.accepted / self.generated
        return eps, math.sqrt(eps * (1.0 - eps) / self.generated)

    @property
    def ms_per_generated(self) -> float:
        return 1e3 * self.cpu_s / self.generated

    @property
    def ms_per_accepted(self) -> tuple[float, float]:
        """CPU ms per accepted event, with the relative error of the acceptance."""
        eps, err = self.acceptance
        value = 1e3 * self.cpu_s / self.accepted
        return value, value * err / eps


@dataclass(frozen=True)
class PrefilterTiming:
    """Both variants of one seed: ``full`` without, ``prefilter`` with the prefilter."""

    full: Variant
    prefilter: Variant

    @property
    def speedup(self) -> tuple[float, float]:
        """CPU per accepted event without / with the prefilter, with its statistical error."""
        (a, da), (b, db) = self.full.ms_per_accepted, self.prefilter.ms_per_accepted
        return a / b, a / b * math.hypot(da / a, db / b)


def _counting(fn: Callable[..., Any], seen: list[int], size: Callable[[Any, Any], int]):
    """``fn`` that appends ``size(args, result)`` to ``seen`` on every call."""
    def wrapped(*args: Any) -> Any:
        out = fn(*args)
        seen.append(size(args, out))
        return out
    return wrapped


def measure_prefilter(n_events: int, seed: int) -> PrefilterTiming:
    """Generate ``n_events`` accepted ttbb events both ways and time them (CPU s)."""
    if n_events < 1:
        raise UsageError(f"The ttbb speed measurement needs at least 1 event, got {n_events}.")
    events.make_events(ShardTask(0, 1, seed + 1, shard_settings("ttbb", {})))  # warm-up
    out = {}
    for flag in (0, 1):
        seen: list[int] = []
        # without the prefilter every event Pythia returns was generated; with it, every
        # event the parton-level test saw
        target, name, size = ((events, "generate", lambda a, p: p.n_events) if flag == 0
                              else (prefilter, "passes", lambda a, p: 1))
        task = ShardTask(0, n_events, seed, shard_settings("ttbb", {"prefilter": str(flag)}))
        with mock.patch.object(target, name, _counting(getattr(target, name), seen, size)):
            start = time.process_time()
            accepted = events.make_events(task)
            cpu = time.process_time() - start
        out[flag] = Variant(n_events, sum(seen), cpu,
                            float(ak.mean(ak.sum(accepted.jets.flavour == 5, axis=1))))
    return PrefilterTiming(out[0], out[1])
