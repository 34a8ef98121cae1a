"""The CLI and the generic study drivers (run, bench, demo, report) on a toy study."""

from __future__ import annotations

import importlib
import json
import math
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from _helpers import bayes_auc, blobs
from hepchain.cli import main
from hepchain.core import threads
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
    # each of 2 parallel seeds may use half the cores (asked for 64 threads), one alone all
    cores = threads.available_cores()
    assert Result.load(tmp_path / "j2").get("torch threads", "logistic").value == max(1, cores // 2)
    assert Result.load(tmp_path / "j1").get("torch threads", "logistic").value == min(64, cores)
    per_seed = json.loads((tmp_path / "j1" / "seeds.json").read_text())
    assert [r["provenance"]["seeds"] for r in per_seed] == [[0], [1]]
    assert run_cli(["toy", "bench", "--jobs", "0", "--workdir", str(tmp_path / "j0")]) == 2
    assert not (tmp_path / "j0").exists()


def test_demo_and_report(toy_study, tmp_path):
    out = tmp_path / "demo"
    assert run_cli(["demo", "--out", str(out)]) == 0
    page = (out / "index.html").read_text()
    assert "toy" in page and "data:image/png;base64," in page and "provenance" in page
    record = Result.load(out)  # the demo's own record: each study's wall time
    toy_time = Result.load(out / "toy").provenance.wall_time_s
    assert record.study == "demo" and record.get("quick-preset wall time", "toy").value == toy_time
    assert record.get("make demo wall time", "all studies").value >= toy_time
    assert record.get("studies failed", "all studies").value == 0
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


# --- a user mistake is one sentence; Ctrl-C says how to resume; start-up is instant ---------

def _one_sentence(err: str) -> None:
    assert err.startswith("error: ") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_setting_of_wrong_type_is_one_sentence_and_makes_no_workdir(toy_study, tmp_path,
                                                                     capsys):
    workdir = tmp_path / "new" / "run"
    assert run_cli(["toy", "run", "--set", "n=abc", "--workdir", str(workdir)]) == 2
    err = capsys.readouterr().err
    _one_sentence(err)
    assert "n must be an integer" in err and not (tmp_path / "new").exists()


@pytest.mark.parametrize("command", [["toy", "run", "--workdir"], ["toy", "bench", "--workdir"],
                                     ["demo", "--out"], ["generate", "ttbar", "-n", "5", "--out"]])
def test_workdir_that_is_a_file_or_unwritable_is_one_sentence(command, toy_study, tmp_path,
                                                              capsys):
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory")
    for where, says in ((a_file, "is a file, not a directory"),
                        (a_file / "sub", "is a file, not a directory"),
                        (Path("/proc/hepchain-test/run"), "cannot write in /proc")):
        assert run_cli([*command, str(where)]) == 2
        err = capsys.readouterr().err
        _one_sentence(err)
        assert says in err
    assert a_file.read_text() == "not a directory" and not Path("/proc/hepchain-test").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_shard_size_zero_is_refused_not_replaced(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "hepchain.cli", "generate", "ttbar", "-n", "10",
                           "--shard-size", "0", "--out", str(tmp_path / "ds")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "--shard-size" in proc.stderr and "greater than or equal to 1" in proc.stderr
    assert not (tmp_path / "ds").exists()


@pytest.mark.parametrize(("command", "target", "says"), [
    (["toy", "run"], "hepchain.core.study.run_study", "continue from their last completed epoch"),
    (["toy", "bench"], "hepchain.core.study.bench_study", "cut short continue from their"),
    (["generate", "ttbar", "-n", "5"], "hepchain.producers.find_producer",
     "complete shards are kept"),
])
def test_ctrl_c_says_that_the_same_command_resumes(command, target, says, toy_study, tmp_path,
                                                   capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(target, interrupted)
    flag = "--out" if command[0] == "generate" else "--workdir"
    assert run_cli([*command, flag, str(tmp_path / "wd")]) == 130
    err = capsys.readouterr().err
    assert "interrupted. Run the same command again to resume" in err and says in err


def _seconds(args: list[str], runs: int = 2) -> float:
    """CPU time (user + sys) of ``python ARGS``, the best of ``runs``: unlike wall time it
    does not grow with the load of a shared machine."""
    times = []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([sys.executable, *args], check=True, capture_output=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        times.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return min(times)


def test_list_and_help_start_instantly_without_importing_studies():
    """`hepchain list` took 8 s and `--help` 3.5 s when they imported every study (torch,
    Pythia, cheetah); now they import typer, rich and YAML only (a study's own `--help`
    imports that study, for its own verbs). Bound on CPU time over a bare `python -c pass`:
    1.5 s, or half of `import torch` measured in the same run on a slower CPU, so importing
    torch (or any study) fails it."""
    baseline = _seconds(["-c", "pass"])
    torch_import = _seconds(["-c", "import torch"], runs=1)
    bound = max(1.5, 0.5 * (torch_import - baseline))
    for args in (["list"], ["--help"]):
        took = _seconds(["-m", "hepchain.cli", *args]) - baseline
        assert took < bound, (args, took, baseline, torch_import)
    probe = ("import sys\nfrom hepchain.cli import main\n"
             "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
             "heavy = ('numpy', 'torch', 'hepchain.core.study', 'hepchain.collider.study')\n"
             "print([m for m in heavy if m in sys.modules])")
    for args in (["list"], ["--help"], ["ipknob", "settings"]):
        proc = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True,
                              text=True, check=True)
        assert proc.stdout.strip().splitlines()[-1] == "[]", (args, proc.stdout[-300:])


def test_list_reads_studies_without_importing_them(capsys):
    assert run_cli(["list"]) == 0
    out = capsys.readouterr().out
    assert "ipknob" in out and "004" in out and "quick, paper" in out
    from hepchain.studies import REGISTRY, study_info

    info = study_info("ipknob")
    module, _, attr = REGISTRY["ipknob"].partition(":")
    study_class = getattr(importlib.import_module(module), attr)
    assert (info.description, info.seed_doc) == (study_class.description, study_class.seed_doc)


def test_help_lists_processes_and_points_to_settings(toy_study, capsys):
    proc = subprocess.run([sys.executable, "-m", "hepchain.cli", "generate", "--help"],
                          capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    from hepchain.producers import process_catalogue

    catalogue = process_catalogue()
    assert {"ttbar", "ecal_fixed", "ipknob_scans", "linac_oplog"} <= set(catalogue)
    for name, text in catalogue.items():
        assert f"{name}: {text}" in proc.stdout
    assert run_cli(["toy", "--help"]) == 0
    out = capsys.readouterr().out
    assert "test-only logistic regression" in out and "hepchain toy settings" in out


def test_static_value_reads_literals_and_refuses_computed_values(tmp_path, monkeypatch):
    from hepchain.core.static import static_value

    (tmp_path / "static_probe.py").write_text(
        "import math\nNAME = 'a'\nTABLE: dict = {NAME: 'first', 'b': ('x' 'y')}\n"
        "COMPUTED = {k: 1 for k in 'ab'}\nLATER = math.pi\n"
        "class Thing:\n    label = ('one ' 'line')\n    size = len('abc')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert static_value("static_probe", "TABLE") == {"a": "first", "b": "xy"}
    assert static_value("static_probe", "label", "Thing") == "one line"
    for name, owner in (("COMPUTED", None), ("LATER", None), ("size", "Thing"),
                        ("absent", None), ("label", "Other")):
        with pytest.raises(LookupError):
            static_value("static_probe", name, owner)
    assert "static_probe" not in sys.modules


def test_package_import_is_lazy():
    code = ("import sys, hepchain\nbefore = 'numpy' in sys.modules\n"
            "hepchain.Result\nprint(before, 'numpy' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert proc.stdout.split() == ["False", "True"]
