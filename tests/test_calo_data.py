"""CaloChallenge-layout datasets and the energy calibration of the ECAL."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from hepchain.calo.fullsim import simulate
from hepchain.calo.geometry import ECalGeometry
from hepchain.calo.produce import load_showers, produce
from hepchain.calo.validation import weighted_layer_sum
from hepchain.core.errors import UsageError
from hepchain.producers import find_producer
from hepchain.reco.calibration.baseline import LinearCalibration
from hepchain.reco.calibration.evaluate import resolution_points
from hepchain.reco.calibration.models import CNNRegressor, MLPRegressor
from hepchain.reco.calibration.train import fit_regressor, predict, to_inputs

SMALL = {"n_pix": "6", "pixel": "5.1"}


def test_produce_writes_calochallenge_hdf5(tmp_path) -> None:
    assert find_producer("ecal_fixed").__name__ == "hepchain.calo.produce"
    m = produce("ecal_fixed", tmp_path / "a", n_events=6, seed=1, shard_size=4,
                options={**SMALL, "energies": "1,2"})
    assert m.complete and m.n_written == 6 and len(m.shards) == 2
    with h5py.File(tmp_path / "a" / m.shards[0].file) as fh:
        assert fh["incident_energies"].shape == (4, 1)
        assert fh["showers"].shape == (4, 30 * 6 * 6)
        assert np.allclose(fh["incident_energies"][:, 0], [1000, 2000, 1000, 2000])
    energies, showers, _ = load_showers(tmp_path / "a")
    assert showers.shape == (6, 30, 6, 6) and showers.sum() > 0
    assert np.allclose(energies, [1, 2, 1, 2, 1, 2])
    m2 = produce("ecal_fixed", tmp_path / "b", n_events=6, seed=1, shard_size=4,
                 options={**SMALL, "energies": "1,2"})
    assert [s.sha256 for s in m.shards] == [s.sha256 for s in m2.shards]


def test_spectrum_and_fast_sim(tmp_path) -> None:
    produce("ecal_spectrum", tmp_path, n_events=20, seed=2,
            options={**SMALL, "sim": "fast", "e_min": "2", "e_max": "4", "particle": "gamma"})
    energies, showers, manifest = load_showers(tmp_path)
    assert manifest.generator == "hepchain.calo/fast" and showers.shape == (20, 30, 6, 6)
    assert np.all((energies >= 2) & (energies <= 4)) and np.ptp(energies) > 0.5


@pytest.mark.parametrize("opts", [{"energies": "-1"}, {"e_min": "5", "e_max": "1"},
                                  {"n_thin": "0", "n_thick": "0"}, {"colour": "red"},
                                  {"sim": "geant4"}, {"pixel": "abc"},
                                  {"spread": "-1"}, {"n_pix": "8.5"}])
def test_bad_options_are_usage_errors(tmp_path, opts) -> None:
    with pytest.raises(UsageError):
        produce("ecal_fixed", tmp_path, n_events=2, seed=1, options=opts)


@pytest.fixture(scope="module")
def calib_data():
    geo = ECalGeometry(pixel=5.1, n_pix=8)
    rng = np.random.default_rng(0)
    e_tr = rng.uniform(0.5, 6.0, 800)
    e_te = np.repeat([2.0, 4.0], 150)
    return geo, e_tr, simulate(geo, e_tr, seed=1), e_te, simulate(geo, e_te, seed=2)


def test_layer_sum_calibration_is_unbiased(calib_data) -> None:
    geo, e_tr, s_tr, e_te, s_te = calib_data
    w = geo.sampling_weights()
    assert w[0] == 1 and w[-1] == 2
    cal = LinearCalibration().fit(weighted_layer_sum(s_tr, w), e_tr)
    pts = resolution_points(e_te, cal(weighted_layer_sum(s_te, w)))
    for p in pts:
        assert abs(p.bias) < 0.03
        assert p.resolution < 0.25 / np.sqrt(p.energy)


def test_nn_regressors_learn_the_energy(calib_data) -> None:
    """Inputs scaled by 0.5: the untrained models (a plain pixel sum) are 50% low; training
    must remove that bias and resolve the energy far better than a constant would."""
    geo, e_tr, s_tr, e_te, s_te = calib_data
    x, t = 0.5 * to_inputs(s_tr), torch.tensor(e_tr, dtype=torch.float32)
    cfg = {"epochs": 8, "batch_size": 64, "lr": 0.003, "progress": False}
    spread = np.std(e_te) / np.mean(e_te)  # a constant prediction's relative error
    for build in (lambda: MLPRegressor(geo.n_cells, [32]),
                  lambda: CNNRegressor(geo.n_layers, channels=4)):
        with torch.no_grad():
            before = build()(0.5 * to_inputs(s_te)).numpy()
        assert np.median(before / e_te) < 0.6
        tr = fit_regressor(build, (x[:600], t[:600]), (x[600:], t[600:]), cfg, seed=0)
        rel = (predict(tr, 0.5 * to_inputs(s_te)) - e_te) / e_te
        assert abs(np.median(rel)) < 0.05 and np.std(rel) < 0.5 * spread
