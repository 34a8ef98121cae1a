"""The study's own CLI verbs: ``hepchain btag compare BENCH_DIR`` (paired GN1 / DL1-like
and aux-task rejection ratios over a bench's seeds), ``tag`` (a saved GN1 on any dataset) and
``salt-eval`` (salt-ml's predictions scored with our metrics beside our GN1)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hepchain.core.compare import load_seed_results
from hepchain.reco.btag import compare
from hepchain.reco.btag.gn1 import FULL


def add_verbs(app: Any) -> None:
    """Register the btag verbs on the study's typer ``app``."""
    import typer

    @app.command("compare")
    def compare_cmd(bench_dir: Path = typer.Argument(..., help="A `btag bench` --workdir."),
                    eff: float = typer.Option(0.70, help="b-jet efficiency of the WP."),
                    bkg: str = typer.Option("light", help="Background flavour: light or c.")
                    ) -> None:
        """Paired GN1 / DL1-like and aux-task ratios over seeds, with significance."""
        from rich.console import Console
        from rich.table import Table

        rows = compare.paired_rejection_ratios(load_seed_results(bench_dir), eff, bkg)
        table = Table(title=f"{bkg} rejection ratios @ {eff:.0%} b-eff, paired over seeds")
        for col in ("ratio", "of", "value ± error", "seeds", "p (vs 1)", "goal", "met"):
            table.add_column(col)
        for r in rows:
            table.add_row(r["numerator"], r["denominator"],
                          f"{r['ratio']:.2f} ± {r['error']:.2f}", str(r["n_seeds"]),
                          f"{r['p_vs_1']:.2g}", "-" if r["goal"] is None else f"{r['goal']:g}",
                          {True: "yes", False: "no"}.get(r["goal_met"], "-"))
        Console().print(table)
        (Path(bench_dir) / "paired.json").write_text(json.dumps(rows, indent=1))

    @app.command("tag")
    def tag_cmd(dataset: Path = typer.Argument(..., help="A dataset directory with "
                                               "events.jets.tracks (hepchain generate "
                                               "ttbar, or your own; no truth needed)."),
                model: Path = typer.Option(..., help="gn1.pt of a `hepchain btag run`."),
                out: Path = typer.Option(..., help="HDF5 file for the per-jet scores."),
                fc: float = typer.Option(0.05, help="Charm fraction f_c of D_b.")) -> None:
        """Tag every jet of a dataset with a saved GN1: p_b, p_c, p_light and D_b."""
        from hepchain.reco.btag.tagging import tag_dataset

        n = tag_dataset(dataset, model, out, fc)
        typer.echo(f"{n} jets tagged -> {out}")

    @app.command("salt-eval")
    def salt_eval_cmd(
            salt_dir: Path = typer.Argument(..., help="salt's training directory (the "
                                            "GN1_like_* folder with config.yaml, ckpts/)."),
            h5: Path = typer.Option(..., help="The salt-h5 directory salt trained on "
                                    "(hepchain convert SRC DST --to salt-h5)."),
            run: Path = typer.Option(..., help="A `hepchain btag run` directory on the "
                                     "same jets (results.json, gn1.pt)."),
            out: Path = typer.Option(..., help="Where to write results.json with the "
                                     "salt rows added; an OUT named seed<N> also updates "
                                     "the aggregate over its parent's seed*/ (results"
                                     ".json, seeds.json), as bench leaves them."),
            time_file: Path | None = typer.Option(None, "--time", help="`/usr/bin/time -f "
                                                  "'%e %U %S' -o FILE` of `salt fit`."),
            name: str = typer.Option("salt GN1-like", help="Method name of salt's rows."),
    ) -> None:
        """Score salt's predictions with btag's metrics beside our GN1 (docs/btag.md)."""
        from rich.console import Console

        from hepchain.core.provenance import ProvenanceRecorder
        from hepchain.core.study import aggregate_seed_dirs
        from hepchain.reco.btag.salt.predictions import salt_comparison

        with ProvenanceRecorder({}, []) as recorder:  # this command's code, date, cost
            result = salt_comparison(salt_dir, h5, run, time_file, name)
        ours, prov = result.provenance, recorder.provenance  # ours: the run's (in a note)
        prov.config, prov.seeds, prov.datasets = ours.config, ours.seeds, ours.datasets
        prov.versions |= {k: v for k, v in ours.versions.items() if k.startswith("salt ")}
        result.workdir, result.provenance = str(out), prov
        result.save(out)
        Console().print(result.table(title=f"btag: {FULL} vs {name}"))
        if out.name.startswith("seed") and out.name[4:].isdigit():
            aggregate_seed_dirs(out.parent)
            Console().print(f"aggregate of the seed*/ runs: {out.parent / 'results.json'}")
