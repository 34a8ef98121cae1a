"""Provenance capture: package versions, git revision, wall time and peak memory."""

from __future__ import annotations

import resource
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
                                     command=command or " ".join(sys.argv))

    def __enter__(self) -> ProvenanceRecorder:
        self._t0 = time.perf_counter()
        self.provenance.started = datetime.now(UTC).isoformat(timespec="seconds")
        return self

    def __exit__(self, *exc: object) -> None:
        self.provenance.wall_time_s = time.perf_counter() - self._t0
        self.provenance.peak_memory_mb = peak_memory_mb()
        self.provenance.versions = package_versions()
        self.provenance.git_revision = git_revision()
