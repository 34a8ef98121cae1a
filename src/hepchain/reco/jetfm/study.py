"""Study ``jetfm``: a jet foundation model — a VQ-VAE constituent tokeniser, a ParT backbone
pre-trained on unlabelled jets with masked particle modelling (MPM: tokens; MPMv2: continuous
features) and/or generative next-token prediction (which also makes it a jet generator), then
fine-tuned on each task (top vs QCD, H→bb̄ vs QCD) with a fraction of the labels, against the
same architecture trained from scratch.

``run`` runs one seed (the seed chooses the split, the labelled subsets and the
initialisation); ``hepchain jetfm bench --seeds 3`` aggregates seeds; ``hepchain jetfm
finetune --backbone PATH --data PATH`` fine-tunes a saved backbone on a user's jets.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hepchain.core import plotting
from hepchain.core.result import Reference, Result
from hepchain.core.seeding import derive_seed
from hepchain.core.study import Study
from hepchain.reco.jetfm import plots
from hepchain.reco.jetfm.backbone import KINEMATICS, JetBackbone, save_backbone
from hepchain.reco.jetfm.data import PretrainJets, pretraining_jets
from hepchain.reco.jetfm.evaluate import add_generation_metrics, jet_observables
from hepchain.reco.jetfm.finetune import (
    MODES,
    JetClassifier,
    embed,
    fit_classifier,
    fit_linear_probe,
    label_subset,
    save_classifier,
)
from hepchain.reco.jetfm.generative import NextTokenModel, generate, next_token_loss
from hepchain.reco.jetfm.mpm import (
    MaskedFeatureModel,
    MaskedParticleModel,
    mpm_objective,
    mpmv2_objective,
)
from hepchain.reco.jetfm.pretraining import pretrain
from hepchain.reco.jetfm.tasks import TaskJets, check_tasks, load_task
from hepchain.reco.jetfm.tokeniser import VQVAE, fit_tokeniser, token_quality, tokenise
from hepchain.reco.jettag.data import ParticleTensors
from hepchain.reco.jettag.evaluate import add_paired_auc_difference, add_tagger_metrics

OBJECTIVES = {"mpm": "MPM", "mpmv2": "MPMv2", "generative": "next-token"}
# Published gains of pre-training, ../shared/reference/tagging.md §12 (different dataset: the
# public top-tagging sample, read off arXiv:2510.24066's figure): ParT 1/ε_B at ε_S = 0.3 with
# all labels, from scratch and pre-trained then fine-tuned. No published number there fits
# the 0.1-10 % rows or the H→bb̄ task (HEP-JEPA's is 10-class accuracy at 0.05 / 0.5 %).
REJECTION_REFERENCES = {
    ("top_qcd", 1.0, "fine-tuned"): Reference(2750.0, "ParT pre-trained + fine-tuned, all "
                                                      "labels, arXiv:2510.24066 (≈, figure)"),
    ("top_qcd", 1.0, "scratch"): Reference(1600.0, "ParT from scratch, all labels, "
                                                   "arXiv:2510.24066 (≈, figure)"),
}
REFERENCE_EFFICIENCY = 0.3


class JetFMStudy(Study):
    name = "jetfm"
    description = "Jet foundation model: VQ-VAE tokens, MPM / next-token pre-training, few-label fine-tuning"
    seed_doc = "002"

    def run(self, config: dict[str, Any], workdir: Path, seed: int) -> Result:
        result = Result(study=self.name, preset="")
        tasks = [load_task(config, name, result, seed)                                 # data
                 for name in check_tasks(config["tasks"])]
        first = tasks[0]
        t = first.tensors
        pre = pretraining_jets(config, t, (first.train, first.val, first.test), result, seed)
        tokeniser, histories = self._tokeniser(config, pre, t.names, result, seed)              # tokens
        tokens = tokenise(tokeniser, pre.features, pre.mask)
        backbones = {}
        for objective in config["objectives"]:                                         # pre-train
            backbones[objective], histories[OBJECTIVES[objective]] = self._pretrain(
                objective, config, t, pre, tokens, tokeniser, seed)
            save_backbone(backbones[objective].backbone, workdir / f"backbone-{objective}.pt",
                          t.names, objective)
        result.figures.append(plotting.loss_curves(
            histories, workdir / "pretraining_loss.png", title="pre-training").name)
        if "generative" in backbones:                                                 # generate
            self._generation(config, t, pre, tokeniser, backbones["generative"], result,
                             workdir, seed)
        largest = max(self._finetune(config, task, {k: m.backbone for k, m in                # fine-tune
                                                    backbones.items()}, result, workdir, seed)
                      for task in tasks)
        result.add("pre-training jets / largest labelled set", "data", pre.train.size / largest,
                   higher_is_better=True)
        sizes = "; ".join(f"{k.title}: {k.train.size} labelled training, {k.val.size} "
                          f"validation and {k.test.size} test jets" for k in tasks)
        result.notes.append(
            f"{pre.train.size} unlabelled pre-training jets; {sizes}; each label fraction "
            "draws its training and validation jets per class; working points fixed on that "
            "validation subset; ± is the test set's statistical error. Fine-tuned and scratch "
            "models share one training budget (finetune_train); the linear probe is fitted "
            "to convergence on the frozen backbone's precomputed embeddings with its own "
            "budget (probe_train), on the same labelled training and validation jets. "
            "Every model's initialisation is seeded by its objective, task and fraction. "
            "References: different "
            "dataset (public top-tagging sample, all labels); none published fits the lower "
            "label fractions or H→bb̄. The backbone is weaver-core's ParticleTransformer; "
            "tokeniser, objectives and heads are ours.")
        return result

    def add_commands(self, app: Any) -> None:
        """``hepchain jetfm finetune --backbone PATH --data PATH``: fine-tune a saved backbone
        on a user's labelled jets (:mod:`hepchain.reco.jetfm.release`)."""
        import typer

        @app.command("finetune")
        def finetune_cmd(
                backbone: Path = typer.Option(..., help="A backbone-*.pt of `jetfm run`."),
                data: Path = typer.Option(..., help="Labelled jets .npz (features, mask, "
                                                    "labels[, feature_names])."),
                out: Path = typer.Option(Path("jetfm-finetune"), help="Output directory."),
                preset: str = typer.Option("quick", help="Preset whose finetune_train is used."),
                seed: int = typer.Option(0, help="Split and initialisation seed.")) -> None:
            """Fine-tune a pre-trained backbone end to end; writes OUT/classifier.pt."""
            from hepchain.reco.jetfm.release import finetune_file

            settings = self.config(preset)["finetune_train"]
            for name, value in finetune_file(backbone, data, out, settings, seed).items():
                typer.echo(f"{name}: {value:.4g}")
            typer.echo(f"classifier: {out / 'classifier.pt'}")

    @staticmethod
    def _tokeniser(config: dict[str, Any], pre: PretrainJets, names: tuple[str, ...],
                   result: Result, seed: int
                   ) -> tuple[VQVAE, dict[str, list[dict[str, float]]]]:
        """Train the tokeniser; codebook-usage and reconstruction rows on held-out jets."""
        tokeniser, history = fit_tokeniser(pre.features, pre.mask, pre.train, pre.val,
                                           config["tokeniser"], config["tokeniser_train"],
                                           derive_seed(seed, "tokeniser"),
                                           [names.index(n) for n in KINEMATICS])
        q = token_quality(tokeniser, torch.from_numpy(pre.features[pre.test][pre.mask[pre.test]]))
        method = f"VQ-VAE ({tokeniser.codes} codes)"
        result.add("codebook perplexity", method, q.perplexity, higher_is_better=True)
        result.add("fraction of codes used", method, q.used_fraction, higher_is_better=True)
        result.add("reconstruction MSE (weaver-scaled features)", method, q.mse,
                   std=q.mse_error, higher_is_better=False)
        for name in KINEMATICS:  # weaver scale 1 for the angles: RMS in rad
            result.add(f"reconstruction RMS {name}", method,
                       float(np.sqrt(q.mse_per_feature[names.index(name)])),
                       higher_is_better=False)
        return tokeniser, {"tokeniser": history.epochs}

    @staticmethod
    def _pretrain(objective: str, config: dict[str, Any], t: ParticleTensors,
                  pre: PretrainJets, tokens: np.ndarray, tokeniser: VQVAE, seed: int
                  ) -> tuple[torch.nn.Module, list[dict[str, float]]]:
        """Pre-train a fresh backbone with ``objective`` (mpm, mpmv2 or generative); MPMv2
        shares MPM's mask fraction. Its initialisation is seeded by the objective's name, so
        it does not depend on which other objectives run."""
        torch.manual_seed(derive_seed(seed, "init", objective))
        backbone = new_backbone(config, t, causal=objective == "generative")
        fraction = float(config["mpm"]["mask_fraction"])
        if objective == "mpm":
            model, loss = MaskedParticleModel(backbone, tokeniser.codes), mpm_objective(fraction)
        elif objective == "mpmv2":
            model = MaskedFeatureModel(backbone, tokeniser.mean, tokeniser.scale)
            loss = mpmv2_objective(fraction)
        else:
            model, loss = NextTokenModel(backbone, tokeniser.codes), next_token_loss
        history = pretrain(model, loss, pre.features, pre.mask, tokens, pre.train, pre.val,
                           config["pretrain_train"], derive_seed(seed, objective),
                           f"pretrain-{objective}")
        return model, history.epochs

    @staticmethod
    def _generation(config: dict[str, Any], t: ParticleTensors, pre: PretrainJets,
                    tokeniser: VQVAE, model: NextTokenModel, result: Result, workdir: Path,
                    seed: int) -> None:
        """Generated vs held-out jets; the tokenised held-out jets give the tokens' floor."""
        kin = [t.index(n) for n in KINEMATICS]
        spec = config["generative"]
        real_x, real_m = pre.features[pre.test], pre.mask[pre.test]
        with torch.no_grad():
            coded = tokeniser.decode(torch.from_numpy(np.clip(tokenise(
                tokeniser, real_x, real_m), 0, None))).numpy()
        gen_x, gen_m = generate(model, tokeniser, int(spec["n_jets"]),
                                derive_seed(seed, "generate"), float(spec["temperature"]))
        real = jet_observables(real_x, real_m, kin)
        samples = {"next-token generated": jet_observables(gen_x, gen_m, kin),
                   "held-out jets, tokenised (floor)": jet_observables(coded, real_m, kin)}
        for method, sample in samples.items():
            add_generation_metrics(result, method, real, sample, derive_seed(seed, "c2st"))
        for j, name in enumerate(("jet mass [GeV]", "multiplicity")):
            result.figures.append(plotting.histograms(
                {"held-out": real[0][:, j], **{k: s[0][:, j] for k, s in samples.items()}},
                workdir / f"generated_{plotting.slug(name)}.png", xlabel=name).name)

    @staticmethod
    def _finetune(config: dict[str, Any], task: TaskJets, backbones: dict[str, JetBackbone],
                  result: Result, workdir: Path, seed: int) -> int:
        """Fine-tuned, linear probe and scratch at each label fraction of ``task``; its
        label-efficiency plots (AUC and 1/ε_B). Returns its largest labelled training set."""
        t, y, classes, test = task.tensors, task.labels, task.classes, task.test
        settings, effs = config["finetune_train"], config["efficiencies"]
        rejection = f"1/ε_B at ε_S = {effs[0]:g}"
        curves: dict[str, dict[str, list[tuple[float, float, float]]]] = {"AUC": {},
                                                                          rejection: {}}
        references: dict[str, tuple[float, float]] = {}
        embeddings = {k: embed(b, t.features, t.mask) for k, b in backbones.items()}  # frozen
        largest = 0
        for fraction in config["fractions"]:
            tr = label_subset(task.train, y, fraction, seed)
            va = label_subset(task.val, y, fraction, seed)
            largest = max(largest, tr.size)
            tag = f"{task.title}, {fraction:.3g} of labels"
            key = f"{task.name}-{fraction:g}"
            scores = {}
            for objective, pretrained in backbones.items():
                name = OBJECTIVES[objective]
                torch.manual_seed(derive_seed(seed, "init", objective, key))
                model = JetClassifier(copy.deepcopy(pretrained), len(classes))
                scores[f"{name} fine-tuned"], _ = fit_classifier(
                    model, t.features, t.mask, y, tr, va, settings, seed,
                    f"finetune-{objective}-{key}")
                save_classifier(model, workdir / f"classifier-{objective}-{key}.pt",
                                list(t.names), list(classes))
                scores[f"{name} linear probe"], _, _ = fit_linear_probe(
                    embeddings[objective], y, tr, va, len(classes), config["probe_train"],
                    seed, f"probe-{objective}-{key}")
            torch.manual_seed(derive_seed(seed, "init", "scratch", key))
            scratch = JetClassifier(new_backbone(config, t, causal=False), len(classes))
            scores["scratch"], _ = fit_classifier(scratch, t.features, t.mask, y, tr, va,
                                                  settings, seed, f"scratch-{key}")
            probs = {method: (score(va), score(test)) for method, score in scores.items()}
            for method, (p_val, p_test) in probs.items():
                add_tagger_metrics(result, f"{method} ({tag})", classes, y[va], p_val,
                                   y[test], p_test, effs)
                for metric, series in curves.items():
                    row = result.get(metric, f"{method} ({tag})")
                    series.setdefault(method, []).append((fraction, row.value, row.std or 0.0))
                kind = next(mode for mode in MODES if method.endswith(mode))
                reference = REJECTION_REFERENCES.get((task.name, fraction, kind))
                if reference is not None and effs[0] == REFERENCE_EFFICIENCY:
                    result.get(rejection, f"{method} ({tag})").reference = reference
                    references[reference.source] = (fraction, reference.value)
                if method != "scratch":
                    add_paired_auc_difference(result, f"{method} ({tag})", f"scratch ({tag})",
                                              y[test], p_test[:, 1], probs["scratch"][1][:, 1],
                                              derive_seed(seed, method, fraction))
        for metric, series in curves.items():
            kind = "auc" if metric == "AUC" else "rejection"
            path = workdir / f"label_efficiency_{kind}_{task.name}.png"
            result.figures.append(plots.label_efficiency(
                series, path, f"test {metric} ({task.title})", logy=metric == rejection,
                references=references if metric == rejection else {}).name)
        return largest


def new_backbone(config: dict[str, Any], t: ParticleTensors, causal: bool) -> JetBackbone:
    """A freshly initialised backbone of the ``backbone`` sizes for the features of ``t``."""
    spec = config["backbone"]
    return JetBackbone(t.features.shape[-1], int(config["max_particles"]),
                       [t.index(n) for n in KINEMATICS], spec["embed"], spec["pair_embed"],
                       int(spec["heads"]), int(spec["layers"]), causal=causal)
