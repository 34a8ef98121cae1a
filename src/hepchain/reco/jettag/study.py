"""Study ``jettag``: the tagger zoo — BDT on high-level features, PFN, EFN, ParticleNet and
ParT on particles — trained on the same jets, splits and budget, judged on held-out jets.

``run`` runs one seed (the seed chooses the split and the initialisation); ``hepchain jettag
bench --seeds 3`` aggregates seeds. Settings and their meanings: ``hepchain jettag settings``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hepchain.core.result import Result
from hepchain.core.seeding import derive_seed
from hepchain.core.study import Study
from hepchain.reco.jettag import plots
from hepchain.reco.jettag.data import ParticleTensors, load_jets, particle_features, split
from hepchain.reco.jettag.evaluate import add_paired_auc_difference, add_tagger_metrics
from hepchain.reco.jettag.features import high_level_features
from hepchain.reco.jettag.models import build_network
from hepchain.reco.jettag.models.bdt import fit_bdt
from hepchain.reco.jettag.training import fit_network

#: (better, worse) pairs of the published ranking (ParT >= ParticleNet > PFN), compared paired
RANKING = (("ParT", "ParticleNet"), ("ParticleNet", "PFN"))


class JetTagStudy(Study):
    name = "jettag"
    description = "Jet tagging zoo: BDT, PFN, EFN, ParticleNet, ParT on the same jets"
    seed_doc = "003"

    def run(self, config: dict[str, Any], workdir: Path, seed: int) -> Result:
        result = Result(study=self.name, preset="")
        jets = load_jets(config["data"], result)                                       # data
        y = jets.labels
        train, val, test = split(y.size, config["split"], seed)
        high = high_level_features(jets.records)
        tensors = particle_features(jets.records, config["features"],
                                    int(config["max_particles"]))
        probs, histories = fit_zoo(config, high, tensors, y, len(jets.classes), train, val,
                                   seed, result)                                       # models
        for name, p in probs.items():                                                  # metrics
            add_tagger_metrics(result, name, jets.classes, y[val], p[val], y[test], p[test],
                               config["efficiencies"])
        if len(jets.classes) == 2:  # the literature's ranking, paired on the same test jets
            for better, worse in RANKING:
                if better in probs and worse in probs:
                    add_paired_auc_difference(result, better, worse, y[test],
                                              probs[better][test, 1], probs[worse][test, 1],
                                              derive_seed(seed, "bootstrap", better, worse))
            curves = {name: (y[test], p[test, 1]) for name, p in probs.items()}
            result.figures.append(plots.rejection_figure(
                curves, workdir / "rejection.png", baseline=next(iter(probs))))
        if histories:
            result.figures.append(plots.loss_figure(histories, workdir / "loss.png"))
        result.notes.append(
            f"{train.size} training, {val.size} validation and {test.size} test jets "
            f"({', '.join(jets.classes)}); working points fixed on the validation jets; ± is "
            "the test set's statistical error. ParticleNet and ParT are weaver-core's "
            "implementations; PFN, EFN and the BDT are ours. Throughput is measured on this "
            "(shared) machine.")
        return result


def fit_zoo(config: dict[str, Any], high: np.ndarray, tensors: ParticleTensors, y: np.ndarray,
            n_classes: int, train: np.ndarray, val: np.ndarray, seed: int, result: Result
            ) -> tuple[dict[str, np.ndarray], dict[str, list[dict[str, float]]]]:
    """Train every model of ``config["models"]`` (same jets, splits and budget); return the
    class probabilities of all jets per model and each network's training history. The cost
    rows (parameters, training and inference jets/s) go into ``result``."""
    probs: dict[str, np.ndarray] = {}
    histories: dict[str, list[dict[str, float]]] = {}
    for name, spec in config["models"].items():
        if name == "BDT":
            bdt = fit_bdt(high[train], y[train], high[val], y[val], spec,
                          derive_seed(seed, "bdt"))
            probs[name] = bdt.predict_proba(high)
            continue
        net = build_network(name, spec, tensors, n_classes)
        fitted = fit_network(net, tensors, y, train, val, config["train"], seed, name)
        probs[name] = fitted.score(np.arange(y.size))
        histories[name] = fitted.history
        result.add("trainable parameters", name, fitted.parameters)
        result.add("training jets/s", name, fitted.train_jets_per_s, unit="jets/s",
                   higher_is_better=True)
        result.add("inference jets/s", name, fitted.infer_jets_per_s, unit="jets/s",
                   higher_is_better=True)
    return probs, histories
