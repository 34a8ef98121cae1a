"""Sparse-sensing patterns, learned masks and the `sparse` study."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hepchain.core.errors import UsageError
from hepchain.core.metrics import roc_auc
from hepchain.core.study import get_study, run_study
from hepchain.daq.learned import GumbelTopK, LoupeMask, learn_pattern
from hepchain.daq.patterns import (
    n_keep,
    random_pattern,
    regular_pattern,
    top_k_pattern,
    validate_rate,
)


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, "a lot"])
def test_rates_outside_unit_interval_are_refused(rate) -> None:
    with pytest.raises(UsageError, match="rate"):
        validate_rate(rate)


def test_random_and_regular_patterns_keep_the_right_number() -> None:
    shape = (3, 10, 10)
    rng = np.random.default_rng(0)
    a, b = random_pattern(shape, 0.34, rng), random_pattern(shape, 0.34, rng)
    assert a.sum() == b.sum() == n_keep(300, 0.34) == 198 and not np.array_equal(a, b)
    reg = regular_pattern(shape, 0.34)
    assert abs(reg.mean() - 0.66) < 0.01
    half = regular_pattern((2, 4, 4), 0.5)
    checker = (np.add.outer(np.arange(4), np.arange(4)) % 2 == 1)
    assert np.array_equal(half[0], checker) and np.array_equal(half[1], ~checker)
    assert regular_pattern(shape, 0.0).all()


def test_top_k_pattern() -> None:
    scores = np.array([[0.1, 0.9], [0.5, 0.3]])
    assert np.array_equal(top_k_pattern(scores, 0.5), [[False, True], [True, False]])


def test_loupe_mask_is_rescaled_to_the_kept_fraction() -> None:
    mask = LoupeMask(500, keep=0.3)
    assert float(mask.probs().detach().mean()) == pytest.approx(0.3, abs=1e-4)
    mask.train()
    x = torch.ones(4, 500, requires_grad=True)
    mask(x).sum().backward()
    assert mask.logits.grad is not None and mask.logits.grad.abs().sum() > 0


def test_gumbel_top_k_selects_exactly_k() -> None:
    sel = GumbelTopK(50, k=7, total_steps=10)
    sel.train()
    out = sel(torch.ones(5, 50))
    assert torch.all((out.detach() > 0.5).sum(dim=1) == 7)
    out.sum().backward()
    assert sel.logits.grad.abs().sum() > 0
    assert sel.temperature() < 1.0
    sel.eval()
    assert int((sel(torch.ones(1, 50)) > 0).sum()) == 7


@pytest.mark.parametrize("kind", ["loupe", "gumbel"])
def test_learned_pattern_finds_the_informative_pixels(kind: str) -> None:
    """Energy = sum of 8 of 40 pixels, the rest is noise: keeping 20% should find them."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1200, 1, 5, 8, generator=g)
    informative = torch.zeros(40, dtype=torch.bool)
    informative[torch.randperm(40, generator=g)[:8]] = True
    energy = 1.0 + x.flatten(1)[:, informative].sum(dim=1)
    cfg = {"epochs": 20, "batch_size": 64, "lr": 0.03, "progress": False}
    pattern, scores = learn_pattern(kind, (x[:1000], energy[:1000]),
                                    (x[1000:], energy[1000:]), 0.8, [16], cfg, seed=1,
                                    mask_cfg={})
    assert pattern.shape == scores.shape == (1, 5, 8) and pattern.sum() == 8
    hits = int((torch.as_tensor(pattern.ravel()) & informative).sum())
    # measured over training seeds 0-9: Gumbel top-k keeps 8 of 8 every time; LOUPE keeps 4-7
    # of 8 but ranks the informative pixels first (score AUC 0.84-0.98)
    auc = roc_auc(informative.numpy(), np.asarray(scores).ravel())
    assert auc > 0.8  # chance: the AUC of 8 vs 32 random scores has σ ≈ 0.12, P(> 0.8) ≈ 0.5 %
    assert hits >= (6 if kind == "gumbel" else 4)  # chance: 1.6 of 8, P(>= 6) 2e-4, P(>= 4) 4 %


def test_study_config_errors() -> None:
    study = get_study("sparse")
    with pytest.raises(UsageError, match="rate"):
        study.run({**study.config("quick"), "table_rate": 1.2}, None, 0)
    with pytest.raises(UsageError, match="pattern"):
        study.run({**study.config("quick"), "patterns": ["spiral"]}, None, 0)


def test_sparse_study_end_to_end(tmp_path) -> None:
    overrides = {"geometry": {"pixel": 5.1, "n_pix": 4}, "n_train": 300, "n_val": 100,
                 "n_test_per_energy": 60, "e_min": 1.0, "e_max": 6.0,
                 "test_energies": [1.0, 2.5, 5.0, 8.0], "rates": [0.0, 0.5], "model": {"hidden": [8]},
                 "train": {"epochs": 3, "batch_size": 64, "progress": False},
                 "mask_train": {"epochs": 3, "batch_size": 64, "progress": False},
                 "speed_showers": 2}
    result = run_study("sparse", "quick", tmp_path, seed=0, overrides=overrides)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["study"] == "sparse"
    sigma = {label: result.get("σ/E at 2.5 GeV", label)
             for label in ("no reduction", "random 34%", "learned (LOUPE) 34%")}
    # seed 000's Table 1 is another detector: marked as such, never as our own data
    assert all(not m.reference.same_dataset for m in sigma.values())
    assert result.get("σ/E at 2.5 GeV", "regular 34%").reference is None  # not in the seed
    # the recovered fraction is computed from the table's own rows, ours and the seed's
    rec = result.get("fraction of random's loss recovered at 2.5 GeV", "learned (LOUPE)")
    none, rand, loupe = sigma.values()
    assert rec.value == pytest.approx((rand.value - loupe.value) / (rand.value - none.value))
    assert rec.reference.value == pytest.approx(
        (rand.reference.value - loupe.reference.value)
        / (rand.reference.value - none.reference.value))
    # one run is one seed; its error is the test set's own statistics (bench gives the spread)
    assert none.n == 1 and np.isfinite(none.std)
    # ... and it is also its own row, which bench averages instead of replacing
    err = result.get("σ/E at 2.5 GeV: test-set error of the core fit", "no reduction")
    assert err.value == none.std
    # the reduction curves' points are in the results file, not only in the figure
    assert result.get("σ/E at 2.5 GeV, 50% of pixels dropped", "random").unit == "%"
    assert any("Goal" in n for n in result.notes)
    for fig in result.figures:
        assert (tmp_path / fig).is_file()
    assert (tmp_path / "pattern_loupe_34.npy").is_file()
    assert len(result.provenance.datasets) == 3
    assert any("LOUPE slope chosen on validation" in n for n in result.notes)
    # sampling calorimeter physics: the layer-sum stochastic term agrees with the SiD design
    # within 3 fit errors, and a linear calibration of it is linear within 4 standard errors
    # of the mean response at the worst-resolved (lowest) test energy
    stoch = result.get("stochastic term a (σ/E = a/√E ⊕ b)", "layer sum + linear")
    assert abs(stoch.value - stoch.reference.value) < 3 * stoch.std
    linear = result.get("linearity: max |<E_pred/E> − 1| over test energies",
                        "layer sum + linear")
    e_low, n_test = min(overrides["test_energies"]), overrides["n_test_per_energy"]
    assert linear.value < 4 * stoch.value / np.sqrt(e_low) / np.sqrt(n_test)
    tuned = result.get("t_max at 5 GeV", "fast sim, tuned").value  # tuned at 1, 2.5, 8 GeV
    assert abs(tuned - result.get("t_max at 5 GeV", "full sim").value) < 1.0
    assert (tmp_path / "fastsim_tuned.json").is_file()
    assert any("compared at 5 GeV, an energy not used in the tuning" in n for n in result.notes)
    assert any("different quantity" in m.reference.source for m in sigma.values())


def test_autoencoder_upper_bound_regresses_energy() -> None:
    """Shower-like images (fixed profile × energy, 10% pixel noise): a 4-number code of the
    40 pixels must still predict the energy far better than a constant."""
    from hepchain.daq.autoencoder import autoencoder_calibration

    g = torch.Generator().manual_seed(0)
    energy = 1.0 + 4.0 * torch.rand(900, generator=g)
    profile = torch.softmax(torch.randn(40, generator=g), dim=0).reshape(1, 5, 8)
    noise = 1.0 + 0.1 * torch.randn(900, 1, 5, 8, generator=g)
    x = energy[:, None, None, None] * profile * noise
    cfg = {"epochs": 15, "batch_size": 64, "lr": 0.003, "progress": False}
    pred = autoencoder_calibration((x[:600], energy[:600]), (x[600:800], energy[600:800]),
                                   x[800:], latent=4, hidden=[16], train_cfg=cfg, seed=0)
    rel = (pred - energy[800:].numpy()) / energy[800:].numpy()
    constant = np.std(energy[800:].numpy()) / float(energy[800:].mean())
    assert pred.shape == (100,) and np.std(rel) < 0.5 * constant


def test_calibration_weights_start_from_the_seed() -> None:
    """Models are built after seeding: the same seed gives the same fit whatever the global
    RNG state was before, another seed another one."""
    from hepchain.reco.calibration.models import MLPRegressor
    from hepchain.reco.calibration.train import fit_regressor, predict

    g = torch.Generator().manual_seed(0)
    x = torch.rand(200, 1, 3, 4, generator=g)
    energy = 1.0 + x.flatten(1).sum(dim=1)
    cfg = {"epochs": 2, "batch_size": 50, "progress": False}

    def fit(seed: int) -> np.ndarray:
        torch.rand(17)  # move the global RNG
        trainer = fit_regressor(lambda: MLPRegressor(12, [8]), (x[:150], energy[:150]),
                                (x[150:], energy[150:]), cfg, seed)
        return predict(trainer, x[150:])

    first = fit(3)
    assert np.array_equal(first, fit(3))
    assert not np.array_equal(first, fit(4))
