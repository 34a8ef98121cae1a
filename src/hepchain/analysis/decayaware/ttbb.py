"""The speed-up of filtering ``ttbb`` before hadronisation, measured on the producer itself.

Both variants run the collider producer's shard function (:func:`hepchain.collider.events.
make_events`: generation, filter, detector response and reconstruction of the accepted
events) for the same number of accepted events in this process, after a warm-up shard (imports,
numba compilation, Pythia data files) that neither variant is charged for; the ratio of their
CPU seconds is the speed-up (same machine, same run, as the project's speed rule asks).

Statistical error: the number of events generated to reach ``n_events`` accepted ones is
negative-binomial; for an acceptance ε ≈ 4 % per generated event the CPU seconds per accepted
event fluctuate by √((1 − ε)/n) ≈ 1/√n relative (10 % for 100 events), so the speed-up has
≈ √(2/n) relative error."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import awkward as ak

from hepchain.collider.events import make_events
from hepchain.collider.produce import shard_settings
from hepchain.core.dataset import ShardTask
from hepchain.core.errors import UsageError


@dataclass(frozen=True)
class PrefilterTiming:
    """CPU seconds for ``n_events`` accepted ttbb events without / with the prefilter, and
    the mean number of b-tagged-flavour (ghost b) jets per accepted event of each."""

    n_events: int
    cpu_full_s: float
    cpu_prefilter_s: float
    b_jets_full: float
    b_jets_prefilter: float

    @property
    def speedup(self) -> float:
        return self.cpu_full_s / self.cpu_prefilter_s

    @property
    def rel_error(self) -> float:
        """Relative statistical error of either CPU time (acceptance fluctuation, 1/√n)."""
        return 1.0 / math.sqrt(self.n_events)

    @property
    def speedup_error(self) -> float:
        """Statistical error of :attr:`speedup` (both times' errors, independent)."""
        return self.speedup * math.sqrt(2.0) * self.rel_error


def measure_prefilter(n_events: int, seed: int) -> PrefilterTiming:
    """Generate ``n_events`` accepted ttbb events both ways and time them (CPU s)."""
    if n_events < 1:
        raise UsageError(f"The ttbb speed measurement needs at least 1 event, got {n_events}.")
    make_events(ShardTask(0, 1, seed + 1, shard_settings("ttbb", {})))  # warm-up, not timed
    cpu, b_jets = {}, {}
    for flag in (0, 1):
        task = ShardTask(0, n_events, seed, shard_settings("ttbb", {"prefilter": str(flag)}))
        start = time.process_time()
        events = make_events(task)
        cpu[flag] = time.process_time() - start
        b_jets[flag] = float(ak.mean(ak.sum(events.jets.flavour == 5, axis=1)))
    return PrefilterTiming(n_events, cpu[0], cpu[1], b_jets[0], b_jets[1])
