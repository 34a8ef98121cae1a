"""The ``hepchain`` command line: ``list``, ``demo``, ``report``, ``compare``, ``generate`` and
``hepchain <study> run|bench|settings`` for every registered study.

Start-up imports only typer, rich and YAML: studies, producers and their dependencies
(torch, Pythia, ...) are imported by the command that uses them, so ``hepchain list`` and
``--help`` answer at once.
"""

from __future__ import annotations

import functools
import math
import os
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from hepchain.core.errors import HepchainError, UsageError
from hepchain.core.malloc import keep_freed_memory

console = Console()
err_console = Console(stderr=True)
app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Machine learning for every link of a particle-physics experiment.")


class _CliValueLoader(yaml.SafeLoader):
    """YAML as users type it on a command line: ``1e-3`` is a float too (YAML 1.2)."""


_CliValueLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+.0123456789"))


def parse_sets(pairs: list[str] | None) -> dict[str, Any]:
    """``["train.epochs=3", "lr=1e-3"]`` -> ``{"train.epochs": 3, "lr": 0.001}``: each value is
    read as YAML; keys are kept as given (dotted study settings, or flat process options)."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set expects key=value, got {pair!r}.")
        try:
            out[key.strip()] = yaml.load(value, Loader=_CliValueLoader)  # a SafeLoader
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or "not valid YAML"
            raise UsageError(f"--set {key.strip()}: {value!r} is not a YAML value "
                             f"({problem}).") from None
    return out


def usable_dir(path: Path | None, option: str) -> None:
    """UsageError unless ``path`` is a directory this process can write in, or can be made as
    one (its deepest existing ancestor is a writable directory); nothing is left behind."""
    if path is None:
        return
    existing = path.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"{option} {path}: {existing} is a file, not a directory; pass a "
                         "directory (it is made if it does not exist).")
    try:
        probe = tempfile.mkdtemp(prefix=".hepchain-probe-", dir=existing)
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot write in {existing} ({exc.strerror}); pass "
                         "a directory you can write in.") from None
    os.rmdir(probe)


def resumes(what: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Decorate a command so that Ctrl-C prints that running the same command again resumes
    (``what`` says how) and exits with 130, the shell's code for an interrupt."""
    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> None:
            try:
                command(*args, **kwargs)
            except KeyboardInterrupt:
                err_console.print(f"[bold red]interrupted.[/bold red] Run the same command "
                                  f"again to resume: {what}.", soft_wrap=True)
                raise typer.Exit(130) from None
        return wrapper
    return decorate


TRAININGS_RESUME = ("trainings continue from their last completed epoch and cached datasets "
                    "are reused")


def _yaml_text(value: Any) -> str:
    """``value`` as one line of YAML, the way ``--set`` reads it back."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10**9, sort_keys=False).strip()
    return text.removesuffix("\n...").strip()


@app.command("list")
def list_cmd() -> None:
    """List the registered studies with a one-line description and their seed document."""
    from hepchain.studies import study_infos

    infos = study_infos()
    if not infos:
        console.print("No studies are registered yet.")
        return
    table = Table(title="hepchain studies", caption="hepchain STUDY --help: its commands; "
                  "hepchain STUDY settings: every setting and its meaning.")
    for col in ("study", "seed", "description", "presets"):
        table.add_column(col)
    for info in infos:
        table.add_row(info.name, info.seed_doc, info.description, ", ".join(info.presets))
    console.print(table)


@app.command()
@resumes(f"each study's {TRAININGS_RESUME}")
def demo(study: list[str] | None = typer.Option(None, "--study", help="Only these studies."),
         out: Path = typer.Option(Path("reports/demo"), help="Report directory.")) -> None:
    """Run every study's quick preset and write OUT/index.html with tables and plots, and
    OUT/results.json: each study's wall time (the demo's own record, for `hepchain report`)."""
    from hepchain.core.provenance import ProvenanceRecorder
    from hepchain.core.report import build_report, demo_record
    from hepchain.core.study import get_study, run_study
    from hepchain.studies import REGISTRY

    names = list(study) if study else list(REGISTRY)
    for name in names:
        get_study(name)  # unknown names fail before anything runs
    usable_dir(out, "--out")
    if not names:
        console.print("No studies are registered yet; writing an empty report.")
    results, failures = [], {}
    with ProvenanceRecorder({"studies": names, "preset": "quick"}, seeds=[0]) as rec:
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
        page = build_report(results, out, title="hepchain demo (quick presets)",
                            failures=failures)
    record = demo_record(results, failures, rec.provenance)
    record.save(out)
    console.print(record.table(title=f"demo summary ({rec.provenance.wall_time_s:.0f} s)"))
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
    usable_dir(out or directories[0], "--out")
    results = [r for directory in directories for r in collect_results(directory)]
    if not results:
        raise UsageError(f"No results.json found below {', '.join(map(str, directories))}; "
                         "run a study first.")
    page = build_report(results, out or directories[0])
    console.print(f"report: {page}")


@app.command()
def compare(path: Path = typer.Argument(..., help="A bench --workdir (seeds.json or "
                                                     "seed*/results.json), or its seeds.json."),
            metric: str = typer.Option(..., "--metric", help="Metric name, as in the table."),
            a: str | None = typer.Option(None, "--a", help="Method A (A − B or A / B)."),
            b: str | None = typer.Option(None, "--b", help="Method B."),
            against: str | None = typer.Option(
                None, "--against", help="Compare every other method with this one."),
            ratio: bool = typer.Option(False, "--ratio", help="Geometric-mean ratio A / B "
                                                               "instead of the difference."),
            goal: float | None = typer.Option(None, help="Goal the difference (ratio) must "
                                              "pass by more than its error."),
            add_stat_error: bool = typer.Option(
                False, "--add-stat-error", help="Conservative: add each seed's test-set "
                "errors of A and B in quadrature as a common error (over-states it when A "
                "and B see the same events)."),
            json_out: Path | None = typer.Option(None, "--json", help="Also write the rows "
                                                 "as JSON to this file.")) -> None:
    """Is method A better than B on METRIC, paired over the seeds of a bench?"""
    import json
    from dataclasses import asdict

    from hepchain.core.compare import (
        compare_against,
        compare_methods,
        comparison_table,
        load_seed_results,
    )

    if (against is None) == (a is None or b is None) or (against and (a or b)):
        raise UsageError("Pass either --a METHOD and --b METHOD, or --against METHOD.")
    results = load_seed_results(path)
    kwargs = {"ratio": ratio, "add_stat_error": add_stat_error, "goal": goal}
    if against is None:
        rows, skipped = [compare_methods(results, metric, a, b, **kwargs)], {}
    else:
        rows, skipped = compare_against(results, metric, against, **kwargs)
    errors = ("seed spread / √n + both test-set errors (conservative)" if add_stat_error
              else "seed spread / √n (t-test)")
    console.print(comparison_table(rows, f"{metric}: paired over {len(results)} seeds of "
                                         f"{path}; error = {errors}"))
    if no_std := [r.a for r in rows if add_stat_error and not r.stat_error_added]:
        console.print(f"no test-set error stored (seed spread only): {', '.join(no_std)}")
    for method, why in skipped.items():
        console.print(f"not compared: {method}: {why}")
    if json_out is not None:
        from hepchain.core.io import atomic_write_text

        atomic_write_text(json_out, json.dumps({"path": str(path), "metric": metric,
                                                "comparisons": [asdict(r) for r in rows],
                                                "skipped": skipped}, indent=1))
        console.print(f"json: {json_out}")


@app.command(epilog="The processes are listed by hepchain generate --help.")
@resumes("complete shards are kept and only the missing ones are generated")
def generate(process: str = typer.Argument(..., help="Process / dataset name (listed below)."),
             events: int = typer.Option(..., "--events", "-n", min=1, help="Number of events."),
             out: Path = typer.Option(..., help="Output dataset directory."),
             seed: int = typer.Option(1, help="Run seed (shard seeds derive from it)."),
             workers: int = typer.Option(1, min=1, help="Local worker processes."),
             scheduler: str | None = typer.Option(None, help="Dask scheduler, tcp://host:port."),
             shard_size: int | None = typer.Option(
                 None, min=1, help="Events per shard (default: the producer's)."),
             set_: list[str] | None = typer.Option(None, "--set", help="Setting key=value.")) -> None:
    """Generate a dataset (Parquet/HDF5 shards + manifest.json); re-running resumes."""
    from hepchain.core.executors import make_executor
    from hepchain.producers import find_producer

    producer = find_producer(process)
    usable_dir(out, "--out")
    options = {k: str(v) for k, v in parse_sets(set_).items()}
    with make_executor(workers, scheduler) as ex:
        manifest = producer.produce(process, out, n_events=events, seed=seed, executor=ex,
                                    shard_size=shard_size, options=options)
    console.print(f"{manifest.n_written} events in {len(manifest.shards)} shards -> {out}")


@app.command()
def convert(src: Path = typer.Argument(..., help="A hepchain dataset directory or a public "
                                       "data file."),
            dst: Path = typer.Argument(..., help="The output file (public layouts), directory "
                                       "(salt-h5) or dataset directory (--to hepchain)."),
            to: str = typer.Option(..., "--to", help="jetclass-root, toptagging-h5, lhco-h5, "
                                   "calochallenge-h5, salt-h5, or hepchain (public file -> our "
                                   "layout)."),
            label: str | None = typer.Option(None, help="JetClass class of every jet "
                                             "(jetclass-root; default: the dataset's label)."),
            binning: Path | None = typer.Option(None, help="CaloChallenge binning XML: needed "
                                                "to read a CaloChallenge file; when writing "
                                                "one, the voxels (default: cylindrical bins "
                                                "of the pixel size)."),
            particle: str | None = typer.Option(None, help="Particle of the binning XML when "
                                                "it holds several."),
            shard_size: int = typer.Option(10_000, help="Rows per shard (--to hepchain)."),
            preset: str = typer.Option("quick", help="btag preset whose jet selection, split, "
                                       "track count and lepton flag define the jets (salt-h5)."),
            test_src: Path | None = typer.Option(None, "--test-src", help="A second ttbar "
                                                 "dataset whose jets are the test file "
                                                 "(salt-h5; btag's separate test sample)."),
            ) -> None:
    """Convert our datasets to public layouts (JetClass ROOT, top-tagging / LHCO / CaloChallenge
    HDF5, salt-ml's b-tagging HDF5) and public files into our dataset layout (--to hepchain)."""
    from hepchain.convert import convert as run_convert

    out = run_convert(src, dst, to, label=label, binning=binning, particle=particle,
                      shard_size=shard_size, preset=preset, test_src=test_src)
    console.print(f"{src} -> {out} ({to})")


data_app = typer.Typer(help="Show and remove the cached datasets (root: --root, else "
                       "$HEPCHAIN_DATA, else data/).", no_args_is_help=True)
app.add_typer(data_app, name="data")
ROOT_OPTION = typer.Option(None, "--root", help="Cache root (default $HEPCHAIN_DATA or data/).")


@data_app.command("ls")
def data_ls(root: Path | None = ROOT_OPTION) -> None:
    """List the cached datasets with their settings, size and generation cost."""
    from hepchain.core.cache import data_root, list_entries

    entries = list_entries(root)
    if not entries:
        console.print(f"No cached datasets in {data_root(root)}.")
        return
    table = Table(title=f"cached datasets in {data_root(root)}")
    for col in ("key", "process", "events", "seed", "options", "MB", "gen. s", "complete"):
        table.add_column(col, no_wrap=True, overflow="ellipsis", min_width=len(col),
                         max_width=60 if col == "options" else None)
    for e in entries:
        options = ", ".join(f"{k}={v}" for k, v in e.options.items()) or "-"
        cost = "unknown" if math.isnan(e.generation_s) else f"{e.generation_s:.1f}"
        table.add_row(e.key[:10] or e.name, e.process, str(e.n_events), str(e.seed), options,
                      f"{e.bytes / 1e6:.2f}", cost, "yes" if e.complete else "no")
    console.print(table)


@data_app.command("rm")
def data_rm(key: str = typer.Argument(..., help="Unique key prefix or directory name."),
            root: Path | None = ROOT_OPTION) -> None:
    """Remove one cached dataset."""
    from hepchain.core.cache import remove_entry

    entry = remove_entry(key, root)
    console.print(f"removed {entry.path} ({entry.bytes / 1e6:.2f} MB)")


def _print_run(res: Any) -> None:
    """A run's table, where its TensorBoard logs and results.json are (rank 0 only under
    torchrun, whose other ranks write no results)."""
    from hepchain.core import distributed
    from hepchain.core.monitoring import is_tensorboard_note

    if not distributed.is_main():
        return
    console.print(res.table())
    for note in filter(is_tensorboard_note, res.notes):
        console.print(note, highlight=False, soft_wrap=True)
    console.print(f"results: {Path(res.workdir) / 'results.json'}")


def _study_app(name: str, about: tuple[str, str] | None) -> typer.Typer:
    """The sub-app of study ``name``; its help is the study's ``(description, seed_doc)``."""
    see = f"See `hepchain {name} settings` for every setting and its meaning."
    summary = escape(f"{about[0]} (seed document {about[1]}).") if about else f"Study {name!r}."
    sub = typer.Typer(help=f"{summary} Run, bench, settings and its own verbs. {see}",
                      no_args_is_help=True)
    set_help = "Override a setting: dotted key=YAML value (train.epochs=3); repeatable."

    @sub.command("run", help=f"Run the study once and write results.json and figures. {see}")
    @resumes(TRAININGS_RESUME)
    def run_cmd(preset: str = typer.Option("quick", help="quick or paper."),
                workdir: Path | None = typer.Option(None, help="Run directory."),
                seed: int = typer.Option(0, help="Random seed."),
                set_: list[str] | None = typer.Option(None, "--set", help=set_help)) -> None:
        from hepchain.core.study import run_study

        usable_dir(workdir, "--workdir")
        res = run_study(name, preset, workdir, seed=seed, overrides=parse_sets(set_))
        _print_run(res)

    @sub.command("bench", help="Run several seeds, aggregate mean ± std, write results.json "
                               f"and box plots. {see}")
    @resumes("seeds that were cut short continue from their checkpoints; seeds that completed "
             "with the same settings are reused, not re-run")
    def bench_cmd(preset: str = typer.Option("paper", help="quick or paper."),
                  seeds: int = typer.Option(3, help="Number of seeds."),
                  jobs: int = typer.Option(1, help="Seeds run at a time (processes)."),
                  scheduler: str | None = typer.Option(
                      None, help="Run the seeds on this Dask cluster, tcp://host:port (its "
                                 "workers must see the bench directory)."),
                  workdir: Path | None = typer.Option(None, help="Bench directory."),
                  set_: list[str] | None = typer.Option(None, "--set", help=set_help)) -> None:
        from hepchain.core.study import bench_study

        usable_dir(workdir, "--workdir")
        res = bench_study(name, preset, workdir, seeds=seeds, overrides=parse_sets(set_),
                          jobs=jobs, scheduler=scheduler)
        _print_run(res)

    @sub.command("settings")
    def settings_cmd(preset: str = typer.Option("quick", help="The preset to show."),
                     set_: list[str] | None = typer.Option(
                         None, "--set", help="Show the settings with this override applied "
                                             "(checked as run does).")) -> None:
        """Print every setting: dotted key, value, presets that change it, meaning."""
        from hepchain.core import config

        if config.has_config_file(name):
            presets, meanings = config.load_presets(name), config.load_help(name)
        else:  # a study whose presets are code, not configs/<name>.yaml: values only
            from hepchain.core.study import get_study

            presets, meanings = get_study(name).presets(), {}
        chosen = config.preset_config(presets, preset, parse_sets(set_), study=name)
        base = config.leaves(presets[config.BASE_PRESET])
        others = {p: config.leaves(cfg) for p, cfg in presets.items() if p != config.BASE_PRESET}
        table = Table(title=f"{name} settings, preset {preset}")
        for col in ("setting", "value", f"≠ {config.BASE_PRESET} in", "meaning"):
            table.add_column(col)
        missing = object()
        for key, value in config.leaves(chosen).items():
            differ = [p for p, flat in others.items()
                      if flat.get(key, missing) != base.get(key, missing)]
            table.add_row(key, Text(_yaml_text(value)), ", ".join(differ),
                          Text(config.meaning(meanings, key)))
        console.print(table)

    return sub


def _list_processes() -> None:
    """Put the producible processes into the help of ``generate``."""
    from hepchain.producers import process_catalogue

    lines = [escape(f"{name}: {text}") for name, text in sorted(process_catalogue().items())]
    for info in app.registered_commands:
        if info.callback is not None and info.callback.__name__ == "generate":
            info.epilog = "Processes (--set KEY=VALUE changes their settings):\n\n" + \
                "\n\n".join(lines)


def build_app(argv: list[str]) -> typer.Typer:
    """Attach one sub-app per registered study; study-specific verbs are loaded only for the
    study named on the command line (and not for its ``settings``), so other studies'
    dependencies stay unimported; the processes are listed only for ``generate``."""
    from hepchain.studies import REGISTRY, static_about

    for name in REGISTRY:
        sub = _study_app(name, static_about(name))
        if argv[:1] == [name] and argv[1:2] != ["settings"]:  # settings stays light
            from hepchain.core.study import get_study

            get_study(name).add_commands(sub)
        app.add_typer(sub, name=name)
    if argv[:1] == ["generate"]:
        _list_processes()
    return app


def _builtin_commands() -> set[str]:
    """The names of the top-level commands and groups (not studies)."""
    names = {info.name or info.callback.__name__.removesuffix("_cmd")
             for info in app.registered_commands if info.callback is not None}
    return names | {info.name for info in app.registered_groups if info.name}


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors become one line on stderr and a non-zero exit."""
    argv = sys.argv[1:] if argv is None else argv
    keep_freed_memory()  # training steps reuse freed tensors without page faults
    try:
        from hepchain.studies import REGISTRY

        builtin = _builtin_commands()
        if argv and not argv[0].startswith("-") and argv[0] not in builtin | set(REGISTRY):
            known = ", ".join(sorted(REGISTRY)) or "none registered yet"
            raise UsageError(f"Unknown study or command {argv[0]!r}; commands: "
                             f"{', '.join(sorted(builtin))}; studies: {known}.")
        build_app(argv)(args=argv, prog_name="hepchain")
    except HepchainError as exc:
        if os.environ.get("HEPCHAIN_DEBUG"):
            raise
        err_console.print(f"[bold red]error:[/bold red] {escape(str(exc))}", soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("[bold red]interrupted[/bold red]")
        sys.exit(130)


if __name__ == "__main__":
    main()
