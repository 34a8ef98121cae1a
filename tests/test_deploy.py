"""deploy: fixed-point rounding on hand values, bit-exact hls4ml emulation of a QAT model,
clear errors for layers hls4ml cannot convert, truth labelling of the L1 jets, the export CLI,
macro AUC, the shared ONNX writer (metadata, nothing left on failure), conifer on a btag-style
xgboost, ONNX of a tiny GN1, the constituent tagger through hls4ml."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import torch
from torch import nn

from hepchain.core.errors import DataError, UsageError
from hepchain.core.standardise import Standardiser
from hepchain.deploy import hls
from hepchain.deploy.data import CLASSES, label_jets
from hepchain.deploy.export import load_model, save_model
from hepchain.deploy.fixedpoint import FixedType
from hepchain.deploy.mlp import l1_mlp, logits_of
from hepchain.deploy.qat import calibrate, plain_twin, qat_mlp
from test_cli import run_cli

# ap_fixed<6,3>: step 1/8, range [-4, 3.875]; ap_ufixed<5,2>: step 1/8, range [0, 3.875]
HAND = np.array([1.0625, 1.1875, -1.0625, 5.0, -4.2, 3.9, 0.06])
EXPECTED = {
    "ap_fixed<6,3>": [1.0, 1.125, -1.125, -3.0, 3.75, 3.875, 0.0],  # floor; 5 → 5 − 8 (wrap)
    "ap_fixed<6,3,AP_RND,AP_SAT>": [1.125, 1.25, -1.0, 3.875, -4.0, 3.875, 0.0],  # half up
    "ap_fixed<6,3,AP_RND_CONV,AP_SAT>": [1.0, 1.25, -1.0, 3.875, -4.0, 3.875, 0.0],  # to even
    "ap_ufixed<5,2>": [1.0, 1.125, 2.875, 1.0, 3.75, 3.875, 0.0],  # wrap modulo 4
}


@pytest.mark.parametrize("text", list(EXPECTED))
def test_fixed_point_rounding_and_overflow_on_hand_values(text):
    t = FixedType.parse(text)
    assert t.hls().replace(",AP_TRN,AP_WRAP", "") == text
    np.testing.assert_array_equal(t.quantise(HAND), EXPECTED[text])


def test_non_fixed_types_are_refused():
    with pytest.raises(UsageError, match="not a fixed-point type"):
        FixedType.parse("float")


@pytest.fixture(scope="module")
def qat_model():
    torch.manual_seed(3)
    x = np.random.default_rng(3).normal(0.0, 1.5, (400, 4)).astype(np.float32)
    model = calibrate(qat_mlp(4, [8], 3, bits=6), x, 64).eval()
    return model, x


def test_hls4ml_emulation_reproduces_the_qat_model_bit_for_bit(qat_model, tmp_path):
    model, x = qat_model
    twin, types = plain_twin(model, x)
    emu = hls.emulate(twin, 4, tmp_path / "prj", layers=types)  # one g++ compile, ~7 CPU-s
    out, ref = emu.predict(x), logits_of(model, x)
    assert np.array_equal(out.argmax(1), ref.argmax(1))
    assert np.abs(out - ref).max() < 1e-5
    # the emulation does quantise: the same weights on unrounded float inputs differ
    assert np.abs(logits_of(twin, x) - out).max() > 1e-3
    assert (tmp_path / "prj" / "build_prj.tcl").is_file()  # a project for vendor tools


def test_layers_hls4ml_cannot_convert_are_one_clear_error(qat_model, tmp_path):
    with pytest.raises(UsageError, match="GELU"):
        hls.convert(nn.Sequential(nn.Linear(4, 4), nn.GELU()), 4, tmp_path / "a")
    with pytest.raises(UsageError, match=r"QuantIdentity.*brevitas"):
        hls.check_supported(qat_model[0])
    hls.check_supported(nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.1), nn.ReLU()))


def _events(pid, eta_parton):
    """One event, one jet at (η, φ) = (0, 0), one hard parton of ``pid`` at (eta_parton, 0)."""
    jet = {"pt": [[500.0]], "eta": [[0.0]], "phi": [[0.0]]}
    partons = {"pid": [[pid]], "eta": [[eta_parton]], "phi": [[0.0]]}
    return ak.zip({"fatjets": ak.zip(jet), "partons": ak.zip(partons)}, depth_limit=1)


@pytest.mark.parametrize(("sample", "pid", "eta", "label"), [
    ("QCD", 21, 0.1, "g"), ("QCD", -3, 0.1, "q"), ("QCD", 21, 1.5, None),
    ("Wqq", -24, 0.3, "W"), ("Wqq", 24, 1.2, None), ("Tbqq", 6, 0.0, "t"), ("Zqq", 21, 0.0, None)])
def test_jets_are_labelled_by_the_hard_process(sample, pid, eta, label):
    _, y = label_jets(_events(pid, eta), sample, 300.0, 1500.0, 2.0, 0.8)
    assert y.tolist() == ([] if label is None else [CLASSES.index(label)])


def test_export_cli_writes_onnx_that_matches_torch(tmp_path):
    import onnxruntime as ort

    torch.manual_seed(0)
    model = l1_mlp(16, [8], 5).eval()
    path = save_model(tmp_path / "m.pt", model, CLASSES, [f"f{i}" for i in range(16)],
                      Standardiser(np.zeros(16), np.ones(16)))
    assert run_cli(["deploy", "export", "--model", str(path), "--to", "onnx",
                    "--out", str(tmp_path / "m.onnx")]) == 0
    x = np.random.default_rng(0).normal(size=(7, 16)).astype(np.float32)
    out = ort.InferenceSession(str(tmp_path / "m.onnx")).run(None, {"x": x})[0]
    np.testing.assert_allclose(out, logits_of(load_model(path)[0], x), atol=1e-5)
    assert run_cli(["deploy", "export", "--model", str(path), "--to", "tflite"]) == 2
    (tmp_path / "bad.pt").write_text("not a model")
    with pytest.raises(DataError, match="not a readable model file"):
        load_model(tmp_path / "bad.pt")


def test_onnx_export_keeps_metadata_and_leaves_nothing_when_it_fails(tmp_path):
    import json
    import logging

    import onnx

    from hepchain.core.io import onnx_export_path
    from hepchain.deploy.latency import export_onnx

    logger = logging.getLogger("torch.onnx")
    level = logger.level
    meta = {"classes": ["b", "c"], "scale": {"mean": [0.5], "std": [2.0]}}
    path = export_onnx(l1_mlp(4, [3], 2), 4, tmp_path / "m.onnx", meta)
    props = {p.key: json.loads(p.value) for p in onnx.load(path).metadata_props}
    assert props == meta and logger.level == level
    with pytest.raises(RuntimeError), onnx_export_path(tmp_path / "x.onnx") as tmp:
        tmp.write_bytes(b"half an export")
        raise RuntimeError("exporter failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"] and logger.level == level


def test_distillation_makes_the_student_follow_the_teacher():
    """Labels are noise, the teacher knows a rule (sign of x0): only the distilled student
    learns the rule."""
    from hepchain.deploy.mlp import fit_classifier

    rng = np.random.default_rng(1)
    x = rng.normal(size=(600, 4)).astype(np.float32)
    y = rng.integers(0, 2, 600)
    rule = (x[:, 0] > 0).astype(int)
    teacher = np.where(np.eye(2, dtype=bool)[rule], 4.0, -4.0).astype(np.float32)
    train, val = np.arange(400), np.arange(400, 600)
    settings = {"epochs": 15, "batch_size": 100, "lr": 0.02, "threads": 1, "progress": False}
    agree = {}
    for kind, kd in (("plain", None), ("distilled", (teacher, 2.0))):
        torch.manual_seed(0)
        model = fit_classifier(l1_mlp(4, [8], 2), x, y, train, val, settings, 0, kind, kd)
        agree[kind] = float(np.mean(logits_of(model, x[val]).argmax(1) == rule[val]))
    assert agree["distilled"] > 0.85 > agree["plain"] + 0.15


def test_pruning_zeroes_the_requested_fraction_of_weights_for_good():
    from hepchain.deploy.prune import nonzero_weights, prune_and_finetune

    torch.manual_seed(0)
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(200, 4)).astype(np.float32), rng.integers(0, 2, 200)
    model = l1_mlp(4, [8], 2)
    total = nonzero_weights(model)  # 4·8 + 8·2 = 48
    pruned = prune_and_finetune(model, 0.75, x, y, np.arange(150), np.arange(150, 200),
                                {"epochs": 2, "threads": 1, "progress": False}, 0, "p")
    assert total == 48 and nonzero_weights(pruned) == 12
    assert set(pruned.state_dict()) == set(model.state_dict())  # masks removed, plain Linear
    assert nonzero_weights(model) == 48  # the original is untouched


def test_macro_auc_is_the_mean_of_the_one_vs_rest_aucs():
    from sklearn.metrics import roc_auc_score

    from hepchain.core.result import Result
    from hepchain.deploy.study import add_auc

    rng = np.random.default_rng(4)
    y = rng.integers(0, 3, 300)
    logits = rng.normal(size=(300, 3)) + 1.5 * np.eye(3)[y]  # informative, not perfect
    result = Result(study="deploy", preset="")
    macro, err = add_auc(result, "m", logits, y, ["a", "b", "c"])
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert macro == pytest.approx(roc_auc_score(y, probs, multi_class="ovr"), abs=1e-12)
    per_class = [m.value for m in result.metrics if m.name.startswith("test AUC ")]
    assert per_class == pytest.approx([roc_auc_score(y == k, probs[:, k]) for k in range(3)])
    assert 0.01 < err < 0.05  # Hanley-McNeil with ~100 jets per class
    assert add_auc(result, "perfect", 5.0 * np.eye(3)[y], y, ["a", "b", "c"])[0] == 1.0


def test_conifer_emulates_a_tiny_btag_xgboost(tmp_path):
    from hepchain.deploy import bdt
    from hepchain.reco.btag.training import fit_xgboost

    rng = np.random.default_rng(5)
    x = rng.normal(0.0, 3.0, (600, 4))
    y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 1.0)  # 3 classes
    model = fit_xgboost(x[:400], y[:400], x[400:], y[400:], 3,
                        {"n_estimators": 3, "max_depth": 2, "learning_rate": 0.5}, 0)
    booster = model.get_booster()
    emu = bdt.emulate_bdt(booster, tmp_path / "bdt", "ap_fixed<18,8>", "tiny")  # ~15 CPU-s
    out, ref = emu.decision_function(x), bdt.margins(booster, x)
    assert out.shape == ref.shape == (600, 3)
    assert np.mean(out.argmax(1) == ref.argmax(1)) >= 0.99
    # inputs are rounded to 2^-10: only jets within that of a threshold may change branch
    assert np.median(np.abs(out - ref)) < 3 * 2.0 ** -10
    assert (tmp_path / "bdt" / "firmware" / "tiny.h").is_file()  # the HLS project
    # the fast cpp emulation is bit-identical to compiling the HLS C++ itself (~10 CPU-s)
    hls = bdt.emulate_bdt(booster, tmp_path / "hls", "ap_fixed<18,8>", "tiny", "xilinxhls")
    assert np.array_equal(hls.decision_function(x), out)
    assert hls.estimates == emu.estimates


def test_onnx_of_a_tiny_gn1_matches_torch_and_is_timed(tmp_path):
    from hepchain.deploy.latency import time_inference
    from hepchain.reco.btag.export import export_onnx
    from hepchain.reco.btag.models import GN1Tagger, JetProbabilities
    from hepchain.reco.btag.preprocessing import Preprocessor

    torch.manual_seed(0)
    model = GN1Tagger(5, 2, 3, dim=16, heads=2, layers=1).eval()
    rng = np.random.default_rng(6)
    inputs = {"tracks": rng.normal(size=(40, 8, 5)).astype(np.float32),
              "mask": np.arange(8)[None, :] < rng.integers(1, 9, (40, 1)),
              "jet": rng.normal(size=(40, 2)).astype(np.float32)}
    unit = [Standardiser(np.zeros(n), np.ones(n)) for n in (5, 2)]
    prep = Preprocessor([f"t{i}" for i in range(5)], ["pt", "eta"], *unit, max_tracks=8)
    path = export_onnx(model, tuple(torch.from_numpy(v) for v in inputs.values()),
                       tmp_path / "gn1.onnx", ["b", "c", "light"], prep)
    t = time_inference(JetProbabilities(model).eval(), path, inputs, 50, (5, 3), warmup=2)
    assert t.max_abs_diff < 1e-5
    assert min(t.onnx_batch1_s, t.torch_batch1_s) > 0 and t.onnx_jets_per_s > 0


def test_the_constituent_tagger_through_hls4ml_agrees_or_says_where_it_stops(tmp_path):
    from hepchain.deploy.constituents import attempt
    from hepchain.reco.jettag.models.pfn import PFN

    torch.manual_seed(0)
    rng = np.random.default_rng(7)
    x = rng.normal(size=(30, 16, 7)).astype(np.float32)
    v = rng.normal(size=(30, 16, 4)).astype(np.float32)
    mask = np.arange(16)[None, :] < rng.integers(2, 17, (30, 1))
    tried = attempt(PFN(7, 5, [16, 16], [16]), [x, v, mask], tmp_path / "pfn")
    if tried.converted:
        assert tried.identical_top_class >= 0.99
    else:  # hls4ml 1.3: the DeepSets mask cast `.to(x.dtype)` is the first unsupported op
        assert tried.message.startswith("Unsupported")
        assert "torch.fx node" in tried.stops_at
        assert tried.summary().startswith("hls4ml stops at `")
    # the successful path: an MLP on one input converts, compiles and agrees
    mlp = attempt(l1_mlp(7, [8], 5), [x[:, 0]], tmp_path / "mlp")  # one g++ compile
    assert mlp.converted and mlp.identical_top_class == 1.0 and mlp.max_abs_diff < 0.05


def test_btag_block_changes_single_settings_of_the_btag_preset():
    from hepchain.reco.btag.gn1 import btag_config

    config = btag_config("quick", {"xgboost": {"n_estimators": 7}, "train": {"progress": False}})
    assert config["xgboost"]["n_estimators"] == 7
    assert config["xgboost"]["max_depth"] == 4  # the rest of the block is btag's
    assert config["train"]["progress"] is False and config["data"]["n_events"] == 3000
    with pytest.raises(UsageError):
        btag_config("quick", {"xgboost": {"n_trees": 7}})
