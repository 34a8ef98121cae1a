"""Study ``treelm``: translate a jet's anti-kt clustering tree into its true decay tree with a
LLaMA-style language model (seed 003's own research).

``run`` runs one seed (the seed chooses the split and the initialisation): matched jets of
pp → jj and Z → ττ from the dataset cache → token files → pre-training → translation →
greedy decoding with and without the grammar mask → (optionally) GRPO with physics rewards →
metrics by jet type beside the most-frequent-tree baseline. ``hepchain treelm bench --seeds 3``
aggregates seeds; ``hepchain treelm translate --model PATH --data PATH`` decodes a user's jets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from hepchain.core.io import atomic_torch_save
from hepchain.core.result import Result
from hepchain.core.study import Study
from hepchain.reco.treelm import plots
from hepchain.reco.treelm.data import JET_TYPES, Jets, load_jets, split, write_tokens
from hepchain.reco.treelm.decode import generate
from hepchain.reco.treelm.evaluate import (
    Scores,
    fraction,
    mean_error,
    most_frequent_trees,
    pdg_accuracy,
    score,
    template_prediction,
)
from hepchain.reco.treelm.grammar import TreeError, parse, prompt
from hepchain.reco.treelm.lcag import project
from hepchain.reco.treelm.lcag_model import fit_lcag, predict, target
from hepchain.reco.treelm.model import build_model, n_parameters
from hepchain.reco.treelm.rewards import TERMS, rewards
from hepchain.reco.treelm.rl import grpo
from hepchain.reco.treelm.training import fit_stage, pretraining_set, translation_set
from hepchain.reco.treelm.trees import Tree
from hepchain.reco.treelm.vocab import VOCAB

OURS = "tree LM, constrained decoding (ours)"
UNCONSTRAINED = "tree LM, unconstrained decoding"
RL = "tree LM + GRPO, constrained (ours)"
BASELINE = "most frequent tree of the jet type (type given)"
LCAG = "LCAG matrix from the reco leaves (Kahn et al.)"
REACHABLE = "truth seen through the reco leaves (LCAG target)"


class TreeLMStudy(Study):
    name = "treelm"
    description = "Jet clustering tree -> true decay tree with a Llama language model"
    seed_doc = "003"

    def run(self, config: dict[str, Any], workdir: Path, seed: int) -> Result:
        result = Result(study=self.name, preset="")
        jets = load_jets(config["data"], result)                                       # data
        train, val, test = split(len(jets.reco), config["split"], seed)
        tokens = write_tokens(jets, workdir / "tokens", config["data"])
        result.figures.append(add_vocabulary_stats(result, tokens, workdir).name)
        max_len = int(config["data"]["max_len"])
        model = build_model(config["model"], max_len)                                  # models
        result.add("trainable parameters", OURS, n_parameters(model))
        histories = {
            "pre-training": fit_stage(model, pretraining_set(*_trees(jets, train)),
                                      pretraining_set(*_trees(jets, val)),
                                      config["pretrain"], seed, "pretrain"),
            "translation": fit_stage(model, translation_set(*_trees(jets, train)),
                                     translation_set(*_trees(jets, val)),
                                     config["translate"], seed, "translate")}
        reco_test, truth_test = _trees(jets, test)
        templates = most_frequent_trees([jets.truth[i] for i in train], jets.kind[train])
        predictions = {                                                                # metrics
            OURS: decode_trees(model, reco_test, max_len, constrained=True),
            UNCONSTRAINED: decode_trees(model, reco_test, max_len, constrained=False),
            BASELINE: [template_prediction(templates[k], r)
                       for k, r in zip(jets.kind[test], reco_test, strict=True)]}
        predictions |= lcag_baseline(result, config["lcag"], jets, (train, val, test), seed)
        if int(config["rl"]["steps"]) > 0:
            curve = grpo(model, _trees(jets, train)[0], config["rl"], max_len, seed,
                         float(config["data"]["pt_min"]))
            result.figures.append(plots.reward_figure(curve, workdir / "rewards.png").name)
            predictions[RL] = decode_trees(model, reco_test, max_len, constrained=True)
        for method, pred in predictions.items():
            add_scores(result, method, score(truth_test, pred), jets.kind[test])
        for method, pred in {"true decay trees": truth_test, **predictions}.items():
            add_rewards(result, method, pred, reco_test, float(config["data"]["pt_min"]))
        for reason, n in sorted(jets.counts.items()):
            result.add(f"jets removed: {reason}", "selection", n)
        result.figures.append(plots.loss_figure(histories, workdir / "loss.png").name)  # figures
        save_model(model, config, workdir / "treelm.pt")
        result.notes.append(
            f"{train.size} training, {val.size} validation and {test.size} test jets; removed "
            f"before tokenising: {_removed(jets)}. Decoding is greedy; the baseline is told the "
            "jet type, the language model and the LCAG network are not. ± is the test set's "
            "statistical error. "
            "The decoder is transformers' Llama (gated ReLU² MLP), the rest is ours.")
        return result


    def add_commands(self, app: Any) -> None:
        """``hepchain treelm translate --model PATH --data PATH``."""
        import typer

        @app.command("translate")
        def translate_cmd(model: Path = typer.Option(..., help="treelm.pt of a 'treelm run'."),
                          data: Path = typer.Option(..., help="Dataset made with jet_trees=1."),
                          out: Path = typer.Option(Path("treelm-decoded.jsonl"),
                                                   help="JSON lines, one per jet.")) -> None:
            """Decode the true decay tree of every jet of a dataset (grammar-constrained)."""
            from hepchain.reco.treelm.translate import translate

            n = translate(model, data, out)
            typer.echo(f"{n} jets -> {out}")


def _trees(jets: Jets, idx: np.ndarray) -> tuple[list[Tree], list[Tree]]:
    return [jets.reco[i] for i in idx], [jets.truth[i] for i in idx]


def _removed(jets: Jets) -> str:
    return ", ".join(f"{n} {why}" for why, n in sorted(jets.counts.items())) or "none"


def decode_trees(model: torch.nn.Module, reco: list[Tree], max_len: int,
                 constrained: bool) -> list[Tree | None]:
    """Greedy truth trees for the clustering trees ``reco`` (None where the output does not
    parse)."""
    prompts = [prompt(r) for r in reco]
    out = generate(model, prompts, max_len, constrained=constrained)
    trees: list[Tree | None] = []
    for p, toks in zip(prompts, out.tokens, strict=True):
        try:
            trees.append(parse(p + toks).truth)
        except TreeError:
            trees.append(None)
    return trees


def lcag_baseline(result: Result, settings: dict[str, Any], jets: Jets,
                  idx: tuple[np.ndarray, ...], seed: int) -> dict[str, list[Tree]]:
    """The LCAG network's decoded test trees and its best case (the truth seen through the
    reco leaves, decoded from a perfect matrix); adds the perfect-matrix fraction."""
    model, labels = fit_lcag(_trees(jets, idx[0]), _trees(jets, idx[1]), settings, seed)
    reco, truth = _trees(jets, idx[2])
    trees, matrices = predict(model, labels, reco)
    g = int(settings["max_generation"])
    perfect = [np.array_equal(m, np.minimum(target(t, r).lcag, g))
               for m, t, r in zip(matrices, truth, reco, strict=True)]
    value, err = fraction(np.array(perfect))
    result.add("perfect LCAG matrix (all)", LCAG, value, std=err, higher_is_better=True)
    return {LCAG: trees,
            REACHABLE: [project(t, r)[0] for t, r in zip(truth, reco, strict=True)]}


def add_vocabulary_stats(result: Result, tokens: Any, workdir: Path) -> Path:
    """Vocabulary size, tokens per jet and the Zipf figure of the token files."""
    arrays = tokens.read()
    result.provenance.datasets.append(tokens.manifest.summary())
    lengths = arrays["length"]
    counts = plots.token_frequencies(arrays["tokens"], lengths)
    result.add("vocabulary size", "tokeniser", len(VOCAB))
    result.add("distinct tokens used", "tokeniser", counts.size)
    result.add("tokens per jet (reco + truth)", "tokeniser", float(lengths.mean()),
               std=float(lengths.std(ddof=1) / np.sqrt(lengths.size)))
    for k, name in enumerate(JET_TYPES):
        sel = arrays["jet_type"] == k
        if sel.sum() > 1:
            result.add(f"tokens per jet ({name})", "tokeniser", float(lengths[sel].mean()),
                       std=float(lengths[sel].std(ddof=1) / np.sqrt(sel.sum())))
    return plots.zipf_figure(counts, workdir / "zipf.png")


def add_scores(result: Result, method: str, s: Scores, kind: np.ndarray) -> None:
    """The metric rows of one method, for all test jets and per jet type."""
    groups = {"all": np.ones(kind.size, bool)}
    groups |= {name: kind == k for k, name in enumerate(JET_TYPES) if np.any(kind == k)}
    value, err = fraction(s.valid)
    result.add("grammar-valid fraction", method, value, std=err, higher_is_better=True)
    for name, sel in groups.items():
        sub = Scores(*(getattr(s, f)[sel] for f in Scores.__dataclass_fields__))
        for metric, (v, e) in (("exact tree match", fraction(sub.exact)),
                               ("topology match", fraction(sub.topology)),
                               ("per-node PDG accuracy", pdg_accuracy(sub))):
            result.add(f"{metric} ({name})", method, v, std=e, higher_is_better=True)
        v, e = mean_error(sub.pt_abs_residual)
        result.add(f"mean |ΔpT|/pT of paired nodes ({name})", method, v, std=e,
                   higher_is_better=False)


def add_rewards(result: Result, method: str, pred: list[Tree | None], reco: list[Tree],
                pt_min: float) -> None:
    """Mean soft reward per term and of their sum ("total") over the test jets (a tree that
    does not parse scores 0)."""
    values = [rewards(p, r, pt_min=pt_min) for p, r in zip(pred, reco, strict=True)]
    for term in (*TERMS, "total"):
        x = np.array([sum(v.values()) if term == "total" else v[term] for v in values])
        result.add(f"mean {term} reward (soft)", method, float(x.mean()),
                   std=float(x.std(ddof=1) / np.sqrt(x.size)), higher_is_better=True)


def save_model(model: torch.nn.Module, config: dict[str, Any], path: Path) -> None:
    """Weights and the settings needed to rebuild and use the model (``translate``), written
    atomically."""
    atomic_torch_save({"state_dict": model.state_dict(), "model": config["model"],
                "data": {k: config["data"][k] for k in ("max_len", "pt_min")},
                "vocabulary": list(VOCAB.tokens)}, path)
