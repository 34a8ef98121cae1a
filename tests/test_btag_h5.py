"""btag on salt-layout HDF5 files (``data.h5``): files in the layout of the Salt tutorial's open
sample (Zenodo 10371998) written here, and btag's own ``--to salt-h5`` export read back."""

from __future__ import annotations

import json
import re
from importlib import resources

import h5py
import numpy as np
import pytest
import yaml

from hepchain.convert import convert
from hepchain.core.dataset import build_dataset
from hepchain.core.errors import DataError
from hepchain.reco.btag.gn1 import btag_config
from hepchain.reco.btag.labels import ORIGIN_CLASSES
from hepchain.reco.btag.salt.h5input import H5Layout, read_split, standardise
from hepchain.reco.btag.study import BTagStudy
from test_btag_salt import _events_shard
from test_config import run

TRACK_VARS = ("d0", "z0", "phi_rel", "eta_rel", "dr", "pt_frac", "charge", "signed_2d_ip",
              "signed_3d_ip")
TUTORIAL_ORIGINS = ("pileup", "primary", "fromBC", "fromB", "fromC", "fromS", "fromTau*",
                    "secondary")
SMALL = {"gn1": {"dim": 16, "heads": 2, "layers": 1}, "deepsets": {"phi": [16], "latent": 16,
                                                                   "rho": [16]},
         "train": {"epochs": 2, "progress": False}, "onnx": False}


def write_tutorial_file(path, n, seed, tracks=12, blocks=False):
    """A file in the open sample's layout: ``jets`` (pt, eta, flavour 5/4/0/15) and ``consts``
    (the tutorial's 9 inputs, valid, truth_origin_label, truth_vertex_idx). b-jet tracks
    from the b vertex (origin fromB) have signed_2d_ip ~ 3, c-jet ones (fromC) ~ 1.5, all others
    ~ 0: easy to tag. ``blocks``: jets written class by class (b, c, light, tau)."""
    rng = np.random.default_rng(seed)
    flavour = rng.choice([5, 4, 0, 15], size=n, p=[0.35, 0.25, 0.35, 0.05])
    if blocks:
        flavour = np.sort(flavour)[::-1]
    jets = np.zeros(n, dtype=[("pt", "f4"), ("eta", "f4"), ("flavour", "i4")])
    jets["pt"], jets["eta"] = rng.uniform(20, 200, n), rng.uniform(-2.5, 2.5, n)
    jets["flavour"] = flavour
    consts = np.zeros((n, tracks), dtype=[*[(v, "f4") for v in TRACK_VARS], ("valid", "?"),
                                           ("truth_origin_label", "i4"),
                                           ("truth_vertex_idx", "i4")])
    n_trk = rng.integers(3, tracks + 1, size=n)
    valid = np.arange(tracks)[None, :] < n_trk[:, None]
    for v in TRACK_VARS:
        consts[v] = np.where(valid, rng.normal(0, 1, (n, tracks)), 0)
    origin = np.where(rng.random((n, tracks)) < 0.3, 0, 1)           # pile-up or primary
    origin = np.where(rng.random((n, tracks)) < 0.1, 5, origin)      # fromS
    hf = valid & (np.arange(tracks)[None, :] < 3)
    origin = np.where(hf & (flavour == 5)[:, None], 3, origin)       # fromB
    origin = np.where(hf & (flavour == 4)[:, None], 4, origin)       # fromC
    shift = np.where(origin == 3, 3.0, np.where(origin == 4, 1.5, 0.0))
    consts["signed_2d_ip"] += np.where(valid, shift, 0)
    consts["valid"] = valid
    consts["truth_origin_label"] = np.where(valid, origin, -1)
    consts["truth_vertex_idx"] = np.where(valid, np.where(origin >= 3, 1, 0), -1)
    with h5py.File(path, "w") as fh:
        fh.create_dataset("jets", data=jets)
        fh.create_dataset("consts", data=consts)


def tutorial_dir(root, norm=True):
    root.mkdir(parents=True, exist_ok=True)
    for name, n, seed in (("pp_output_train.h5", 1500, 1), ("pp_output_val.h5", 600, 2),
                          ("pp_output_test_ttbar.h5", 900, 3)):
        write_tutorial_file(root / name, n, seed, blocks=name.endswith("test_ttbar.h5"))
    if norm:
        table = {v: {"mean": 0.5, "std": 2.0} for v in TRACK_VARS}
        (root / "norm_dict.yaml").write_text(yaml.safe_dump(
            {"consts": table, "jets": {"pt": {"mean": 100.0, "std": 50.0},
                                       "eta": {"mean": 0.0, "std": 1.5}}}))
    return root


def test_tutorial_layout_reads_inputs_labels_and_norm_dict(tmp_path):
    folder = tutorial_dir(tmp_path / "od")
    layout = H5Layout.named("open-data")
    assert (layout.jets, layout.tracks, layout.track_variables) == ("jets", "consts", TRACK_VARS)
    splits = {k: read_split(folder / layout.files[k], layout, ["b", "c", "light"], None, 8)
              for k in ("train", "val", "test")}
    raw = h5py.File(folder / "pp_output_test_ttbar.h5")
    jets, consts = raw["jets"][:], raw["consts"][:]
    keep = jets["flavour"] != 15                                     # tau jets left out
    test = splits["test"]
    assert test.n_read == 900 and len(test.label) == keep.sum()
    assert np.array_equal(test.label, np.select([jets["flavour"][keep] == 5,
                                                 jets["flavour"][keep] == 4], [0, 1], 2))
    valid = consts["valid"][keep]
    assert test.tracks_dropped == valid[:, 8:].sum() > 0
    assert np.array_equal(test.mask, valid[:, :8])
    codes = consts["truth_origin_label"][keep][:, :8][test.mask]
    names = [TUTORIAL_ORIGINS[o].rstrip("*") for o in codes]
    mapped = [ORIGIN_CLASSES[o] for o in test.origin[test.mask]]
    expect = {"pileup": "pileup", "primary": "primary", "fromB": "fromB", "fromC": "fromC",
              "fromS": "otherSecondary"}
    assert mapped == [expect[n] for n in names]
    assert (test.origin[~test.mask] == -1).all() and (test.vertex[~test.mask] == -1).all()
    source = standardise(splits, layout, folder / "norm_dict.yaml")
    assert source.endswith("norm_dict.yaml")
    d0 = consts["d0"][keep][:, :8]
    assert np.allclose(test.tracks[..., 0][test.mask], (d0[test.mask] - 0.5) / 2.0)
    assert (test.tracks[~test.mask] == 0).all()
    assert np.allclose(test.jet[:, 0], (jets["pt"][keep] - 100.0) / 50.0)


def test_without_norm_dict_the_training_tracks_set_the_scale(tmp_path):
    folder = tutorial_dir(tmp_path / "od", norm=False)
    layout = H5Layout.named("open-data")
    splits = {k: read_split(folder / layout.files[k], layout, ["b", "c", "light"], 400, 12)
              for k in ("train", "val", "test")}
    source = standardise(splits, layout, folder / "norm_dict.yaml")
    assert "training file" in source
    train = splits["train"].tracks[splits["train"].mask]
    assert np.allclose(train.mean(0), 0, atol=1e-5) and np.allclose(train.std(0), 1, atol=1e-4)
    assert not np.allclose(splits["test"].tracks[splits["test"].mask].mean(0), 0, atol=1e-3)


def test_evenly_spaced_jets_give_every_class_of_a_file_written_class_by_class(tmp_path):
    folder = tutorial_dir(tmp_path / "od")
    layout = H5Layout.named("open-data")
    split = read_split(folder / "pp_output_test_ttbar.h5", layout, ["b", "c", "light"], 90, 12)
    flavour = h5py.File(folder / "pp_output_test_ttbar.h5")["jets"]["flavour"][::10]
    assert split.n_read == 90
    counts = np.bincount(split.label, minlength=3)
    assert list(counts) == [(flavour == f).sum() for f in (5, 4, 0)] and counts.min() > 10


def test_btag_run_on_the_tutorial_layout_trains_and_scores_the_track_taggers(tmp_path, capsys):
    folder = tutorial_dir(tmp_path / "od")
    work = tmp_path / "run"
    args = ["btag", "run", "--preset", "quick", "--workdir", str(work),
            "--set", f"data.h5.dir={folder}", "--set", "data.h5.n_jets.train=1200",
            "--set", "gn1.dim=16", "--set", "gn1.heads=2", "--set", "gn1.layers=1",
            "--set", "train.epochs=6", "--set", "train.progress=false", "--set", "onnx=false"]
    assert run(args) == 0
    result = json.loads((work / "results.json").read_text())
    rows = {(m["name"], m["method"]): m for m in result["metrics"]}
    flavour = h5py.File(folder / "pp_output_test_ttbar.h5")["jets"]["flavour"][:]
    assert rows[("test light-jets", "data")]["value"] == (flavour == 0).sum()
    for name in ("DeepSets", "GN1", "GN1 no-aux"):
        # chance is 1 / 0.7; these files make b jets easy (signed_2d_ip ~ 3 on 3 tracks)
        assert rows[("light rejection @ 70% b-eff", name)]["value"] > 3
    ratio = rows[("c rejection ratio to DeepSets @ 70%", "GN1")]
    assert ratio["value"] == pytest.approx(rows[("c rejection @ 70% b-eff", "GN1")]["value"]
                                           / rows[("c rejection @ 70% b-eff", "DeepSets")]["value"])
    assert rows[("c rejection ratio to DeepSets @ 70%, binomial error", "GN1")]["value"] > 0
    assert ("track-origin AUC otherSecondary", "GN1") in rows
    assert ("track-origin AUC fake", "GN1") not in rows                # no such tracks
    # chance 0.5, 0.98 for a cut on signed_2d_ip alone: the fromB labels reached the loss
    assert rows[("track-origin AUC fromB", "GN1")]["value"] > 0.75
    assert not any("DL1" in m for _, m in rows)
    notes = " ".join(result["notes"])
    assert "pp_output_train.h5: 1200 jets read" in notes and "norm_dict.yaml" in notes
    files = [d["name"] for d in result["provenance"]["datasets"]]
    assert files == ["pp_output_train.h5", "pp_output_val.h5", "pp_output_test_ttbar.h5"]


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    """A tiny collider-like dataset and its salt-h5 export (quick selection and split)."""
    root = tmp_path_factory.mktemp("h5")
    build_dataset(root / "toy", generator="test", settings={}, n_events=120, shard_size=60,
                  seed=3, make_shard=_events_shard, progress=False)
    convert(root / "toy", root / "h5", "salt-h5", preset="quick")
    return root


def test_salt_h5_export_read_back_trains_the_same_gn1(export, tmp_path):
    study = BTagStudy()
    generated = study.run(btag_config("quick", {**SMALL, "data": {"path": str(export / "toy")}}),
                          tmp_path / "a", seed=0)
    h5 = {"dir": str(export / "h5"), "layout": "salt-h5"}
    read = study.run(btag_config("quick", {**SMALL, "data": {"h5": h5}}), tmp_path / "b", seed=0)
    # every GN1 row but its training cost, its ratios to the DL1-like baselines (not run) and
    # the pT bins (the files' jet pT has no unit the reader can rely on)
    rows = [m for m in generated.metrics if m.method in ("GN1", "GN1 no-aux")
            and not any(k in m.name for k in ("training", "ratio to", "pT "))]
    assert len(rows) > 20
    for m in rows:
        assert read.get(m.name, m.method).value == pytest.approx(m.value, rel=1e-6), m.name
    for c in ("b", "c", "light"):
        assert read.get(f"test {c}-jets", "data").value == generated.get(f"test {c}-jets",
                                                                          "data").value


@pytest.mark.parametrize(("setting", "message"), [
    ("data.h5.dir={missing}", "does not exist (data.h5.dir holds the layout's files "
                              "pp_output_train"),
    ("data.h5.dir={missing}", "they are the Salt tutorial sample, "
                              "https://zenodo.org/records/10371998"),
    ("data.h5.layout={bad_layout}", "has no data.variables with jets and tracks"),
    ("data.h5.layout=tide", "neither open-data nor salt-h5 nor a salt config file"),
])
def test_bad_h5_settings_are_one_sentence(tmp_path, capsys, setting, message):
    folder = tutorial_dir(tmp_path / "od")
    bad_layout = tmp_path / "salt.yaml"
    bad_layout.write_text(yaml.safe_dump({"data": {"variables": {"jets": ["pt"]}}}))
    setting = setting.format(missing=tmp_path / "nowhere", bad_layout=bad_layout)
    work = tmp_path / "run"
    args = ["btag", "run", "--workdir", str(work), "--set", f"data.h5.dir={folder}",
            "--set", setting]
    assert run(args) != 0
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (work / "results.json").exists()


def test_a_file_without_a_layout_field_is_named(tmp_path):
    folder = tutorial_dir(tmp_path / "od")
    layout = H5Layout.named("open-data")
    with h5py.File(folder / "pp_output_val.h5", "a") as fh:
        consts = fh["consts"][:]
        del fh["consts"]
        keep = [n for n in consts.dtype.names if n != "signed_3d_ip"]
        fh.create_dataset("consts", data=consts[keep])
    with pytest.raises(DataError, match=r"lacks the field\(s\) signed_3d_ip"):
        read_split(folder / "pp_output_val.h5", layout, ["b", "c", "light"], None, 12)
    config = yaml.safe_load(
        (resources.files("hepchain.reco.btag.salt") / "open-data.yaml").read_text())
    tasks = config["model"]["model"]["init_args"]["tasks"]["init_args"]["modules"]
    tasks[1]["init_args"]["class_names"][5] = "fromMars"
    with pytest.raises(DataError, match="fromMars"):
        H5Layout.from_salt_config(config)


def test_an_origin_label_outside_the_layouts_classes_is_refused(tmp_path):
    folder = tutorial_dir(tmp_path / "od")
    with h5py.File(folder / "pp_output_val.h5", "a") as fh:
        consts = fh["consts"][:]
        consts["truth_origin_label"][0, 0] = 8                      # the layout has 8 classes
        fh["consts"][...] = consts
    with pytest.raises(DataError, match="outside the 8 origin classes"):
        read_split(folder / "pp_output_val.h5", H5Layout.named("open-data"),
                   ["b", "c", "light", "tau"], None, 12)


def test_a_read_larger_than_the_machines_memory_is_refused_before_reading(tmp_path,
                                                                          monkeypatch):
    import hepchain.reco.btag.salt.h5input as h5input

    folder = tutorial_dir(tmp_path / "od")
    layout = H5Layout.named("open-data")
    # 900 jets x 12 tracks x 45 bytes x 3 copies ~ 1.4 MiB: refused on a 1 MiB machine
    monkeypatch.setattr(h5input, "machine_info", lambda: {"memory_gb": 2**-10})
    with pytest.raises(DataError, match=re.escape("needs ~0.0014 GiB, this machine has "
                                                  "0.00098 GiB; set data.h5.n_jets")):
        read_split(folder / "pp_output_test_ttbar.h5", layout, ["b", "c", "light"], None, 12)
    assert len(read_split(folder / "pp_output_test_ttbar.h5", layout, ["b", "c", "light"], 200,
                          12).label) > 0


def test_a_non_finite_input_of_a_real_track_is_named(tmp_path):
    folder = tutorial_dir(tmp_path / "od")
    layout = H5Layout.named("open-data")
    with h5py.File(folder / "pp_output_val.h5", "a") as fh:
        consts = fh["consts"][:]
        j = int(np.argmin(consts["valid"].sum(1)))                   # a jet with padding
        consts["d0"][j, consts["valid"][j].sum()] = np.nan            # padding: ignored
        fh["consts"][...] = consts
    split = read_split(folder / "pp_output_val.h5", layout, ["b", "c", "light", "tau"], None, 12)
    assert len(split.label) == 600
    with h5py.File(folder / "pp_output_val.h5", "a") as fh:
        consts["d0"][0, 0] = np.nan                                   # a real track
        fh["consts"][...] = consts
    with pytest.raises(DataError, match="non-finite d0"):
        read_split(folder / "pp_output_val.h5", layout, ["b", "c", "light", "tau"], None, 12)
