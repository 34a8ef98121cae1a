"""The btag study end to end on a tiny sample of real generated ttbar events (collider
provider), with the training shrunk to seconds; and its clear errors for bad data."""

from __future__ import annotations

import json

import pytest

from hepchain.core.errors import DataError, UsageError
from hepchain.core.study import get_study, run_study


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("btag")
    cfg = get_study("btag").config("quick")
    overrides = {
        "data": {**cfg["data"], "n_events": 160, "workers": 1, "shard_size": 80},
        "gn1": {"dim": 16, "heads": 2, "layers": 1},
        "deepsets": {"phi": [16], "latent": 16, "rho": [16]},
        "xgboost": {"n_estimators": 20, "max_depth": 3, "n_jobs": 1},
        "train": {"epochs": 2, "batch_size": 64, "lr": 0.003, "threads": 1, "progress": False},
        "train_dl1": {"epochs": 3, "threads": 1, "progress": False},
        "onnx": False,
    }
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HEPCHAIN_DATA", str(root / "data"))
        return run_study("btag", "quick", root / "run", seed=0, overrides=overrides), root / "run"


def test_study_runs_on_generated_ttbar(tiny_run):
    result, workdir = tiny_run
    saved = json.loads((workdir / "results.json").read_text())
    methods = {m["method"] for m in saved["metrics"] if m["name"] == "light rejection @ 70% b-eff"}
    assert methods == {"IP3D-like", "DL1-like MLP", "DL1-like xgboost", "DeepSets", "GN1",
                       "GN1 no-aux"}
    # physics sanity: impact parameters tag b jets far better than chance (1/0.7 = 1.43)
    assert result.get("light rejection @ 70% b-eff", "IP3D-like").value > 3
    sv_b = result.get("SV finding efficiency, b-jets", "SV finder").value
    sv_light = result.get("SV finding efficiency, light-jets", "SV finder").value
    assert sv_b > 2 * sv_light
    for fig in result.figures:
        assert (workdir / fig).is_file()
    assert (workdir / "gn1.pt").is_file()
    assert saved["provenance"]["datasets"][0]["n_events"] == 160


def test_bad_dataset_path_and_classes_are_clear_errors(tmp_path):
    cfg = get_study("btag").config("quick")
    with pytest.raises(DataError, match="not a hepchain dataset"):
        run_study("btag", "quick", tmp_path / "run",
                  overrides={"data": {**cfg["data"], "path": str(tmp_path / "nothing")}})
    assert not (tmp_path / "run" / "results.json").exists()
    with pytest.raises(UsageError, match="classes must include b, c and light"):
        run_study("btag", "quick", tmp_path / "run", overrides={"classes": ["b", "light"]})
