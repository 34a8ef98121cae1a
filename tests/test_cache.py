"""The one dataset cache (core.cache) and ``hepchain data ls|rm``, on tiny fast-simulation
calorimeter datasets (a fraction of a second each)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from hepchain.calo import produce as calo
from hepchain.core.cache import cache_key, cached_dataset, find_cached, list_entries
from hepchain.core.dataset import MANIFEST, Manifest
from hepchain.core.errors import UsageError
from test_cli import run_cli

OPTIONS = {"sim": "fast", "n_pix": 4, "energies": "1,2"}
REQUEST = {"n_events": 8, "seed": 1, "options": OPTIONS, "shard_size": 4}


def get(root, **changes):
    return cached_dataset("ecal_fixed", **{**REQUEST, **changes}, root=root, progress=False)


def forbid_generation(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("the cache generated a dataset it should have reused")

    monkeypatch.setattr(calo, "produce", boom)


def test_same_request_reuses_the_dataset_and_reports_its_original_cost(tmp_path, monkeypatch):
    assert find_cached("ecal_fixed", **REQUEST, root=tmp_path) is None
    first = get(tmp_path)
    assert find_cached("ecal_fixed", **REQUEST, root=tmp_path) == first
    assert first.path.parent == tmp_path
    assert first.path.name == f"ecal_fixed-8-s1-{first.key[:10]}"
    assert first.manifest.complete and first.generation_s > 0
    forbid_generation(monkeypatch)
    # the same request, with the options written as the strings `--set` gives
    again = get(tmp_path, options={k: str(v) for k, v in OPTIONS.items()})
    assert again.path == first.path and again.key == first.key
    assert again.generation_s == first.generation_s  # the original cost, not the reuse time


@pytest.mark.parametrize("change", [{"options": {**OPTIONS, "energies": "1,3"}},
                                    {"n_events": 12}, {"seed": 2}, {"shard_size": 8}])
def test_option_event_count_seed_or_shard_size_change_the_key(change):
    assert cache_key("ecal_fixed", **{**REQUEST, **change}) != cache_key("ecal_fixed", **REQUEST)


def test_equivalent_spellings_of_an_option_share_the_key():
    """Keyed by the producer's validated settings: two studies writing 2 and "2.0" share."""
    spread = [cache_key("ecal_fixed", **{**REQUEST, "options": {**OPTIONS, "spread": v}})
              for v in (2, "2.0", 2.5)]
    assert spread[0] == spread[1] != spread[2]


def test_a_changed_producer_default_changes_the_key(monkeypatch):
    before = cache_key("ecal_fixed", **REQUEST)
    monkeypatch.setitem(calo.DEFAULTS, "spread", 3.0)  # a new generator default, same options
    assert cache_key("ecal_fixed", **REQUEST) != before


def test_shard_size_none_is_the_producer_default():
    assert cache_key("ecal_fixed", **{**REQUEST, "shard_size": None}) == cache_key(
        "ecal_fixed", **{**REQUEST, "shard_size": calo.DEFAULT_SHARD_SIZE})


def edit_manifest(path, **changes):
    data = json.loads((path / MANIFEST).read_text())
    for key, value in changes.items():
        if isinstance(value, dict):
            data[key].update(value)
        else:
            data[key] = value
    (path / MANIFEST).write_text(json.dumps(data))


@pytest.mark.parametrize("edit", [{"settings": {"spread": 0.5}}, {"seed": 5},
                                  {"n_events": 4}])
def test_a_complete_dataset_with_another_manifest_is_regenerated(tmp_path, capsys, edit):
    first = get(tmp_path)
    edit_manifest(first.path, **edit)
    assert Manifest.load(first.path).complete
    again = get(tmp_path)
    assert "regenerating" in capsys.readouterr().err
    assert again.path == first.path
    assert again.manifest.settings == calo.shard_settings("ecal_fixed", OPTIONS)
    assert (again.manifest.seed, again.manifest.n_events) == (1, 8)
    assert again.generation_s > 0  # measured again by the run that regenerated it


def test_an_unreadable_manifest_is_listed_and_regenerated(tmp_path, capsys):
    first = get(tmp_path)
    (first.path / MANIFEST).write_text("{not json")
    [entry] = list_entries(tmp_path)
    assert (entry.key, entry.process, entry.complete) == (first.key, "ecal_fixed", False)
    again = get(tmp_path)
    assert "unreadable manifest" in capsys.readouterr().err
    assert again.manifest.complete and list_entries(tmp_path)[0].complete


def test_btag_loader_never_reuses_events_of_other_options(tmp_path, capsys):
    """The former stale-jets bug: ``reco/btag/data.py`` keyed its cache by process, event
    count and seed only, so events made with other options (or an edited manifest) came back."""
    from hepchain.reco.btag.data import load_events

    cfg = {"process": "ecal_fixed", "n_events": 8, "seed": 1, "shard_size": 4,
           "options": OPTIONS}
    events_a, manifest_a = load_events(cfg)
    events_b, manifest_b = load_events({**cfg, "options": {**OPTIONS, "energies": "5,10"}})
    assert manifest_a.settings["energies"] == [1.0, 2.0]
    assert manifest_b.settings["energies"] == [5.0, 10.0]
    assert not np.array_equal(events_a["incident_energies"], events_b["incident_energies"])
    key = cache_key("ecal_fixed", **REQUEST)
    stale = next(p for p in (tmp_path / "data").iterdir() if p.name.endswith(key[:10]))
    edit_manifest(stale, settings={"energies": [5.0, 10.0]})
    events, manifest = load_events(cfg)
    assert "regenerating" in capsys.readouterr().err
    assert manifest.settings["energies"] == [1.0, 2.0]
    assert np.array_equal(events["incident_energies"], events_a["incident_energies"])


def test_interrupted_generation_resumes_and_its_cost_is_unknown(tmp_path):
    first = get(tmp_path)
    manifest = Manifest.load(first.path)
    manifest.complete = False
    lost = manifest.shards.pop()
    (first.path / lost.file).unlink()
    (first.path / MANIFEST).write_text(manifest.to_json())
    kept = first.path / manifest.shards[0].file
    mtime = kept.stat().st_mtime_ns
    again = get(tmp_path)
    assert again.manifest.complete and len(again.manifest.shards) == 2
    assert kept.stat().st_mtime_ns == mtime  # the complete shard was kept, not rewritten
    assert again.manifest.shards[1].sha256 == lost.sha256  # same seed, same bytes
    assert math.isnan(again.generation_s)  # part of the cost was spent by the killed run


def test_a_dataset_made_outside_the_cache_has_unknown_cost(tmp_path, monkeypatch):
    key = cache_key("ecal_fixed", **REQUEST)
    calo.produce("ecal_fixed", tmp_path / f"ecal_fixed-8-s1-{key[:10]}", n_events=8, seed=1,
                 shard_size=4, options={k: str(v) for k, v in OPTIONS.items()}, progress=False)
    forbid_generation(monkeypatch)
    assert math.isnan(get(tmp_path).generation_s)


def test_a_request_waits_while_another_process_generates_the_same_dataset(tmp_path):
    """Parallel seeds (``bench --jobs``) asking for one dataset generate it once."""
    import threading

    from hepchain.core.cache import _locked

    path = tmp_path / f"ecal_fixed-8-s1-{cache_key('ecal_fixed', **REQUEST)[:10]}"
    got = []
    with _locked(path):  # as if another process were generating it
        waiting = threading.Thread(target=lambda: got.append(get(tmp_path)))
        waiting.start()
        waiting.join(timeout=1.0)
        assert waiting.is_alive() and not path.exists()
    waiting.join(timeout=60)
    assert got and got[0].path == path and got[0].manifest.complete


def test_root_argument_then_hepchain_data_then_data_in_the_cwd(tmp_path, monkeypatch):
    monkeypatch.setenv("HEPCHAIN_DATA", str(tmp_path / "env"))
    assert get(None).path.parent == tmp_path / "env"
    assert get(tmp_path / "arg").path.parent == tmp_path / "arg"
    monkeypatch.delenv("HEPCHAIN_DATA")
    monkeypatch.chdir(tmp_path)
    assert get(None).path.parent.resolve() == (tmp_path / "data").resolve()


def test_event_count_below_one_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="at least 1"):
        get(tmp_path, n_events=0)
    assert not tmp_path.joinpath("data").exists()


def test_data_ls_and_rm(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("HEPCHAIN_DATA", str(tmp_path))
    one = get(None)
    two = get(None, seed=2)
    assert run_cli(["data", "ls"]) == 0
    out = capsys.readouterr().out
    assert one.key[:10] in out and two.key[:10] in out and "ecal_fixed" in out
    assert "energies=1,2" in out and f"{one.generation_s:.1f}" in out
    assert run_cli(["data", "rm", "ecal_fixed-8"]) == 2  # a prefix of both names
    assert "matches 2 cached datasets" in capsys.readouterr().err
    assert run_cli(["data", "rm", "nosuchkey"]) == 2
    err = capsys.readouterr().err
    assert "'nosuchkey' matches no cached dataset" in err and "Traceback" not in err
    assert run_cli(["data", "rm", one.key[:6], "--root", str(tmp_path)]) == 0
    assert not one.path.exists() and two.path.exists()
    assert [e.key for e in list_entries(tmp_path)] == [two.key]
    assert run_cli(["data", "rm", two.path.name]) == 0
    assert list_entries(tmp_path) == []


def test_structured_options_of_a_producer_with_preset_defaults(tmp_path):
    """``ipknob_scans`` takes mappings/lists as options, over the ipknob quick preset."""
    from hepchain.accelerator.ipknob.dataset import read_scans
    from hepchain.core.study import get_study

    preset = get_study("ipknob").config("quick")["simulation"]
    assert cache_key("ipknob_scans", n_events=4, seed=1, options=preset) == cache_key(
        "ipknob_scans", n_events=4, seed=1)
    ds = cached_dataset("ipknob_scans", n_events=4, seed=1, options={"knobs": ["LER_R1"]},
                        root=tmp_path, progress=False)
    assert {scan["knob"] for scan in read_scans(ds.path)} == {"LER_R1"}
    with pytest.raises(UsageError, match="has no setting"):
        cache_key("ipknob_scans", n_events=4, seed=1, options={"knob": ["LER_R1"]})


def test_checkpoints_of_a_run_depend_on_the_data_it_read(tmp_path):
    from hepchain.core.checkpoints import checkpoint_scope

    data, ckpt = tmp_path / "data", tmp_path / "ckpt"
    dirs = []
    for seeds in ((1,), (1,), (2,), (1, 2)):
        with checkpoint_scope(ckpt) as scope:
            if not dirs:
                assert scope.claim("flow")[1] == ckpt / "flow"  # before any data is read
            for seed in seeds:
                get(data, seed=seed)
            dirs.append(scope.claim("mlp")[1])
    assert all(d.parent == ckpt and d.name.startswith("mlp@") for d in dirs)
    assert dirs[0] == dirs[1]  # the same events: the run resumes
    assert len({dirs[0], dirs[2], dirs[3]}) == 3  # other events: it trains afresh


def test_a_script_without_main_guard_fails_with_one_sentence_instead_of_hanging(tmp_path):
    # the spawned workers import the script, which asks for the dataset whose lock the parent
    # holds: before the check they waited for it forever (the subprocess timeout catches that)
    import subprocess
    import sys

    script = tmp_path / "make_data.py"
    script.write_text("from hepchain.core.cache import cached_dataset\n"
                      f"cached_dataset('ecal_fixed', n_events=8, seed=1, options={OPTIONS!r}, "
                      f"shard_size=4, workers=2, root={str(tmp_path / 'data')!r}, "
                      "progress=False)\n")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode != 0
    assert 'under `if __name__ == "__main__":`' in proc.stderr
    assert "ended abruptly" in proc.stderr
    assert not list((tmp_path / "data").glob("ecal_fixed-*"))  # nothing half-written left
    guarded = script.read_text().replace("cached_dataset(", "if __name__ == '__main__':\n"
                                         "    cached_dataset(", 1)
    script.write_text(guarded)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    (made,) = (tmp_path / "data").glob("ecal_fixed-*")
    manifest = Manifest.load(made)
    assert manifest.complete and len(manifest.shards) == 2
