"""The ``hepchain`` command line: ``list``, ``demo``, ``report``, ``generate`` and
``hepchain <study> run|bench`` for every registered study."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

from hepchain.core.errors import HepchainError, UsageError

console = Console()
err_console = Console(stderr=True)
app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Machine learning for every link of a particle-physics experiment.")


def parse_sets(pairs: list[str] | None) -> dict[str, Any]:
    """``["epochs=3", "lr=1e-3"]`` -> ``{"epochs": 3, "lr": 0.001}`` (values read as YAML)."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--set expects key=value, got {pair!r}.")
        out[key.strip()] = yaml.safe_load(value)
    return out


@app.command("list")
def list_cmd() -> None:
    """List the registered studies with a one-line description and their seed document."""
    from hepchain.core.study import list_studies

    studies = list_studies()
    if not studies:
        console.print("No studies are registered yet.")
        return
    table = Table(title="hepchain studies")
    for col in ("study", "seed", "description", "presets"):
        table.add_column(col)
    for name, study in studies.items():
        table.add_row(name, study.seed_doc, study.description, ", ".join(study.presets()))
    console.print(table)


@app.command()
def demo(study: list[str] | None = typer.Option(None, "--study", help="Only these studies."),
         out: Path = typer.Option(Path("reports/demo"), help="Report directory.")) -> None:
    """Run every study's quick preset and write OUT/index.html with tables and plots."""
    from hepchain.core.report import build_report
    from hepchain.core.study import get_study, run_study
    from hepchain.studies import REGISTRY

    names = list(study) if study else list(REGISTRY)
    for name in names:
        get_study(name)  # unknown names fail before anything runs
    if not names:
        console.print("No studies are registered yet; writing an empty report.")
    results, failures = [], {}
    t0 = time.perf_counter()
    for i, name in enumerate(names, start=1):
        console.rule(f"[bold]{i}/{len(names)} {name} (quick)")
        try:
            res = run_study(name, "quick", out / name)
        except HepchainError as exc:
            failures[name] = str(exc)
            err_console.print(f"[red]{name} failed:[/red] {exc}")
            continue
        results.append(res)
        console.print(res.table())
        console.print(f"{name}: {res.provenance.wall_time_s:.0f} s")
    page = build_report(results, out, title="hepchain demo (quick presets)", failures=failures)
    summary = Table(title=f"demo summary ({time.perf_counter() - t0:.0f} s)")
    for col in ("study", "status", "wall time (s)", "metrics"):
        summary.add_column(col)
    for r in results:
        summary.add_row(r.study, "ok", f"{r.provenance.wall_time_s:.0f}", str(len(r.metrics)))
    for name in failures:
        summary.add_row(name, "[red]failed[/red]", "-", "-")
    console.print(summary)
    console.print(f"report: {page}")
    if failures:
        raise typer.Exit(1)


@app.command()
def report(directories: list[Path] = typer.Argument(
               ..., help="Run or demo directories with results.json files."),
           out: Path | None = typer.Option(None, help="Where to write index.html."),
           markdown: Path | None = typer.Option(
               None, help="Rewrite the generated tables of this markdown page (e.g. "
                          "docs/benchmarks.md) from the results.json of each directory.")
           ) -> None:
    """Collect every results.json below DIRECTORIES into one HTML report, or with
    --markdown PAGE write one table per run directory between PAGE's generated markers."""
    from hepchain.core.report import build_report, collect_results, write_markdown

    for directory in directories:
        if not directory.is_dir():
            raise UsageError(f"{directory} is not a directory; pass a run or demo directory.")
    if markdown is not None:
        console.print(f"tables: {write_markdown(markdown, directories)}")
        return
    if out is None and len(directories) > 1:
        raise UsageError("Several directories were given; pass --out for the HTML report.")
    results = [r for directory in directories for r in collect_results(directory)]
    if not results:
        raise UsageError(f"No results.json found below {', '.join(map(str, directories))}; "
                         "run a study first.")
    page = build_report(results, out or directories[0])
    console.print(f"report: {page}")


@app.command()
def generate(process: str = typer.Argument(..., help="Process / dataset name."),
             events: int = typer.Option(..., "--events", "-n", help="Number of events."),
             out: Path = typer.Option(..., help="Output dataset directory."),
             seed: int = typer.Option(1, help="Run seed (shard seeds derive from it)."),
             workers: int = typer.Option(1, help="Local worker processes."),
             scheduler: str | None = typer.Option(None, help="Dask scheduler, tcp://host:port."),
             shard_size: int | None = typer.Option(None, help="Events per shard."),
             set_: list[str] | None = typer.Option(None, "--set", help="Setting key=value.")) -> None:
    """Generate a dataset (Parquet/HDF5 shards + manifest.json); re-running resumes."""
    from hepchain.core.executors import make_executor
    from hepchain.producers import find_producer

    producer = find_producer(process)
    options = {k: str(v) for k, v in parse_sets(set_).items()}
    with make_executor(workers, scheduler) as ex:
        manifest = producer.produce(process, out, n_events=events, seed=seed, executor=ex,
                                    shard_size=shard_size, options=options)
    console.print(f"{manifest.n_written} events in {len(manifest.shards)} shards -> {out}")


def _study_app(name: str, description: str) -> typer.Typer:
    sub = typer.Typer(help=description, no_args_is_help=True)

    @sub.command("run")
    def run_cmd(preset: str = typer.Option("quick", help="quick or paper."),
                workdir: Path | None = typer.Option(None, help="Run directory."),
                seed: int = typer.Option(0, help="Random seed."),
                set_: list[str] | None = typer.Option(None, "--set",
                                                      help="Override a setting key=value.")) -> None:
        """Run the study once and write results.json and figures."""
        from hepchain.core.study import run_study

        res = run_study(name, preset, workdir, seed=seed, overrides=parse_sets(set_))
        console.print(res.table())
        console.print(f"results: {Path(res.workdir) / 'results.json'}")

    @sub.command("bench")
    def bench_cmd(preset: str = typer.Option("paper", help="quick or paper."),
                  seeds: int = typer.Option(3, help="Number of seeds."),
                  jobs: int = typer.Option(1, help="Seeds run at a time (processes)."),
                  workdir: Path | None = typer.Option(None, help="Bench directory."),
                  set_: list[str] | None = typer.Option(None, "--set",
                                                        help="Override a setting key=value.")) -> None:
        """Run several seeds, aggregate mean ± std, write results.json and box plots."""
        from hepchain.core.study import bench_study

        res = bench_study(name, preset, workdir, seeds=seeds, overrides=parse_sets(set_),
                          jobs=jobs)
        console.print(res.table())
        console.print(f"results: {Path(res.workdir) / 'results.json'}")

    return sub


def build_app(argv: list[str]) -> typer.Typer:
    """Attach one sub-app per registered study; study-specific verbs are loaded only for the
    study named on the command line, so other studies' dependencies stay unimported."""
    from hepchain.core.study import get_study
    from hepchain.studies import REGISTRY

    for name in REGISTRY:
        sub = _study_app(name, f"Study {name!r}: run, bench and its own verbs.")
        if argv[:1] == [name]:
            get_study(name).add_commands(sub)
        app.add_typer(sub, name=name)
    return app


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors become one line on stderr and a non-zero exit."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        from hepchain.studies import REGISTRY

        builtin = {"list", "demo", "report", "generate", "--help", "-h"}
        if argv and not argv[0].startswith("-") and argv[0] not in builtin | set(REGISTRY):
            known = ", ".join(sorted(REGISTRY)) or "none registered yet"
            raise UsageError(f"Unknown study or command {argv[0]!r}; commands: list, demo, "
                             f"report, generate; studies: {known}.")
        build_app(argv)(args=argv, prog_name="hepchain")
    except HepchainError as exc:
        if os.environ.get("HEPCHAIN_DEBUG"):
            raise
        err_console.print(f"[bold red]error:[/bold red] {exc}")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("[bold red]interrupted[/bold red]")
        sys.exit(130)


if __name__ == "__main__":
    main()
