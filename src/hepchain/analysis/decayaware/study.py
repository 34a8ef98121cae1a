"""Study ``decayaware``: ttH(bb̄) vs semileptonic tt̄ + jets from the same objects (lepton,
missing pT, jets with b-tags) — a BDT on standard high-level variables against a set
transformer trained with ``L = L_class + α L_hop + β L_assign``: the seed-002 hop-count
matrix along the decay chain, SPANet-style jet assignment, both, or neither (α = β = 0).

``run`` runs one seed (it chooses the split and the initialisation); the paired statistics
over seeds come from ``hepchain decayaware bench``. Settings: ``hepchain decayaware settings``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hepchain.analysis.decayaware import evaluate, plots
from hepchain.analysis.decayaware.data import load_samples, split, subsample
from hepchain.analysis.decayaware.highlevel import high_level
from hepchain.analysis.decayaware.training import Fitted, fit_network
from hepchain.core import plotting
from hepchain.core.result import Result
from hepchain.core.seeding import derive_seed
from hepchain.core.study import Study
from hepchain.reco.jettag.evaluate import add_paired_auc_difference
from hepchain.reco.jettag.models.bdt import fit_bdt

BASE = "transformer α = 0"
BDT = "BDT (high-level)"
#: the row label of the hop model chosen on validation (stable over seeds, for bench)
BEST = "transformer hop, best α (validation)"


class DecayAwareStudy(Study):
    name = "decayaware"
    description = "ttH(bb) vs tt+jets: decay-aware transformer (hop-count aux) vs SPANet-style vs BDT"
    seed_doc = "002"

    def run(self, config: dict[str, Any], workdir: Path, seed: int) -> Result:
        result = Result(study=self.name, preset="")
        data = load_samples(config, result)                                            # data
        y, obj = data.labels, data.objects
        train, val, test = split(y, config["split"], seed)
        hl = high_level(data.events, data.btag, data.score)
        bdt = fit_bdt(hl[train], y[train], hl[val], y[val], config["bdt"], seed)       # models
        scores = {BDT: (bdt.predict_proba(hl[val])[:, 1], bdt.predict_proba(hl[test])[:, 1])}
        weights = variants(config)
        nets = {name: fit_network(obj, y, train, val, test, config, a, b, seed)
                for name, (a, b) in weights.items()}
        scores |= {name: (f.val_scores, f.scores) for name, f in nets.items()}
        lumi, eff = float(config["data"]["luminosity_fb"]), float(config["efficiency"])
        for name, (s_val, s_test) in scores.items():                                   # metrics
            evaluate.add_classification(result, name, y[val], s_val, y[test], s_test,
                                        data.sample[test], data.yields, eff, lumi)
        best = best_hop_model(nets, y[val])
        add_paired_auc_difference(result, BEST, BASE, y[test], nets[best].scores,
                                  nets[BASE].scores, derive_seed(seed, "bootstrap", "base"))
        add_paired_auc_difference(result, BEST, BDT, y[test], nets[best].scores,
                                  scores[BDT][1], derive_seed(seed, "bootstrap", "bdt"))
        result.add("best α (validation AUC)", BEST, weights[best][0])
        add_truth_metrics(result, nets, obj.take(test), y[test], obj.hops[train],
                          int(config["model"]["n_hops"]))
        curves = learning_curves(obj, y, (train, val, test), config, seed, nets,
                                 (best, weights[best][0]), result)
        result.figures += [                                                            # figures
            plotting.roc_curves({n: (y[test], s[1]) for n, s in scores.items()},
                                workdir / "roc.png").name,
            plots.curve_figure(curves, workdir / "learning_curves.png",
                               "fraction of the training set", "test AUC", logx=True).name,
            plots.curve_figure({"hop head (β = 0)": alpha_scan(result, weights)},
                               workdir / "alpha_scan.png", "α (hop-loss weight)",
                               "test AUC").name]
        result.notes.append(
            f"Selected events: {int(y.sum())} ttH, {int((y == 0).sum())} tt̄ + jets "
            f"(selection efficiencies {', '.join(f'{k} {v:.3f}' for k, v in data.efficiencies.items())}); "
            f"{train.size} train / {val.size} validation / {test.size} test. Best α chosen "
            f"on the validation AUC: {best}. ± is the test set's error (Hanley–McNeil, "
            "bootstrap for paired differences, Poisson for S/√B); the paired statistics over "
            "seeds come from `hepchain decayaware bench`. " + data.tagger)
        return result

    def add_commands(self, app: Any) -> None:
        """``hepchain decayaware ttbb-speed``: the ttbb prefilter's speed-up, measured."""
        import typer

        @app.command("ttbb-speed")
        def ttbb_speed(events: int = typer.Option(100, help="Accepted ttbb events per variant."),
                       seed: int = typer.Option(5, help="Generation seed.")) -> None:
            """CPU seconds for accepted ttbb events without / with filtering before
            hadronisation (the collider producer's shard function, in this process)."""
            from hepchain.analysis.decayaware.ttbb import measure_prefilter

            t = measure_prefilter(events, seed)
            for label, v in (("without", t.full), ("with", t.prefilter)):
                (eps, d_eps), (ms, d_ms) = v.acceptance, v.ms_per_accepted
                print(f"{label} prefilter: {v.accepted} accepted of {v.generated} generated "
                      f"(acceptance {100 * eps:.2f} ± {100 * d_eps:.2f} %), {v.cpu_s:.1f} CPU-s"
                      f" = {v.ms_per_generated:.2f} ms per generated, {ms:.0f} ± {d_ms:.0f} ms "
                      f"per accepted event; ghost-b jets per event {v.b_jets:.2f}")
            s, ds = t.speedup
            print(f"speed-up per accepted event {s:.2f} ± {ds:.2f}x (per generated event "
                  f"{t.full.ms_per_generated / t.prefilter.ms_per_generated:.2f}x)")


def variants(config: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """(α, β) of every network: α = 0, each α of the scan, the assignment head, and both."""
    beta, last = float(config["beta"]), float(config["alphas"][-1])
    out = {BASE: (0.0, 0.0)}
    out |= {f"transformer hop α = {float(a):g}": (float(a), 0.0) for a in config["alphas"]}
    out[f"transformer assignment β = {beta:g}"] = (0.0, beta)
    out[f"transformer hop α = {last:g} + assignment"] = (last, beta)
    return out


def alpha_scan(result: Result, weights: dict[str, tuple[float, float]]
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(α, test AUC, its error) of the networks without the assignment head."""
    rows = sorted((a, result.get("AUC", name)) for name, (a, b) in weights.items() if b == 0)
    return (np.array([a for a, _ in rows]), np.array([m.value for _, m in rows]),
            np.array([m.std for _, m in rows]))


def best_hop_model(nets: dict[str, Fitted], y_val: np.ndarray) -> str:
    """The hop-head model (α > 0, no assignment) with the highest validation AUC."""
    from hepchain.core.metrics import roc_auc

    hop = [n for n in nets if n.startswith("transformer hop") and "assignment" not in n]
    return max(hop, key=lambda n: roc_auc(y_val, nets[n].val_scores))


def add_truth_metrics(result: Result, nets: dict[str, Fitted], obj, y: np.ndarray,
                      train_hops: np.ndarray, n_hops: int) -> None:
    """Hop-matrix accuracy (beside always guessing the training set's most frequent count)
    and assignment efficiencies of the models with those heads."""
    mode = evaluate.hop_mode(train_hops, n_hops)
    acc, err, _ = evaluate.hop_accuracy(np.full_like(obj.hops, mode), obj.hops, n_hops)
    hop_name = "hop-matrix accuracy (matched pairs)"
    result.add(hop_name, f"most frequent count ({mode}, training set)", acc, std=err,
               higher_is_better=True)
    for name, f in nets.items():
        if "hop" in name:
            acc, err, _ = evaluate.hop_accuracy(f.hops, obj.hops, n_hops)
            result.add(hop_name, name, acc, std=err, higher_is_better=True)
        if "assignment" in name:
            eff = evaluate.assignment_efficiency(f.roles, obj.roles, y)
            for key, label in (("event", "all six jets, fully matched ttH"),
                               ("H", "both b_H jets")):
                result.add(f"assignment efficiency ({label})", name, eff[key][0],
                           std=eff[key][1], higher_is_better=True)


def learning_curves(obj, y: np.ndarray, splits: tuple[np.ndarray, ...], config: dict[str, Any],
                    seed: int, nets: dict[str, Fitted], best: tuple[str, float],
                    result: Result) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Test AUC of α = 0 and the best α at each training fraction (1.0 from the full fits)."""
    from hepchain.core.metrics import roc_auc
    from hepchain.core.twosample import auc_error

    train, val, test = splits
    fractions = sorted({*map(float, config["learning_curve"]), 1.0})
    n1 = int(y[test].sum())
    out, small = {}, {}
    for name, label, a in ((BASE, BASE, 0.0), (best[0], BEST, best[1])):
        aucs = []
        for frac in fractions:
            scores = nets[name].scores if frac == 1.0 else fit_network(
                obj, y, subsample(train, frac, seed), val, test, config, a, 0.0, seed).scores
            small[label, frac] = scores
            auc = roc_auc(y[test], scores)
            aucs.append((auc, auc_error(auc, n1, y[test].size - n1)))
            if frac < 1.0:
                result.add(f"AUC at {frac:.0%} of the training set", label, auc,
                           std=aucs[-1][1], higher_is_better=True)
        out[label] = (np.array(fractions), *map(np.array, zip(*aucs, strict=True)))
    low = fractions[0]
    add_paired_auc_difference(result, BEST, BASE, y[test], small[BEST, low], small[BASE, low],
                              derive_seed(seed, "bootstrap", "low"))
    result.metrics[-1].name += f" at {low:.0%} of the training set"
    return out
