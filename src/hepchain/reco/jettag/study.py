"""Study ``jettag``: the tagger zoo — BDT on high-level features, PFN, EFN, ParticleNet and
ParT on particles — trained on the same jets, splits and budget, judged on held-out jets.

``run`` runs one seed (the seed chooses the split and the initialisation); ``hepchain jettag
bench --seeds 3`` aggregates seeds. Settings and their meanings: ``hepchain jettag settings``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hepchain.core.errors import UsageError
from hepchain.core.result import Result
from hepchain.core.seeding import derive_seed
from hepchain.core.study import Study
from hepchain.reco.jettag import plots
from hepchain.reco.jettag.cost import flops_per_jet
from hepchain.reco.jettag.data import ParticleTensors, load_jets, particle_features, split
from hepchain.reco.jettag.evaluate import add_confusion, add_ranking, add_tagger_metrics
from hepchain.reco.jettag.export import export_and_check
from hepchain.reco.jettag.features import high_level_features
from hepchain.reco.jettag.models import build_network
from hepchain.reco.jettag.models.bdt import fit_bdt
from hepchain.reco.jettag.training import Fitted, fit_network, tensors_of

#: jets in the batch on which the forward FLOPs are counted
FLOP_BATCH = 32


class JetTagStudy(Study):
    name = "jettag"
    description = ("Jet tagging zoo: BDT, jet-image CNN, GRU, PFN, EFN, LorentzNet, ParticleNet, "
                   "ParT, L-GATr on the same jets")
    seed_doc = "003"

    def run(self, config: dict[str, Any], workdir: Path, seed: int) -> Result:
        result = Result(study=self.name, preset="")
        check_onnx_names(config)
        jets = load_jets(config["data"], result)                                       # data
        y = jets.labels
        train, val, test = split(y.size, config["split"], seed)
        high = high_level_features(jets.records)
        tensors = particle_features(jets.records, config["features"],
                                    int(config["max_particles"]))
        probs, networks = fit_zoo(config, high, tensors, y, len(jets.classes), train, val,
                                  seed, result)                                        # models
        for name, p in probs.items():                                                  # metrics
            add_tagger_metrics(result, name, jets.classes, y[val], p[val], y[test], p[test],
                               config["efficiencies"], config["working_points"])
        if len(jets.classes) == 2:
            add_ranking(result, {name: p[test, 1] for name, p in probs.items()}, y[test],
                        derive_seed(seed, "bootstrap"))
            curves = {name: (y[test], p[test, 1]) for name, p in probs.items()}  # figures
            result.figures.append(plots.rejection_figure(
                curves, workdir / "rejection.png", baseline=next(iter(probs))))
        else:
            confusion = {name: add_confusion(result, name, jets.classes, y[test], p[test])
                         for name, p in probs.items()}
            result.figures.append(plots.confusion_figure(confusion, jets.classes,
                                                         workdir / "confusion.png"))
        if networks:
            result.figures.append(plots.loss_figure(
                {name: fitted.history for name, fitted in networks.items()},
                workdir / "loss.png"))
        for name in config["onnx"]:                                                    # export
            result.add("ONNX max |p_onnx − p_torch| (test jets)", name, export_and_check(
                networks[name].model, tensors_of(tensors, test), workdir / f"{name}.onnx",
                jets.classes), higher_is_better=False)
        result.notes.append(
            f"{train.size} training, {val.size} validation and {test.size} test jets "
            f"({', '.join(jets.classes)}); working points fixed on the validation jets; ± is "
            "the test set's statistical error. ParticleNet and ParT are weaver-core's "
            "implementations, L-GATr the lgatr package's; PFN, EFN, the jet-image CNN, the GRU, "
            "LorentzNet and the BDT are ours. Throughput is measured on this "
            "(shared) machine.")
        return result

    def add_commands(self, app: Any) -> None:
        """``hepchain jettag compare`` (weaver-core side by side) and ``scaling``."""
        from hepchain.reco.jettag.verbs import add_verbs

        add_verbs(self, app)


def check_onnx_names(config: dict[str, Any]) -> None:
    """UsageError, before anything runs, when ``onnx`` names a model that is not a network."""
    networks = [name for name in config["models"] if name != "BDT"]
    for name in config["onnx"]:
        if name not in networks:
            raise UsageError(f"onnx names {name!r}, which is not a trained network; use some "
                             f"of {', '.join(networks) or 'none (no networks are trained)'}.")


def fit_zoo(config: dict[str, Any], high: np.ndarray, tensors: ParticleTensors, y: np.ndarray,
            n_classes: int, train: np.ndarray, val: np.ndarray, seed: int, result: Result
            ) -> tuple[dict[str, np.ndarray], dict[str, Fitted]]:
    """Train every model of ``config["models"]`` (same jets, splits and budget); return the
    class probabilities of all jets per model and the trained networks. The cost rows
    (parameters, training and inference jets/s) go into ``result``."""
    probs: dict[str, np.ndarray] = {}
    networks: dict[str, Fitted] = {}
    for name, spec in config["models"].items():
        if name == "BDT":
            bdt = fit_bdt(high[train], y[train], high[val], y[val], spec,
                          derive_seed(seed, "bdt"))
            probs[name] = bdt.predict_proba(high)
            continue
        net = build_network(name, spec, tensors, n_classes, seed)
        fitted = networks[name] = fit_network(net, tensors, y, train, val, config["train"],
                                              seed, name)
        probs[name] = fitted.score(np.arange(y.size))
        fitted.model.cpu()  # trained on train.device; FLOPs and ONNX export run on the CPU
        result.add("trainable parameters", name, fitted.parameters)
        result.add("training jets/s", name, fitted.train_jets_per_s, unit="jets/s",
                   higher_is_better=True)
        result.add("inference jets/s", name, fitted.infer_jets_per_s, unit="jets/s",
                   higher_is_better=True)
        result.add("forward FLOPs per jet", name, flops_per_jet(
            fitted.model, tensors_of(tensors, val[:FLOP_BATCH])), higher_is_better=False)
    return probs, networks
