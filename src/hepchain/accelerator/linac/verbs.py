"""The study's own CLI verbs: ``hepchain linac generate`` (a simulated operations log),
``rl-curve`` (RL trained on the machine, success vs training steps), ``pool`` (controllers'
success and steps over a bench's runs, paired against a second bench), ``evaluate`` (a run's
kept policies on other machine states) and ``check-log`` (a log against the schema)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hepchain.accelerator.linac import control, oplog, surrogates
from hepchain.accelerator.linac.study import (
    ALGOS,
    TRAIN_STATES,
    VAL_EPISODES,
    check_rl,
    evaluate_run,
    machine_env,
)
from hepchain.core.errors import UsageError
from hepchain.core.seeding import derive_seed
from hepchain.core.threads import set_torch_threads


def add_verbs(study: Any, app: Any) -> None:
    """Register the linac verbs on the study's typer ``app`` (presets from ``study``)."""
    import typer

    @app.command("generate")
    def generate_cmd(out: Path = typer.Option(..., help="Output directory."),
                     preset: str = typer.Option("quick", help="Machine/log settings."),
                     days: int | None = typer.Option(None, help="Simulated days."),
                     seed: int = typer.Option(0, help="Random seed."),
                     workers: int = typer.Option(1, help="Local worker processes."),
                     scheduler: str | None = typer.Option(None, help="Dask scheduler.")
                     ) -> None:
        """Write a simulated operations log (Parquet shards + manifest.json)."""
        from hepchain.core.executors import make_executor

        cfg = study.config(preset)
        with make_executor(workers, scheduler) as ex:
            manifest = oplog.generate(out, oplog.log_settings(cfg), days or cfg["log"]["days"],
                                      cfg["log"]["samples_per_day"], seed, executor=ex)
        typer.echo(f"{manifest.n_written} samples in {len(manifest.shards)} days -> {out}")

    @app.command("rl-curve")
    def curve_cmd(preset: str = typer.Option("quick", help="Machine and RL settings."),
                  algo: str = typer.Option("td3", help="sac, td3 or ppo."),
                  steps: str = typer.Option("2000,5000,10000",
                                            help="Comma-separated training steps."),
                  val_states: int = typer.Option(20, help="Validation episodes."),
                  seed: int = typer.Option(0, help="Run seed (training states, agent)."),
                  set_: list[str] | None = typer.Option(None, "--set",
                                                        help="Setting key=value.")
                  ) -> None:
        """Learning curve of RL trained on the machine: success on validation states
        (a pool of their own, never the evaluation pool) vs training steps."""
        from hepchain.cli import parse_sets

        try:
            checkpoints = sorted({int(n) for n in steps.split(",") if n.strip()})
        except ValueError:
            checkpoints = []
        if not checkpoints or checkpoints[0] <= 0 or val_states <= 0 or algo not in ALGOS:
            raise UsageError(f"--steps needs positive comma-separated step counts (got "
                             f"{steps!r}), --val-states a positive number and --algo one "
                             f"of {', '.join(ALGOS)}.")
        cfg = study.config(preset, parse_sets(set_))
        check_rl(cfg["rl"])
        set_torch_threads(int(cfg["threads"]))
        rc, machine = cfg["rl"], oplog.machine_from_settings(oplog.log_settings(cfg))
        train_env, val_env = (machine_env(cfg, machine, pool) for pool in
                              (derive_seed(seed, TRAIN_STATES), rc["val_pool_seed"]))
        for r in control.learning_curve(algo, train_env, val_env, checkpoints,
                                        list(range(VAL_EPISODES, VAL_EPISODES + val_states)),
                                        seed, tuple(rc["net_arch"]), **rc["agent"]):
            typer.echo(f"{algo} {r['steps']:>7d} steps: success {r['success_rate']:.2f} "
                       f"+- {r['success_rate_err']:.2f}, median best MAE "
                       f"{r['median_best_mae_um']:.0f} um, training CPU "
                       f"{r['train_cpu_s']:.0f} s")

    @app.command("pool")
    def pool_cmd(runs: list[Path] = typer.Argument(
            ..., help="Run directories, or a bench directory (its seed*/ runs)."),
                 against: list[Path] | None = typer.Option(
                     None, help="A second bench on the same states: print the runs' "
                                "numbers minus its numbers, paired.")) -> None:
        """Success rate and median steps of every controller over all evaluation episodes
        of the runs (the seeds of one bench), errors by a bootstrap over states; with
        ``--against``, the differences to a second bench on the same states."""
        seed_dirs = lambda paths: [d for r in paths  # noqa: E731
                                   for d in (sorted(r.glob("seed*/")) or [r])]
        for label, s in control.pooled_summary(seed_dirs(runs)).items():
            typer.echo(f"{label}: {s['episodes']} episodes, success {s['success_rate']:.3f}"
                       f" +- {s['success_rate_err']:.3f}, median steps "
                       f"{s['median_steps']:g} +- {s['median_steps_err']:.1f}")
        if against:
            diffs = control.pooled_difference(seed_dirs(runs), seed_dirs(against))
            for label, d in diffs.items():
                typer.echo(f"{label} minus --against: success {d['success_rate']:+.3f} +- "
                           f"{d['success_rate_err']:.3f}, median steps "
                           f"{d['median_steps']:+g} +- {d['median_steps_err']:.1f} "
                           f"(paired bootstrap over {d['states']} states)")

    @app.command("evaluate")
    def evaluate_cmd(run: Path = typer.Argument(
            ..., help="One seed's directory of a `linac run/bench` with the control part."),
                     out: Path = typer.Option(..., help="Directory for episodes.json."),
                     pool_seed: int = typer.Option(..., help="Seed of the state pool."),
                     states: int = typer.Option(50, help="Evaluation states.")) -> None:
        """Run a run's kept policies and the recall baseline on other machine states
        (``rl.pool_seed`` ``--pool-seed``), without training; ``pool`` reads ``--out``
        like a run (give each seed its own ``--out DIR/seed<N>``)."""
        episodes = evaluate_run(run, pool_seed, states)
        out.mkdir(parents=True, exist_ok=True)
        control.write_episodes(out, episodes)
        for label, eps in episodes.items():
            s = control.summarise(eps)
            typer.echo(f"{label}: {len(eps)} states of pool {pool_seed}, success "
                       f"{s['success_rate']:.2f} +- {s['success_rate_err']:.2f}, median "
                       f"steps {s['median_steps']:g} +- {s['median_steps_err']:.1f}")

    @app.command("check-log")
    def check_cmd(path: Path = typer.Argument(..., help="Log file or directory.")) -> None:
        """Validate an operations log against the documented schema."""
        frame = oplog.load_log(path, required=surrogates.REQUIRED)
        modes = sorted(int(m) for m in frame["mode"].unique())
        typer.echo(f"{path}: {len(frame)} rows, {len(oplog.data_channels(frame))} channels, "
                   f"{frame['day'].nunique()} days, modes {modes}")
