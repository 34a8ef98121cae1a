"""Study ``deploy``: the L1 jet tagger of the hls4ml benchmark (MLP on 16 high-level features,
classes g, q, W, Z, t) taken to FPGA-style fixed point, a BDT through conifer, and HLT-style
CPU inference.

``run`` (one seed): jets → float MLP (core Trainer) → post-training quantisation scan through
hls4ml's bit-accurate C++ emulation → brevitas QAT at several bit widths (accuracy and
one-vs-rest AUCs at each) → hls4ml emulation of the QAT models against brevitas → pruning,
distillation from a constituent-level teacher → xgboost BDT emulated by conifer → ONNX export
and onnxruntime vs torch eager latency → the teacher through hls4ml (as written: where it
stops; a PFN re-expressed with supported layers: emulated) and ONNX → optionally
(``btag.enabled``) the b-tagging study's xgboost through conifer and its GN1 through ONNX.
``hepchain deploy export --model PATH --to hls4ml|onnx`` writes a model file as an HLS
project or ONNX. See docs/deploy.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hepchain.core import metrics
from hepchain.core.result import Reference, Result
from hepchain.core.seeding import derive_seed
from hepchain.core.standardise import Standardiser
from hepchain.core.study import Study
from hepchain.core.twosample import one_vs_rest_auc
from hepchain.deploy import bdt, constituents, flavour, hls, plots, pointwise
from hepchain.deploy.data import FEATURES, JetSet, load_jets, split
from hepchain.deploy.distill import teacher_logits
from hepchain.deploy.export import save_model
from hepchain.deploy.fixedpoint import uniform
from hepchain.deploy.latency import export_onnx, time_inference
from hepchain.deploy.mlp import fit_classifier, l1_mlp, logits_of
from hepchain.deploy.prune import nonzero_weights, prune_and_finetune
from hepchain.deploy.qat import calibrate, plain_twin, qat_mlp
from hepchain.nn.deepsets import DeepSets
from hepchain.reco.btag import export as btag_export
from hepchain.reco.btag.gn1 import btag_config
from hepchain.reco.btag.models import JetProbabilities
from hepchain.reco.jettag import export as jettag_export
from hepchain.reco.jettag.data import ParticleTensors
from hepchain.reco.jettag.models.bdt import fit_bdt
from hepchain.reco.jettag.models.pfn import PFN

HLS4ML_ACCURACY = Reference(0.75, "hls4ml tutorial MLP, hls4ml LHC jet dataset: ~75-76 %")
HLS4ML_LATENCY = "Duarte et al. arXiv:1804.06913: ~100 ns; hls4ml issue #20: 59 cycles"


class DeployStudy(Study):
    name = "deploy"
    description = ("Online deployment: L1 jet tagger in fixed point (hls4ml emulation, QAT), "
                   "conifer BDT, ONNX latency")
    seed_doc = "003"

    def add_commands(self, app: Any) -> None:
        """``hepchain deploy export --model PATH --to hls4ml|onnx``."""
        import typer

        @app.command("export")
        def export_cmd(model: Path = typer.Option(..., help="A model file of `deploy run` "
                                                  "(<workdir>/l1_mlp.pt or l1_qat8.pt)."),
                       to: str = typer.Option(..., help="hls4ml (HLS project) or onnx."),
                       out: Path | None = typer.Option(None, help="Project directory (hls4ml) "
                                                       "or .onnx file; default beside the model."),
                       precision: str = typer.Option("ap_fixed<16,6>", help="hls4ml type of "
                                                     "every tensor (float models)."),
                       emulate: bool = typer.Option(False, help="Also compile hls4ml's C++ "
                                                    "emulation with g++.")) -> None:
            """Write a model as an hls4ml project for vendor HLS tools, or as ONNX."""
            from hepchain.deploy.export import export

            target = out or model.with_name(model.stem + ("_hls4ml" if to == "hls4ml" else ".onnx"))
            typer.echo(f"wrote {export(model, to, target, precision, emulate)}")

    def run(self, config: dict[str, Any], workdir: Path, seed: int) -> Result:
        result = Result(study=self.name, preset="")
        jets = load_jets(config["data"], result)                                       # data
        train, val, test = split(jets.labels.size, config["split"], seed)
        scale = Standardiser.fit(jets.features[train])
        x, y = scale.transform(jets.features).astype(np.float32), jets.labels
        hidden, n_cls = config["model"]["hidden"], len(jets.classes)
        mlp = fit_classifier(l1_mlp(x.shape[1], hidden, n_cls), x, y, train, val,   # models
                             config["train"], seed, "float")
        float_logits = logits_of(mlp, x[test])
        reference = plots.BitsPoint(
            0, *add_accuracy(result, "float MLP (PyTorch)", float_logits, y[test],
                             HLS4ML_ACCURACY),
            *add_auc(result, "float MLP (PyTorch)", float_logits, y[test], jets.classes))
        save_model(workdir / "l1_mlp.pt", mlp, jets.classes, FEATURES, scale)
        curves = {"PTQ, hls4ml emulation": ptq_scan(result, mlp, x[test], y[test],
                                                    config["ptq"], workdir, jets.classes)}
        curves["QAT (brevitas)"] = qat_scan(result, x, y, (train, val, test), config, seed,
                                            workdir, jets, scale, float_logits)
        result.figures.append(plots.accuracy_vs_bits(curves, reference,
                                                     workdir / "accuracy_vs_bits.png"))
        pruning(result, mlp, x, y, (train, val, test), config, seed)
        teacher = distillation(result, jets, x, (train, val, test), config, seed)
        bdt_metrics(result, jets, x, (train, val, test), config["bdt"], seed, workdir)
        latency = config["latency"]
        add_latency(result, "L1 MLP", mlp, export_onnx(mlp, x.shape[1], workdir / "l1_mlp.onnx"),
                    x[test], latency)
        if teacher is not None:
            constituent_tagger(result, *teacher, test, y[test], jets.classes, config,
                               workdir)
        if config["btag"]["enabled"]:
            btag_deployment(result, config["btag"], latency, seed, workdir)
        per_class = ", ".join(f"{c}: {n}" for c, n in zip(
            jets.classes, np.bincount(y[test], minlength=n_cls), strict=True))
        result.notes.append(
            f"{train.size} training, {val.size} validation, {test.size} test jets "
            f"({per_class} in the test set); ± is the test set's binomial error (paired over "
            "jets for accuracy changes). Resources and latency of the MLP need vendor HLS "
            "synthesis (none here, and no installed package estimates them without it); "
            f"published: {HLS4ML_LATENCY}. The BDT's figures are conifer's performance-model "
            "estimates, not synthesis.")
        return result


def add_accuracy(result: Result, method: str, scores: np.ndarray, y: np.ndarray,
                 reference: Reference | None = None) -> tuple[float, float]:
    """Top-class accuracy of ``scores`` (N, classes) with its binomial error; appended."""
    acc = float(np.mean(scores.argmax(1) == y))
    err = float(np.sqrt(acc * (1 - acc) / y.size))
    result.add("test accuracy", method, acc, std=err, higher_is_better=True,
               reference=reference)
    return acc, err


def add_auc(result: Result, method: str, logits: np.ndarray, y: np.ndarray,
            classes: Sequence[str]) -> tuple[float, float]:
    """One-vs-rest ROC AUC of each class (softmax of ``logits`` (N, classes) as the score) with
    its Hanley–McNeil error, and their mean (macro AUC; error: the per-class errors in
    quadrature / n_classes, correlations neglected); appended, (macro, error) returned."""
    z = logits - logits.max(1, keepdims=True)
    per_class, (macro, macro_err) = one_vs_rest_auc(y, np.exp(z) / np.exp(z).sum(1, keepdims=True))
    for name, (auc, err) in zip(classes, per_class, strict=True):
        result.add(f"test AUC {name} vs rest", method, auc, std=err, higher_is_better=True)
    result.add("test macro AUC (one vs rest)", method, macro, std=macro_err,
               higher_is_better=True)
    return macro, macro_err


def agreement(result: Result, method: str, emulated: np.ndarray, reference: np.ndarray,
              what: str) -> float:
    """Fraction of identical top-class decisions (binomial error, at least 1/N — one jet — when
    all agree) and max |Δ| of two (N, classes) outputs."""
    n = emulated.shape[0]
    same = float(np.mean(emulated.argmax(1) == reference.argmax(1)))
    result.add(f"identical top class, {what}", method, same,
               std=float(np.sqrt(max(same * (1 - same), 1.0 / n) / n)), higher_is_better=True)
    result.add(f"max |Δ output|, {what}", method, float(np.abs(emulated - reference).max()),
               higher_is_better=False)
    return same


def add_compile_time(result: Result, tool: str, method: str,
                     emu: hls.Emulated | bdt.EmulatedBDT) -> None:
    """Wall and g++ CPU seconds of one emulation compile."""
    result.add(f"{tool} compile wall time", method, emu.compile_s, unit="s",
               higher_is_better=False)
    result.add(f"{tool} compile CPU time (g++)", method, emu.compile_cpu_s, unit="s",
               higher_is_better=False)


def ptq_scan(result: Result, mlp: Any, x_test: np.ndarray, y_test: np.ndarray,
             ptq: dict[str, Any], workdir: Path, classes: Sequence[str]) -> list[plots.BitsPoint]:
    """Post-training quantisation: the float MLP with every type ``ap_fixed<W,I>`` for each
    W of ``ptq.widths``, emulated by hls4ml; accuracy and AUCs of each width."""
    curve = []
    for w in ptq["widths"]:
        precision = uniform(int(w), int(ptq["integer"]))
        emu = hls.emulate(mlp, x_test.shape[1], workdir / "hls4ml" / f"ptq_{w}", precision)
        method, out = f"PTQ {precision} (hls4ml emulation)", emu.predict(x_test)
        curve.append(plots.BitsPoint(int(w), *add_accuracy(result, method, out, y_test),
                                     *add_auc(result, method, out, y_test, classes)))
        add_compile_time(result, "hls4ml", f"PTQ {precision}", emu)
    return curve


def qat_scan(result: Result, x: np.ndarray, y: np.ndarray, splits: tuple[np.ndarray, ...],
             config: dict[str, Any], seed: int, workdir: Path, jets: JetSet,
             scale: Standardiser, float_logits: np.ndarray) -> list[plots.BitsPoint]:
    """Brevitas QAT at each of ``qat.bits``; those in ``qat.emulate`` are handed to hls4ml
    (:func:`hepchain.deploy.qat.plain_twin`) and compared with brevitas; the accuracy change
    against the float MLP is paired over the test jets. Returns the curve."""
    train, val, test = splits
    curve = []
    for bits in config["qat"]["bits"]:
        model = calibrate(qat_mlp(x.shape[1], config["model"]["hidden"], len(jets.classes),
                                  int(bits)), x[train], int(config["qat"]["train"]["batch_size"]))
        model = fit_classifier(model, x, y, train, val, config["qat"]["train"], seed,
                               f"qat{bits}")
        ref = logits_of(model, x[test])
        method = f"QAT {bits}-bit (brevitas)"
        curve.append(plots.BitsPoint(int(bits), *add_accuracy(result, method, ref, y[test]),
                                     *add_auc(result, method, ref, y[test], jets.classes)))
        diff = metrics.paired_difference(ref.argmax(1) == y[test],
                                         float_logits.argmax(1) == y[test])
        result.add("accuracy − float accuracy", method, diff.estimate, std=diff.error,
                   higher_is_better=True)
        if bits not in config["qat"]["emulate"]:
            continue
        twin, types = plain_twin(model, x[train])
        save_model(workdir / f"l1_qat{bits}.pt", twin, jets.classes, FEATURES, scale, types)
        emu = hls.emulate(twin, x.shape[1], workdir / "hls4ml" / f"qat_{bits}", layers=types)
        out = emu.predict(x[test])
        name = f"QAT {bits}-bit (hls4ml emulation)"
        add_accuracy(result, name, out, y[test])
        add_auc(result, name, out, y[test], jets.classes)
        agreement(result, name, out, ref, "hls4ml emulation vs brevitas")
        add_compile_time(result, "hls4ml", f"QAT {bits}-bit", emu)
    return curve


def pruning(result: Result, mlp: Any, x: np.ndarray, y: np.ndarray,
            splits: tuple[np.ndarray, ...], config: dict[str, Any], seed: int) -> None:
    """Accuracy vs sparsity of the float MLP, magnitude-pruned and fine-tuned."""
    train, val, test = splits
    result.add("nonzero weights", "float MLP (PyTorch)", nonzero_weights(mlp),
               higher_is_better=False)
    for sparsity in config["prune"]["sparsities"]:
        pruned = prune_and_finetune(mlp, float(sparsity), x, y, train, val, config["train"],
                                    seed, f"pruned-{sparsity}")
        method = f"float MLP pruned {float(sparsity):.0%}"
        add_accuracy(result, method, logits_of(pruned, x[test]), y[test])
        result.add("nonzero weights", method, nonzero_weights(pruned), higher_is_better=False)


def distillation(result: Result, jets: JetSet, x: np.ndarray, splits: tuple[np.ndarray, ...],
                 config: dict[str, Any], seed: int) -> tuple[nn.Module, ParticleTensors] | None:
    """Teacher on constituents (:func:`hepchain.deploy.distill.teacher_logits`), then each
    student size of ``distill.students`` trained plainly and by distillation, same budget;
    returns the teacher and its inputs (None without students)."""
    spec = config["distill"]
    if not spec["students"]:
        return None
    train, val, test = splits
    y, n_cls = jets.labels, len(jets.classes)
    net, tensors, teacher = teacher_logits(jets.records, y, n_cls, train, val, spec["teacher"],
                                           seed)
    add_accuracy(result, f"teacher {spec['teacher']['model']} (constituents)", teacher[test],
                 y[test])
    for hidden in spec["students"]:
        size = "-".join(str(h) for h in [x.shape[1], *hidden, n_cls])
        for kind, kd in (("plain", None), ("distilled", (teacher, float(spec["temperature"])))):
            model = fit_classifier(l1_mlp(x.shape[1], hidden, n_cls), x, y, train, val,
                                   config["train"], seed, f"student-{size}-{kind}", teacher=kd)
            n_params = sum(p.numel() for p in model.parameters())
            add_accuracy(result, f"MLP {size} ({n_params} parameters), {kind}",
                         logits_of(model, x[test]), y[test])
    return net, tensors


def bdt_metrics(result: Result, jets: JetSet, x: np.ndarray, splits: tuple[np.ndarray, ...],
                settings: dict[str, Any], seed: int, workdir: Path) -> None:
    """xgboost BDT on the standardised features, its conifer emulation and estimates."""
    train, val, test = splits
    y = jets.labels
    model = fit_bdt(x[train], y[train], x[val], y[val], settings, derive_seed(seed, "bdt"))
    booster = model.get_booster()
    ref = bdt.margins(booster, x[test])
    add_accuracy(result, "BDT (xgboost)", ref, y[test])
    emu = bdt.emulate_bdt(booster, workdir / "conifer", str(settings["precision"]))
    out = emu.decision_function(x[test])
    method = f"BDT conifer {settings['precision']}"
    add_accuracy(result, f"{method} (emulation)", out, y[test])
    agreement(result, method, out, ref, "conifer emulation vs xgboost")
    add_compile_time(result, "conifer", method, emu)
    for key, unit in (("latency", "clock cycles"), ("lut", "LUTs"), ("ff", "FFs")):
        if key in emu.estimates:
            result.add(f"FPGA {key} estimate (conifer performance model)", method,
                       emu.estimates[key], unit=unit, higher_is_better=False)


def add_latency(result: Result, name: str, model: nn.Module, path: Path,
                inputs: np.ndarray | dict[str, np.ndarray], settings: dict[str, Any]) -> None:
    """onnxruntime (ONNX file ``path``) vs torch eager (``model``, the function the file
    holds) on one thread and the same ``inputs`` (see
    :func:`hepchain.deploy.latency.time_inference`), measured one after the other."""
    t = time_inference(model, path, inputs, int(settings["batch"]),
                       (int(settings["repeats_batch1"]), int(settings["repeats_batch"])))
    for runtime, one, rate in (("onnxruntime", t.onnx_batch1_s, t.onnx_jets_per_s),
                               ("torch eager", t.torch_batch1_s, t.torch_jets_per_s)):
        result.add("latency at batch 1", f"{name}, {runtime}", one * 1e6, unit="µs",
                   higher_is_better=False)
        result.add(f"throughput at batch {settings['batch']}", f"{name}, {runtime}", rate,
                   unit="jets/s", higher_is_better=True)
    result.add("speed-up onnxruntime / torch eager at batch 1", name, t.speedup_batch1,
               higher_is_better=True)
    result.add(f"speed-up onnxruntime / torch eager at batch {settings['batch']}", name,
               t.onnx_jets_per_s / t.torch_jets_per_s, higher_is_better=True)
    result.add("max |Δ output| onnxruntime vs torch", name, t.max_abs_diff,
               higher_is_better=False)


def constituent_tagger(result: Result, teacher: nn.Module, tensors: ParticleTensors,
                       test: np.ndarray, y_test: np.ndarray, classes: Sequence[str],
                       config: dict[str, Any], workdir: Path) -> None:
    """The constituent-level teacher through hls4ml's PyTorch front end on the leading
    ``constituents.max_particles`` particles of the test jets — as written (a recorded
    failure, with the op where hls4ml stops, or the emulation's agreement) and, for a PFN,
    re-expressed with supported layers (:func:`pointwise_tagger`) — and through ONNX
    (latency)."""
    spec = config["constituents"]
    name = f"{config['distill']['teacher']['model']} teacher"
    n = int(spec["max_particles"])
    inputs = [tensors.features[test, :n], tensors.vectors[test, :n], tensors.mask[test, :n]]
    tried = constituents.attempt(teacher, inputs, workdir / "hls4ml" / "constituents",
                                 str(spec["precision"]))
    result.add(f"hls4ml converts it ({n} particles)", name, float(tried.converted))
    if tried.converted:
        result.add("identical top class, hls4ml emulation vs torch", name,
                   tried.identical_top_class, higher_is_better=True)
        result.add("max |Δ output|, hls4ml emulation vs torch", name, tried.max_abs_diff,
                   higher_is_better=False)
    result.notes.append(f"{name} ({n} particles) through hls4ml's PyTorch front end: "
                        f"{tried.summary()}")
    if isinstance(teacher, PFN):
        pointwise_tagger(result, teacher.net, inputs[0], inputs[2], y_test, classes, spec,
                         name, workdir)
    example = tuple(torch.from_numpy(a[test[:256]]) for a in
                    (tensors.features, tensors.vectors, tensors.mask))
    path = jettag_export.export_onnx(teacher, example, workdir / "teacher.onnx", classes)
    add_latency(result, name, jettag_export.Probabilities(teacher).eval(), path,
                dict(zip(jettag_export.INPUTS, (a[test] for a in (
                    tensors.features, tensors.vectors, tensors.mask)), strict=True)),
                config["latency"])


def pointwise_tagger(result: Result, net: DeepSets, features: np.ndarray, mask: np.ndarray,
                     y_test: np.ndarray, classes: Sequence[str], spec: dict[str, Any],
                     name: str, workdir: Path) -> None:
    """The PFN's Deep Sets on ``features`` (N, P, F) and ``mask`` (N, P) of the test jets,
    re-expressed with layers hls4ml converts (:func:`hepchain.deploy.pointwise.from_deep_sets`)
    and emulated with every type ``spec.precision`` (the pool's accumulator widened): max |Δ|
    re-expression vs the PFN, accuracy and AUCs of both and of the emulation, agreement."""
    n, precision = features.shape[1], str(spec["precision"])
    twin = pointwise.from_deep_sets(net, n)
    inputs = pointwise.channels_first(features, mask)
    with torch.no_grad():
        ref = net(torch.from_numpy(features), torch.from_numpy(mask)).numpy().astype(np.float64)
        same = twin(*(torch.from_numpy(a) for a in inputs)).numpy().astype(np.float64)
    float_name, method = f"{name} ({n} particles)", f"{name} ({n} particles), {precision}"
    result.add("max |Δ logit|, pointwise re-expression vs PFN", float_name,
               float(np.abs(same - ref).max()), higher_is_better=False)
    add_accuracy(result, f"{float_name} (PyTorch)", ref, y_test)
    add_auc(result, f"{float_name} (PyTorch)", ref, y_test, classes)
    emu = hls.emulate(twin, [tuple(a.shape[1:]) for a in inputs],
                      workdir / "hls4ml" / "constituents_pointwise", precision,
                      pointwise.pool_types(n, precision))
    out = emu.predict(inputs)
    add_accuracy(result, f"{method} (hls4ml emulation)", out, y_test)
    add_auc(result, f"{method} (hls4ml emulation)", out, y_test, classes)
    agreement(result, method, out, ref, "hls4ml emulation vs torch")
    add_compile_time(result, "hls4ml", method, emu)


def btag_deployment(result: Result, spec: dict[str, Any], latency: dict[str, Any], seed: int,
                    workdir: Path) -> None:
    """The b-tagging study's DL1-like xgboost through conifer (emulation vs xgboost on the
    btag test jets) and its GN1 through ONNX (latency), trained by
    :func:`hepchain.deploy.flavour.train_btag_taggers` on the btag preset ``spec.preset``."""
    tag = flavour.train_btag_taggers(btag_config(spec["preset"], spec["set"]), seed,
                                     result)
    booster = tag.xgboost.get_booster()
    ref = bdt.margins(booster, tag.hl_test)
    emu = bdt.emulate_bdt(booster, workdir / "conifer_btag", str(spec["precision"]),
                          "btag_dl1_bdt")
    method = f"btag DL1-like xgboost, conifer {spec['precision']}"
    agreement(result, method, emu.decision_function(tag.hl_test), ref,
              "conifer emulation vs xgboost")
    add_compile_time(result, "conifer", method, emu)
    result.add("trees (boosting rounds x classes)", method, len(booster.get_dump()))
    example = tuple(t[:256] for t in tag.gn1_test)
    path = btag_export.export_onnx(tag.gn1, example, workdir / "btag_gn1.onnx", tag.classes,
                                   tag.preprocessing)
    add_latency(result, "btag GN1", JetProbabilities(tag.gn1).eval(), path,
                dict(zip(("tracks", "mask", "jet"), (t.numpy() for t in tag.gn1_test),
                         strict=True)), latency)
    result.notes.append(f"btag ({spec['preset']} preset, overrides {spec['set']}): "
                        f"{tag.y_test.size} test jets for the conifer comparison and timing.")
