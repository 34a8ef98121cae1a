"""The one seed layer: a run is one seed, ``bench`` runs and aggregates seeds honestly
(NaN/inf counted, failures recorded, limits kept), and studies are reproducible per seed."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hepchain.core.errors import HepchainError
from hepchain.core.provenance import command_line
from hepchain.core.result import Metric, Result
from hepchain.core.study import aggregate, bench_study


@pytest.fixture
def outcomes_study(monkeypatch):
    from hepchain import studies

    monkeypatch.setattr(studies, "REGISTRY", {"outcomes": "_helpers:SeedOutcomesStudy"})
    return "outcomes"


def test_bench_counts_nan_inf_and_failed_seeds(outcomes_study, tmp_path):
    res = bench_study(outcomes_study, "quick", tmp_path, seeds=4)
    x = res.get("x", "toy")
    assert (x.value, x.n, x.n_nonfinite) == (1.0, 1, 2)  # seed 0 finite, seed 1 NaN, seed 2 inf
    assert x.formatted() == "1 (2 seeds NaN/inf)"
    assert res.provenance.failed_seeds == [{"seed": 3, "error": "seed 3 has no data."}]
    assert any("seed 3 failed" in n and "seed 3 has no data." in n for n in res.notes)
    assert "DataError" in (tmp_path / "seed3" / "error.txt").read_text()
    assert res.provenance.seeds == [0, 1, 2]
    assert len(json.loads((tmp_path / "seeds.json").read_text())) == 3
    saved = Result.load(tmp_path).get("x", "toy")
    assert (saved.n, saved.n_nonfinite) == (1, 2)


def test_a_seed_that_is_a_limit_makes_the_aggregate_a_limit(outcomes_study, tmp_path):
    res = bench_study(outcomes_study, "quick", tmp_path, seeds=3)
    per_seed = [Result.load(tmp_path / f"seed{s}").get("rejection", "toy") for s in range(3)]
    assert [m.limit for m in per_seed] == [None, "lower", None]
    assert per_seed[0].value == pytest.approx(100.0)  # 1 of 100 background events passes
    rej = res.get("rejection", "toy")
    assert rej.limit == "lower" and rej.std is None and rej.n == 3
    assert rej.value == pytest.approx(np.mean([m.value for m in per_seed]))
    assert rej.formatted().startswith("> ")
    assert Result.load(tmp_path).get("rejection", "toy").limit == "lower"


def test_bench_fails_only_when_every_seed_fails(outcomes_study, tmp_path, capsys):
    from hepchain.cli import main

    with pytest.raises(HepchainError, match="Every seed of outcomes failed"):
        bench_study(outcomes_study, "quick", tmp_path, seeds=2,
                    overrides={"fail_seeds": [0, 1]})
    assert not (tmp_path / "results.json").exists()
    with pytest.raises(SystemExit) as exit_info:
        main(["outcomes", "bench", "--preset", "quick", "--seeds", "1", "--set",
              "fail_seeds=[0]", "--workdir", str(tmp_path / "cli")])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "seed 0 has no data." in err and "Traceback" not in err


def _result(*metrics: Metric) -> Result:
    return Result(study="s", preset="quick", metrics=list(metrics))


def test_aggregate_rules_for_limits_and_all_nonfinite_seeds():
    seeds = [_result(Metric("r", "m", 10.0, limit="lower"), Metric("z", "m", float("nan"))),
             _result(Metric("r", "m", 5.0, limit="upper"), Metric("z", "m", float("nan")))]
    merged = aggregate(seeds)
    assert np.isnan(merged.get("r", "m").value)  # a lower and an upper limit bound nothing
    z = merged.get("z", "m")
    assert np.isnan(z.value) and (z.n, z.n_nonfinite) == (0, 2)
    assert z.formatted() == "n/a (2 seeds NaN/inf)"
    single = aggregate([_result(Metric("t", "m", 0.8, std=0.05, n=400))]).get("t", "m")
    assert (single.value, single.std, single.n) == (0.8, 0.05, 400)  # one seed keeps its error


def test_metric_refuses_an_unknown_limit_kind():
    with pytest.raises(ValueError, match="limit"):
        Metric("r", "m", 1.0, limit="two-sided")


def test_identical_seeds_have_exactly_zero_spread():
    # 29.81 three times: the mean-subtracted std of these floats is ~4e-15, not 0
    value = 29.810844518843062
    merged = aggregate([_result(Metric("res", "m", value)) for _ in range(3)]).get("res", "m")
    assert merged.std == 0.0 and merged.value == pytest.approx(value)
    spread = aggregate([_result(Metric("x", "m", v)) for v in (1.0, 2.0, 3.0)]).get("x", "m")
    assert spread.std == pytest.approx(1.0)


def test_bench_reuses_completed_seeds_with_the_same_settings_only(outcomes_study, tmp_path):
    """An interrupted or extended bench runs only the missing seeds; other settings re-run."""
    bench_study(outcomes_study, "quick", tmp_path, seeds=2)
    started = [Result.load(tmp_path / f"seed{s}").provenance.started for s in range(2)]
    (tmp_path / "seed1" / "results.json").unlink()  # seed 1 "killed" before it finished
    res = bench_study(outcomes_study, "quick", tmp_path, seeds=3)
    assert Result.load(tmp_path / "seed0").provenance.started == started[0]  # not re-run
    assert (tmp_path / "seed1" / "results.json").is_file()
    assert (tmp_path / "seed2" / "results.json").is_file()
    assert any("seed(s) 0 had already completed" in n for n in res.notes)
    assert res.provenance.command == command_line()  # the bench's own command
    fresh = bench_study(outcomes_study, "quick", tmp_path / "fresh", seeds=3)
    assert res.get("rejection", "toy").value == fresh.get("rejection", "toy").value
    assert len(json.loads((tmp_path / "seeds.json").read_text())) == 3
    # other settings: nothing is reused (seed 0 runs again and now fails as asked)
    other = bench_study(outcomes_study, "quick", tmp_path, seeds=3,
                        overrides={"fail_seeds": [0]})
    assert not any("already completed" in n for n in other.notes)
    assert other.provenance.failed_seeds == [{"seed": 0, "error": "seed 0 has no data."}]


def test_provenance_records_the_revision_the_run_started_with(monkeypatch):
    """A commit made during a long run must not become that run's recorded revision."""
    from hepchain.core import provenance

    revisions = iter(["started-here", "committed-later"])
    monkeypatch.setattr(provenance, "git_revision", lambda: next(revisions))
    with provenance.ProvenanceRecorder({"x": 1}, seeds=[0]) as rec:
        pass
    assert rec.provenance.git_revision == "started-here"
