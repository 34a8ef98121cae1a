"""jettag side by side with weaver-core, scaling laws and public files: the export gives
weaver exactly our inputs, weaver's own training runs on them and its predictions map back to
our jets, the weaver command carries our budget, the power-law fit recovers a known exponent,
the compute-optimal size satisfies its defining condition, public JetClass ROOT and
top-tagging HDF5 files feed the study, and the scaling verb runs end to end on such a file."""

from __future__ import annotations

import itertools
import json

import awkward as ak
import numpy as np
import pytest

from hepchain.collider.formats.jetclass import write_jetclass
from hepchain.collider.formats.toptagging import write_toptagging
from hepchain.core.errors import DataError, UsageError
from hepchain.core.result import Result
from hepchain.reco.jettag.data import load_jets, particle_features, split
from hepchain.reco.jettag.models import build_network
from hepchain.reco.jettag.scaling import (
    compute_optimal_parameters,
    fit_power_law,
    scaled_spec,
)
from hepchain.reco.jettag.weaver.export import INDEX, export_splits, write_data_config
from hepchain.reco.jettag.weaver.train import (
    NETWORK_FILES,
    NETWORKS,
    count_parameters,
    network_options,
    run_weaver,
    weaver_command,
)
from test_cli import run_cli

CLASSES = ("QCD", "top")
PFN = {"phi": [16, 16], "f": [16]}
BUDGET = {"epochs": 2, "batch_size": 32, "lr": 0.01, "weight_decay": 1e-4,
          "schedule": "cosine", "grad_clip": 5.0, "threads": 1, "progress": False}


def toy_jets(n: int, seed: int) -> tuple[ak.Array, np.ndarray]:
    """Half one-prong (label 0), half three-prong (label 1) jets of 8–19 particles around
    η = φ = 0 with every field the JetClass writer and the full feature set need (GeV, mm)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    jets = []
    for y in labels:
        axes = rng.normal(scale=0.3, size=(3, 2)) if y else np.zeros((1, 2))
        k = int(rng.integers(8, 20))
        ang = axes[rng.integers(0, len(axes), k)] + rng.normal(scale=0.05, size=(k, 2))
        pts = rng.exponential(20.0, k) + 1.0
        jets.append([{"px": p * np.cos(b), "py": p * np.sin(b), "pz": p * np.sinh(a),
                      "e": p * np.cosh(a), "pid": int(rng.choice([211, 22, 130])),
                      "charge": 1, "d0": float(rng.normal(0, 0.05)), "d0err": 0.02,
                      "dz": float(rng.normal(0, 0.05)), "dzerr": 0.03, "deta": a, "dphi": b}
                     for p, (a, b) in zip(pts, ang, strict=True)])
    c = ak.Array(jets)
    pt = np.hypot(ak.to_numpy(ak.sum(c["px"], 1)), ak.to_numpy(ak.sum(c["py"], 1)))
    ones = np.ones(n)
    return ak.zip({"pt": pt, "eta": 0 * ones, "phi": 0 * ones, "msd": 50 * ones,
                   "tau1": ones, "tau2": 0.5 * ones, "tau3": 0.3 * ones, "constituents": c},
                  depth_limit=1), labels


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Toy jets, their split and their JetClass export with weaver's data YAML."""
    jets, y = toy_jets(240, seed=1)
    splits = dict(zip(("train", "val", "test"), split(y.size, {"train": 0.6, "val": 0.2}, 0),
                      strict=True))
    root = tmp_path_factory.mktemp("weaver")
    files = export_splits(jets, y, CLASSES, splits, root / "data")
    yaml = write_data_config(root / "data.yaml", "full", 16, CLASSES)
    return jets, y, splits, files, yaml, root


def test_export_gives_weaver_exactly_our_inputs(exported):
    from weaver.utils.dataset import SimpleIterDataset

    jets, y, splits, files, yaml, _ = exported
    assert [f.name for f in files["test"]] == ["test_QCD.root", "test_Tbqq.root"]
    ours = particle_features(jets, "full", 16)
    data = SimpleIterDataset({"_": [str(f) for f in files["test"]]}, str(yaml),
                             for_training=False, fetch_by_files=True, fetch_step=1)
    x, labels, index = zip(*((x, yl["_label_"], z[INDEX]) for x, yl, z in data), strict=True)
    index = np.asarray(index)
    assert sorted(index.tolist()) == sorted(splits["test"].tolist())  # every test jet once
    np.testing.assert_array_equal(labels, y[index])
    feats = np.stack([v["pf_features"] for v in x]).transpose(0, 2, 1)
    vectors = np.stack([v["pf_vectors"] for v in x]).transpose(0, 2, 1)
    mask = np.stack([v["pf_mask"] for v in x])[:, 0].astype(bool)
    np.testing.assert_allclose(feats, ours.features[index], atol=2e-6)
    np.testing.assert_allclose(vectors, ours.vectors[index], rtol=1e-6)
    np.testing.assert_array_equal(mask, ours.mask[index])


def test_weaver_trains_our_model_and_its_predictions_map_back(exported):
    jets, _, splits, _, yaml, root = exported
    run = run_weaver("PFN", PFN, root / "data", yaml, root / "PFN", BUDGET,
                     splits["train"].size, splits["val"].size, CLASSES, seed=0,
                     timeout_s=300)
    for name in ("val", "test"):
        assert sorted(run.index[name].tolist()) == sorted(splits[name].tolist())
        np.testing.assert_allclose(run.probs[name].sum(1), 1.0, rtol=1e-5)
    # two epochs of ⌊144 / 32⌋ = 4 full batches (weaver drops the incomplete one)
    assert run.epoch_jets == [128, 128] and all(r > 0 for r in run.epoch_rates)
    tensors = particle_features(jets, "full", 16)
    ours = sum(p.numel() for p in build_network("PFN", PFN, tensors, 2).parameters())
    assert count_parameters(NETWORKS / NETWORK_FILES["PFN"], yaml,
                            network_options("PFN", PFN, 0)) == ours


@pytest.mark.parametrize("fusion", [True, False])
def test_weaver_builds_our_particlenet_with_and_without_fusion(exported, fusion):
    jets, _, _, _, yaml, _ = exported
    spec = {"convs": [[4, [8, 8]], [4, [16, 16]]], "fc": [[16, 0.1]], "fusion": fusion}
    ours = sum(p.numel() for p in build_network(
        "ParticleNet", spec, particle_features(jets, "full", 16), 2).parameters())
    assert count_parameters(NETWORKS / NETWORK_FILES["ParticleNet"], yaml,
                            network_options("ParticleNet", spec, 0)) == ours


def test_weaver_command_carries_our_budget(tmp_path):
    settings = {**BUDGET, "epochs": 7, "batch_size": 50, "lr": 3e-3}
    cmd = weaver_command(tmp_path / "pfn.py", {"phi": [4]}, tmp_path, tmp_path / "d.yaml",
                         tmp_path, settings, n_train=260, n_val=80)
    pairs = dict(itertools.pairwise(cmd))
    assert (pairs["--num-epochs"], pairs["--batch-size"], pairs["--start-lr"]) == \
        ("7", "50", "0.003")
    assert pairs["--steps-per-epoch"] == "5" and pairs["--lr-scheduler"] == "warmup+cos"
    assert pairs["--warmup-steps"] == "0"
    with pytest.raises(UsageError, match="no weaver equivalent"):
        weaver_command(tmp_path / "p.py", {}, tmp_path, tmp_path, tmp_path,
                       {**settings, "schedule": "plateau"}, n_train=260, n_val=80)
    with pytest.raises(UsageError, match="fewer than one batch"):
        weaver_command(tmp_path / "p.py", {}, tmp_path, tmp_path, tmp_path, settings,
                       n_train=260, n_val=40)


@pytest.mark.parametrize("c", [0.4, 0.0])
def test_power_law_fit_recovers_a_known_exponent(c):
    rng = np.random.default_rng(3)
    x = np.geomspace(1e3, 1e6, 7)
    truth = 3.0 * x**-0.35 + c
    error = 0.002 * truth
    fit = fit_power_law(x, truth + rng.normal(0, error), error)
    assert fit.with_constant == (c > 0)
    assert abs(fit.alpha - 0.35) < 3 * fit.alpha_error < 0.05
    if c:
        assert abs(fit.c - c) < 3 * np.sqrt(fit.covariance[2, 2])


def test_compute_optimal_size_balances_the_marginal_gains():
    x = np.geomspace(1e3, 1e5, 5)
    params = fit_power_law(x, 5.0 * x**-0.3, 1e-4 * np.ones(5))
    data = fit_power_law(x, 2.0 * x**-0.5, 1e-4 * np.ones(5))
    n_jets = 4e4
    n_opt, error = compute_optimal_parameters(params, data, n_jets, seed=0)
    # the optimum of L = A N^-a + B D^-b at fixed N·D: a A N^-a = b B D^-b
    np.testing.assert_allclose(0.3 * params.a * n_opt**-0.3, 0.5 * data.a * n_jets**-0.5,
                               rtol=1e-6)
    assert 0 < error < n_opt


def test_width_factors_scale_every_layer():
    part = {"embed": [32, 64, 32], "pair_embed": [16, 16], "heads": 4, "layers": 2,
            "cls_layers": 1}
    half = scaled_spec(part, 0.5, heads=4)
    assert half["embed"] == [16, 32, 16] and half["pair_embed"] == [8, 8]
    assert scaled_spec(part, 0.1, heads=4)["embed"] == [4, 8, 4]  # multiples of the heads
    pn = scaled_spec({"convs": [[8, [16, 32]]], "fc": [[32, 0.1]]}, 2.0, None)
    assert pn == {"convs": [[8, [32, 64]]], "fc": [[64, 0.1]]}


DATA = {"process": "top_qcd", "n_events": 1000, "seed": 0, "workers": 1, "options": {},
        "classes": ["QCD", "Hbb", "Tbqq"],
        "selection": {"pt_min": 0.0, "pt_max": 1e4, "eta_max": 2.0, "match_dr": 0.8}}


@pytest.fixture(scope="module")
def jetclass_files(tmp_path_factory):
    """Toy jets as public JetClass files: QCD, Tbqq and (left out by data.classes) Zqq."""
    root = tmp_path_factory.mktemp("public")
    jets, y = toy_jets(120, seed=2)
    write_jetclass(jets[y == 0], root / "QCD_000.root", "QCD")
    write_jetclass(jets[y == 1], root / "TTBar_000.root", "Tbqq")
    write_jetclass(jets[:10], root / "ZToQQ_000.root", "Zqq")
    return root, jets


def test_public_jetclass_files_feed_the_study(jetclass_files):
    root, jets = jetclass_files
    got = load_jets({**DATA, "path": str(root / "*.root")}, Result("jettag", "quick"))
    assert got.classes == ("QCD", "Hbb", "Tbqq")
    assert np.bincount(got.labels).tolist() == [60, 0, 60]  # Zqq is not in data.classes
    np.testing.assert_allclose(np.sort(ak.to_numpy(got.records["pt"])), np.sort(
        ak.to_numpy(jets["pt"])))
    assert particle_features(got.records, "full", 16).features.shape == (120, 16, 17)
    capped = load_jets({**DATA, "n_events": 5, "path": str(root / "*.root")},
                       Result("jettag", "quick"))
    assert capped.labels.size == 10  # 5 per file, the Zqq file's left out


def test_public_top_tagging_file_feeds_the_study(tmp_path):
    # one jet: two massless constituents at (η, φ) = (0.1, 0.2) and (-0.1, 0.0), pT 60, 40
    def four(pt, eta, phi):
        return [pt * np.cosh(eta), pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)]

    one = np.array([[four(60, 0.1, 0.2), four(40, -0.1, 0.0)]])
    write_toptagging(np.concatenate([one, one]), np.array([1, 0]), tmp_path / "test.h5")
    got = load_jets({**DATA, "path": str(tmp_path / "test.h5")}, Result("jettag", "quick"))
    assert got.classes == ("QCD", "top") and got.labels.tolist() == [1, 0]
    c = got.records["constituents"][0]
    jet_eta, jet_phi = float(got.records["eta"][0]), float(got.records["phi"][0])
    np.testing.assert_allclose(ak.to_numpy(c["deta"]), np.array([0.1, -0.1]) - jet_eta,
                               atol=1e-6)
    np.testing.assert_allclose(ak.to_numpy(c["dphi"]), np.array([0.2, 0.0]) - jet_phi,
                               atol=1e-6)
    assert particle_features(got.records, "kin", 4).mask.sum() == 4
    with pytest.raises(DataError, match=r"lack .*d0.*JetClass export"):  # no weaver comparison
        export_splits(got.records, got.labels, got.classes, {"test": np.arange(2)}, tmp_path)
    with pytest.raises(DataError, match="matches no file"):
        load_jets({**DATA, "path": str(tmp_path / "nothing*.h5")}, Result("jettag", "quick"))


def test_scaling_verb_runs_end_to_end_on_a_public_file(jetclass_files, tmp_path):
    root, _ = jetclass_files
    code = run_cli(["jettag", "scaling", "--workdir", str(tmp_path / "sc"),
                    "--set", f"data.path={root}/*.root", "--set", "data.classes=[QCD, Tbqq]",
                    "--set", "data.selection.pt_min=0", "--set", "features=kin",
                    "--set", "max_particles=16",
                    "--set", "models={PFN: {phi: [8, 8], f: [8]}}",
                    "--set", "scaling.model=PFN", "--set", "train.epochs=2",
                    "--set", "train.batch_size=16", "--set", "train.threads=1"])
    assert code == 0
    res = json.loads((tmp_path / "sc" / "results.json").read_text())
    rows = {(m["name"], m["method"]): m for m in res["metrics"]}
    params = [m for (n, _), m in rows.items() if n == "test loss vs parameters"]
    sizes = [m for (n, _), m in rows.items() if n == "test loss vs training jets"]
    assert len(params) == 4 and len(sizes) == 4
    assert all(np.isfinite(m["value"]) and m["std"] > 0 for m in params + sizes)
    assert ("power-law exponent (loss vs parameters)", "PFN") in rows
    assert (tmp_path / "sc" / "seed0" / "scaling.png").is_file()
