"""The study's own CLI verbs, ``hepchain jettag compare`` (side by side with weaver-core,
:mod:`hepchain.reco.jettag.weaver.compare`) and ``hepchain jettag scaling``
(:mod:`hepchain.reco.jettag.scaling`): each takes the usual ``--preset``, ``--set``,
``--workdir`` and ``--seeds``, runs one Result per seed in ``<workdir>/seed<N>`` and writes
``results.json`` (over seeds: mean ± std) and ``seeds.json`` in ``<workdir>``, as ``bench``
does."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from hepchain.core.errors import UsageError
from hepchain.core.provenance import ProvenanceRecorder
from hepchain.core.result import Result
from hepchain.core.seeding import seed_everything

Runner = Callable[[dict[str, Any], Path, int], Result]


def run_verb(study: Any, verb: str, runner: Runner, preset: str, workdir: Path | None,
             seeds: int, overrides: dict[str, Any]) -> Result:
    """Run ``runner(config, seed_dir, seed)`` for seeds 0 … ``seeds`` − 1 of ``preset`` (with
    ``overrides``) and save each seed's and the aggregate ``results.json``."""
    from hepchain.core.study import save_aggregate

    if seeds < 1:
        raise UsageError(f"--seeds must be at least 1, got {seeds}.")
    config = study.config(preset, overrides)
    wd = workdir or Path("runs") / study.name / f"{verb}-{preset}"
    results = {}
    for seed in range(seeds):
        seed_dir = wd / f"seed{seed}"
        seed_dir.mkdir(parents=True, exist_ok=True)
        seed_everything(seed)
        with ProvenanceRecorder({"preset": preset, "seed": seed, "verb": verb, **config},
                                seeds=[seed]) as rec:
            res = runner(config, seed_dir, seed)
        datasets = res.provenance.datasets
        res.provenance = rec.provenance
        res.provenance.datasets = datasets
        res.study, res.preset, res.workdir = study.name, f"{preset} ({verb})", str(seed_dir)
        res.save(seed_dir)
        results[seed_dir.name] = res
    return save_aggregate(wd, results)


def show(result: Result) -> None:
    """Print a verb's table and where its results.json is."""
    from rich.console import Console

    console = Console()
    console.print(result.table())
    console.print(f"results: {Path(result.workdir) / 'results.json'}")


def add_verbs(study: Any, app: Any) -> None:
    """Register ``compare`` and ``scaling`` on the study's typer sub-app."""
    import typer

    from hepchain.cli import parse_sets, usable_dir

    def options(verb: str) -> dict[str, Any]:
        return {"preset": typer.Option("quick", help="quick or paper."),
                "workdir": typer.Option(None, help=f"Run directory (default runs/jettag/"
                                                   f"{verb}-<preset>)."),
                "seeds": typer.Option(1, help="Seeds 0 … N−1, aggregated mean ± std."),
                "set_": typer.Option(None, "--set", help="Override a setting: dotted "
                                     "key=YAML value (train.epochs=3); repeatable.")}

    compare_opts, scaling_opts = options("compare"), options("scaling")

    @app.command("compare")
    def compare_cmd(preset: str = compare_opts["preset"],
                    workdir: Path | None = compare_opts["workdir"],
                    seeds: int = compare_opts["seeds"],
                    set_: list[str] | None = compare_opts["set_"]) -> None:
        """Our training vs weaver-core's on the same jets and budget, judged by our metrics."""
        from hepchain.reco.jettag.weaver.compare import compare

        usable_dir(workdir, "--workdir")
        show(run_verb(study, "compare", compare, preset, workdir, seeds, parse_sets(set_)))

    @app.command("scaling")
    def scaling_cmd(preset: str = scaling_opts["preset"],
                    workdir: Path | None = scaling_opts["workdir"],
                    seeds: int = scaling_opts["seeds"],
                    set_: list[str] | None = scaling_opts["set_"]) -> None:
        """Test loss vs parameters and training jets, power-law fits, compute-optimal size."""
        from hepchain.reco.jettag.scaling import scaling

        usable_dir(workdir, "--workdir")
        show(run_verb(study, "scaling", scaling, preset, workdir, seeds, parse_sets(set_)))
