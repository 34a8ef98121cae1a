"""Lepton isolation with and without the pile-up card's corrections (collider.isolation) and the
validation's prompt-lepton check (collider.validation)."""

from __future__ import annotations

import subprocess
import sys

import awkward as ak
import fastjet
import numpy as np
import pytest

from hepchain.collider import isolation, validation
from hepchain.collider.produce import produce
from hepchain.core.dataset import build_dataset


def test_grid_median_rho_equals_fastjets_grid_median_estimator() -> None:
    rng = np.random.default_rng(3)
    n_events = 6
    counts = rng.integers(40, 150, n_events)
    counts[1] = 0  # an empty event: ρ = 0
    event = np.repeat(np.arange(n_events), counts)
    n = len(event)
    pt, rap = rng.exponential(1.5, n), rng.uniform(-3.2, 3.2, n)
    phi = rng.uniform(-np.pi, np.pi, n)
    phi[:5] = [np.pi, -np.pi, 1e-9, -1e-9, 2 * np.pi / 6]  # tile edges in φ
    mass = rng.uniform(0.0, 0.5, n)
    mt = np.hypot(pt, mass)
    px, py, pz, e = pt * np.cos(phi), pt * np.sin(phi), mt * np.sinh(rap), mt * np.cosh(rap)
    ours = isolation.grid_median_rho(n_events, event, pt, rap, phi)
    theirs = []
    for k in range(n_events):
        est = fastjet.GridMedianBackgroundEstimator(isolation.RHO_RAP_MAX,
                                                    isolation.RHO_SPACING)
        mine = event == k
        est.set_particles([fastjet.PseudoJet(*p) for p in zip(px[mine], py[mine], pz[mine],
                                                              e[mine], strict=True)])
        theirs.append(est.rho())
    assert ours[1] == 0.0
    assert (ours > 0).sum() == n_events - 1
    assert ours == pytest.approx(theirs, rel=1e-9, abs=1e-12)


def test_pileup_tracks_are_the_charged_candidates_beyond_three_sigma_in_z() -> None:
    charge = np.array([1, -1, 1, 0, 0])
    dz = np.array([0.31, -0.29, 5.0, 9.0, 0.0])  # mm
    dzerr = np.array([0.1, 0.1, 2.0, 0.0, 0.0])
    with np.errstate(all="raise"):
        flagged = isolation.pileup_tracks(charge, dz, dzerr)
    assert flagged.tolist() == [True, False, False, False, False]


def _pf(rows: list[tuple[float, float, float, int, float]]) -> dict[str, np.ndarray]:
    """One event's candidates from (pt GeV, eta, phi, charge, dz/σ_dz) with σ_dz = 0.1 mm."""
    pt, eta, phi, charge, sig = (np.array(c, float) for c in zip(*rows, strict=True))
    return {"event": np.zeros(len(rows), np.int64), "px": pt * np.cos(phi),
            "py": pt * np.sin(phi), "pz": pt * np.sinh(eta), "e": pt * np.cosh(eta),
            "charge": charge.astype(np.int64), "dz": 0.1 * sig,
            "dzerr": np.where(charge != 0, 0.1, 0.0)}


def test_pileup_card_drops_pileup_tracks_and_subtracts_rho_from_neutrals_only() -> None:
    # a neutral carpet: one 0.6 GeV tower at the centre of each of the 5 × 6 ρ tiles
    tile = 2 * np.pi / 6
    carpet = [(0.6, -2.0 + i, (j + 0.5) * tile, 0, 0.0) for i in range(5) for j in range(6)]
    lepton = (20.0, 0.1, 0.5 * tile)
    cone = [(3.0, 0.1, 0.5 * tile + 0.2, 1, 1.0),   # charged from the primary vertex
            (4.0, 0.0, 0.5 * tile - 0.2, -1, 8.0),  # charged, pile-up (8 σ)
            (1.5, 0.3, 0.5 * tile, 0, 0.0),         # neutral
            (0.4, 0.2, 0.5 * tile, 1, 0.0)]         # below the cone's 0.5 GeV
    pf = _pf([(lepton[0], lepton[1], lepton[2], -1, 0.0), *cone, *carpet])
    args = (np.array([0]), np.array([lepton[1]]), np.array([lepton[2]]), np.array([lepton[0]]))
    # the carpet tower at (0, π/6) is inside the cone
    plain = isolation.relative_isolation(*args, pf, pileup=False)
    assert plain == pytest.approx([(3.0 + 4.0 + 1.5 + 0.6) / 20.0])
    rho = 0.6 / (1.0 * tile)  # the median tile holds one carpet tower
    corrected = isolation.relative_isolation(*args, pf, pileup=True)
    assert corrected == pytest.approx([(3.0 + 1.5 + 0.6 - rho * np.pi * 0.25) / 20.0])
    # the subtraction never makes the neutral sum negative, nor touches the charged sum
    outside = [c for c in carpet if abs(c[1]) > 0.5]  # ρ > 0, no neutral in the cone
    pf_no_neutral = _pf([(lepton[0], lepton[1], lepton[2], -1, 0.0), *cone[:2], *outside])
    assert isolation.relative_isolation(*args, pf_no_neutral, pileup=True) == pytest.approx(
        [3.0 / 20.0])


def test_lepton_check_matches_w_leptons_by_flavour_and_counts_the_rest() -> None:
    def parton(pid: int, parent: int, eta: float = 0.0, phi: float = 0.0, pt: float = 40.0
               ) -> dict:
        return {"pid": pid, "pt": pt, "eta": eta, "phi": phi, "mass": 0.0, "parent": parent}

    def lepton(pdgid: int, eta: float, phi: float) -> dict:
        return {"pt": 30.0, "eta": eta, "phi": phi, "charge": -1, "pdgid": pdgid}

    w = parton(24, -1)
    events = ak.Array([
        {"partons": [w, parton(11, 0, 0.5, 1.0), parton(-12, 0)],
         "leptons": [lepton(11, 0.52, 1.0), lepton(13, -1.0, -2.0)]},  # found + non-prompt
        {"partons": [w, parton(13, 0, 1.0, 3.1), parton(-14, 0),
                     parton(-24, -1), parton(15, 3, -0.5, 0.0), parton(16, 3),
                     parton(11, -1, 2.0, 0.0)],  # an e with no W parent is not prompt
         "leptons": [lepton(11, 1.0, 3.1),      # wrong flavour at the μ: μ not found
                     lepton(13, -0.5, 0.3),     # near the W's τ: not counted
                     lepton(11, 2.0, 0.0)]},    # non-prompt
        {"partons": [w, parton(11, 0, 0.0, 0.0, pt=8.0)], "leptons": []},  # below 10 GeV
    ])
    check = validation.lepton_check(events)
    assert check.found.tolist() == [True, False]
    assert check.n_nonprompt == 3  # μ of event 0, e at the μ and the e at (2, 0) of event 1
    assert check.n_events == 3
    assert check.efficiency == pytest.approx(0.5)
    assert check.efficiency_error == pytest.approx(np.sqrt(0.25 / 2))


@pytest.mark.parametrize("mu, pileup", [("0", False), ("10", True)])
def test_the_producer_uses_the_pileup_card_exactly_when_mu_is_positive(mu, pileup, tmp_path,
                                                                       monkeypatch) -> None:
    seen = []
    real = isolation.relative_isolation

    def spy(*args, pileup: bool):
        seen.append(pileup)
        return real(*args, pileup=pileup)

    monkeypatch.setattr(isolation, "relative_isolation", spy)
    produce("ttbar", tmp_path / "t", n_events=6, seed=3, executor=None, progress=False,
            options={"mu": mu})
    assert seen and set(seen) == {pileup}


def test_validate_refuses_events_without_leptons_in_one_sentence(tmp_path) -> None:
    out = tmp_path / "noleptons"
    build_dataset(out, generator="test", settings={}, n_events=2, shard_size=2, seed=0,
                  make_shard=lambda task: ak.Array([{"jets": [], "partons": []}] * task.n_events),
                  progress=False)
    bad = subprocess.run([sys.executable, "-m", "hepchain.cli", "collider", "validate", str(out),
                          "--out", str(tmp_path / "v")], capture_output=True, text=True)
    assert bad.returncode == 2
    assert "holds no collider events (no 'leptons' field)" in bad.stderr
    assert "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) <= 2
    assert not (tmp_path / "v").exists()
