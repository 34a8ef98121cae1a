"""Study ``btag``: flavour tagging of ttbar jets (seed 002, ATLAS GN1).

Taggers compared on the same jets and splits: IP3D-like LLR, DL1-like MLP and xgboost on
high-level (IP + secondary-vertex + soft-lepton) features, Deep Sets over tracks, and the
GN1-style network with its auxiliary track-origin and same-vertex tasks plus ablations.
Working points are set on the validation jets and applied to the test jets; GN1 is compared
with both DL1-like baselines and with the stronger of the two on validation. See
``docs/btag.md``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hepchain.core import plotting
from hepchain.core.compare import load_seed_results
from hepchain.core.errors import UsageError
from hepchain.core.result import Reference, Result
from hepchain.core.seeding import derive_seed, seed_everything
from hepchain.core.standardise import Standardiser
from hepchain.core.study import Study
from hepchain.core.threads import set_torch_threads
from hepchain.nn.mlp import MLP
from hepchain.reco.btag import compare, evaluate
from hepchain.reco.btag.export import export_onnx, onnx_agreement, save_tagger
from hepchain.reco.btag.gn1 import FULL, btag_jets, check_gn1, high_level_inputs, track_batches
from hepchain.reco.btag.highlevel import HL_FEATURES
from hepchain.reco.btag.labels import ORIGIN_CLASSES, origin_class_weights
from hepchain.reco.btag.models import DeepSetsTagger, GN1Tagger
from hepchain.reco.btag.plots import confusion, rejection_vs_pt
from hepchain.reco.btag.preprocessing import Preprocessor
from hepchain.reco.btag.table import JetTable
from hepchain.reco.btag.training import (
    fit_mlp,
    fit_track_model,
    fit_xgboost,
    predict_track_model,
)

GN2_REF = "GN2 vs DL1d, ATLAS data, 70% WP (arXiv:2505.19689)"
BASELINES = ("DL1-like MLP", "DL1-like xgboost")
STRONGEST = "strongest DL1-like (validation)"
SPLITS = ("val", "test")


class BTagStudy(Study):
    """Flavour tagging with a GN1-style network and its baselines on ttbar jets."""

    name = "btag"
    description = ("Flavour tagging of ttbar jets: IP3D-like, SV + DL1-like MLP/xgboost, "
                   "DeepSets, GN1-style with auxiliary vertex and track-origin tasks")
    seed_doc = "002"

    def run(self, config: dict[str, Any], workdir: Path, seed: int) -> Result:
        set_torch_threads(int(config["train"].get("threads") or 1))
        seed_everything(seed)
        result = Result(study=self.name, preset="")
        classes = list(config["classes"])
        if not {"b", "c", "light"} <= set(classes):
            raise UsageError(f"classes must include b, c and light (optionally tau), got "
                             f"{classes}.")
        check_gn1(config["gn1"])
        t0 = time.perf_counter()
        jets = btag_jets(config, result)
        tabs, labs = jets.tables, jets.labels
        test_source = (f"test jets from a separate sample of {jets.n_test_events} events (own "
                       "seed stream)" if jets.n_test_events else "test jets from the split")
        result.notes.append(
            f"{jets.n_events} ttbar events -> {len(jets.event)} jets; {test_source} "
            f"({', '.join(f'{k}: {len(v)}' for k, v in tabs.items())}); "
            f"data prep {time.perf_counter() - t0:.0f} s.")
        for name, n in zip(classes, np.bincount(labs["test"], minlength=len(classes)),
                           strict=True):
            result.add(f"test {name}-jets", "data", float(n))

        scores: dict[str, dict[str, np.ndarray]] = {}
        probs: dict[str, dict[str, np.ndarray]] = {}
        # -------------------------------------------------- IP3D-like + high-level features
        llr, hl = high_level_inputs(config, jets)
        scores["IP3D-like"] = {k: llr[k]["ip3d_llr_bl"] for k in SPLITS}
        hl_scale = Standardiser.fit(hl["train"])
        hl_t = {k: torch.from_numpy(hl_scale.transform(v).astype(np.float32))
                for k, v in hl.items()}
        y_t = {k: torch.from_numpy(v) for k, v in labs.items()}
        sv_eff = {name: float(hl["test"][labs["test"] == i, HL_FEATURES.index("sv_found")].mean())
                  for i, name in enumerate(classes)}
        for name, eff in sv_eff.items():
            result.add(f"SV finding efficiency, {name}-jets", "SV finder", eff)
        slt = HL_FEATURES.index("slt_found")
        for i, name in enumerate(classes):
            result.add(f"soft-lepton fraction, {name}-jets", "lepton ID",
                       float(hl["test"][labs["test"] == i, slt].mean()))

        mlp = MLP(hl["train"].shape[1], config["dl1"]["hidden"], len(classes))
        trainer, hist = fit_mlp(mlp, (hl_t["train"], y_t["train"]), (hl_t["val"], y_t["val"]),
                                config["train_dl1"], derive_seed(seed, "dl1"))
        probs[BASELINES[0]] = {k: torch.softmax(trainer.predict((hl_t[k],)), -1).numpy()
                               for k in SPLITS}
        histories = {BASELINES[0]: hist.epochs}

        bdt = fit_xgboost(hl["train"], labs["train"], hl["val"], labs["val"], len(classes),
                          dict(config["xgboost"]), derive_seed(seed, "xgb") % 2**31)
        probs[BASELINES[1]] = {k: bdt.predict_proba(hl[k]) for k in SPLITS}

        # -------------------------------------------------- track models
        prep, batches = track_batches(jets)
        origin_w = origin_class_weights(tabs["train"].origin)
        lw = dict(config["loss_weights"])
        models: dict[str, Any] = {}
        outputs: dict[str, dict[str, np.ndarray]] = {}
        n_trk, n_jet = len(prep.track_features), len(prep.jet_features)
        track_models: dict[str, tuple[torch.nn.Module, tuple[str, ...]]] = {
            "DeepSets": (DeepSetsTagger(n_trk, n_jet, len(classes), **config["deepsets"]),
                         ("jet",))}
        for name, tasks in config["gn1_variants"].items():
            seed_everything(derive_seed(seed, name))
            track_models[name] = (GN1Tagger(n_trk, n_jet, len(classes), tasks=tuple(tasks),
                                            **config["gn1"]), tuple(tasks))
        for name, (model, tasks) in track_models.items():
            t1, cpu1 = time.perf_counter(), time.process_time()
            trainer, hist = fit_track_model(model, tasks, batches["train"], batches["val"],
                                            config["train"], derive_seed(seed, name), lw,
                                            origin_w)
            evaluate.add_training_cost(result, name, time.perf_counter() - t1,
                                       time.process_time() - cpu1,
                                       len(labs["train"]) * len(hist.epochs))
            outputs[name] = predict_track_model(trainer, batches["test"])
            probs[name] = {"test": outputs[name]["jet"],
                           "val": predict_track_model(trainer, batches["val"])["jet"]}
            models[name] = trainer.model
            histories[name] = hist.epochs
            result.notes.append(f"{name}: {len(hist.epochs)} epochs (best {hist.best_epoch}), "
                                f"{time.perf_counter() - t1:.0f} s, "
                                f"{sum(p.numel() for p in model.parameters())} parameters.")

        for name, p in probs.items():
            scores[name] = {k: evaluate.discriminant(p[k], classes, config["fc"]) for k in SPLITS}
        baseline = self._choose_baseline(result, scores, labs["val"], classes,
                                         float(config["efficiencies"][0]))
        self._jet_metrics(result, scores, labs, tabs, classes, config, workdir, baseline)
        test = tabs["test"]
        self._aux_metrics(result, outputs, test, labs["test"], classes, workdir)
        result.figures.append(plotting.loss_curves(
            histories, workdir / "loss_curves.png", keys=("val_jet", "val_loss")).name)

        if FULL in models:
            self._export(result, models[FULL], config, classes, prep, batches["test"], workdir)
        result.notes.append(f"D_b = ln(p_b / (f_c p_c + (1 - f_c) p_light)) with f_c = "
                            f"{config['fc']}; IP3D-like uses its b/light LLR.")
        return result

    def add_commands(self, app: Any) -> None:
        """``hepchain btag compare BENCH_DIR``: paired rejection ratios over the seeds."""
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
                              f"{r['p_vs_1']:.2g}", f"{r['goal']:g}", "yes" if r["goal_met"] else "no")
            Console().print(table)
            (Path(bench_dir) / "paired.json").write_text(json.dumps(rows, indent=1))

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

            from hepchain.core.provenance import command_line
            from hepchain.core.study import aggregate_seed_dirs
            from hepchain.reco.btag.salt.predictions import salt_comparison

            result = salt_comparison(salt_dir, h5, run, time_file, name)
            result.workdir, result.provenance.command = str(out), command_line()
            result.save(out)
            Console().print(result.table(title=f"btag: {FULL} vs {name}"))
            if out.name.startswith("seed") and out.name[4:].isdigit():
                aggregate_seed_dirs(out.parent)
                Console().print(f"aggregate of the seed*/ runs: {out.parent / 'results.json'}")

    # ------------------------------------------------------------------ metrics
    @staticmethod
    def _choose_baseline(result: Result, scores: dict[str, dict[str, np.ndarray]],
                         label: np.ndarray, classes: list[str], eff: float) -> str:
        """The DL1-like baseline with the higher light rejection on the validation jets
        (half-count estimator, :func:`evaluate.selection_score`)."""
        val = {}
        for name in BASELINES:
            rej = evaluate.rejections((label, scores[name]["val"]), (label, scores[name]["val"]),
                                      classes, [eff], ("light",))[("light", eff)]
            val[name] = evaluate.selection_score(rej)
            result.add(f"validation light rejection @ {eff:.0%} (baseline choice)", name,
                       val[name], higher_is_better=True)
        best = max(BASELINES, key=val.__getitem__)
        result.notes.append(f"Strongest DL1-like baseline on validation: {best} (light "
                            f"rejection @ {eff:.0%}: " + ", ".join(f"{k} {v:.0f}" for k, v in
                                                                   val.items()) + ").")
        return best

    def _jet_metrics(self, result: Result, scores: dict[str, dict[str, np.ndarray]],
                     labs: dict[str, np.ndarray], tabs: dict[str, JetTable],
                     classes: list[str], config: dict[str, Any], workdir: Path,
                     baseline: str) -> None:
        effs = list(config["efficiencies"])
        label = labs["test"]
        rej = {name: evaluate.rejections((labs["val"], s["val"]), (label, s["test"]), classes,
                                         effs) for name, s in scores.items()}
        for (bkg, eff) in rej[baseline]:
            for name, r in rej.items():
                evaluate.add_rejection_rows(result, name, bkg, eff, r[(bkg, eff)])
        wp = effs[0]
        refs = {"light": 1.8, "c": 3.5}
        for name, r in rej.items():
            if not name.startswith(FULL):
                continue
            for bkg, ref in refs.items():
                for base in (*BASELINES, STRONGEST):
                    other = rej[baseline if base == STRONGEST else base][(bkg, wp)]
                    ratio, err = evaluate.rejection_ratio(r[(bkg, wp)], other)
                    title = f"{bkg} rejection ratio to {base} @ {wp:.0%}"
                    result.add(title, name, ratio, std=err, higher_is_better=True,
                               reference=Reference(ref, GN2_REF) if base == STRONGEST else None)
                    if base == STRONGEST:
                        result.add(f"{title}, binomial error", name, err, higher_is_better=False)
        if FULL in rej and f"{FULL} no-aux" in rej:
            gain, err = evaluate.rejection_ratio(rej[FULL][("light", wp)],
                                                rej[f"{FULL} no-aux"][("light", wp)])
            title = f"aux-task gain (light rej. {FULL} / {FULL} no-aux) @ {wp:.0%}"
            result.add(title, FULL, gain, std=err, higher_is_better=True)
            result.add(f"{title}, binomial error", FULL, err, higher_is_better=False)
        b = classes.index("b")
        test = {name: s["test"] for name, s in scores.items()}
        for bkg in ("light", "c"):
            k = classes.index(bkg)
            sel = (label == b) | (label == k)
            curves = {name: (label[sel] == b, s[sel]) for name, s in test.items()}
            result.figures.append(plotting.rejection_curves(
                curves, workdir / f"rejection_{bkg}.png", baseline=baseline,
                xlabel="b-jet efficiency", ylabel=f"{bkg}-jet rejection").name)
        edges = list(config["pt_bins"])
        pt = {k: tabs[k].jet[:, 0] for k in SPLITS}
        per_pt = {name: evaluate.rejection_vs_pt((labs["val"], scores[name]["val"], pt["val"]),
                                                 (label, test[name], pt["test"]), classes,
                                                 edges, wp)
                  for name in scores if name in (baseline, "IP3D-like", FULL)}
        for name, rows in per_pt.items():
            for lo, hi, r in zip(edges[:-1], edges[1:], rows, strict=True):
                if r is not None:
                    result.add_rejection(f"light rejection @ {wp:.0%}, pT {lo:g}-{hi:g} GeV",
                                         name, r, higher_is_better=True)
        result.figures.append(rejection_vs_pt(per_pt, edges, workdir / "rejection_vs_pt.png",
                                              f"light rejection @ {wp:.0%} b-eff").name)
        if FULL in test:
            result.figures.append(plotting.histograms(
                {f"{c}-jets": test[FULL][label == i] for i, c in enumerate(classes)},
                workdir / "db_gn1.png", xlabel=f"{FULL} D_b", logy=True).name)

    def _aux_metrics(self, result: Result, outputs: dict[str, dict[str, np.ndarray]],
                     test: JetTable, label: np.ndarray, classes: list[str],
                     workdir: Path) -> None:
        b_jets = label == classes.index("b")
        for name, out in outputs.items():
            if "track" in out:
                cm, aucs = evaluate.origin_metrics(test.origin, out["track"], test.mask)
                for cls, auc in aucs.items():
                    result.add(f"track-origin AUC {cls}", name, auc, higher_is_better=True)
                if name == FULL:
                    result.figures.append(confusion(cm, ORIGIN_CLASSES,
                                                    workdir / "origin_confusion.png",
                                                    f"{name} track origin (test)").name)
            if "vertex" in out:
                vm = evaluate.vertex_metrics(test.vertex, test.origin, out["vertex"],
                                             test.mask, b_jets)
                result.add("same-vertex pair precision", name, vm["pair_precision"],
                           higher_is_better=True)
                result.add("same-vertex pair recall", name, vm["pair_recall"],
                           higher_is_better=True)
                result.add("b-hadron vertex found (fraction of b-jets)", name,
                           vm["b_vertex_efficiency"], n=int(vm["b_vertex_jets"]),
                           higher_is_better=True)

    def _export(self, result: Result, model: GN1Tagger, config: dict[str, Any],
                classes: list[str], prep: Preprocessor, test: tuple[torch.Tensor, ...],
                workdir: Path) -> None:
        save_tagger(model, dict(config["gn1"]), classes, prep, workdir / "gn1.pt")
        if not config.get("onnx", True):
            return
        sample = tuple(x[:256] for x in test[:3])
        path = export_onnx(model.eval(), sample, workdir / "gn1.onnx", classes, prep)
        diff = onnx_agreement(model, path, tuple(x[:1024] for x in test[:3]))
        result.add("ONNX vs torch max |Δp|", FULL, diff, higher_is_better=False)

