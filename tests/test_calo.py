"""Physics validation of the ECAL full and fast simulations on small samples."""

from __future__ import annotations

import numpy as np
import pytest

from hepchain.calo.fastsim import (
    GFlashParams,
    profile_moments,
    sampling_fractions,
    simulate_fast,
    tune,
)
from hepchain.calo.fullsim import simulate
from hepchain.calo.geometry import SILICON, TUNGSTEN, ECalGeometry
from hepchain.calo.plots import profile_comparison
from hepchain.calo.validation import (
    containment,
    expected_tmax,
    fitted_tmax,
    stochastic_fit,
    visible_response,
)
from hepchain.core.errors import UsageError

GEO = ECalGeometry(pixel=4.0, n_pix=32)
FINE = ECalGeometry(pixel=1.0, n_pix=96)


@pytest.fixture(scope="module")
def electrons() -> tuple[np.ndarray, np.ndarray]:
    energies = np.repeat([1.0, 2.5, 5.0], 250)
    return energies, simulate(GEO, energies, seed=11)


def test_geometry_is_the_sid_stack() -> None:
    assert GEO.shape == (30, 32, 32)
    assert GEO.absorber_mm().sum() == pytest.approx(20 * 2.5 + 10 * 5.0)
    # seed 000: 26 X0 of SiD's W alloy (X0 ≈ 3.9 mm); pure W (X0 = 3.504 mm) would be 28.6 X0
    assert GEO.total_x0() == pytest.approx(100.0 / 3.9 + 30 * 0.32 / 93.7, abs=0.3)
    pure = ECalGeometry(absorber="W").total_x0()
    assert pure == pytest.approx(100.0 / 3.504 + 30 * 0.32 / 93.7, rel=2e-3)
    z, mats, layer = GEO.slabs()
    assert np.all(np.diff(z) > 0) and (layer >= 0).sum() == 30
    assert set(mats[layer >= 0]) == {SILICON} and (mats == TUNGSTEN).sum() == 30


@pytest.mark.parametrize("bad", [{"n_thin": 0, "n_thick": 0}, {"w_thin": -1.0},
                                 {"pixel": 0.0}, {"n_pix": 0}, {"layers": 3}])
def test_bad_geometry_is_a_usage_error(bad: dict) -> None:
    with pytest.raises(UsageError):
        ECalGeometry.from_dict(bad)


def test_bad_energies_and_particles_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="> 0 GeV"):
        simulate(GEO, np.array([-1.0]))
    with pytest.raises(UsageError, match="particle"):
        simulate(GEO, np.array([1.0]), particle="proton")
    with pytest.raises(UsageError):
        simulate_fast(GEO, np.array([0.0]))


def test_same_seed_same_showers() -> None:
    a = simulate(GEO, np.array([2.0, 3.0]), seed=5)
    assert np.array_equal(a, simulate(GEO, np.array([2.0, 3.0]), seed=5))
    assert not np.array_equal(a, simulate(GEO, np.array([2.0, 3.0]), seed=6))


def test_shower_maximum_follows_ln_e(electrons) -> None:
    """t_max = ln(E/E_c) − 0.5 within 0.25 X0 (the formula's accuracy) + 3 × the bootstrap
    spread of the fitted t_max (about 0.08 X0 for 250 showers); a 10 % wrong X0 moves t_max
    by ~0.5 X0."""
    energies, showers = electrons
    rng = np.random.default_rng(0)
    for e in (1.0, 2.5, 5.0):
        sample = showers[energies == e]
        t = fitted_tmax(sample, GEO)
        spread = np.std([fitted_tmax(sample[rng.integers(0, len(sample), len(sample))], GEO)
                         for _ in range(20)])
        assert abs(t - expected_tmax(e, GEO)) < 0.25 + 3 * spread, (e, t, spread)
    t1, t5 = (fitted_tmax(showers[energies == e], GEO) for e in (1.0, 5.0))
    assert t5 - t1 == pytest.approx(np.log(5.0), abs=0.5)


def test_photons_peak_later_than_electrons() -> None:
    e = np.full(150, 5.0)
    t_e = fitted_tmax(simulate(GEO, e, particle="e-", seed=2), GEO)
    t_g = fitted_tmax(simulate(GEO, e, particle="gamma", seed=2), GEO)
    assert 0.3 < t_g - t_e < 1.8


def test_ninety_percent_within_one_moliere_radius() -> None:
    showers = simulate(FINE, np.full(100, 5.0), seed=3, spread_mm=0.0)
    frac = containment(showers, FINE, FINE.effective_moliere_mm())
    assert 0.85 < frac < 0.95
    assert containment(showers, FINE, 3 * FINE.effective_moliere_mm()) > 0.97


def test_visible_energy_is_linear_with_stochastic_resolution(electrons) -> None:
    energies, showers = electrons
    e, mean, _, _ = visible_response(energies, showers, GEO)
    slope, offset = np.polyfit(e, mean, 1)
    assert np.max(np.abs((slope * e + offset) / mean - 1)) < 0.02
    assert abs(offset) < 0.05 * mean[-1]
    # the visible fraction is the electron/MIP sampling fraction of the thin layers
    assert slope / 1000 == pytest.approx(sampling_fractions(GEO)[0], rel=0.05)
    fit = stochastic_fit(energies, showers, GEO)
    assert 0.15 <= fit.a <= 0.20, fit


def test_fast_sim_matches_full_sim_profile(electrons, tmp_path) -> None:
    energies, showers = electrons
    full = showers[energies == 5.0]
    fast = simulate_fast(GEO, np.full(len(full), 5.0), seed=4)
    assert fast.shape == full.shape
    assert fast.sum(axis=(1, 2, 3)).mean() == pytest.approx(full.sum(axis=(1, 2, 3)).mean(),
                                                            rel=0.07)
    assert abs(fitted_tmax(fast, GEO) - fitted_tmax(full, GEO)) < 1.2
    path = profile_comparison({"full": (5.0, full), "fast": (5.0, fast)}, GEO,
                              tmp_path / "profile.png")
    assert path.stat().st_size > 1000


def test_fast_sim_tuning_recovers_known_parameters() -> None:
    """Closure: showers drawn with known constants (spots = energy profile) are tuned back."""
    geo = ECalGeometry(pixel=4.0, n_pix=12)
    truth = GFlashParams(t_offset=-1.2, a0=0.6, a1=0.5, t_slope=1.05, spot_t=1.0, spot_a=1.0,
                         sampling=0.15)
    energies = np.repeat([1.0, 4.0, 16.0], 400)
    fitted = tune(geo, energies, simulate_fast(geo, energies, seed=1, params=truth))
    ln_y = np.log(np.array([1.0, 4.0, 16.0]) * 1000.0 / geo.absorber_material.ec_mev)
    for field, tol in (("t", 0.05), ("a", 0.08)):
        if field == "t":
            want, got = (p.t_slope * ln_y + p.t_offset for p in (truth, fitted))
        else:
            want, got = (p.a0 + p.a1 * ln_y for p in (truth, fitted))
        np.testing.assert_allclose(got, want, rtol=tol)
    assert fitted.sampling == pytest.approx(truth.sampling, rel=0.2)


def test_tuned_fast_sim_matches_full_sim_better_than_default(electrons) -> None:
    """Tuned on 1, 2.5 and 5 GeV; validated at 3.5 GeV, an energy not used in the tuning."""
    energies, showers = electrons
    params = tune(GEO, energies, showers)
    held_out = simulate(GEO, np.full(150, 3.5), seed=12)
    full_t = fitted_tmax(held_out, GEO)
    tuned = simulate_fast(GEO, np.full(150, 3.5), seed=2, params=params)
    default = simulate_fast(GEO, np.full(150, 3.5), seed=2)
    assert abs(fitted_tmax(tuned, GEO) - full_t) < 0.3
    assert abs(fitted_tmax(tuned, GEO) - full_t) < abs(fitted_tmax(default, GEO) - full_t)
    t_full, _ = profile_moments(held_out, GEO)
    t_fast, _ = profile_moments(tuned, GEO)
    assert np.log(t_fast).std() == pytest.approx(np.log(t_full).std(), rel=0.3)
    with pytest.raises(UsageError, match=">= 3 fixed energies"):
        tune(GEO, np.repeat([1.0, 2.0], 5), showers[:10])
