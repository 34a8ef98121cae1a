"""``hepchain compare``: paired comparisons of two methods over the seeds of a bench."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from typer.testing import CliRunner

from hepchain.cli import app, main
from hepchain.core.compare import compare_against, compare_methods, load_seed_results
from hepchain.core.errors import DataError, UsageError
from hepchain.core.result import Provenance, Result

METRIC = "test AUC"
# per seed 0..4: (A, B, C); A is NaN in seed 4, C exists only in seeds 2..4
A = [0.81, 0.84, 0.80, 0.83, math.nan]
B = [0.78, 0.83, 0.79, 0.80, 0.82]
C = {2: 0.70, 3: 0.74, 4: 0.71}
ERR = 0.01  # every row's test-set error


def _write_bench(root: Path) -> Path:
    seeds = []
    for s in range(5):
        res = Result(study="toy", preset="paper", provenance=Provenance(seeds=[s]))
        res.add(METRIC, "A", A[s], std=ERR, higher_is_better=True)
        res.add(METRIC, "B", B[s], std=ERR, higher_is_better=True)
        if s in C:
            res.add(METRIC, "C", C[s], std=ERR, higher_is_better=True)
        res.add("width [GeV]", "A", 2.0 + 0.1 * s, higher_is_better=False)
        res.add("width [GeV]", "B", 2.5 + 0.05 * s, higher_is_better=False)
        seeds.append(res.to_dict())
    root.mkdir(parents=True, exist_ok=True)
    (root / "seeds.json").write_text(json.dumps(seeds))
    return root


@pytest.fixture
def bench(tmp_path) -> list[Result]:
    return load_seed_results(_write_bench(tmp_path / "bench"))


def test_difference_is_a_paired_t_test_and_nan_seeds_are_dropped(bench):
    c = compare_methods(bench, METRIC, "A", "B")
    a, b = np.array(A[:4]), np.array(B[:4])
    assert c.n == 4 and c.n_dropped == 1 and c.n_unmatched == 0
    assert c.estimate == pytest.approx(np.mean(a - b))
    assert c.seed_std == pytest.approx(np.std(a - b, ddof=1))
    assert c.error == pytest.approx(np.std(a - b, ddof=1) / 2)
    assert c.p_value == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert sorted(c.per_seed) == [0, 1, 2, 3] and not c.stat_error_added


def test_ratio_is_a_t_test_of_the_log_ratios(bench):
    c = compare_methods(bench, METRIC, "A", "B", ratio=True)
    a, b = np.array(A[:4]), np.array(B[:4])
    assert c.estimate == pytest.approx(np.exp(np.mean(np.log(a / b))))
    assert c.p_value == pytest.approx(stats.ttest_rel(np.log(a), np.log(b)).pvalue)
    assert c.z == pytest.approx(stats.ttest_rel(np.log(a), np.log(b)).statistic)


def test_conservative_stat_error_adds_both_test_errors(bench):
    plain = compare_methods(bench, METRIC, "A", "B")
    c = compare_methods(bench, METRIC, "A", "B", add_stat_error=True)
    assert c.stat_error_added
    assert c.error == pytest.approx(math.sqrt(plain.error**2 + 2 * ERR**2))
    # p stays Student t(n − 1): with a normal, adding the error could lower p for few seeds
    assert c.p_value == pytest.approx(2 * stats.t(df=3).sf(abs(c.estimate) / c.error))
    assert c.p_value > plain.p_value
    # rows without a std: nothing to add, and the result says so
    w = compare_methods(bench, "width [GeV]", "A", "B", add_stat_error=True)
    assert not w.stat_error_added


def test_only_matched_seeds_are_paired(bench):
    c = compare_methods(bench, METRIC, "C", "B")
    assert c.n == 3 and c.n_unmatched == 2 and c.n_dropped == 0
    assert c.estimate == pytest.approx(np.mean([C[s] - B[s] for s in C]))
    # A and C share seeds 2, 3 (seed 4: A is NaN) -> two usable pairs
    ac = compare_methods(bench, METRIC, "A", "C")
    assert (ac.n, ac.n_dropped, ac.n_unmatched) == (2, 1, 2)


def test_against_compares_every_other_method(bench):
    rows, skipped = compare_against(bench, METRIC, "B")
    assert [(r.a, r.b) for r in rows] == [("A", "B"), ("C", "B")] and not skipped
    assert rows[0].estimate == compare_methods(bench, METRIC, "A", "B").estimate


def test_goal_direction_follows_higher_is_better(bench):
    # width: A − B = −0.5 … −0.3 per seed (A narrower, lower is better)
    assert compare_methods(bench, "width [GeV]", "A", "B", goal=-0.2).goal_met is True
    assert compare_methods(bench, "width [GeV]", "A", "B", goal=-0.45).goal_met is False
    c = compare_methods(bench, METRIC, "A", "B", goal=0.0)
    assert c.goal_met is (c.estimate - c.error > 0.0)


def test_bad_names_and_too_few_pairs_are_usage_errors(bench):
    with pytest.raises(UsageError, match="metrics: 'test AUC'; 'width \\[GeV\\]'"):
        compare_methods(bench, "AUC", "A", "B")
    with pytest.raises(UsageError, match="methods: 'A'; 'B'; 'C'"):
        compare_methods(bench, METRIC, "A", "D")
    with pytest.raises(UsageError, match="need at least two"):
        compare_methods(bench[3:], METRIC, "A", "B")


def test_seed_directories_are_read_without_seeds_json(tmp_path, bench):
    for s, res in enumerate(bench):
        res.save(tmp_path / f"seed{s}")
    again = load_seed_results(tmp_path)
    assert compare_methods(again, METRIC, "A", "B") == compare_methods(bench, METRIC, "A", "B")
    with pytest.raises(DataError, match=r"no seeds\.json and no seed"):
        load_seed_results(tmp_path / "seed0")


def test_cli_table_json_and_bad_input(tmp_path, capsys):
    root = _write_bench(tmp_path / "bench")
    out = tmp_path / "cmp.json"
    with pytest.raises(SystemExit) as ok:
        main(["compare", str(root), "--metric", METRIC, "--against", "B", "--json", str(out)])
    assert ok.value.code == 0
    data = json.loads(out.read_text())
    assert [(r["a"], r["b"], r["n"]) for r in data["comparisons"]] == [("A", "B", 4),
                                                                       ("C", "B", 3)]
    assert "dropped" in capsys.readouterr().out

    runner = CliRunner()
    bad = runner.invoke(app, ["compare", str(root), "--metric", "AUC", "--a", "A", "--b", "B"])
    assert bad.exit_code != 0 and isinstance(bad.exception, UsageError)
    assert "metrics: 'test AUC'" in str(bad.exception)
    for args, code, text in (
            (["--metric", "AUC", "--a", "A", "--b", "B"], 2, "metrics: 'test AUC'"),
            (["--metric", METRIC, "--a", "A", "--b", "D"], 2, "methods: 'A'; 'B'; 'C'"),
            (["--metric", METRIC, "--a", "A"], 2, "either --a METHOD and --b METHOD"),
            (["--metric", METRIC, "--against", "B", "--a", "A"], 2, "either --a")):
        with pytest.raises(SystemExit) as exc:
            main(["compare", str(root), *args])
        err = capsys.readouterr().err
        assert exc.value.code == code and text in err and "Traceback" not in err
    with pytest.raises(SystemExit) as exc:
        main(["compare", str(tmp_path), "--metric", METRIC, "--a", "A", "--b", "B"])
    assert exc.value.code == 1 and "no seeds.json" in capsys.readouterr().err
