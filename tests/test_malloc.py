"""The allocator setting that keeps freed memory for reuse (core.malloc)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from hepchain.core import malloc

SCRIPT = """
import ctypes, ctypes.util, resource, sys
from hepchain.core.malloc import keep_freed_memory

libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]

def faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):  # what a training step does: a 64 MB block written, then freed
        block = libc.malloc(64 << 20)
        ctypes.memset(block, 1, 64 << 20)
        libc.free(block)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

default = faults()
ok = keep_freed_memory() if len(sys.argv) < 2 else "env"
print(default, faults(), ok)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_blocks_are_reused_without_page_faults() -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         check=True).stdout.split()
    default, kept, ok = int(out[0]), int(out[1]), out[2] == "True"
    assert ok
    # glibc's default maps and zero-fills each 64 MB block afresh (16,384 page faults each
    # with 4 kB pages: 327,700 here); kept, only the first block faults (16,372)
    assert kept < default / 5


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's tunables")
def test_a_child_process_gets_the_same_setting_from_the_environment() -> None:
    env = {**os.environ, **malloc.CHILD_ENV}
    out = subprocess.run([sys.executable, "-c", SCRIPT, "env"], capture_output=True, text=True,
                         check=True, env=env).stdout.split()
    first, second = int(out[0]), int(out[1])
    assert second < first / 5 and out[2] == "env"  # reused from the start: only one block faults
    assert first < 2 * 16_384


def test_no_mallopt_is_a_quiet_no_op(monkeypatch) -> None:
    monkeypatch.setattr(malloc.ctypes.util, "find_library", lambda name: "/nonexistent/libc.so")
    assert malloc.keep_freed_memory() is False
