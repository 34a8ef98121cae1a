"""glibc allocator settings for training loops that allocate and free large tensors.

With glibc's defaults every block above the (adaptive, at most 32 MB) mmap threshold is a
fresh ``mmap`` that the kernel zero-fills page by page and ``munmap``s on free, so a training
step that builds and frees tensors of hundreds of MB (ParticleNet's kNN features, ParT's
pair features) spends most of its time in page faults — system CPU time. Measured here
(``jettag`` paper-size networks, batch 256, 64 particles, 8 training steps on one thread,
``docs/jettag_step_time.py``): ParticleNet 20.3 s wall (6.4 s user + 13.8 s system) with the
defaults, 6.0 s (5.8 + 0.2) with :func:`keep_freed_memory`; ParT 14.9 s → 11.2 s. The arithmetic is unchanged; the price
is that up to :data:`TRIM_THRESHOLD` bytes of freed memory stay with the process.

The ``hepchain`` command and the worker processes of :mod:`hepchain.core.executors` call it
at start; a Python API user may call it once too. A child program that is not hepchain (the
reference frameworks timed beside ours, e.g. weaver-core) gets the same settings through
:data:`CHILD_ENV`, which glibc reads at its start, so a speed comparison is not an allocator
comparison.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # glibc's mallopt parameters (malloc.h)
TRIM_THRESHOLD = 2**31 - 1  # bytes of freed memory kept at the top of the heap
#: the same settings as environment variables for a child process (glibc's tunables)
CHILD_ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(TRIM_THRESHOLD)}


def keep_freed_memory() -> bool:
    """Serve every allocation from the heap (``M_MMAP_MAX`` = 0) and keep up to
    :data:`TRIM_THRESHOLD` bytes of freed memory for reuse instead of returning them to the
    kernel. Returns False (and changes nothing) where the C library has no ``mallopt``
    (not glibc, e.g. macOS or musl)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
