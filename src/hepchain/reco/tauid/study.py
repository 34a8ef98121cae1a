"""Study ``tauid``: tau identification from variable-length inputs (seed 001) — MLPs on
high-level variables and on padded objects, an LSTM, Deep Sets, a graph attention network and
a small transformer on the same candidates, splits and training budget, each with a
real-vs-fake and a decay-mode head, judged per prong on held-out candidates.

``run`` runs one seed (the seed chooses the split and the initialisation); ``hepchain tauid
bench --seeds 3`` aggregates seeds. Settings and their meanings: ``hepchain tauid settings``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hepchain.core.result import Result
from hepchain.core.study import Study
from hepchain.reco.tauid import plots
from hepchain.reco.tauid.candidates import OBJECT_FEATURES
from hepchain.reco.tauid.data import load_candidates, model_inputs, split
from hepchain.reco.tauid.evaluate import (
    PRONGS,
    add_ratio_rows,
    add_tau_metrics,
    mode_confusion,
    rejection_vs_pt,
)
from hepchain.reco.tauid.features import HIGH_LEVEL
from hepchain.reco.tauid.models import MODELS, build_model
from hepchain.reco.tauid.training import Fitted, fit_tagger


class TauIDStudy(Study):
    name = "tauid"
    description = "Tau ID on variable-length inputs: MLP, LSTM, Deep Sets, GAT, transformer"
    seed_doc = "001"

    def run(self, config: dict[str, Any], workdir: Path, seed: int) -> Result:
        result = Result(study=self.name, preset="")
        sel = config["selection"]
        cands = load_candidates(config["data"], sel, result)                           # data
        train, val, test = split(len(cands), config["split"], seed)
        inputs = model_inputs(cands, train, config["pt_bins"])
        fitted: dict[str, Fitted] = {}
        for key, spec in config["models"].items():                                     # models
            net = build_model(key, spec, len(OBJECT_FEATURES), len(HIGH_LEVEL),
                              int(sel["max_objects"]))
            fitted[MODELS[key][0]] = fit_tagger(net, inputs, cands, train, val, config["train"],
                                                float(config["mode_weight"]), seed, key)
        for name, f in fitted.items():                                                 # metrics
            add_tau_metrics(result, name, cands, f.score, f.mode_probs, val, test,
                            config["efficiencies"])
            result.add("trainable parameters", name, f.parameters)
            result.add("training CPU time", name, f.train_seconds, unit="s",
                       higher_is_better=False)
        wp = float(config["pt_plot_efficiency"])
        baseline = next(iter(fitted))
        add_ratio_rows(result, list(fitted), baseline, wp)
        for prong in PRONGS:                                                           # figures
            t = test[cands.n_core[test] == prong]
            result.figures.append(plots.rejection_figures(
                {name: (cands.is_tau[t], f.score[t]) for name, f in fitted.items()}, prong,
                workdir, baseline))
        result.figures.append(plots.rejection_vs_pt_figure(
            {name: rejection_vs_pt(cands, f.score, val, test, wp, config["pt_bins"])
             for name, f in fitted.items()}, config["pt_bins"], wp, workdir))
        for name, f in fitted.items():
            result.figures.append(plots.confusion_figure(mode_confusion(cands, f.mode_probs,
                                                                        test), name, workdir))
        result.figures.append(plots.loss_figure({n: f.history for n, f in fitted.items()},
                                                workdir))
        n_tau = int(cands.is_tau.sum())
        result.notes.append(
            f"{n_tau} real τ (Z→ττ, H→ττ) and {len(cands) - n_tau} fakes (QCD dijets); "
            f"{train.size} / {val.size} / {test.size} candidates for training / validation / "
            "test. Working points are fixed on the validation candidates of each prong; ± is "
            "the test set's statistical error. Fakes are pT-reweighted to the τ spectrum in "
            "training only. Deep Sets and the transformer use hepchain.nn; the GAT, LSTM and "
            "MLPs are ours (plain torch).")
        return result
