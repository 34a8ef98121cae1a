"""Studies: registration, presets (config as data) and the generic run / bench drivers.

A study is one system of the seed documents. It subclasses :class:`Study`, keeps its presets
in ``hepchain/configs/<name>.yaml`` (``quick`` complete, ``paper`` only what differs; see
:mod:`hepchain.core.config`) and is listed in
:data:`hepchain.studies.REGISTRY`::

    class IPKnobStudy(Study):
        name = "ipknob"
        description = "Set-value models and BO scans for SuperKEKB IP knobs"
        seed_doc = "004"

        def run(self, config: dict, workdir: Path, seed: int) -> Result:
            ...

The drivers here add provenance, write ``results.json`` and the figures, and aggregate seeds.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from hepchain.core.checkpoints import checkpoint_scope, discard_checkpoints, run_checkpoint_dir
from hepchain.core.config import load_presets, preset_config
from hepchain.core.errors import HepchainError, UsageError
from hepchain.core.provenance import ProvenanceRecorder
from hepchain.core.result import Metric, Result
from hepchain.core.seeding import seed_everything


class Study(ABC):
    """Base class of every study; subclasses set the class attributes and ``run``."""

    name: ClassVar[str]
    description: ClassVar[str]
    seed_doc: ClassVar[str]

    def presets(self) -> dict[str, dict[str, Any]]:
        """All presets of this study, read from ``configs/<name>.yaml`` (``paper`` and any other
        preset overlaid on ``quick``; see :mod:`hepchain.core.config`)."""
        return load_presets(self.name)

    def config(self, preset: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """The config of ``preset`` with ``overrides`` applied: dotted keys change one setting
        (``{"train.epochs": 3}``), a mapping replaces a block; unknown keys and wrong types are
        refused with a UsageError."""
        return preset_config(self.presets(), preset, overrides, study=self.name)

    @abstractmethod
    def run(self, config: dict[str, Any], workdir: Path, seed: int) -> Result:
        """Run the study with ``config`` in ``workdir`` (figures go there) and return a Result."""

    def add_commands(self, app: Any) -> None:  # noqa: B027 - optional hook
        """Hook for study-specific CLI verbs (``app`` is the study's typer sub-app)."""


def _registry() -> dict[str, str]:
    from hepchain.studies import REGISTRY

    return REGISTRY


def get_study(name: str) -> Study:
    """Instantiate the registered study ``name`` (UsageError if unknown)."""
    registry = _registry()
    if name not in registry:
        known = ", ".join(sorted(registry)) or "none registered yet"
        raise UsageError(f"Unknown study {name!r}; known studies: {known}.")
    module, _, attr = registry[name].partition(":")
    return getattr(importlib.import_module(module), attr)()


def list_studies() -> dict[str, Study]:
    """All registered studies, by name (this imports every study and its dependencies;
    :func:`hepchain.studies.study_infos` lists them without)."""
    return {name: get_study(name) for name in _registry()}


def run_study(name: str, preset: str = "quick", workdir: str | Path | None = None,
              seed: int = 0, overrides: dict[str, Any] | None = None) -> Result:
    """Run one study preset, record provenance and write ``results.json`` in ``workdir``.

    ``workdir`` defaults to ``runs/<study>/<preset>``. Every global RNG is seeded with
    ``seed`` first. A run that fails leaves no ``results.json`` behind; bad settings are
    refused before the workdir is made, and a user error raised by the study before it wrote
    anything removes the directories this call made. Its trainers checkpoint below
    ``<workdir>/checkpoints/`` (:mod:`hepchain.core.checkpoints`), so the same command after
    a kill resumes them; a completed run deletes its checkpoints.
    """
    study = get_study(name)
    cfg = study.config(preset, overrides)
    wd = Path(workdir) if workdir is not None else Path("runs") / name / preset
    made = [d for d in (wd, *wd.parents) if not d.exists()]  # deepest first
    wd.mkdir(parents=True, exist_ok=True)
    stale = wd / "results.json"
    if stale.exists():
        stale.unlink()
    seed_everything(seed)
    ckpt = run_checkpoint_dir(wd, name, preset, cfg, seed)
    try:
        with (ProvenanceRecorder({"preset": preset, "seed": seed, **cfg}, seeds=[seed]) as rec,
              checkpoint_scope(ckpt)):
            result = study.run(cfg, wd, seed)
    except HepchainError:
        for directory in made:  # a user error before anything was written leaves no workdir
            with contextlib.suppress(OSError):
                directory.rmdir()
        raise
    result.study, result.preset, result.workdir = name, preset, str(wd)
    prov = rec.provenance
    prov.datasets = result.provenance.datasets or prov.datasets
    if result.provenance.seeds:
        prov.seeds = result.provenance.seeds
    result.provenance = prov
    result.save(wd)
    discard_checkpoints(ckpt)
    return result


def aggregate(results: list[Result]) -> Result:
    """Combine runs of one study with different seeds into mean ± std per (metric, method)."""
    first = results[0]
    merged = Result(study=first.study, preset=first.preset, workdir=first.workdir)
    groups: dict[tuple[str, str], list[Metric]] = {}
    for res in results:
        for m in res.metrics:
            groups.setdefault((m.name, m.method), []).append(m)
    for (name, method), rows in groups.items():
        vals = np.array([r.value for r in rows], dtype=float)
        ref = rows[0]
        merged.add(name, method, float(np.nanmean(vals)),
                   std=float(np.nanstd(vals, ddof=1)) if len(vals) > 1 else ref.std,
                   n=len(vals) if len(vals) > 1 else ref.n, unit=ref.unit,
                   reference=ref.reference, higher_is_better=ref.higher_is_better)
    merged.provenance = copy.deepcopy(first.provenance)  # the per-seed runs stay as they were
    merged.provenance.seeds = sorted({s for r in results for s in r.provenance.seeds})
    merged.provenance.wall_time_s = sum(r.provenance.wall_time_s for r in results)
    merged.notes = list(dict.fromkeys(n for r in results for n in r.notes))
    return merged


def _run_seed(args: tuple[str, str, str, Path, int, dict[str, Any] | None]
              ) -> tuple[int, Result]:
    """One bench seed -> (seed, result); in a worker process the study's registry entry is
    re-registered, so studies registered at run time (plugins, tests) run there too."""
    name, entry, preset, workdir, seed, overrides = args
    _registry().setdefault(name, entry)
    return seed, run_study(name, preset, workdir, seed=seed, overrides=overrides)


def bench_study(name: str, preset: str = "paper", workdir: str | Path | None = None,
                seeds: int = 3, overrides: dict[str, Any] | None = None, jobs: int = 1
                ) -> Result:
    """Run ``seeds`` independent seeds of a study and aggregate them (mean ± std).

    Each seed runs in ``<workdir>/seed<N>``, ``jobs`` seeds at a time in separate processes;
    the aggregate ``results.json`` and one box plot per metric are written in ``workdir``.
    """
    from hepchain.core import plotting
    from hepchain.core.executors import LocalExecutor

    if seeds < 1 or jobs < 1:
        raise UsageError(f"--seeds and --jobs must be at least 1, got {seeds} and {jobs}.")
    wd = Path(workdir) if workdir is not None else Path("runs") / name / f"{preset}-bench"
    get_study(name).config(preset, overrides)  # bad study/settings: fail before any process
    tasks = [(name, _registry()[name], preset, wd / f"seed{s}", s, overrides)
             for s in range(seeds)]
    with LocalExecutor(min(jobs, seeds)) as ex:
        runs = [r for _, r in sorted(ex.map(_run_seed, tasks), key=lambda sr: sr[0])]
    merged = aggregate(runs)
    merged.workdir = str(wd)
    for metric_name in merged.metric_names():
        per_method: dict[str, list[float]] = {}
        for r in runs:
            for m in r.metrics:
                if m.name == metric_name:
                    per_method.setdefault(m.method, []).append(m.value)
        fig = plotting.box_plot(per_method, ylabel=metric_name,
                                path=wd / f"box_{plotting.slug(metric_name)}.png")
        merged.figures.append(fig.name)
    for r in runs:
        merged.figures.extend(f"seed{r.provenance.seeds[0]}/{f}" for f in r.figures)
    merged.save(wd)
    (wd / "seeds.json").write_text(json.dumps([r.to_dict() for r in runs], default=str))
    return merged

