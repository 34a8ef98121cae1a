"""Provenance capture: package versions, git revision, machine, wall time and peak memory."""

from __future__ import annotations

import contextlib
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from hepchain.core.result import Provenance

TRACKED_PACKAGES = (
    "hepchain", "torch", "numpy", "scipy", "scikit-learn", "awkward", "pyarrow", "h5py",
    "pythia8mc", "fastjet", "numba", "zuko", "botorch", "cheetah-accelerator", "gymnasium",
    "stable-baselines3", "xgboost-cpu", "onnxruntime",
)


def package_versions(packages: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str]:
    """Installed versions of the packages that shape our numbers (missing ones omitted)."""
    out = {"python": sys.version.split()[0]}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def git_revision(path: Path | None = None) -> str:
    """The git commit of the source tree (with ``-dirty`` if modified), or ``unknown``."""
    cwd = path or Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=12"],
                             cwd=cwd, capture_output=True, text=True, timeout=5, check=True)
        return rev.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine_info() -> dict[str, str | int | float]:
    """The computer running this process: ``cpu`` model name, usable ``cores`` and total
    ``memory_gb`` [GiB] (Linux /proc and sysconf; other systems give what ``platform`` knows)."""
    cpu = platform.processor() or platform.machine() or "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:  # Linux only
        cpu = next((line.split(":", 1)[1].strip() for line in f
                    if line.startswith("model name")), cpu)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    info: dict[str, str | int | float] = {"cpu": cpu, "cores": int(cores or 1)}
    with contextlib.suppress(ValueError, OSError, AttributeError):  # sysconf: POSIX only
        info["memory_gb"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
                                  / 2**30, 1)
    return info


def command_line(argv: list[str] | None = None) -> str:
    """The command that started this process, quoted for a shell, with the CLI entry point
    (``.../hepchain`` or ``.../hepchain/cli.py`` run with ``python -m``) written ``hepchain``."""
    args = list(sys.argv if argv is None else argv)
    entry = Path(args[0]) if args else Path()
    if entry.name == "hepchain" or (entry.name == "cli.py" and entry.parent.name == "hepchain"):
        args[0] = "hepchain"
    return shlex.join(args)


def peak_memory_mb() -> float:
    """Peak resident memory of this process and its finished children, in MB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024.0  # Linux reports kB


class ProvenanceRecorder:
    """Context manager filling a :class:`Provenance` with timing, memory and versions::

        with ProvenanceRecorder(config, seeds=[0]) as prov:
            ...
        result.provenance = prov.provenance
    """

    def __init__(self, config: dict, seeds: list[int], command: str = "") -> None:
        self.provenance = Provenance(config=config, seeds=list(seeds),
                                     command=command or command_line(),
                                     machine=machine_info())

    def __enter__(self) -> ProvenanceRecorder:
        # the code that runs is the code at the start: a commit made during a long run must
        # not be recorded as its revision
        self.provenance.git_revision = git_revision()
        self._t0 = time.perf_counter()
        self.provenance.started = datetime.now(UTC).isoformat(timespec="seconds")
        return self

    def __exit__(self, *exc: object) -> None:
        self.provenance.wall_time_s = time.perf_counter() - self._t0
        self.provenance.peak_memory_mb = peak_memory_mb()
        self.provenance.versions = package_versions()
