"""Metrics checked against scikit-learn/scipy or analytic cases."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from hepchain.core import metrics


@pytest.fixture
def scored():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 4000)
    s = np.round(rng.normal(1.2 * y, 1.0), 1)  # rounding creates ties
    return y, s


def test_roc_auc_matches_sklearn_with_ties_and_weights(scored):
    y, s = scored
    w = np.random.default_rng(2).uniform(0.5, 2.0, y.size)
    assert metrics.roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
    assert metrics.roc_auc(y, s, w) == pytest.approx(skm.roc_auc_score(y, s, sample_weight=w),
                                                     abs=1e-12)
    fpr, tpr, _ = metrics.roc_curve(y, s)
    sk_fpr, sk_tpr, _ = skm.roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)


def test_bootstrap_aucs_are_weighted_aucs_of_common_resamplings(scored):
    y, s = scored
    other = s + np.random.default_rng(3).normal(0, 0.5, s.size)
    reps = metrics.bootstrap_aucs(y, [s, other], n_boot=50, seed=4)
    n = y.size  # replica 0 re-drawn by hand: the weighted AUC of roc_auc, for both scores
    w0 = np.random.default_rng(4).multinomial(n, np.full(n, 1 / n), 50)[0]
    assert reps[0, 0] == pytest.approx(metrics.roc_auc(y, s, w0), abs=1e-12)
    assert reps[0, 1] == pytest.approx(metrics.roc_auc(y, other, w0), abs=1e-12)
    assert reps.shape == (50, 2)
    assert reps[:, 0].mean() == pytest.approx(metrics.roc_auc(y, s), abs=0.01)
    assert np.all(metrics.bootstrap_aucs(y, [s, s], n_boot=20)[:, 1]
                  == metrics.bootstrap_aucs(y, [s, s], n_boot=20)[:, 0])  # same resamplings


def test_bootstrap_aucs_in_small_batches_are_the_same_numbers_in_less_memory():
    import tracemalloc

    rng = np.random.default_rng(6)
    y = rng.random(10_000) < 0.3
    scores, jet = [rng.normal(y * 1.0, 1.0), rng.normal(y * 0.5, 1.0)], np.arange(y.size) // 4

    def run(max_bytes: int) -> tuple[np.ndarray, int]:
        tracemalloc.start()
        reps = metrics.bootstrap_aucs(y, scores, groups=jet, n_boot=100, max_bytes=max_bytes)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return reps, peak

    whole, whole_peak = run(2**40)  # every resampling at once (before: always)
    batched, batched_peak = run(4 * 2**20)  # five at a time
    assert np.array_equal(whole, batched) and whole.shape == (100, 2)
    assert batched_peak < whole_peak / 5
    for max_bytes in (1, 3 * 800_000):  # two or three at a time (a batch of one would differ)
        assert np.array_equal(whole, run(max_bytes)[0])


def test_bootstrap_auc_error_is_the_hanley_mcneil_error_and_the_paired_one_smaller():
    rng = np.random.default_rng(5)
    y = rng.random(4000) < 0.3
    s = rng.normal(y * 1.0, 1.0)
    other = s + rng.normal(0, 0.3, s.size)  # a correlated second score
    reps = metrics.bootstrap_aucs(y, [s, other], n_boot=400)
    auc, n1, n0 = metrics.roc_auc(y, s), y.sum(), (~y).sum()
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)  # Hanley & McNeil (1982)
    analytic = np.sqrt((auc * (1 - auc) + (n1 - 1) * (q1 - auc**2) + (n0 - 1) * (q2 - auc**2))
                       / (n1 * n0))
    assert reps[:, 0].std(ddof=1) == pytest.approx(analytic, rel=0.15)
    paired = np.std(reps[:, 0] - reps[:, 1], ddof=1)
    assert paired < 0.5 * np.hypot(reps[:, 0].std(ddof=1), reps[:, 1].std(ddof=1))


def test_bootstrap_aucs_resample_groups_as_units(scored):
    y, s = scored
    twice = metrics.bootstrap_aucs(np.repeat(y, 2), [np.repeat(s, 2)],
                                   groups=np.repeat(np.arange(y.size), 2), n_boot=400)
    once = metrics.bootstrap_aucs(y, [s], n_boot=400)
    np.testing.assert_allclose(twice, once, atol=1e-12)  # a group is drawn whole: same AUCs
    loose = metrics.bootstrap_aucs(np.repeat(y, 2), [np.repeat(s, 2)], n_boot=400)
    # copies taken as independent: the error shrinks by 1/sqrt(2) (each std known to 3.5 %)
    assert loose.std() < 0.85 * once.std()


def test_roc_needs_both_classes():
    with pytest.raises(ValueError, match="both signal"):
        metrics.roc_curve(np.ones(5), np.arange(5))


def test_rejection_counts_and_binomial_error():
    rng = np.random.default_rng(3)
    y = np.r_[np.ones(10_000), np.zeros(20_000)].astype(int)
    s = np.r_[rng.normal(2, 1, 10_000), rng.normal(0, 1, 20_000)]
    rej = metrics.rejection_at_efficiency(y, s, 0.7)
    # independent count: threshold keeps 70% of signal
    assert (s[y == 1] >= rej.threshold).mean() == pytest.approx(0.7, abs=1e-4)
    eps_b = (s[y == 0] >= rej.threshold).mean()
    assert rej.rejection == pytest.approx(1 / eps_b)
    assert rej.error == pytest.approx(np.sqrt(eps_b * (1 - eps_b) / 20_000) / eps_b**2)
    # analytic: threshold = 2 + Φ^-1(0.3), ε_B = 1 − Φ(threshold)
    from scipy import stats

    t = 2 + stats.norm.ppf(0.3)
    assert rej.rejection == pytest.approx(1 / stats.norm.sf(t), rel=4 * rej.error / rej.rejection)


def test_rejection_is_a_clopper_pearson_lower_limit_when_no_background_passes():
    from scipy import stats

    y = np.r_[np.ones(10), np.zeros(40)]
    s = np.r_[np.arange(10) + 100.0, np.arange(40)]  # every background scores below the cut
    rej = metrics.rejection_at_efficiency(y, s, 0.5)
    # one-sided 68 % Clopper-Pearson upper limit on eps_B for 0 of 40: Beta(1, 40) quantile
    eps_up = stats.beta.ppf(0.68, 1, 40)
    assert rej.is_lower_limit and np.isnan(rej.error)
    assert rej.rejection == pytest.approx(1 / eps_up, rel=1e-12)
    assert pytest.approx(1 - (1 - 1 / rej.rejection) ** 40) == 0.68  # P(0 pass | eps_up) = 32 %
    one_passes = metrics.rejection_at_efficiency(y, np.r_[s[:10], 150.0, s[11:]], 0.5)
    assert not one_passes.is_lower_limit and one_passes.rejection == pytest.approx(40.0)
    assert rej.rejection < one_passes.rejection  # the limit is weaker than one passing event


def test_sic_definition_and_min_background(scored):
    y, s = scored
    _, sic = metrics.sic_curve(y, s, min_background=1)
    fpr, tpr_full, _ = metrics.roc_curve(y, s)
    keep = fpr > 0
    np.testing.assert_allclose(sic, tpr_full[keep] / np.sqrt(fpr[keep]))
    n_bkg = (y == 0).sum()
    tpr20, _ = metrics.sic_curve(y, s, min_background=200)
    assert tpr20.min() >= tpr_full[fpr * n_bkg >= 200].min()
    assert metrics.max_sic(y, s, 1) >= metrics.max_sic(y, s, 200)


def test_confusion_matrix_matches_sklearn():
    rng = np.random.default_rng(4)
    t, p = rng.integers(0, 4, 500), rng.integers(0, 4, 500)
    np.testing.assert_array_equal(metrics.confusion_matrix(t, p, 4), skm.confusion_matrix(t, p))
    np.testing.assert_allclose(metrics.confusion_matrix(t, p, 4, normalize=True),
                               skm.confusion_matrix(t, p, normalize="true"))


def test_l1_l2_match_sklearn():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=100), rng.normal(size=100)
    assert metrics.l1(a, b) == pytest.approx(skm.mean_absolute_error(b, a))
    assert metrics.l2(a, b) == pytest.approx(np.sqrt(skm.mean_squared_error(b, a)))


def test_gaussian_core_fit_recovers_core_under_tails():
    rng = np.random.default_rng(6)
    core = rng.normal(0.02, 0.15, 50_000)
    tails = rng.normal(-0.3, 0.8, 5_000)  # 10% non-Gaussian tail, as leakage would give
    fit = metrics.gaussian_core_fit(np.r_[core, tails])
    assert fit.sigma == pytest.approx(0.15, abs=max(4 * fit.sigma_error, 0.006))
    assert fit.mean == pytest.approx(0.02, abs=max(4 * fit.mean_error, 0.004))
    plain_std = np.r_[core, tails].std()
    assert plain_std > 1.5 * fit.sigma  # the core fit is what removes the tails


def test_gaussian_core_fit_recovers_sigma_within_its_error_and_is_valid():
    fit = metrics.gaussian_core_fit(np.random.default_rng(11).normal(0.3, 0.7, 4000))
    assert fit.valid and np.isfinite(fit.sigma_error) and fit.sigma_error > 0
    assert abs(fit.sigma - 0.7) < 3 * fit.sigma_error
    assert abs(fit.mean - 0.3) < 3 * fit.mean_error


@pytest.mark.parametrize("values", [np.zeros(200), np.r_[np.full(100, 2.5), [2.5 + 1e-13] * 5]],
                         ids=["constant", "zero width"])
def test_gaussian_core_fit_flags_a_failed_fit(values):
    """A sample without width has no positive-definite Hessian: flagged, errors NaN."""
    fit = metrics.gaussian_core_fit(values)
    assert not fit.valid
    assert np.isnan(fit.mean_error) and np.isnan(fit.sigma_error)


def test_covariance_errors_refuse_a_saddle_point():
    """An indefinite Hessian (saddle) has no covariance; sqrt(abs(cov)) used to hide it."""
    assert metrics._covariance_errors(lambda p: p[0] ** 2 - p[1] ** 2, np.ones(2)) is None
    errors = metrics._covariance_errors(lambda p: p[0] ** 2 + p[1] ** 2 / 4, np.ones(2))
    assert errors == pytest.approx((np.sqrt(0.5), np.sqrt(2.0)), rel=1e-4)  # NLL = χ²/2


def test_gaussian_core_fit_errors_match_toy_spread():
    rng = np.random.default_rng(7)
    fits = [metrics.gaussian_core_fit(rng.normal(0, 1, 2000)) for _ in range(40)]
    spread = np.std([f.sigma for f in fits], ddof=1)
    mean_err = np.mean([f.sigma_error for f in fits])
    assert 0.6 < spread / mean_err < 1.6


def test_fit_resolution_recovers_known_terms():
    e = np.array([1.0, 2.5, 5.0, 10.0, 20.0, 50.0])
    truth = metrics.resolution_function(e, 0.17, 0.01, 0.05)
    fit = metrics.fit_resolution(e, truth, 0.01 * truth)
    assert (fit.a, fit.b, fit.c) == pytest.approx((0.17, 0.01, 0.05), abs=2e-3)
    failed = np.r_[0.01 * truth[:-1], np.nan]  # the last point's core fit failed
    garbage = np.r_[truth[:-1], 5.0]  # its σ/E would pull the fit far off
    kept = metrics.fit_resolution(e, garbage, failed)
    assert (kept.a, kept.b, kept.c) == pytest.approx((0.17, 0.01, 0.05), abs=2e-3)
    fit2 = metrics.fit_resolution(e, metrics.resolution_function(e, 0.2, 0.02), 0.01 * truth,
                                  noise_term=False)
    assert (fit2.a, fit2.b, fit2.c) == pytest.approx((0.2, 0.02, 0.0), abs=1e-4)


def test_bootstrap_error_matches_analytic_cases():
    # the mean of n normal values: sigma / sqrt(n)
    x = np.random.default_rng(3).normal(0, 2.0, 400)
    assert metrics.bootstrap_error(x, np.mean) == pytest.approx(x.std() / 20, rel=0.1)
    # the median of (2, 30, 30) is 2 when two of three draws are the 2: p = 7/27
    p = 7 / 27
    assert metrics.bootstrap_error([2, 30, 30]) == pytest.approx(28 * np.sqrt(p * (1 - p)),
                                                                  rel=0.1)
    assert metrics.bootstrap_error([5, 5, 5]) == 0
    assert np.isnan(metrics.bootstrap_error([5]))
    assert metrics.bootstrap_error(x) == metrics.bootstrap_error(x)  # seeded
    # rows resampled as units: identical columns carry no extra information
    assert metrics.bootstrap_error(np.c_[x, x, x], np.mean) == pytest.approx(
        metrics.bootstrap_error(x, np.mean), rel=1e-9)
