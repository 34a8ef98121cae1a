"""Settings: presets as overlays, their meanings, and dotted type-checked ``--set`` overrides."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from rich.console import Console

import hepchain
from hepchain import cli
from hepchain.core import config
from hepchain.core.errors import UsageError
from hepchain.core.study import get_study
from hepchain.studies import REGISTRY

MISSING = object()


def run(args: list[str]) -> int:
    """``hepchain ARGS`` in this process -> exit code."""
    try:
        cli.main(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def settings_rows(args: list[str], monkeypatch) -> dict[str, list[str]]:
    """The rows of ``hepchain ARGS`` (a settings table), by setting: [value, differs, meaning]."""
    out = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=out, width=1000))
    assert run(args) == 0
    rows = {}
    for line in out.getvalue().splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if len(cells) == 4:
            rows[cells[0]] = cells[1:]
    return rows


def test_overlay_merges_mappings_and_replaces_everything_else():
    base = {"train": {"epochs": 40, "lr": 0.002}, "bins": [1, 2, 3], "name": "a", "opt": {}}
    top = {"train": {"epochs": 60}, "bins": [4], "opt": {"x": 1}, "extra": None}
    merged = config.overlay(base, top)
    assert merged == {"train": {"epochs": 60, "lr": 0.002}, "bins": [4], "name": "a",
                      "opt": {"x": 1}, "extra": None}
    assert base["train"]["epochs"] == 40 and base["opt"] == {}  # the base is not changed


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_paper_differs_from_quick_exactly_where_it_says(name):
    written = config.read_config_file(name)
    quick, stated = config.leaves(written["quick"]), config.leaves(written["paper"])
    paper = config.leaves(config.load_presets(name)["paper"])
    # a quick leaf that paper turns into a block (null -> mapping) is replaced by its leaves
    kept = {k: v for k, v in quick.items() if not any(s.startswith(k + ".") for s in stated)}
    assert paper == {**kept, **stated}
    restated = [k for k, v in stated.items() if quick.get(k, MISSING) == v]
    assert not restated, f"paper repeats quick's value of {restated}"


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_setting_of_every_preset_has_a_meaning(name):
    meanings = config.load_help(name)
    presets = config.load_presets(name)
    for preset, cfg in presets.items():
        missing = [k for k in config.leaves(cfg) if not config.meaning(meanings, k)]
        assert not missing, f"{name}/{preset}: no meaning for {missing}"
    known = {".".join(k.split(".")[:n]) for cfg in presets.values()
             for k in config.leaves(cfg) for n in range(1, k.count(".") + 2)}
    assert not set(meanings) - known, "meanings of settings that do not exist"


def test_meaning_of_a_leaf_falls_back_to_its_block():
    meanings = {"selection": "leading-jet cuts (GeV)", "train.epochs": "training epochs"}
    assert config.meaning(meanings, "selection.pt_min") == "leading-jet cuts (GeV)"
    assert config.meaning(meanings, "train.epochs") == "training epochs"
    assert config.meaning(meanings, "train.lr") == ""


def test_nested_set_changes_one_key_and_keeps_the_rest(monkeypatch):
    before = settings_rows(["btag", "settings"], monkeypatch)
    after = settings_rows(["btag", "settings", "--set", "train.epochs=3",
                           "--set", "data.n_events=200", "--set", "train.lr=5e-4"], monkeypatch)
    changed = {k: (before[k][0], after[k][0]) for k in before if before[k] != after[k]}
    quick = get_study("btag").config("quick")
    assert changed == {"train.epochs": (str(quick["train"]["epochs"]), "3"),
                       "data.n_events": (str(quick["data"]["n_events"]), "200"),
                       "train.lr": (str(quick["train"]["lr"]), "0.0005")}
    assert set(after) == set(before)


def test_settings_show_the_preset_the_presets_that_differ_and_the_meaning(monkeypatch):
    presets, meanings = config.load_presets("btag"), config.load_help("btag")
    rows = settings_rows(["btag", "settings", "--preset", "paper"], monkeypatch)
    assert rows["data.n_events"] == [str(presets["paper"]["data"]["n_events"]),
                                     "paper, paper-mu20, paper-mu40, paper-gpu", meanings["data.n_events"]]
    assert rows["data.seed"] == [str(presets["quick"]["data"]["seed"]), "",
                                 meanings["data.seed"]]
    assert rows["gn1_variants.GN1 +vertex"][0] == "[jet, vertex]"  # only paper has it
    assert rows["selection.pt_min"][2] == meanings["selection"]  # the block's meaning


def test_settings_of_a_study_whose_presets_are_code(toy_study, monkeypatch):
    rows = settings_rows(["toy", "settings"], monkeypatch)
    assert rows["n"] == ["600", "paper", ""] and rows["train.lr"] == ["0.05", "", ""]


def test_a_mapping_replaces_the_whole_block_and_is_checked_key_by_key():
    study = get_study("btag")
    quick = study.config("quick")
    cfg = study.config("quick", {"train": {"epochs": 2}})
    assert cfg["train"] == {"epochs": 2}
    assert {k: v for k, v in cfg.items() if k != "train"} == {
        k: v for k, v in quick.items() if k != "train"}
    cfg = study.config("quick", {"train": {"epochs": 2}, "train.lr": 0.01})
    assert cfg["train"] == {"epochs": 2, "lr": 0.01}  # overrides apply in order
    with pytest.raises(UsageError, match=r"^train\.epochs must be an integer"):
        study.config("quick", {"train": {"epochs": "2"}})
    with pytest.raises(UsageError, match=r"'train\.epoch' is not a setting .*'train\.epochs'"):
        study.config("quick", {"train": {"epoch": 2}})


def test_quick_takes_a_key_that_only_paper_has_checked_against_paper():
    study = get_study("btag")
    variants = {"GN1": ["jet", "track", "vertex"], "GN1 +vertex": ["jet", "vertex"]}
    assert study.config("quick", {"gn1_variants": variants})["gn1_variants"] == variants
    paper_value = study.config("paper")["gn1_variants"]["GN1 +vertex"]
    with pytest.raises(UsageError, match=re.escape(
            f"gn1_variants.GN1 +vertex must be a list (paper has {paper_value!r}), got 'jet'.")):
        study.config("quick", {"gn1_variants.GN1 +vertex": "jet"})
    with pytest.raises(UsageError, match=r"'gn1_variants\.GN1 mine' is not a setting"):
        study.config("quick", {"gn1_variants": {"GN1 mine": ["jet"]}})


def test_null_defaults_and_empty_mappings_take_any_value():
    study = get_study("btag")
    cfg = study.config("quick", {"data.path": "/some/dataset", "data.options.decay": "hadronic"})
    assert cfg["data"]["path"] == "/some/dataset"
    assert cfg["data"]["options"] == {"decay": "hadronic"}
    with pytest.raises(UsageError, match=r"'data\.path\.x' is not a setting"):
        study.config("quick", {"data.path.x": 1})


@pytest.mark.parametrize(("pair", "message"), [
    ("train.epochs=abc", "train.epochs must be an integer (quick has {train[epochs]}), got 'abc'."),
    ("train.epochs=true", "train.epochs must be an integer (quick has {train[epochs]}), got True."),
    ("train.lr=fast", "train.lr must be a number (quick has {train[lr]}), got 'fast'."),
    ("onnx=1", "onnx must be true or false (quick has True), got 1."),
    ("classes=b", "classes must be a list (quick has {classes}), got 'b'."),
    ("pt_bins=[20, 30.5]", "pt_bins must be a list of integers (quick has {pt_bins}), "
                           "got [20, 30.5]."),
    ("data.process=[ttbar]", "data.process must be a string (quick has 'ttbar'), "
                             "got ['ttbar']."),
    ("split=1", "split must be a mapping (quick has {split}), got 1."),
    ("selection=1", "selection must be a mapping (quick has {{'pt_min': 20.0, 'eta_max': 2.5, "
                    "'hard_scatter_dr': None,...), got 1."),  # a long value is cut at 60
])
@pytest.mark.parametrize("verb", ["run", "bench"])
def test_a_bad_type_is_one_sentence_exit_2_and_no_workdir(verb, pair, message, tmp_path,
                                                         capsys):
    quick = get_study("btag").config("quick")
    workdir = tmp_path / "runs" / "btag"
    assert run(["btag", verb, "--preset", "quick", "--workdir", str(workdir),
                "--set", pair]) == 2
    err = capsys.readouterr().err
    assert " ".join(err.split()) == f"error: {message.format(**quick)}"  # rich may wrap it
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("verb", ["run", "bench"])
def test_run_and_bench_help_point_to_the_settings_command(verb, capsys):
    assert run(["btag", verb, "--help"]) == 0
    assert "hepchain btag settings" in " ".join(capsys.readouterr().out.split())


def test_an_unknown_key_names_the_closest_settings(tmp_path, capsys):
    assert run(["btag", "run", "--workdir", str(tmp_path / "run"),
                "--set", "train.epoch=3"]) == 2
    err = capsys.readouterr().err
    assert "'train.epoch' is not a setting of btag/quick; closest: 'train.epochs'" in err
    assert not (tmp_path / "run").exists()


def test_a_study_error_before_any_output_leaves_no_workdir(tmp_path, capsys):
    workdir = tmp_path / "new" / "run"
    assert run(["linac", "run", "--workdir", str(workdir), "--set", "parts=[]"]) == 2
    assert "parts must name" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()
    mine = tmp_path / "mine"  # a directory the user made is never removed
    mine.mkdir()
    assert run(["linac", "run", "--workdir", str(mine), "--set", "parts=[]"]) == 2
    assert mine.is_dir()


def test_set_values_are_yaml_with_exponent_floats():
    assert cli.parse_sets(["a=1e-3", "b=2", "c=[x, 1]", "d={k: null}", "e=on/off"]) == {
        "a": 0.001, "b": 2, "c": ["x", 1], "d": {"k": None}, "e": "on/off"}
    with pytest.raises(UsageError, match=r"--set a: '\[1,' is not a YAML value"):
        cli.parse_sets(["a=[1,"])


def test_settings_command_is_light():
    code = ("import sys\nfrom hepchain.cli import main\ntry:\n    main(['btag', 'settings'])\n"
            "except SystemExit:\n    pass\nprint(sorted({'torch', 'hepchain.reco.btag.study'}"
            " & set(sys.modules)))")
    env = {**os.environ, "PYTHONPATH": str(Path(hepchain.__file__).parents[1])}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, check=True)
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_a_config_file_without_quick_is_refused():
    with pytest.raises(UsageError, match="has no 'quick' preset"):
        config.presets_from(yaml.safe_load("paper: {n: 1}"), "configs/x.yaml")


def test_a_preset_that_extends_another_overlays_its_effective_settings():
    text = """
quick: {data: {n: 10, mu: 0}, train: {epochs: 2, lr: 0.1}}
paper: {data: {n: 100}, train: {epochs: 8}}
paper-gpu: {extends: paper, data: {mu: 20}, train: {device: cuda}}
"""
    presets = config.presets_from(yaml.safe_load(text), "configs/x.yaml")
    assert presets["paper-gpu"] == {"data": {"n": 100, "mu": 20},
                                    "train": {"epochs": 8, "lr": 0.1, "device": "cuda"}}
    assert presets["paper"] == {"data": {"n": 100, "mu": 0}, "train": {"epochs": 8, "lr": 0.1}}
    assert "extends" not in presets["paper-gpu"]


@pytest.mark.parametrize("text", ["quick: {n: 1}\npaper: {extends: papr}",
                                  "quick: {n: 1}\na: {extends: b}\nb: {extends: a}",
                                  "quick: {n: 1}\na: {extends: a}"])
def test_extends_of_an_unknown_preset_or_a_cycle_is_refused(text):
    with pytest.raises(UsageError, match="extends"):
        config.presets_from(yaml.safe_load(text), "configs/x.yaml")
