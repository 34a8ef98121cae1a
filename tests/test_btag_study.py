"""The btag study end to end on a tiny sample of real generated ttbar events (collider
provider), with the training shrunk to seconds; and its clear errors for bad data."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hepchain.core.dataset import plan_shards
from hepchain.core.errors import DataError, UsageError
from hepchain.core.result import Result
from hepchain.core.study import get_study, run_study
from hepchain.reco.btag.data import evaluation_sample
from hepchain.reco.btag.gn1 import btag_jets
from hepchain.reco.btag.labels import ORIGIN_CLASSES, origin_class_weights


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("btag")
    cfg = get_study("btag").config("quick")
    overrides = {
        "data": {**cfg["data"], "n_events": 160, "n_test_events": 60, "workers": 1,
                 "shard_size": 80},
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


def test_test_jets_come_from_their_own_sample(tiny_run):
    result, workdir = tiny_run
    train, test = json.loads((workdir / "results.json").read_text())["provenance"]["datasets"]
    assert test["n_events"] == 60  # sized by data.n_test_events
    assert test["seed"] != train["seed"]
    n_test = sum(result.get(f"test {c}-jets", "data").value for c in ("b", "c", "light"))
    assert 60 * 2 < n_test < 60 * 8  # the test sample's jets (160 events would give ~800)


def test_test_sample_has_its_own_seed_stream_and_size():
    cfg = get_study("btag").config("paper")["data"]
    test = evaluation_sample(cfg)
    assert test["n_events"] == cfg["n_test_events"] and test["options"] == cfg["options"]
    shard_seeds = {t.seed for t in plan_shards(cfg["n_events"], cfg["shard_size"], cfg["seed"],
                                               {})}
    test_seeds = {t.seed for t in plan_shards(test["n_events"], test["shard_size"],
                                              test["seed"], {})}
    assert len(test_seeds) == test["n_events"] // test["shard_size"]
    assert not shard_seeds & test_seeds  # no training/validation event is regenerated
    assert evaluation_sample({**cfg, "n_test_events": 0}) is None
    assert evaluation_sample({**cfg, "path": "somewhere"}) is None  # the given dataset's split


def test_rejections_carry_their_binomial_error_and_passing_count(tiny_run):
    result, _ = tiny_run
    for method in ("IP3D-like", "DL1-like MLP", "GN1"):
        rej = result.get("light rejection @ 77% b-eff", method)
        n_pass = result.get("test light-jets passing the 77% working point", method).value
        n_light = result.get("test light-jets", "data").value
        if rej.limit == "lower":  # none passed: a limit, no binomial error
            assert n_pass == 0
        else:  # binomial: sqrt(eps (1 - eps) / N) / eps^2
            assert n_pass == pytest.approx(n_light / rej.value)
            eps = n_pass / n_light
            err = result.get("light rejection @ 77% b-eff, binomial error", method).value
            assert err == pytest.approx(np.sqrt(eps * (1 - eps) / n_light) / eps**2)


def test_pileup_and_fake_track_origins_are_populated_with_mu(tmp_path, monkeypatch):
    monkeypatch.setenv("HEPCHAIN_DATA", str(tmp_path))
    cfg = get_study("btag").config("quick")
    cfg["data"] = {**cfg["data"], "n_events": 30, "n_test_events": 0, "workers": 1,
                   "shard_size": 30, "options": {"mu": 20}}
    jets = btag_jets(cfg, Result(study="btag", preset=""))
    origin = np.concatenate([t.origin[t.mask] for t in jets.tables.values()])
    counts = np.bincount(origin, minlength=len(ORIGIN_CLASSES))
    pileup, fake = ORIGIN_CLASSES.index("pileup"), ORIGIN_CLASSES.index("fake")
    assert counts[pileup] > 0 and counts[fake] > 0
    weights = origin_class_weights(jets.tables["train"].origin)
    assert weights[pileup] > 0 and weights[fake] > 0  # both enter GN1's track-origin loss


def test_bad_dataset_path_and_classes_are_clear_errors(tmp_path):
    cfg = get_study("btag").config("quick")
    with pytest.raises(DataError, match="not a hepchain dataset"):
        run_study("btag", "quick", tmp_path / "run",
                  overrides={"data": {**cfg["data"], "path": str(tmp_path / "nothing")}})
    assert not (tmp_path / "run" / "results.json").exists()
    with pytest.raises(UsageError, match="classes must include b, c and light"):
        run_study("btag", "quick", tmp_path / "run", overrides={"classes": ["b", "light"]})
