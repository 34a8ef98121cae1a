"""Material constants against PDG values, and the silicon readout (Landau, noise, threshold)."""

from __future__ import annotations

import numpy as np
import pytest

from hepchain.calo.geometry import ECalGeometry
from hepchain.calo.materials import material
from hepchain.calo.produce import load_showers, produce
from hepchain.calo.readout import Readout, digitise, landau_width_mip
from hepchain.core.errors import UsageError

GEO = ECalGeometry(pixel=5.0, n_pix=8)


def test_material_constants_are_the_pdg_values() -> None:
    """PDG "Atomic and nuclear properties": W X0 = 0.3504 cm, ρ = 19.3 g/cm³, R_M = 0.9327 cm,
    E_c = 7.97 MeV; Si X0 = 9.370 cm; SiD's alloy (93 % W, Ni, Fe; 17.8 g/cm³) X0 ≈ 3.9 mm."""
    w, si, alloy = material("W"), material("Si"), material("W93NiFe")
    assert w.density == 19.3
    assert w.x0_mm == pytest.approx(3.504, rel=1e-3)
    assert w.moliere_mm == pytest.approx(9.327, rel=5e-3)
    assert w.ec_mev == pytest.approx(7.97, rel=1e-6)
    assert si.x0_mm == pytest.approx(93.70, rel=1e-3)
    assert si.dedx_mev_mm == pytest.approx(0.3876, rel=1e-3)
    assert alloy.x0_mm == pytest.approx(3.9, rel=0.02)
    # the mixture rule: X0 lies between W's and the binder's, closer to W's (93 % by mass)
    assert w.x0_g_cm2 < alloy.x0_g_cm2 < 1.05 * w.x0_g_cm2
    with pytest.raises(UsageError, match="Unknown material"):
        material("lead")


def test_mip_and_landau_width_of_the_sensor() -> None:
    """320 µm Si: mean MIP loss 1.664 MeV cm²/g × 2.329 g/cm³ × 0.032 cm = 0.124 MeV;
    Landau ξ = 0.1535 MeV cm²/g × (14/28.09) × 2.329 g/cm³ × 0.032 cm = 5.70 keV."""
    geo = ECalGeometry()
    assert geo.mip_mev() == pytest.approx(0.1240, rel=2e-3)
    assert landau_width_mip(geo) * geo.mip_mev() == pytest.approx(5.70e-3, rel=5e-3)


def test_threshold_removes_sub_threshold_hits() -> None:
    mip = GEO.mip_mev()
    showers = np.zeros((2, *GEO.shape))
    showers[0, 0, 0, :4] = np.array([0.2, 0.45, 0.6, 3.0]) * mip
    out = digitise(showers, GEO, Readout(landau=False, noise_mip=0.0, threshold_mip=0.5),
                   np.random.default_rng(0))
    assert np.array_equal(out[0, 0, 0, :4] > 0, [False, False, True, True])
    np.testing.assert_allclose(out[0, 0, 0, 2:4], showers[0, 0, 0, 2:4], rtol=1e-6)
    assert np.count_nonzero(out) == 2


def test_noise_has_the_configured_sigma() -> None:
    mip = GEO.mip_mev()
    showers = np.full((40, *GEO.shape), 20.0 * mip)  # far above threshold: nothing suppressed
    out = digitise(showers, GEO, Readout(landau=False, noise_mip=0.1, threshold_mip=0.5),
                   np.random.default_rng(1))
    noise = (out - showers) / mip
    assert noise.mean() == pytest.approx(0.0, abs=0.003)
    assert noise.std() == pytest.approx(0.1, rel=0.02)
    # noise alone (0.1 MIP) on empty pixels passes a 0.5 MIP threshold ~3e-7 of the time
    empty = digitise(np.zeros_like(showers), GEO, Readout(), np.random.default_rng(2))
    assert np.count_nonzero(empty) <= 2


def test_landau_fluctuations_are_skewed_with_the_mean_kept() -> None:
    """One MIP per pixel: Landau-like peak below the mean, long upper tail, mean unchanged."""
    mip = GEO.mip_mev()
    showers = np.full((200, *GEO.shape), mip)
    out = digitise(showers, GEO, Readout(landau=True, noise_mip=0.0, threshold_mip=0.0),
                   np.random.default_rng(3)) / mip
    xi = landau_width_mip(GEO)
    assert out.mean() == pytest.approx(1.0, abs=0.002)
    assert out.std() == pytest.approx(xi * np.pi / np.sqrt(2), rel=0.02)
    assert np.median(out) < out.mean() and np.percentile(out, 99) - 1 > 1 - np.percentile(out, 1)


def test_produced_showers_are_read_out(tmp_path) -> None:
    opts = {"n_pix": "6", "pixel": "5.1", "energies": "2"}
    produce("ecal_fixed", tmp_path / "raw", n_events=20, seed=1,
            options={**opts, "landau": "false", "noise_mip": "0", "threshold_mip": "0"})
    produce("ecal_fixed", tmp_path / "ro", n_events=20, seed=1, options=opts)
    _, raw, _ = load_showers(tmp_path / "raw")
    _, ro, manifest = load_showers(tmp_path / "ro")
    mip = ECalGeometry(n_pix=6, pixel=5.1).mip_mev()
    assert manifest.settings["readout"] == Readout().to_dict()
    assert ro[ro > 0].min() > 0.5 * mip
    assert 0 < np.count_nonzero(ro) < np.count_nonzero(raw)
    assert np.count_nonzero(raw[(raw > 0) & (raw < 0.3 * mip)]) > 0
    with pytest.raises(UsageError, match="landau"):
        produce("ecal_fixed", tmp_path / "bad", n_events=2, seed=1, options={"landau": "maybe"})
    with pytest.raises(UsageError, match="noise_mip"):
        produce("ecal_fixed", tmp_path / "bad", n_events=2, seed=1, options={"noise_mip": "-1"})
