"""deploy: fixed-point rounding on hand values, bit-exact hls4ml emulation of a QAT model,
clear errors for layers hls4ml cannot convert, truth labelling of the L1 jets, the export CLI."""

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
