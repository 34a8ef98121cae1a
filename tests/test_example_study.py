"""The example study of docs/architecture.md runs through the generic machinery as a newcomer's
copy would: registered at run time, presets and meanings beside its module, data from the cache."""

from __future__ import annotations

import json

import pytest

from hepchain.core import config
from hepchain.core.study import run_study

ENTRY = "example_study.ecalreg:EnergyRegressionStudy"


@pytest.fixture
def ecalreg(monkeypatch):
    from hepchain import studies

    monkeypatch.setitem(studies.REGISTRY, "ecalreg", ENTRY)
    return "ecalreg"


def test_example_study_presets_live_beside_it_with_a_meaning_per_setting(ecalreg):
    presets, meanings = config.load_presets(ecalreg), config.load_help(ecalreg)
    assert presets["paper"]["data"]["n_events"] > presets["quick"]["data"]["n_events"]
    assert presets["paper"]["split"] == presets["quick"]["split"]  # overlay keeps the rest
    for preset in presets.values():
        assert all(config.meaning(meanings, key) for key in config.leaves(preset))


def test_example_study_runs_one_seed_on_cached_showers(ecalreg, tmp_path):
    overrides = {"data.n_events": 300, "train.epochs": 5}
    result = run_study(ecalreg, "quick", tmp_path / "run", seed=0, overrides=overrides)
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["provenance"]["seeds"] == [0] and saved["provenance"]["datasets"]
    assert (tmp_path / "run" / result.figures[0]).is_file()
    assert not (tmp_path / "run" / "checkpoints").exists() or not any(
        (tmp_path / "run" / "checkpoints").rglob("*.pt"))  # a finished run keeps none
    baseline = result.get("stochastic term σ(E_pred − E)/√E", "layer weights (least squares)")
    # a Si-W sampling calorimeter: 15-20 %/√E (SiD 17 %); a broken calibration is far outside
    assert 0.10 < baseline.value < 0.25 and baseline.std < 0.05
    mlp = result.get("stochastic term σ(E_pred − E)/√E", "MLP correction (ours)")
    assert not mlp.reference.same_dataset  # SiD's number is marked as another detector's
