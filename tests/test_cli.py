"""The CLI and the generic study drivers (run, bench, demo, report) on a toy study."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from _helpers import bayes_auc, blobs
from hepchain.cli import main
from hepchain.core.metrics import roc_auc
from hepchain.core.result import Result


def run_cli(args: list[str]) -> int:
    try:
        main(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_unknown_study_is_one_sentence_and_exit_2():
    proc = subprocess.run([sys.executable, "-m", "hepchain.cli", "nosuchstudy", "run"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Unknown study or command 'nosuchstudy'" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) <= 2


def test_bad_preset_and_setting_exit_2(toy_study, tmp_path, capsys):
    assert run_cli(["toy", "run", "--preset", "huge", "--workdir", str(tmp_path)]) == 2
    assert "has no preset 'huge'" in capsys.readouterr().err
    assert run_cli(["toy", "run", "--set", "nn=3", "--workdir", str(tmp_path)]) == 2
    assert "'nn' is not a setting" in capsys.readouterr().err
    assert not (tmp_path / "results.json").exists()


def auc_standard_error(auc: float, n_pos: int, n_neg: int) -> float:
    """Hanley & McNeil (1982) standard error of an AUC measured on n_pos + n_neg events."""
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc**2) + (n_neg - 1) * (q2 - auc**2))
    return math.sqrt(var / (n_pos * n_neg))


@pytest.mark.parametrize("shift", [0.5, 1.5])
def test_toy_reference_is_the_bayes_auc_of_the_blobs(shift):
    """The sum of the coordinates is the optimal score of the blobs; its AUC on 200k events
    (standard error < 0.001) must equal the analytic value the toy study prints as reference."""
    x, y = blobs(200_000, seed=0, shift=shift)
    assert roc_auc(y.numpy(), x.sum(dim=1).numpy()) == pytest.approx(bayes_auc(shift), abs=0.003)


def test_run_writes_results_with_provenance(toy_study, tmp_path):
    # 100 full-batch steps: the preset's 10 leave some seeds unconverged (AUC 0.89 at seed 3)
    assert run_cli(["toy", "run", "--workdir", str(tmp_path), "--seed", "2", "--set",
                    "train={epochs: 100, lr: 0.05, progress: false}"]) == 0
    res = Result.load(tmp_path)
    auc = res.get("AUC", "logistic")
    assert auc.reference.value == pytest.approx(bayes_auc()) and auc.reference.same_dataset
    # the test third of 600 events holds ~100 per class; a converged logistic regression is
    # the Bayes classifier (a linear score), so it differs from the optimum by the test-set
    # fluctuation only (seeds 0-7 measured within 1.4 standard errors)
    se = auc_standard_error(auc.reference.value, 100, 100)
    assert auc.reference.value - 4 * se < auc.value < auc.reference.value + 3 * se
    prov = res.provenance
    assert prov.seeds == [2] and prov.config["n"] == 600 and "torch" in prov.versions
    assert prov.wall_time_s > 0 and prov.peak_memory_mb > 0
    assert prov.machine["cores"] >= 1 and prov.machine["cpu"]
    assert (tmp_path / "roc.png").is_file()


def test_bench_aggregates_seeds(toy_study, tmp_path):
    assert run_cli(["toy", "bench", "--preset", "quick", "--seeds", "3",
                    "--workdir", str(tmp_path)]) == 0
    res = Result.load(tmp_path)
    auc = res.get("AUC", "logistic")
    per_seed = [Result.load(tmp_path / f"seed{s}").get("AUC", "logistic").value for s in range(3)]
    assert auc.n == 3 and auc.value == pytest.approx(sum(per_seed) / 3)
    assert auc.std > 0
    assert (tmp_path / "box_auc.png").is_file()


def test_bench_parallel_seeds_match_serial(toy_study, tmp_path):
    """--jobs 2 runs the seeds in worker processes and gives the same per-seed numbers."""
    for jobs in (1, 2):
        assert run_cli(["toy", "bench", "--preset", "quick", "--seeds", "2", "--jobs",
                        str(jobs), "--workdir", str(tmp_path / f"j{jobs}")]) == 0
    serial, parallel = (Result.load(tmp_path / f"j{j}").get("AUC", "logistic") for j in (1, 2))
    assert (parallel.value, parallel.std) == (serial.value, serial.std)
    assert Result.load(tmp_path / "j2" / "seed1").provenance.seeds == [1]
    per_seed = json.loads((tmp_path / "j1" / "seeds.json").read_text())
    assert [r["provenance"]["seeds"] for r in per_seed] == [[0], [1]]
    assert run_cli(["toy", "bench", "--jobs", "0", "--workdir", str(tmp_path / "j0")]) == 2
    assert not (tmp_path / "j0").exists()


def test_demo_and_report(toy_study, tmp_path):
    out = tmp_path / "demo"
    assert run_cli(["demo", "--out", str(out)]) == 0
    page = (out / "index.html").read_text()
    assert "toy" in page and "data:image/png;base64," in page and "provenance" in page
    (out / "index.html").unlink()
    assert run_cli(["report", str(out)]) == 0
    assert "reference: analytic optimum" in (out / "index.html").read_text()
    assert run_cli(["report", str(tmp_path / "missing")]) == 2


def test_list_and_empty_demo(toy_study, tmp_path, capsys, monkeypatch):
    assert run_cli(["list"]) == 0
    assert "test-only logistic regression" in capsys.readouterr().out
    from hepchain import studies

    monkeypatch.setattr(studies, "REGISTRY", {})
    assert run_cli(["demo", "--out", str(tmp_path)]) == 0
    assert "No studies are registered yet" in (tmp_path / "index.html").read_text()


def test_results_json_roundtrip(toy_study, tmp_path):
    run_cli(["toy", "run", "--workdir", str(tmp_path)])
    data = json.loads((tmp_path / "results.json").read_text())
    assert Result.from_dict(data).to_dict() == data
