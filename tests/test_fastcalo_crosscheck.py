"""The cross-check against the CaloChallenge's evaluate.py: synthetic files, their round trip
through our reader, the patches and the parsers of evaluate.py's output (no challenge code
is run here: ``hepchain fastcalo crosscheck`` needs its venv, see docs/fastcalo.md)."""

from __future__ import annotations

import numpy as np
import pytest

from hepchain.calo.formats.binning import cylindrical_binning
from hepchain.core.errors import DataError, UsageError
from hepchain.core.result import Result
from hepchain.core.seeding import derive_seed
from hepchain.fastsim import metrics
from hepchain.fastsim.challenge_files import GENERATED, REFERENCE, synthetic_showers, write_pair
from hepchain.fastsim.crosscheck import (
    Distances,
    parse_auc,
    parse_distances,
    parse_prdc,
    parse_separation,
    patches,
    prepare_evaluate,
)
from hepchain.fastsim.data import CHALLENGE_MIN_ENERGY, load
from hepchain.fastsim.voxels import VoxelGeometry

# dataset 2's voxels (r edges 0, 4.65, ... 41.85 mm, 16 angles), fewer layers
DS2_LIKE = cylindrical_binning(29.5, n_layers=12, r_step_mm=4.65, n_alpha=16)


def test_ds2_like_binning_has_the_challenge_voxel_count_per_layer():
    assert DS2_LIKE.layers[0].r_edges[-1] == pytest.approx(41.85)
    assert DS2_LIKE.n_voxels == 12 * 144


def test_written_pair_round_trips_through_our_reader(tmp_path):
    gen, ref = write_pair(tmp_path, DS2_LIKE, n=300, seed=4)
    xml = tmp_path / "gen.xml"
    for path, name, model in ((gen, "gen", GENERATED), (ref, "ref", REFERENCE)):
        e_inc, showers = synthetic_showers(DS2_LIKE, 300, derive_seed(4, name), model)
        data = load({"path": str(path), "binning": str(xml), "particle": "", "n_events": 0},
                    Result(study="fastcalo", preset=""))
        assert data.showers.shape == (300, DS2_LIKE.n_voxels)
        np.testing.assert_array_equal(data.e_inc, e_inc)
        np.testing.assert_array_equal(data.showers, showers)  # float64: bit for bit
        assert data.min_energy == CHALLENGE_MIN_ENERGY
    assert not np.array_equal(load({"path": str(gen), "binning": str(xml), "n_events": 0},
                                   Result(study="fastcalo", preset="")).e_inc,
                              load({"path": str(ref), "binning": str(xml), "n_events": 0},
                                   Result(study="fastcalo", preset="")).e_inc)


def test_synthetic_showers_are_physical_and_the_generated_model_is_deeper_and_wider():
    geo = VoxelGeometry.from_binning(cylindrical_binning(29.5, 45, 4.65, 16))
    feats = {}
    for name, model in (("ref", REFERENCE), ("gen", GENERATED)):
        e_inc, showers = synthetic_showers(cylindrical_binning(29.5, 45, 4.65, 16), 400, 1,
                                           model)
        assert showers.min() >= 0
        assert e_inc.min() >= 1e3 and e_inc.max() <= 1e6
        feats[name] = metrics.high_level_features(showers, e_inc, geo, CHALLENGE_MIN_ENERGY)
    ref, gen = feats["ref"], feats["gen"]
    assert np.median(ref.e_tot / ref.e_inc) == pytest.approx(1.0, abs=0.01)
    depth = {k: np.mean((f.e_layer * np.arange(45)).sum(1) / f.e_tot) for k, f in feats.items()}
    assert depth["gen"] > depth["ref"] * 1.02
    assert np.median(gen.width_x[:, 10]) > np.median(ref.width_x[:, 10]) * 1.03
    # voxels below the readout threshold exist (sparsity), yet every layer has energy somewhere
    assert 0.05 < ref.sparsity.mean() < 0.9
    assert (ref.e_layer.max(0) > 10 * CHALLENGE_MIN_ENERGY).all()


def test_too_few_showers_is_a_usage_error():
    with pytest.raises(UsageError):
        synthetic_showers(DS2_LIKE, 0, 1)


LABEL = r"$E_{\text{tot}} / E_{\text{inc}}$"


def _fake_code(directory, helper_text=LABEL + LABEL):
    directory.mkdir()
    (directory / "evaluate.py").write_text(
        "plt.rc('text', usetex=True)\nx = ttv_split(a, b,\n    dataset=args.dataset)\n"
        "fpd(r, s, min_samples=10000)\nkpd(r, s, batch_size=10000)\n")
    (directory / "evaluate_plotting_helper.py").write_text(helper_text)
    (directory / "binning_dataset_2.xml").write_text("<Bins/>")
    return directory / "evaluate.py"


def test_prepare_evaluate_patches_a_copy_and_leaves_the_original(tmp_path):
    script = _fake_code(tmp_path / "code")
    original = script.read_text()
    patched = prepare_evaluate(script, tmp_path / "work", Distances(500, 2000, 1000))
    text = patched.read_text()
    assert "usetex=False" in text and "dataset=None)" in text
    assert "min_samples=500, max_samples=2000)" in text and "batch_size=1000)" in text
    assert r"\mathrm{tot}" in (patched.parent / "evaluate_plotting_helper.py").read_text()
    assert (patched.parent / "binning_dataset_2.xml").exists()
    assert script.read_text() == original
    assert len(patches(Distances())) == 5


def test_prepare_evaluate_refuses_another_version_of_the_code(tmp_path):
    script = _fake_code(tmp_path / "code", helper_text="no latex here")
    with pytest.raises(DataError, match=r"evaluate_plotting_helper\.py"):
        prepare_evaluate(script, tmp_path / "work", Distances())
    with pytest.raises(UsageError):
        prepare_evaluate(tmp_path / "code" / "missing.py", tmp_path / "work", Distances())


BLOCKS = [("Etot / Einc", "0.0125"), ("E layer 0", "nan"), ("E layer 1", "0.5"),
          ("EC Eta layer 0", "0.25"), ("Width Phi layer 1", "1e-05"),
          ("Voxel distribution", "0.003")]
CHI2 = ("List of chi2 of the plotted histograms, see eq. 15 of 2009.03796 for its definition.\n"
        + "".join(f"{name}: \n{value}\n\n" for name, value in BLOCKS))  # evaluate.py's format


def test_parse_separation_maps_the_challenge_names_to_ours():
    sep = parse_separation(CHI2)
    assert sep["E_tot/E_inc"].tolist() == [0.0125]
    assert np.isnan(sep["E_layer"][0]) and sep["E_layer"][1] == 0.5
    assert sep["EC x"].tolist() == [0.25] and sep["width y"].tolist() == [1e-05]
    assert sep["voxel energy"].tolist() == [0.003]
    with pytest.raises(DataError, match="Unknown histogram"):
        parse_separation("Sparsity layer 3: \n0.1\n")
    with pytest.raises(DataError):
        parse_separation("nothing")


def test_parse_auc_and_distances():
    out = ("AUC on test set is 0.6\nFinal result of classifier test (AUC / JSD):\n"
           "0.7312 / 0.1234\n")
    assert parse_auc(out) == 0.7312
    with pytest.raises(DataError):
        parse_auc("AUC on test set is 0.6\n")
    d = parse_distances("FPD (x10^3): 12.5000 ± 0.3000\nKPD (x10^3): 0.0100 ± 0.0020")
    assert d == {"FPD": (12.5, 0.3), "KPD": (0.01, 0.002)}
    with pytest.raises(DataError):
        parse_distances("FPD (x10^3): 1 ± 2")


def test_parse_prdc_reads_the_unseparated_pairs_evaluate_py_writes():
    text = "precision: 0.91recall: 0.8825density: 1.0625coverage: 0.97"
    assert parse_prdc(text) == {"precision": 0.91, "recall": 0.8825, "density": 1.0625,
                                "coverage": 0.97}
    with pytest.raises(DataError, match="coverage"):
        parse_prdc("precision: 0.91recall: 0.8825density: 1.0625")


def test_cli_crosscheck_with_a_wrong_evaluate_path_is_one_sentence(tmp_path, capsys):
    from hepchain.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["fastcalo", "crosscheck", "--evaluate", str(tmp_path / "nothing.py"),
              "--python", "python3", "--workdir", str(tmp_path / "w")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "pass the challenge's code/evaluate.py" in err and "Traceback" not in err


def test_our_side_gives_zero_distance_for_a_file_against_itself(tmp_path):
    from hepchain.fastsim.crosscheck import ours, render

    gen, ref = write_pair(tmp_path, DS2_LIKE, n=200, seed=2)
    same = ours(ref, ref, tmp_path / "ref.xml", ("hist-chi", "fpd"), {}, 1,
                Distances(50, 100, 100))
    for name, values in same["hist-chi"].items():
        assert np.nanmax(values) == 0.0, name
    kpd = same["fpd"]["KPD"]
    assert same["fpd"]["FPD"].value < 1e-3 and abs(kpd.value) < 2 * kpd.error  # 0 within error
    other = ours(gen, ref, tmp_path / "ref.xml", ("hist-chi",), {}, 1, Distances())
    assert np.mean(other["hist-chi"]["width x"]) > 0.01  # the generated model is wider
    theirs = {"hist-chi": {"E_tot/E_inc": np.array([0.02]), "EC x": np.zeros(12)},
              "seconds": {"hist-chi": 1.0}}
    table = render(same, theirs, ("hist-chi",), 200, {}, Distances())
    assert "| separation power E_tot/E_inc (mean of 1) | 0.00000 | 0.02000 | 100.00% |" in table
    assert "| separation power EC x (mean of 12) | 0.00000 | 0.00000 | — (all 0) |" in table
