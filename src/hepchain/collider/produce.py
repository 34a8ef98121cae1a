"""The collider data provider behind ``hepchain generate`` (see :mod:`hepchain.producers`).

::

    from hepchain.collider.produce import produce
    manifest = produce("ttbar", "data/ttbar", n_events=1000, seed=1, executor=None,
                       options={"decay": "semileptonic", "mu": "20"})
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hepchain.collider import processes
from hepchain.core.dataset import Manifest, build_dataset
from hepchain.core.errors import UsageError
from hepchain.core.executors import Executor

GENERATOR = "pythia8mc+hepchain.collider"
DEFAULT_SHARD_SIZE = 500
#: version of the event record (detector model: tracking, lepton ID, vertexing; truth labels:
#: 4 added the jets' ``truth_hs_dr``, 5 the pile-up card's lepton isolation at mu > 0); part
#: of the dataset settings so that a cached dataset made by another version is regenerated
DETECTOR_VERSION = 5

#: producible names and one-line descriptions
PROCESSES: dict[str, str] = {name: p.description for name, p in processes.CATALOGUE.items()}


def shard_settings(name: str, options: dict[str, str] | None = None) -> dict[str, Any]:
    """The dataset settings of process ``name`` (validated options and Pythia strings)."""
    _, values = processes.resolve(name, options)
    pythia = processes.pythia_settings(name, values)
    return {"process": name, "options": values, "detector": DETECTOR_VERSION,
            "pythia": pythia, "pythia_conjugate": processes.conjugate_settings(pythia),
            "pythia_background": processes.background_settings(name, values),
            "pythia_base": list(processes.BASE_SETTINGS)}


def produce(name: str, out: str | Path, *, n_events: int, seed: int,
            executor: Executor | None, shard_size: int | None = None,
            options: dict[str, str] | None = None, progress: bool = True) -> Manifest:
    """Generate ``n_events`` events of process ``name`` into the dataset directory ``out``."""
    if n_events < 1:
        raise UsageError(f"--events must be at least 1, got {n_events}.")
    from hepchain.collider.events import make_events

    settings = shard_settings(name, options)
    return build_dataset(out, generator=GENERATOR, settings=settings, n_events=n_events,
                         shard_size=shard_size or DEFAULT_SHARD_SIZE, seed=seed,
                         make_shard=make_events, fmt="parquet", name=name,
                         executor=executor, progress=progress)
