"""fastcalo: CaloChallenge metrics on known cases, bounds of generated showers, the
CaloChallenge reader round trip and model/geometry mismatch errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits

from hepchain.calo.formats.binning import cylindrical_binning
from hepchain.calo.formats.calochallenge import pixels_to_voxels, write_calochallenge
from hepchain.calo.fullsim import simulate
from hepchain.calo.geometry import ECalGeometry
from hepchain.calo.produce import load_showers
from hepchain.calo.readout import Readout, digitise
from hepchain.core.errors import DataError, UsageError
from hepchain.core.result import Result
from hepchain.fastsim import metrics
from hepchain.fastsim.codec import ShowerCodec
from hepchain.fastsim.data import CHALLENGE_MIN_ENERGY, load
from hepchain.fastsim.models.base import load_model, save_model
from hepchain.fastsim.models.gflash import GFlash
from hepchain.fastsim.produce import produce, shard_settings
from hepchain.fastsim.train import MODEL_CLASSES, fit_model
from hepchain.fastsim.voxels import VoxelGeometry

ECAL = ECalGeometry(n_pix=4, pixel=10.0)
TINY_TRAIN = {"epochs": 1, "batch_size": 32, "progress": False}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch and BLAS thread: tiny models gain nothing from more, a shared CPU loses."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def showers():
    """(E_inc [MeV], read-out showers (N, voxels) [MeV]) of 120 full-sim e- at 1-4 GeV."""
    rng = np.random.default_rng(3)
    e_gev = rng.uniform(1.0, 4.0, 120)
    deposits = simulate(ECAL, e_gev, seed=4)
    signals = digitise(deposits, ECAL, Readout(), rng)
    return e_gev * 1e3, signals.reshape(len(e_gev), -1).astype(np.float64)


# ------------------------------------------------------------------ separation power

def test_separation_power_is_zero_for_identical_and_one_for_disjoint_histograms():
    h = np.array([3.0, 5.0, 2.0])
    assert metrics.separation_power(h, 2 * h) == pytest.approx(0.0, abs=1e-12)
    assert metrics.separation_power([1, 1, 0, 0], [0, 0, 4, 1]) == pytest.approx(1.0)
    # half of the mass moved to an empty bin: ½ (¼/½ + ¼/¼·… ) by hand = 1/3
    assert metrics.separation_power([1, 1, 0], [1, 0, 1]) == pytest.approx(
        0.5 * (0 + 0.25 / 0.5 + 0.25 / 0.5), rel=1e-9)


def test_histogram_separation_ignores_entries_outside_the_bins_like_density_histograms():
    bins = np.linspace(0, 1, 11)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, 5000)
    assert metrics.histogram_separation(x, np.r_[x, [5.0, 7.0]], bins) == pytest.approx(0.0)
    assert np.isnan(metrics.histogram_separation(x, x + 1.0, bins))  # nothing in range
    assert metrics.histogram_separation(x * 0.4, 0.6 + x * 0.4, bins) == pytest.approx(1.0)


# ------------------------------------------------------------------ high-level features

def test_high_level_features_of_hand_made_showers():
    geo = VoxelGeometry.from_ecal(ECAL)  # 4 x 4 pixels of 10 mm: centres ±5, ±15 mm
    shower = np.zeros((2, geo.n_layers, 16))
    shower[0, 0, 0] = 7.0                   # one pixel at (x, y) = (−15, −15) mm
    shower[1, 3, [5, 6]] = [2.0, 2.0]       # two pixels at x = −5, +5 mm, y = −5 mm
    hl = metrics.high_level_features(shower.reshape(2, -1), np.array([10.0, 10.0]), geo)
    assert hl.e_tot == pytest.approx([7.0, 4.0])
    assert hl.ec_x[0, 0] == pytest.approx(-15.0) and hl.ec_y[0, 0] == pytest.approx(-15.0)
    assert hl.width_x[0, 0] == pytest.approx(0.0, abs=1e-6)
    assert hl.sparsity[0, 0] == pytest.approx(15 / 16) and hl.sparsity[0, 1] == 1.0
    assert hl.ec_x[1, 3] == pytest.approx(0.0, abs=1e-9)
    assert hl.width_x[1, 3] == pytest.approx(5.0) and hl.width_y[1, 3] == pytest.approx(0.0,
                                                                                       abs=1e-6)
    assert hl.ec_r[1, 3] == pytest.approx(np.hypot(5, 5))
    # the threshold removes voxels below it before everything else
    cut = metrics.high_level_features(shower.reshape(2, -1), np.array([10.0, 10.0]), geo,
                                      min_energy=3.0)
    assert cut.e_tot == pytest.approx([7.0, 0.0])


def test_prdc_inputs_are_the_challenges_log_voxels_with_empty_ones_at_a_tenth_mev():
    showers = np.array([[0.0, 0.005, 10.0, 1000.0]])
    assert metrics.prdc_inputs(showers, min_energy=0.01).tolist() == [[-1.0, -1.0, 1.0, 3.0]]


def test_binning_geometry_puts_voxels_at_r_cos_alpha_like_the_challenge():
    binning = cylindrical_binning(20.0, n_layers=2, r_step_mm=10.0, n_alpha=4)
    geo = VoxelGeometry.from_binning(binning)
    # first voxel: α bin [−π, −π/2) centre −3π/4, r bin [0, 10) centre 5 mm
    assert geo.x[0, 0] == pytest.approx(5 * np.cos(-0.75 * np.pi))
    assert geo.y[0, 0] == pytest.approx(5 * np.sin(-0.75 * np.pi))
    assert geo.n_voxels == binning.n_voxels


def test_challenge_classifier_auc_half_for_one_distribution_and_near_one_for_two():
    rng = np.random.default_rng(1)
    fit = metrics.challenge_dnn(n_hidden=16, n_layer=1, epochs=8, lr=3e-3, batch_size=100)
    same = metrics.classifier_auc(rng.normal(size=(1500, 4)), rng.normal(size=(1500, 4)),
                                  fit, seed=2)
    apart = metrics.classifier_auc(rng.normal(size=(1500, 4)),
                                   rng.normal(size=(1500, 4)) + np.array([2.0, 0, 0, 0]), fit,
                                   seed=2)
    assert abs(same.value - 0.5) < 4 * same.error
    assert apart.value > 0.9


# ------------------------------------------------------------------ generated showers

def test_codec_round_trip_is_exact_up_to_the_dequantisation_noise(showers):
    e, s = showers
    geo = VoxelGeometry.from_ecal(ECAL)
    low = Readout().threshold_mip * ECAL.mip_mev()
    codec = ShowerCodec.fit(s, e, geo, low, np.random.default_rng(0))
    z, _ = codec.encode(s, e, np.random.default_rng(1))
    back = codec.decode(z.double().numpy(), e)
    assert np.abs(back - s).max() < 2 * low * ECAL.n_layers
    assert back.sum(1) == pytest.approx(s.sum(1), rel=0.05)


def test_generated_showers_are_non_negative_and_within_energy_bounds(showers):
    e, s = showers
    geo = VoxelGeometry.from_ecal(ECAL)
    low = Readout().threshold_mip * ECAL.mip_mev()
    codec = ShowerCodec.fit(s, e, geo, low, np.random.default_rng(0))
    wild = codec.decode(10 * np.random.default_rng(2).normal(size=(200, codec.dim)),
                        np.full(200, 2e3))   # far outside the training distribution
    assert (wild >= 0).all() and not np.any((wild > 0) & (wild < low))
    assert (wild.sum(1) <= codec.ratio_cap * 2e3 * (1 + 1e-9)).all()
    assert codec.ratio_cap * 2e3 < 2e3  # Si signals: the cap is far below the incident energy
    for kind in ("gan", "cfm"):
        model, _ = fit_model(kind, codec, (s[:80], e[:80]), (s[80:], e[80:]),
                             {"hidden": [32]}, TINY_TRAIN, seed=0)
        gen = model.generate(np.linspace(1e3, 4e3, 50), seed=1)
        assert gen.shape == (50, geo.n_voxels) and (gen >= 0).all()
        assert (gen.sum(1) <= np.linspace(1e3, 4e3, 50)).all()
    tuned = GFlash.fit(s, e, ECAL, Readout(), 2.0, 1.0, levels=3, n_fast=30, seed=0)
    fast = tuned.generate(np.full(20, 3e3), seed=0)
    assert (fast >= 0).all() and (fast.sum(1) < 3e3).all() and fast.sum() > 0


def test_model_for_another_geometry_is_a_usage_error(showers, tmp_path):
    e, s = showers
    geo = VoxelGeometry.from_ecal(ECAL)
    codec = ShowerCodec.fit(s, e, geo, 0.06, np.random.default_rng(0))
    model, _ = fit_model("caloflow", codec, (s[:80], e[:80]), (s[80:], e[80:]),
                         {"transforms_energy": 1, "hidden_energy": [16],
                          "transforms_voxels": 1, "hidden_voxels": [32]}, TINY_TRAIN, seed=0)
    path = save_model(model, tmp_path / "flow.pt", geo, {"scale": 1.0, "ecal": ECAL.to_dict()})
    again = load_model(path, geo, MODEL_CLASSES)
    assert again.generate(np.full(3, 2e3), seed=5) == pytest.approx(
        model.generate(np.full(3, 2e3), seed=5))
    other = VoxelGeometry.from_ecal(ECalGeometry(n_pix=4, pixel=8.0))
    with pytest.raises(UsageError, match="trained on"):
        load_model(path, other, MODEL_CLASSES)
    with pytest.raises(UsageError, match="trained on"):  # the producer checks it too
        shard_settings("ecal_fast", {"model": str(path), "pixel": "8.0"})
    manifest = produce("ecal_fast", tmp_path / "fast", n_events=12, seed=1, progress=False,
                       options={"model": str(path), "e_min": "1.0", "e_max": "3.0"})
    energies, images, _ = load_showers(manifest_dir := tmp_path / "fast")
    assert manifest.n_events == 12 and manifest_dir.is_dir()
    assert images.shape == (12, *ECAL.shape) and (images >= 0).all()
    assert ((energies >= 1.0) & (energies <= 3.0)).all()
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(DataError, match="not a fastcalo model"):
        load_model(tmp_path / "junk.pt", geo, MODEL_CLASSES)


# ------------------------------------------------------------------ reader round trip

def test_our_showers_round_trip_through_the_calochallenge_layout(showers, tmp_path):
    e, s = showers
    binning = cylindrical_binning(ECAL.half_width, ECAL.n_layers, r_step_mm=5.0, n_alpha=8)
    voxels = pixels_to_voxels(s.reshape(-1, *ECAL.shape), ECAL, binning)
    path, xml = write_calochallenge(tmp_path / "showers.h5", e, voxels, binning)
    data = load({"path": str(path), "binning": str(xml), "n_events": 0, "particle": ""},
                Result(study="fastcalo", preset="test"))
    assert len(data) == len(e) and data.min_energy == CHALLENGE_MIN_ENERGY
    assert data.e_inc == pytest.approx(e, rel=1e-6)
    assert data.showers.sum(1) == pytest.approx(s.sum(1), rel=1e-5)
    ours = metrics.high_level_features(s, e, VoxelGeometry.from_ecal(ECAL))
    theirs = metrics.high_level_features(data.showers, data.e_inc, data.geometry)
    assert theirs.e_layer == pytest.approx(ours.e_layer, rel=1e-5, abs=1e-6)
    with pytest.raises(UsageError, match="binning XML"):
        load({"path": str(path), "binning": "", "n_events": 0, "particle": ""},
             Result(study="fastcalo", preset="test"))
