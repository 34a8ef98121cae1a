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
import tempfile
import traceback
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from hepchain.core.checkpoints import checkpoint_scope, discard_checkpoints, run_checkpoint_dir
from hepchain.core.config import load_presets, preset_config
from hepchain.core.errors import DataError, HepchainError, UsageError
from hepchain.core.monitoring import is_tensorboard_note, tensorboard_note
from hepchain.core.provenance import ProvenanceRecorder, command_line
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
    a kill resumes them; a completed run deletes its checkpoints. They log TensorBoard event
    files below ``<workdir>/tensorboard/`` (a note of the result says how to view them).
    Under ``torchrun`` every rank runs the study and trains together (see
    :mod:`hepchain.core.distributed`); ranks > 0 write their figures to a scratch directory
    and only rank 0 writes ``results.json``.
    """
    from hepchain.core import distributed  # torch: imported only when a study runs

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
    scratch = None if distributed.is_main() else tempfile.TemporaryDirectory()
    try:
        with (ProvenanceRecorder({"preset": preset, "seed": seed, **cfg}, seeds=[seed]) as rec,
              checkpoint_scope(ckpt, tensorboard=wd / "tensorboard")):
            result = study.run(cfg, Path(scratch.name) if scratch else wd, seed)
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
    if (wd / "tensorboard").is_dir():
        result.notes.append(tensorboard_note(wd / "tensorboard"))
    if scratch is not None:  # a rank > 0 of torchrun: rank 0 writes the results
        scratch.cleanup()
        return result
    result.save(wd)
    discard_checkpoints(ckpt)
    return result


def aggregate(results: list[Result], failures: dict[int, str] | None = None) -> Result:
    """Combine runs of one study with different seeds into one Result.

    Per (metric, method): ``value`` and ``std`` (ddof=1) are the mean and spread over the seeds
    whose value is finite, ``n`` counts them and ``n_nonfinite`` counts the seeds that gave NaN
    or ±inf (if every seed did, ``value`` is their common non-finite value, else NaN). A metric
    of one seed only keeps its own ``std`` and ``n`` (e.g. a test-set statistical error).

    Limits are aggregated conservatively: if any seed's value is a one-sided limit, the
    aggregate is a limit of the same side, equal to the mean over seeds with every limit taken
    at its bound (each such seed's true value lies beyond its bound, so the true seed mean
    does too) and without a std; lower and upper limits mixed give NaN. ``failures`` (seed ->
    error sentence) are recorded in ``provenance.failed_seeds`` and in the notes.
    """
    first = results[0]
    merged = Result(study=first.study, preset=first.preset, workdir=first.workdir)
    groups: dict[tuple[str, str], list[Metric]] = {}
    for res in results:
        for m in res.metrics:
            groups.setdefault((m.name, m.method), []).append(m)
    for rows in groups.values():
        merged.metrics.append(_aggregate_metric(rows))
    merged.provenance = copy.deepcopy(first.provenance)  # the per-seed runs stay as they were
    merged.provenance.seeds = sorted({s for r in results for s in r.provenance.seeds})
    merged.provenance.wall_time_s = sum(r.provenance.wall_time_s for r in results)
    merged.provenance.failed_seeds = [{"seed": s, "error": e}
                                      for s, e in sorted((failures or {}).items())]
    merged.notes = list(dict.fromkeys(n for r in results for n in r.notes))
    merged.notes += [f"seed {s} failed and is not in the aggregate: {e}"
                     for s, e in sorted((failures or {}).items())]
    return merged


def _aggregate_metric(rows: list[Metric]) -> Metric:
    """One (metric, method) over seeds; see :func:`aggregate` for the rules."""
    ref = rows[0]
    vals = np.array([r.value for r in rows], dtype=float)
    finite = np.isfinite(vals)
    limits = {r.limit for r, ok in zip(rows, finite, strict=True) if ok and r.limit}
    out = Metric(name=ref.name, method=ref.method, value=float("nan"), std=None,
                 n=int(finite.sum()), unit=ref.unit, reference=ref.reference,
                 higher_is_better=ref.higher_is_better, n_nonfinite=int((~finite).sum()))
    if not finite.any():
        kinds = {str(v) for v in vals}
        out.value = float(vals[0]) if len(kinds) == 1 else float("nan")
    elif len(rows) == 1:
        out.value, out.std, out.n, out.limit = ref.value, ref.std, ref.n, ref.limit
    elif len(limits) > 1:
        out.value = float("nan")  # lower and upper limits mixed: no bound on the mean
    else:
        out.value = float(vals[finite].mean())
        out.limit = limits.pop() if limits else None
        # spread about the first seed's value: identical seeds give exactly 0, not 1e-15
        kept = vals[finite] - vals[finite][0]
        out.std = None if out.limit or out.n < 2 else float(kept.std(ddof=1))
    return out


def _error_sentence(exc: BaseException) -> str:
    """The first line of an exception as one sentence (user errors are already one)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text if isinstance(exc, HepchainError) else f"{type(exc).__name__}: {text}".rstrip(": ")


def _run_seed(args: tuple[str, str, str, Path, int, dict[str, Any] | None]
              ) -> tuple[int, Result | str]:
    """One bench seed -> (seed, result), or (seed, error sentence) when the run raised, so that
    one failing seed does not stop the others (its traceback goes to ``<seed dir>/error.txt``).
    In a worker process the study's registry entry is re-registered, so studies registered at
    run time (plugins, tests) run there too."""
    name, entry, preset, workdir, seed, overrides = args
    _registry().setdefault(name, entry)
    try:
        return seed, run_study(name, preset, workdir, seed=seed, overrides=overrides)
    except Exception as exc:  # any failure is recorded per seed; bench_study reports it
        Path(workdir).mkdir(parents=True, exist_ok=True)
        (Path(workdir) / "error.txt").write_text(traceback.format_exc())
        return seed, _error_sentence(exc)


def completed_seed(seed_dir: Path, preset: str, seed: int, config: dict[str, Any]
                   ) -> Result | None:
    """The result of a bench seed that already completed in ``seed_dir`` with exactly these
    settings, else None. :func:`run_study` removes a seed's ``results.json`` when it starts and
    writes it only at the end, so its presence means the seed finished."""
    path = Path(seed_dir) / "results.json"
    if not path.is_file():
        return None
    try:
        done = Result.load(seed_dir)
    except HepchainError:
        return None  # unreadable: run the seed again

    def canonical(cfg: dict[str, Any]) -> str:
        return json.dumps(cfg, sort_keys=True, default=str)

    wanted = canonical({"preset": preset, "seed": seed, **config})
    same = (done.preset == preset and done.provenance.seeds == [seed]
            and canonical(done.provenance.config) == wanted)
    return done if same else None


def bench_study(name: str, preset: str = "paper", workdir: str | Path | None = None,
                seeds: int = 3, overrides: dict[str, Any] | None = None, jobs: int = 1,
                scheduler: Any = None) -> Result:
    """Run seeds 0 … ``seeds`` − 1 of a study (one :meth:`Study.run` each) and aggregate them.

    This is the one place that runs several seeds. Each seed runs in ``<workdir>/seed<N>``,
    ``jobs`` seeds at a time in separate processes (each allowed an equal share of the cores:
    :mod:`hepchain.core.threads`), or, with ``scheduler`` (a Dask address
    ``tcp://host:port`` or a ``distributed.Client``), as tasks of that cluster, whose workers
    must import hepchain and see ``workdir`` (passed to them as an absolute path). The
    aggregate ``results.json`` (see :func:`aggregate`), one box plot per metric (finite
    values) and ``seeds.json`` (every successful seed's result) are written in ``workdir``. A
    seed that fails is recorded with its error sentence and left out; if every seed fails,
    HepchainError (exit code 1). A seed that already completed in ``<workdir>/seed<N>`` with
    the same settings (:func:`completed_seed`) is reused, so an interrupted bench started
    again, or extended to more seeds, runs only the missing ones (a note says which were
    reused).
    """
    from hepchain.core import plotting
    from hepchain.core.executors import make_executor
    from hepchain.core.threads import available_cores, cores_per_process

    if seeds < 1 or jobs < 1:
        raise UsageError(f"--seeds and --jobs must be at least 1, got {seeds} and {jobs}.")
    wd = Path(workdir) if workdir is not None else Path("runs") / name / f"{preset}-bench"
    cfg = get_study(name).config(preset, overrides)  # bad settings: fail before any process
    seed_root = wd.absolute() if scheduler else wd  # workers may start elsewhere
    reused = {s: r for s in range(seeds)
              if (r := completed_seed(seed_root / f"seed{s}", preset, s, cfg)) is not None}
    tasks = [(name, _registry()[name], preset, seed_root / f"seed{s}", s, overrides)
             for s in range(seeds) if s not in reused]
    outcomes: list[tuple[int, Result | str]] = list(reused.items())
    if tasks:
        parallel = min(jobs, len(tasks))
        cores = available_cores() // parallel
        share = contextlib.nullcontext() if scheduler else cores_per_process(cores)
        with share, make_executor(parallel, scheduler) as ex:
            outcomes += list(ex.map(_run_seed, tasks))
    outcomes.sort(key=lambda sr: sr[0])
    runs = [(s, r) for s, r in outcomes if isinstance(r, Result)]
    failures = {s: r for s, r in outcomes if isinstance(r, str)}
    if not runs:
        raise HepchainError(f"Every seed of {name} failed (seed 0: {failures[0]}); tracebacks "
                            f"are in {wd}/seed*/error.txt.")
    merged = aggregate([r for _, r in runs], failures)
    merged.workdir = str(wd)
    merged.provenance.command = command_line()  # this bench, not the first seed's command
    if reused:
        merged.notes.append(
            f"seed(s) {', '.join(map(str, sorted(reused)))} had already completed in {wd} with "
            "the same settings and were reused, not re-run (each seed's own provenance in "
            "seeds.json says when and at which revision it ran).")
    if any(is_tensorboard_note(n) for n in merged.notes):  # one line for every seed's logs
        merged.notes = [n for n in merged.notes if not is_tensorboard_note(n)]
        merged.notes.append(tensorboard_note(wd))
    for metric_name in merged.metric_names():
        per_method: dict[str, list[float]] = {}
        for _, r in runs:
            for m in r.metrics:
                if m.name == metric_name and np.isfinite(m.value):
                    per_method.setdefault(m.method, []).append(m.value)
        if not per_method:
            continue
        fig = plotting.box_plot(per_method, ylabel=metric_name,
                                path=wd / f"box_{plotting.slug(metric_name)}.png")
        merged.figures.append(fig.name)
    for s, r in runs:
        merged.figures.extend(f"seed{s}/{f}" for f in r.figures)
    merged.save(wd)
    write_seeds(wd, [r for _, r in runs])
    return merged


def save_aggregate(workdir: str | Path, runs: dict[str, Result]) -> Result:
    """The aggregate of ``runs`` (sub-directory of ``workdir`` -> its seed's result) saved as
    ``workdir``'s ``results.json`` beside ``seeds.json``, as ``bench`` leaves them; the
    figures are listed by sub-directory."""
    results = list(runs.values())
    merged = aggregate(results) if len(results) > 1 else copy.deepcopy(results[0])
    merged.workdir = str(workdir)
    merged.figures = [f"{name}/{f}" for name, r in runs.items() for f in r.figures]
    merged.save(workdir)
    write_seeds(Path(workdir), results)
    return merged


def aggregate_seed_dirs(workdir: str | Path) -> Result:
    """:func:`save_aggregate` of every ``workdir/seed<N>/results.json`` (runs made one at a
    time, e.g. ``hepchain btag salt-eval --out DIR/seed<N>``)."""
    wd = Path(workdir)
    dirs = sorted((p for p in wd.glob("seed*") if p.name[4:].isdigit()
                   and (p / "results.json").is_file()), key=lambda p: int(p.name[4:]))
    if not dirs:
        raise DataError(f"{wd} holds no seed<N>/results.json to aggregate.")
    return save_aggregate(wd, {p.name: Result.load(p) for p in dirs})


def write_seeds(workdir: Path, results: list[Result]) -> Path:
    """``seeds.json`` in ``workdir``: every seed's result beside their aggregate, as
    ``bench`` and the studies' multi-seed verbs keep them (read by ``hepchain compare`` and
    the report)."""
    path = Path(workdir) / "seeds.json"
    path.write_text(json.dumps([r.to_dict() for r in results], default=str))
    return path
