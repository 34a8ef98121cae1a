"""Compute threads of one process, capped by the cores it shares with its sibling processes.

A study asks for a number of torch (and BLAS) threads in its settings. When ``bench`` runs
J seeds side by side on C cores it gives every seed's process C // J of them
(:func:`cores_per_process`, passed to the spawned workers in :data:`ENV`), and
:func:`thread_count` never returns more: J processes each running a pool sized for the
whole machine oversubscribe it, and OpenMP pools that wait by spinning then lose most of
their time (measured: the fastcalo paper bench with 3 seeds × 2 threads on 2 cores trained
its CaloFlow at 12 batches/min per seed, one seed alone with 2 threads at 255: 7× less work
done in total).

>>> with cores_per_process(1):
...     thread_count(4)
1
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

ENV = "HEPCHAIN_CORES"


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS reports it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def thread_count(requested: int | None) -> int:
    """``requested`` threads (None or 0: every available core), at most the cores granted
    to this process by :func:`cores_per_process` (else the cores it may run on: more
    threads than cores never help), at least 1."""
    wanted = int(requested) if requested else available_cores()
    granted = int(os.environ.get(ENV) or 0)
    return max(1, min(wanted, granted if granted > 0 else available_cores()))


def set_torch_threads(requested: int | None) -> int:
    """Set torch's intra-op threads to :func:`thread_count` (``requested``); return it."""
    import torch

    n = thread_count(requested)
    torch.set_num_threads(n)
    return n


@contextmanager
def cores_per_process(n: int) -> Iterator[None]:
    """Within the block, processes started from this one may use ``n`` cores each."""
    old = os.environ.get(ENV)
    os.environ[ENV] = str(max(1, n))
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = old
