"""Tracker material: PDG constants, helix crossings, photon conversions and hadronic
interactions (collider.geometry, collider.material)."""

from __future__ import annotations

import numpy as np
import pytest

from hepchain.collider import geometry, material, truth
from hepchain.collider.geometry import MATERIAL_LAYERS, RHO_PER_GEV


def test_material_constants_are_the_pdg_values() -> None:
    # PDG "Atomic and nuclear properties": X0 and lambda_I in cm
    assert geometry.BERYLLIUM.x0 == pytest.approx(352.8, rel=1e-3)
    assert geometry.BERYLLIUM.lambda_i == pytest.approx(421.0, rel=1e-3)
    assert geometry.SILICON.x0 == pytest.approx(93.70, rel=1e-3)
    assert geometry.SILICON.lambda_i == pytest.approx(465.2, rel=1e-3)
    assert geometry.BEAM_PIPE.x_over_x0 * geometry.BERYLLIUM.x0 == pytest.approx(0.8, rel=0.02)


def test_helix_crossing_matches_the_circle_through_the_origin() -> None:
    rng = np.random.default_rng(1)
    n, radius = 1000, 50.5
    pt, phi0 = rng.uniform(0.3, 20, n), rng.uniform(-np.pi, np.pi, n)
    q = rng.choice([-1.0, 1.0], n)
    zero = np.zeros(n)
    reached, x, y, z, phi = material.crossing(zero, zero, zero, pt * np.cos(phi0),
                                              pt * np.sin(phi0), pt, q, radius)
    half = np.arcsin(radius / (2 * pt * RHO_PER_GEV))  # half the turning angle
    assert reached.all()
    np.testing.assert_allclose(np.hypot(x, y), radius, rtol=1e-9)
    np.testing.assert_allclose(np.angle(np.exp(1j * (np.arctan2(y, x) - phi0 + q * half))), 0,
                               atol=1e-9)
    np.testing.assert_allclose(np.angle(np.exp(1j * (phi - phi0 + 2 * q * half))), 0, atol=1e-9)
    np.testing.assert_allclose(z, 2 * pt * RHO_PER_GEV * half, rtol=1e-9)  # pz = pT: z = s


def test_crossing_of_a_displaced_neutral_and_a_curling_track() -> None:
    reached, x, y, z, phi = material.crossing(
        np.array([5.0, 0.0]), np.array([0.0, 0.0]), np.array([1.0, 0.0]),
        np.array([0.0, 0.005]), np.array([2.0, 0.0]), np.array([0.0, 0.0]),
        np.array([0.0, 1.0]), 23.5)
    assert reached.tolist() == [True, False]  # 5 MeV: 2 rho = 8.8 mm < 23.5 mm
    assert (x[0], y[0], z[0], phi[0]) == pytest.approx((5.0, np.sqrt(23.5**2 - 25), 1.0,
                                                        np.pi / 2))


def _particles(pid: int, e: float, n: int, eta_max: float, seed: int, pileup: bool = False):
    rng = np.random.default_rng(seed)
    eta, phi = rng.uniform(-eta_max, eta_max, n), rng.uniform(-np.pi, np.pi, n)
    mass = 0.13957 if abs(pid) == 211 else 0.0
    p = np.sqrt(e**2 - mass**2)
    pt = p / np.cosh(eta)
    zero = np.zeros(n)
    cols = {"event": np.arange(n), "pid": np.full(n, pid), "px": pt * np.cos(phi),
            "py": pt * np.sin(phi), "pz": pt * np.sinh(eta), "e": np.full(n, e), "x": zero,
            "y": zero, "z": zero,
            "origin": np.full(n, truth.PILEUP if pileup else truth.PRIMARY, np.int8),
            "vkey": np.full(n, -1 if pileup else 0)}
    return cols, eta


def _expected_fraction(eta: np.ndarray, depth: float) -> float:
    """Mean probability to interact in ``depth`` (total thickness at normal incidence)."""
    return float(np.mean(-np.expm1(-depth * np.cosh(eta))))


def test_photon_conversions_follow_the_material_and_conserve_energy() -> None:
    n = 100_000
    cols, eta = _particles(22, 5.0, n, 1.0, seed=2)
    out, charge = material.interact(np.random.default_rng(3), cols, np.zeros(n))
    photons = out["pid"] == 22
    converted = n - photons.sum()
    expected = _expected_fraction(eta, material.CONVERSION_FACTOR
                                  * sum(layer.x_over_x0 for layer in MATERIAL_LAYERS))
    assert converted / n == pytest.approx(expected, abs=5 * np.sqrt(expected / n))
    ele = ~photons
    assert ele.sum() == 2 * converted
    assert np.all(np.isin(out["pid"][ele], (11, -11)))
    assert np.all(charge[ele] == np.where(out["pid"][ele] == 11, -1, 1))
    radius = np.hypot(out["x"][ele], out["y"][ele])
    assert np.all(np.isclose(radius[:, None], [layer.radius for layer in MATERIAL_LAYERS]
                             ).any(axis=1))
    # each conversion: one truth vertex, two legs, the photon's energy and direction
    assert np.all(out["origin"][ele] == truth.OTHER_SECONDARY)
    keys, counts = np.unique(out["vkey"][ele], return_counts=True)
    assert len(keys) == converted and np.all(counts == 2)
    assert np.all(keys >= material.VERTEX_KEY_OFFSET)
    e_sum = np.bincount(out["event"][ele], weights=out["e"][ele], minlength=n)
    np.testing.assert_allclose(e_sum[np.bincount(out["event"][ele], minlength=n) > 0], 5.0)
    assert np.all(np.diff(out["event"]) >= 0)


def test_bethe_heitler_energy_sharing() -> None:
    u = material._bethe_heitler(np.random.default_rng(4), 200_000)
    # E[u (1 - u)] = 11/70 for dsigma/du ∝ 1 - 4/3 u (1 - u); a flat split gives 1/6
    assert np.mean(u * (1 - u)) == pytest.approx(11 / 70, abs=0.0015)
    assert u.min() >= 0 and u.max() <= 1


def test_hadronic_interactions_replace_the_hadron_by_secondaries() -> None:
    n = 100_000
    cols, eta = _particles(211, 10.0, n, 1.0, seed=5, pileup=False)
    out, charge = material.interact(np.random.default_rng(6), cols, np.ones(n))
    survived = np.isin(out["vkey"], (0,))
    interacted = n - survived.sum()
    expected = _expected_fraction(eta, sum(layer.x_over_lambda for layer in MATERIAL_LAYERS))
    assert interacted / n == pytest.approx(expected, abs=5 * np.sqrt(expected / n))
    prod = ~survived
    assert np.all(out["origin"][prod] == truth.OTHER_SECONDARY)
    assert np.all(np.isin(out["pid"][prod], (211, -211, 130)))
    assert np.all(charge[prod] == np.sign(out["pid"][prod]) * (out["pid"][prod] != 130))
    # energy is conserved, products point along the pion (transverse momentum ~ 0.3 GeV)
    e_sum = np.bincount(out["event"][prod], weights=out["e"][prod], minlength=n)
    hit = np.bincount(out["event"][prod], minlength=n) > 0
    np.testing.assert_allclose(e_sum[hit], 10.0, rtol=1e-9)
    pions = prod & (np.abs(out["pid"]) == 211)
    ev = out["event"][pions]
    cos = (out["px"][pions] * cols["px"][ev] + out["py"][pions] * cols["py"][ev]
           + out["pz"][pions] * cols["pz"][ev]) / (
        np.sqrt(out["px"][pions] ** 2 + out["py"][pions] ** 2 + out["pz"][pions] ** 2) * 10.0)
    assert np.median(cos) > 0.95
    assert 2.0 < np.mean(np.bincount(ev)[np.unique(ev)]) < 3.2  # 1 + Poisson(2), some too soft


def test_pileup_particles_make_pileup_secondaries() -> None:
    cols, _ = _particles(211, 10.0, 20_000, 2.0, seed=7, pileup=True)
    out, _ = material.interact(np.random.default_rng(8), cols, np.ones(20_000))
    assert len(out["pid"]) > 20_000  # interactions happened
    assert np.all(out["origin"] == truth.PILEUP) and np.all(out["vkey"] == -1)
