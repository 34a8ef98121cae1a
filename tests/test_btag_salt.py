"""btag beside salt-ml: the ``salt-h5`` export (the layout salt reads: dataset names, dtypes,
valid mask, class names, norm and class dicts, btag's jets, split and transformed inputs) and
``salt-eval`` on prediction files written here in the layout of salt's PredictionWriter. No
salt installation is needed (salt lives in its own venv, docs/btag.md)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from importlib import resources

import awkward as ak
import h5py
import numpy as np
import pytest
import yaml
from numpy.lib.recfunctions import repack_fields

from hepchain.cli import main
from hepchain.convert import convert
from hepchain.core import metrics
from hepchain.core.dataset import ShardedDataset, build_dataset
from hepchain.core.errors import DataError, UsageError
from hepchain.core.provenance import git_revision
from hepchain.core.result import Result
from hepchain.core.study import aggregate_seed_dirs
from hepchain.reco.btag import evaluate
from hepchain.reco.btag.export import load_tagger, save_tagger
from hepchain.reco.btag.gn1 import btag_config, btag_jets, jet_probabilities, track_batches
from hepchain.reco.btag.labels import ORIGIN_CLASSES
from hepchain.reco.btag.models import GN1Tagger
from hepchain.reco.btag.salt.layout import TRACK_NAMES, read_salt_split
from hepchain.reco.btag.salt.predictions import VERTEX_SUFFIX, gn1_outputs, salt_comparison
from hepchain.reco.btag.schema import flatten_jets
from hepchain.reco.btag.table import build_table
from test_btag import toy_jets

JETS_PER_EVENT = 3


def _events_shard(task):
    """Toy b/c/light jets grouped into events (module level: the shard function of a dataset)."""
    jets = toy_jets(task.n_events * JETS_PER_EVENT, seed=task.seed % 2**31)
    return ak.zip({"jets": ak.unflatten(jets, JETS_PER_EVENT)}, depth_limit=1)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A tiny collider-like dataset (Parquet events with jets and tracks) and its salt-h5
    export with the quick preset's selection and split."""
    root = tmp_path_factory.mktemp("salt")
    build_dataset(root / "toy", generator="test", settings={}, n_events=120, shard_size=60,
                  seed=3, make_shard=_events_shard, progress=False)
    convert(root / "toy", root / "h5", "salt-h5", preset="quick")
    return root


@pytest.mark.parametrize("config", ["GN1-like.yaml", "GN2-like.yaml"])
def test_salt_h5_has_the_layout_salt_reads(source, config):
    h5 = source / "h5"
    salt_cfg = yaml.safe_load(resources.files("hepchain.reco.btag.salt")
                              .joinpath(config).read_text())
    variables = salt_cfg["data"]["variables"]
    norm = yaml.safe_load((h5 / "norm_dict.yaml").read_text())
    for group in ("jets", "tracks"):  # every input salt's config asks for, identity scaling
        assert set(variables[group]) == set(norm[group])
        assert all(v == {"mean": 0.0, "std": 1.0} for v in norm[group].values())
    class_dict = yaml.safe_load((h5 / "class_dict.yaml").read_text())
    assert len(class_dict["tracks"]["ftagTruthOriginLabel"]) == 8
    assert class_dict["jets"]["flavour_label"] == [1.0, 1.0, 1.0]  # GN2 uses the class dict
    for split in ("train", "val", "test"):
        with h5py.File(h5 / f"{split}.h5", "r") as fh:
            assert set(fh) == {"jets", "tracks"}
            jets, tracks = fh["jets"], fh["tracks"]
            assert list(jets.attrs["flavour_label"]) == ["bjets", "cjets", "ujets"]
            assert jets.dtype["flavour_label"] == np.dtype("i4")
            assert tracks.ndim == 2 and tracks.shape[0] == jets.shape[0]
            assert tracks.shape[1] == 20  # quick preset's max_tracks
            for v in variables["tracks"]:
                assert tracks.dtype[v] == np.dtype("f4")
            for v in variables["jets"]:
                assert jets.dtype[v] == np.dtype("f4")
            assert tracks.dtype["valid"] == np.dtype(bool)
            assert tracks.dtype["ftagTruthOriginLabel"] == np.dtype("i4")
            t = tracks[:]
        valid = t["valid"]
        assert valid.any() and not valid.all()
        assert (valid[:, :-1] >= valid[:, 1:]).all()  # real tracks first, then padding
        assert (t["ftagTruthOriginLabel"][~valid] == -1).all()
        assert (t["ftagTruthOriginLabel"][valid] >= 0).all()
        assert (t["ftagTruthVertexIndex"][~valid] == -1).all()
        assert all((t[v][~valid] == 0).all() for v in variables["tracks"])


def test_salt_h5_holds_btags_jets_split_and_transformed_inputs(source):
    config = btag_config("quick", {"data": {"path": str(source / "toy")}})
    jets = btag_jets(config, Result(study="btag", preset="quick"))
    _, batches = track_batches(jets)
    events = {}
    for split in ("train", "val", "test"):
        back = read_salt_split(source / "h5" / f"{split}.h5")
        tracks, mask, jet, label, origin, vertex = (x.numpy() for x in batches[split])
        np.testing.assert_array_equal(back.tracks, tracks)
        np.testing.assert_array_equal(back.mask, mask)
        np.testing.assert_array_equal(back.jet, jet)
        np.testing.assert_array_equal(back.label, label)
        np.testing.assert_array_equal(back.origin, origin)
        np.testing.assert_array_equal(back.vertex, vertex)
        assert back.classes == ["b", "c", "light"]
        with h5py.File(source / "h5" / f"{split}.h5", "r") as fh:
            events[split] = set(fh["jets"]["eventNumber"])
    assert not (events["train"] & events["val"] or events["train"] & events["test"]
                or events["val"] & events["test"])  # the event-level split
    meta = json.loads((source / "h5" / "salt-h5.json").read_text())
    assert meta["btag_preset"] == "quick" and sum(meta["jets"].values()) == len(jets.event)
    assert TRACK_NAMES["sd0"] == "IP3D_signed_d0_significance"


def test_salt_h5_bad_sources_are_one_sentence(source, tmp_path, capsys):
    with pytest.raises(UsageError, match="is a file"):
        convert(source / "h5" / "val.h5", tmp_path / "x", "salt-h5")
    with pytest.raises(SystemExit) as exit_:
        main(["convert", str(source / "h5" / "val.h5"), str(tmp_path / "x"), "--to", "salt-h5"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "is a file" in err and "Traceback" not in err
    with pytest.raises(DataError, match="lacks the field"):
        with h5py.File(tmp_path / "bad.h5", "w") as fh:
            fh.create_dataset("jets", data=np.zeros(3, dtype=[("pt", "f4")]))
            fh.create_dataset("tracks", data=np.zeros((3, 2), dtype=[("d0", "f4")]))
        read_salt_split(tmp_path / "bad.h5")


def test_salt_h5_test_file_from_a_separate_sample(source, tmp_path, capsys):
    """--test-src: train / val from the split of the first dataset, the test file holds every
    selected jet of the second (btag's separate test sample), transformed with the training
    jets' constants."""
    build_dataset(tmp_path / "test-sample", generator="test", settings={}, n_events=40,
                  shard_size=40, seed=11, make_shard=_events_shard, progress=False)
    with pytest.raises(SystemExit) as exit_:
        main(["convert", str(source / "toy"), str(tmp_path / "h5"), "--to", "salt-h5",
              "--test-src", str(tmp_path / "test-sample")])
    assert exit_.value.code == 0
    config = btag_config("quick", {"data": {"path": str(source / "toy")}})
    jets = btag_jets(config, Result(study="btag", preset="quick"),
                     test_path=tmp_path / "test-sample")
    assert jets.n_test_events == 40
    _, batches = track_batches(jets)
    for split in ("train", "val", "test"):
        back = read_salt_split(tmp_path / "h5" / f"{split}.h5")
        np.testing.assert_array_equal(back.tracks, batches[split][0].numpy())
        np.testing.assert_array_equal(back.label, batches[split][3].numpy())
    for split in ("train", "val"):  # the same jets as without --test-src
        np.testing.assert_array_equal(read_salt_split(tmp_path / "h5" / f"{split}.h5").tracks,
                                      read_salt_split(source / "h5" / f"{split}.h5").tracks)
    test = read_salt_split(tmp_path / "h5" / "test.h5")
    assert len(test.label) == len(jets.tables["test"].flavour) != len(
        read_salt_split(source / "h5" / "test.h5").label)
    meta = json.loads((tmp_path / "h5" / "salt-h5.json").read_text())
    assert meta["test_source"] == str((tmp_path / "test-sample").resolve())
    with pytest.raises(SystemExit) as exit_:
        main(["convert", str(source / "toy"), str(tmp_path / "h5b"), "--to", "salt-h5",
              "--test-src", str(tmp_path / "missing")])
    assert exit_.value.code != 0 and not (tmp_path / "h5b").exists()
    err = capsys.readouterr().err
    assert "is not a dataset directory" in err and "Traceback" not in err
    with pytest.raises(UsageError, match="salt-h5 only"):
        convert(source / "toy", tmp_path / "x.h5", "lhco-h5", test_src=tmp_path / "test-sample")


def _fake_salt_run(source, tmp_path, probs_for, seed=None, tracks_for=None):
    """A salt training directory with prediction files in PredictionWriter's layout (the
    input jets fields + GN1_like_pb/pc/pu) whose probabilities come from ``probs_for``; its
    config.yaml holds ``seed_everything`` when ``seed`` is given. With ``tracks_for(split)
    -> (origin probabilities (N, T, 8), vertex index (N, T))`` the test file also holds the
    ``tracks`` that ``write_tracks: true`` writes: the input fields, GN1_like_pPileup ...,
    VertexIndex and salt's padding mask."""
    salt_dir = tmp_path / "GN1_like_x"
    (salt_dir / "ckpts").mkdir(parents=True)
    config = {"trainer": {"max_epochs": 2}} | ({} if seed is None else {"seed_everything": seed})
    (salt_dir / "config.yaml").write_text(yaml.safe_dump(config))
    (salt_dir / "metadata.yaml").write_text(yaml.safe_dump(
        {"num_train": -1, "available_train": 100, "trainable_params": 1234,
         "torch_version": "x", "lightning_version": "y"}))
    for split in ("val", "test"):
        with h5py.File(source / "h5" / f"{split}.h5", "r") as fh:
            jets = fh["jets"][:]
        p = probs_for(jets["flavour_label"])
        dtype = jets.dtype.descr + [(f"GN1_like_{c}", "f4") for c in ("pb", "pc", "pu")]
        out = np.zeros(len(jets), dtype=dtype)
        for f in jets.dtype.names:
            out[f] = jets[f]
        for i, c in enumerate(("pb", "pc", "pu")):
            out[f"GN1_like_{c}"] = p[:, i]
        with h5py.File(salt_dir / "ckpts" / f"epoch=001-val_loss=0.5__test_{split}.h5",
                       "w") as fh:
            fh.create_dataset("jets", data=out)
            if tracks_for is not None and split == "test":
                fh.create_dataset("tracks", data=_salt_tracks(source, tracks_for))
    (tmp_path / "fit.time").write_text("20.0 15.5 0.5\n")
    return salt_dir


def _salt_tracks(source, tracks_for):
    with h5py.File(source / "h5" / "test.h5", "r") as fh:
        tracks = fh["tracks"][:]
    origin, index = tracks_for(read_salt_split(source / "h5" / "test.h5"))
    names = [f"GN1_like_p{c[0].upper()}{c[1:]}" for c in ORIGIN_CLASSES]
    dtype = tracks.dtype.descr + [(n, "f4") for n in names] + [("VertexIndex", "i8"),
                                                                 ("mask", "?")]
    out = np.zeros(tracks.shape, dtype=dtype)
    for f in tracks.dtype.names:
        out[f] = tracks[f]
    for k, n in enumerate(names):
        out[n] = origin[..., k]
    out["VertexIndex"], out["mask"] = index, ~tracks["valid"]
    return out


def _fake_btag_run(source, tmp_path, seed=None):
    """A btag run directory on the same jets: results.json (config with the run ``seed`` when
    given, test-jet counts, GN1 rows) and an untrained GN1 saved as gn1.pt."""
    config = btag_config("quick", {"data": {"path": str(source / "toy")}})
    if seed is not None:
        config["seed"] = seed
    run = tmp_path / "run"
    result = Result(study="btag", preset="quick")
    result.provenance.config = config
    result.provenance.git_revision, result.provenance.started = "0123456789ab", "2026-01-02"
    test = read_salt_split(source / "h5" / "test.h5")
    for i, c in enumerate(config["classes"]):
        result.add(f"test {c}-jets", "data", float((test.label == i).sum()))
    for bkg in ("light", "c"):
        for eff in config["efficiencies"]:
            result.add(f"{bkg} rejection @ {eff:.0%} b-eff", "GN1", 1.0)
    result.add("training throughput (jets/CPU-s)", "GN1", 25.0)
    jets = btag_jets(config, Result(study="btag", preset="quick"))
    prep, _ = track_batches(jets)
    model = GN1Tagger(22, 2, 3, dim=16, heads=2, layers=1)
    save_tagger(model, {"dim": 16, "heads": 2, "layers": 1}, config["classes"], prep,
                run / "gn1.pt")
    result.save(run)
    return run


def test_salt_eval_scores_salt_predictions_with_btag_metrics(source, tmp_path):
    def informative(label):  # b-jets get p_b 0.5-1, others 0-0.8: a real but imperfect tagger
        rng = np.random.default_rng(0)
        pb = np.where(label == 0, rng.uniform(0.5, 1.0, len(label)),
                      rng.uniform(0.0, 0.8, len(label)))
        return np.stack([pb, (1 - pb) / 2, (1 - pb) / 2], axis=-1)

    salt_dir = _fake_salt_run(source, tmp_path, informative)
    run = _fake_btag_run(source, tmp_path)
    result = salt_comparison(salt_dir, source / "h5", run, tmp_path / "fit.time")
    val = read_salt_split(source / "h5" / "val.h5")
    test = read_salt_split(source / "h5" / "test.h5")
    scores = [evaluate.discriminant(informative(s.label), ["b", "c", "light"], 0.05)
              for s in (val, test)]
    expect = evaluate.rejections((val.label, scores[0]), (test.label, scores[1]),
                                 ["b", "c", "light"], [0.70, 0.77])
    row = result.get("c rejection @ 70% b-eff", "salt GN1-like")
    assert row.value == pytest.approx(expect[("c", 0.70)].rejection)
    assert result.get("training CPU time (s)", "salt GN1-like").value == pytest.approx(16.0)
    assert result.get("training throughput (jets/s)", "salt GN1-like").value == pytest.approx(
        100 * 2 / 20.0)
    assert result.get("training throughput (jets/CPU-s)", "salt GN1-like").value == (
        pytest.approx(100 * 2 / 16.0))
    assert result.get("parameters", "salt GN1-like").value == 1234
    p = informative(test.label)[np.arange(len(test.label)), test.label]
    assert result.get("test jet cross-entropy", "salt GN1-like").value == pytest.approx(
        -np.log(p.astype(np.float32)).mean(), rel=1e-5)
    assert result.get("training throughput ratio GN1 / salt GN1-like (jets/CPU-s)",
                      "GN1").value == pytest.approx(25.0 / 12.5)
    gn1 = result.get("parameters", "GN1").value
    assert gn1 == sum(p.numel() for p in GN1Tagger(22, 2, 3, dim=16, heads=2,
                                                   layers=1).parameters())
    result.get("c rejection ratio salt GN1-like / GN1 @ 70%", "salt GN1-like")
    # the paired error pairs each test c jet's pass of salt's cut with its pass of GN1's, in
    # this order (salt / GN1; the other order is ≈ 100 times smaller here)
    paired = result.get("c rejection ratio salt GN1-like / GN1 @ 70%, paired bootstrap error",
                        "salt GN1-like").value
    model, _, _ = load_tagger(run / "gn1.pt")
    ours = [evaluate.discriminant(gn1_outputs(model, s)["jet"], ["b", "c", "light"], 0.05)
            for s in (val, test)]
    ours_cut = evaluate.rejections((val.label, ours[0]), (test.label, ours[1]),
                                   ["b", "c", "light"], [0.70])[("c", 0.70)].threshold
    c = test.label == 1
    salt_pass, ours_pass = scores[1][c] >= expect[("c", 0.70)].threshold, ours[1][c] >= ours_cut
    assert 0 < salt_pass.sum() < ours_pass.sum()
    assert paired == evaluate.paired_ratio_error(salt_pass, ours_pass) > 0.5
    assert any("re-evaluated on the salt-h5 files" in n for n in result.notes)


def test_salt_eval_scores_salts_track_origin_and_vertexing(source, tmp_path):
    def perfect(label):
        return np.eye(3)[label]

    def truth_tracks(test):  # salt's aux outputs equal to the truth
        origin = np.eye(8)[np.clip(test.origin, 0, None)]
        own = np.arange(test.mask.shape[1])[None, :] + 100  # no shared vertex: own index
        index = np.where(test.vertex >= 0, test.vertex, own)
        return origin, index

    run = _fake_btag_run(source, tmp_path)
    without = salt_comparison(_fake_salt_run(source, tmp_path / "a", perfect), source / "h5",
                              run, None)
    assert not [m for m in without.metrics if m.name.startswith("track-origin AUC")]
    result = salt_comparison(_fake_salt_run(source, tmp_path / "b", perfect,
                                            tracks_for=truth_tracks), source / "h5", run, None)
    test = read_salt_split(source / "h5" / "test.h5")
    present = {ORIGIN_CLASSES[k] for k in np.unique(test.origin[test.mask])}
    aucs = {m.name.removeprefix("track-origin AUC "): m.value for m in result.metrics
            if m.name.startswith("track-origin AUC") and m.method == "salt GN1-like"
            and " − " not in m.name}
    assert len(present) >= 2 and set(aucs) == present and set(aucs.values()) == {1.0}
    model, _, _ = load_tagger(run / "gn1.pt")
    ours = gn1_outputs(model, test)
    for cls in present:  # salt (perfect) minus our untrained GN1, paired error over jets
        k, real = ORIGIN_CLASSES.index(cls), test.mask
        diff = result.get(f"track-origin AUC {cls}, salt GN1-like − GN1", "salt GN1-like")
        assert diff.value == pytest.approx(
            1 - metrics.roc_auc(test.origin[real] == k, ours["track"][real][:, k]), abs=1e-12)
        assert 0 < diff.std < 0.2
        assert result.get(f"track-origin AUC {cls}, salt GN1-like − GN1, paired bootstrap "
                          "error", "salt GN1-like").value == diff.std
    salt = {m.name: m.value for m in result.metrics
            if m.name.endswith(VERTEX_SUFFIX) and m.method == "salt GN1-like"}
    assert salt[f"same-vertex pair precision{VERTEX_SUFFIX}"] == 1.0
    assert salt[f"same-vertex pair recall{VERTEX_SUFFIX}"] == 1.0
    # our (untrained) GN1 on the same jets, with pairs from its predicted vertices
    index = evaluate.vertex_index(ours["vertex"], test.mask)
    expect = evaluate.vertex_metrics(test.vertex, test.origin,
                                     evaluate.same_vertex_pairs(index, test.mask), test.mask,
                                     test.label == 0)
    assert result.get(f"same-vertex pair recall{VERTEX_SUFFIX}", "GN1").value == (
        pytest.approx(expect["pair_recall"]))
    with pytest.raises(DataError, match="track output field"):
        bad = _fake_salt_run(source, tmp_path / "c", perfect, tracks_for=truth_tracks)
        pred = next((bad / "ckpts").glob("*__test_test.h5"))
        with h5py.File(pred, "r+") as fh:
            tracks = fh["tracks"][:]
            del fh["tracks"]
            names = [n for n in tracks.dtype.names if n != "VertexIndex"]
            fh.create_dataset("tracks", data=repack_fields(tracks[names]))
        salt_comparison(bad, source / "h5", run, None)


def test_salt_eval_refuses_predictions_of_other_jets(source, tmp_path):
    def shuffled(label):
        p = np.eye(3)[label]
        return p[::-1]  # right probabilities, wrong order -> still a mismatch of labels

    salt_dir = _fake_salt_run(source, tmp_path, shuffled)
    for split in ("val", "test"):  # reorder the jets, as if salt tested another file
        path = next((salt_dir / "ckpts").glob(f"*__test_{split}.h5"))
        with h5py.File(path, "r+") as fh:
            fh["jets"][...] = fh["jets"][:][::-1]
    run = _fake_btag_run(source, tmp_path)
    with pytest.raises(DataError, match="not the jets of the salt-h5"):
        salt_comparison(salt_dir, source / "h5", run, None)


def test_salt_eval_refuses_a_salt_run_of_another_seed(source, tmp_path):
    def perfect(label):
        return np.eye(3)[label]

    run = _fake_btag_run(source, tmp_path, seed=1)
    same = salt_comparison(_fake_salt_run(source, tmp_path / "s1", perfect, seed=1),
                           source / "h5", run, None)
    assert any("seed_everything 1" in n for n in same.notes)
    # `salt fit --seed_everything 1 --config F` trains with F's seed_everything (0 here)
    with pytest.raises(DataError, match="salt trained with seed_everything 0, our run with "
                                        "seed 1"):
        salt_comparison(_fake_salt_run(source, tmp_path / "s0", perfect, seed=0),
                        source / "h5", run, None)


def test_salt_eval_per_seed_updates_the_aggregate(source, tmp_path, capsys):
    """`salt-eval --out DIR/seed<N>`: each seed's table, and DIR's results.json / seeds.json
    over every seed done so far (mean ± std as bench writes them), marked as a verb's run."""
    def noisy(shift):
        def probs(label):
            rng = np.random.default_rng(shift)
            pb = np.clip(np.where(label == 0, 0.7, 0.3) + rng.normal(0, 0.2, len(label)), 0, 1)
            return np.stack([pb, (1 - pb) / 2, (1 - pb) / 2], axis=-1)
        return probs

    run = _fake_btag_run(source, tmp_path)
    values = []
    for seed in (0, 1):
        salt_dir = _fake_salt_run(source, tmp_path / f"salt{seed}", noisy(seed))
        out = tmp_path / "compare" / f"seed{seed}"
        with pytest.raises(SystemExit) as exit_:
            main(["btag", "salt-eval", str(salt_dir), "--h5", str(source / "h5"), "--run",
                  str(run), "--time", str(tmp_path / f"salt{seed}" / "fit.time"),
                  "--out", str(out)])
        assert exit_.value.code == 0
        values.append(Result.load(out).get("test jet cross-entropy", "salt GN1-like").value)
    merged = Result.load(tmp_path / "compare")
    row = merged.get("test jet cross-entropy", "salt GN1-like")
    assert values[0] != values[1]
    assert row.value == pytest.approx(np.mean(values)) and row.n == 2
    assert row.std == pytest.approx(np.std(values, ddof=1))
    assert merged.preset == "quick (salt-eval, salt GN1-like)" and merged.figures == []
    # salt-eval's own provenance (code, date, cost); our run's in a note
    assert merged.provenance.git_revision == git_revision() != "0123456789ab"
    assert merged.provenance.started[:10] == datetime.now(UTC).date().isoformat()
    assert merged.provenance.config == Result.load(run).provenance.config  # what was scored
    assert any(n.startswith("Our taggers:") and "git 0123456789ab, 2026-01-02" in n
               for n in merged.notes)
    seeds = json.loads((tmp_path / "compare" / "seeds.json").read_text())
    assert len(seeds) == 2
    assert "aggregate of the seed*/ runs" in capsys.readouterr().out
    with pytest.raises(DataError, match="holds no seed"):
        aggregate_seed_dirs(tmp_path / "salt0")


def test_paired_ratio_error_is_the_bootstrap_of_the_same_jets():
    rng = np.random.default_rng(1)
    a = rng.random(4000) < 0.05
    assert evaluate.paired_ratio_error(a, a) == 0.0  # the same cut: the ratio is always 1
    b = a.copy()
    b[np.flatnonzero(~a)[:20]] = True  # b passes 20 more jets: rejection a / b ≈ 1.1
    brute = []  # resample the jets themselves
    for _ in range(2000):
        i = rng.integers(0, len(a), len(a))
        brute.append(b[i].sum() / a[i].sum())
    paired = evaluate.paired_ratio_error(a, b)
    assert paired == pytest.approx(np.std(brute, ddof=1), rel=0.1)
    independent = rng.random(4000) < a.mean() * 1.1  # same rates, unrelated jets
    assert paired < 0.5 * evaluate.paired_ratio_error(a, independent)
    assert np.isnan(evaluate.paired_ratio_error(np.zeros(10, bool), a[:10]))


def test_btag_tag_scores_every_jet_of_a_dataset_with_a_saved_gn1(source, tmp_path, capsys):
    """`hepchain btag tag`: one row per jet of the dataset (event, jet index, pT, η, class
    probabilities, D_b), equal to the saved tagger evaluated directly; bad input is one
    sentence and no file."""
    run = _fake_btag_run(source, tmp_path)
    out = tmp_path / "scores.h5"
    with pytest.raises(SystemExit) as exit_:
        main(["btag", "tag", str(source / "toy"), "--model", str(run / "gn1.pt"),
              "--out", str(out)])
    assert exit_.value.code == 0
    with h5py.File(out, "r") as fh:
        rec = fh["jets"][:]
        info = json.loads(fh.attrs["hepchain"])
    events = ShardedDataset(source / "toy").read()
    assert len(rec) == 120 * JETS_PER_EVENT and info["classes"] == ["b", "c", "light"]
    assert rec["event"].tolist() == np.repeat(np.arange(120), JETS_PER_EVENT).tolist()
    assert rec["jet"].tolist() == [0, 1, 2] * 120
    jets = flatten_jets(events)
    assert np.allclose(rec["pt"], ak.to_numpy(jets.pt))
    model, classes, prep = load_tagger(run / "gn1.pt")
    table = build_table(jets, prep.max_tracks, truth=False)
    probs = jet_probabilities(model, prep, table, 3)
    assert np.allclose(np.stack([rec[f"p_{c}"] for c in classes], -1), probs, atol=1e-6)
    assert np.allclose(rec["db"], evaluate.discriminant(probs, classes, 0.05), atol=1e-5)
    assert not np.allclose(rec["p_b"], rec["p_b"][0])  # the scores depend on the jet
    with pytest.raises(SystemExit) as exit_:
        main(["btag", "tag", str(tmp_path / "nowhere"), "--model", str(run / "gn1.pt"),
              "--out", str(tmp_path / "bad.h5")])
    assert exit_.value.code != 0 and not (tmp_path / "bad.h5").exists()
    assert "Traceback" not in capsys.readouterr().err
