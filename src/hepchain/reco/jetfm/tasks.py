"""Fine-tuning tasks: each a pair of jet classes (background QCD first) with the labelled jets
of the jet-tagging study's samples (:func:`hepchain.reco.jettag.data.load_jets`, the dataset
cache), split and turned into particle tensors the same way for every task."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hepchain.core.errors import UsageError
from hepchain.core.result import Result
from hepchain.reco.jettag.data import ParticleTensors, load_jets, particle_features, split


@dataclass(frozen=True)
class Task:
    """A binary tagging task: its title, the collider process and the classes generated."""

    title: str
    process: str
    classes: tuple[str, str]


TASKS = {
    "top_qcd": Task("top vs QCD", "top_qcd", ("QCD", "Tbqq")),
    "hbb_qcd": Task("H→bb̄ vs QCD", "jetclass", ("QCD", "Hbb")),
}


def check_tasks(names: list[str]) -> list[str]:
    """``names`` when it names at least one task and only tasks of :data:`TASKS`; otherwise
    one UsageError sentence (before any jets are generated)."""
    unknown = [name for name in names if name not in TASKS]
    if unknown or not names:
        raise UsageError(f"tasks must name at least one of {', '.join(TASKS)}; unknown: "
                         f"{', '.join(map(repr, unknown)) or 'none (the list is empty)'}.")
    return list(names)


def task_data(data: dict[str, Any], name: str) -> dict[str, Any]:
    """The data block of task ``name`` from the shared block ``data`` (seed, selection,
    workers, n_events): its process and classes; a jetclass task splits ``n_events`` evenly
    over its classes, so every task generates the same number of events."""
    task = TASKS[check_tasks([name])[0]]
    n_events = int(data["n_events"])
    if task.process == "jetclass":
        n_events //= len(task.classes)
    return {**data, "process": task.process, "classes": list(task.classes),
            "n_events": n_events}


@dataclass(frozen=True)
class TaskJets:
    """The labelled jets of one task: particle tensors, labels (0 = QCD) and the
    training / validation / test indices."""

    name: str
    title: str
    tensors: ParticleTensors
    labels: np.ndarray
    classes: tuple[str, ...]
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def load_task(config: dict[str, Any], name: str, result: Result, seed: int) -> TaskJets:
    """Task ``name``'s jets (``config`` data, split, features, max_particles); the run
    ``seed`` chooses the split."""
    jets = load_jets(task_data(config["data"], name), result)
    train, val, test = split(jets.labels.size, config["split"], seed)
    t = particle_features(jets.records, config["features"], int(config["max_particles"]))
    return TaskJets(name, TASKS[name].title, t, jets.labels, jets.classes, train, val, test)
