"""Two-sample metrics (core.twosample) and the Standardiser against cases with known answers.

Tolerances are stated per test as multiples of the statistical error at the sample size used
(measured spreads over 10 seeds are quoted where the function returns no error itself).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.linear_model import LogisticRegression

from hepchain.core import twosample as ts
from hepchain.core.errors import DataError
from hepchain.core.standardise import Standardiser


def _gauss(seed: int, n: int, d: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d))


def _logistic(x1: np.ndarray, x0: np.ndarray, seed: int) -> ts.Scorer:
    """Linear classifier: the Bayes-optimal family for equal-covariance Gaussians."""
    y = np.r_[np.ones(len(x1)), np.zeros(len(x0))]
    clf = LogisticRegression().fit(np.concatenate([x1, x0]), y)
    return clf.decision_function


# ------------------------------------------------------------------------- C2ST

def test_c2st_of_one_distribution_is_half_within_its_error():
    """2000 + 2000 held-out rows: AUC error ≈ 0.009; |AUC - 0.5| < 4 errors."""
    auc, err = ts.c2st(_gauss(1, 4000, 3), _gauss(2, 4000, 3), seed=0)
    assert err == pytest.approx(np.sqrt(4001 / (12 * 2000 * 2000)), rel=0.01)  # null width
    assert abs(auc - 0.5) < 4 * err


def test_c2st_of_shifted_gaussians_reaches_the_bayes_auc():
    """N(0, I) vs N(δ, I): the optimal score is the projection on δ, so the best AUC is
    Φ(|δ|/√2). A linear classifier reaches it within 4 errors (≈ 0.0075 each at 2000 + 2000
    held-out rows); the default trees may not exceed it by more than 3 errors."""
    delta = np.array([1.0, 0.0, 0.0])
    bayes = norm.cdf(np.linalg.norm(delta) / np.sqrt(2))
    real, gen = _gauss(3, 4000, 3), _gauss(4, 4000, 3) + delta
    auc, err = ts.c2st(real, gen, fit=_logistic, seed=0)
    assert abs(auc - bayes) < 4 * err
    trees, trees_err = ts.c2st(real, gen, seed=0)
    assert 0.7 < trees < bayes + 3 * trees_err


def test_c2st_is_deterministic_per_seed():
    real, gen = _gauss(5, 600, 2), _gauss(6, 600, 2) + 0.3
    assert ts.c2st(real, gen, seed=7) == ts.c2st(real, gen, seed=7)


# ------------------------------------------------------------------------- 1-D marginals

def test_w1_and_ks_of_shifted_gaussians_match_the_analytic_values():
    """N(0, 1) vs N(δ, 1): W1 = δ and KS = 2Φ(δ/2) - 1. At 20 000 rows each the measured spread
    over 10 seeds is 0.008 (W1) and 0.003 (KS); tolerances are 5 times that."""
    shift = 0.5
    a = _gauss(7, 20000, 1)
    b = _gauss(8, 20000, 1) + shift
    assert ts.wasserstein_1d(a, b)[0] == pytest.approx(shift, abs=0.04)
    assert ts.ks_statistic(a, b)[0] == pytest.approx(2 * norm.cdf(shift / 2) - 1, abs=0.016)


def test_marginal_metrics_are_per_feature():
    a = _gauss(9, 5000, 3)
    b = _gauss(10, 5000, 3) + np.array([0.0, 2.0, 0.0])
    w1 = ts.wasserstein_1d(a, b)
    assert w1.shape == (3,) and w1[1] > 10 * max(w1[0], w1[2])
    assert ts.ks_statistic(a, b).argmax() == 1


# ------------------------------------------------------------------------- k-NN manifolds

def test_prdc_of_a_sample_with_itself_is_exactly_one():
    """Each real k-NN ball holds its centre and k - 1 others strictly inside: density = 1."""
    x = _gauss(11, 500, 3)
    assert ts.prdc(x, x, k=5) == pytest.approx((1.0, 1.0, 1.0, 1.0))


def test_prdc_of_far_apart_samples_is_zero():
    assert ts.prdc(_gauss(12, 400, 3), _gauss(13, 400, 3) + 100.0) == (0.0, 0.0, 0.0, 0.0)


def test_density_and_coverage_of_one_distribution_match_naeem_et_al():
    """Independent samples of one distribution, N = M = 2000, k = 5: E[density] = 1 and
    E[coverage] = 1 - prod_i (N-1-i)/(N+M-1-i) ≈ 1 - 2^-k (Naeem et al. 2020). Spread over 10
    seeds: 0.009 (density), 0.006 (coverage); tolerances are 5 times that."""
    n, k = 2000, 5
    m = ts.prdc(_gauss(14, n, 2), _gauss(15, n, 2), k=k)
    expected = 1 - np.prod([(n - 1 - i) / (2 * n - 1 - i) for i in range(k)])
    assert m.density == pytest.approx(1.0, abs=0.045)
    assert m.coverage == pytest.approx(expected, abs=0.03)
    assert m.precision > 0.9 and m.recall > 0.9


def test_prdc_error_is_the_size_of_the_seed_to_seed_spread():
    """Over 12 pairs of independent 1000-row samples the error from 4 disjoint parts is
    0.7-2.1 times the measured spread of the full-size PRDC (it is conservative where PRDC's
    finite-size bias moves with the part size); without the 1/sqrt(parts) it would be 1.4-4.2."""
    values, errors = [], []
    for s in range(12):
        x, y = _gauss(100 + s, 1000, 3), _gauss(200 + s, 1000, 3)
        values.append(ts.prdc(x, y))
        errors.append(ts.prdc_error(x, y, k=5, splits=4, seed=s))
    ratio = np.mean(errors, axis=0) / np.std(values, axis=0, ddof=1)
    assert np.all((ratio > 0.5) & (ratio < 3.0)), ratio
    with pytest.raises(DataError, match="splits"):
        ts.prdc_error(x, y, splits=1)


def test_prdc_sees_a_mode_collapse_as_lost_recall_and_coverage():
    """Generated rows all in one of two real modes: precision stays high, recall and coverage
    drop to about the covered half."""
    rng = np.random.default_rng(16)
    real = np.concatenate([rng.normal(-5, 1, (1000, 2)), rng.normal(5, 1, (1000, 2))])
    gen = rng.normal(5, 1, (2000, 2))
    m = ts.prdc(real, gen, k=5)
    assert m.precision > 0.9
    assert 0.4 < m.recall < 0.55 and 0.4 < m.coverage < 0.55


# ------------------------------------------------------------------------- Fréchet / kernel

def test_frechet_distance_of_gaussians_is_analytic():
    """|δ|² for identity covariances; + Σ(1 - s_i)² for diagonal covariances diag(s²)."""
    delta = np.array([0.3, -1.2, 2.0])
    assert ts.frechet_distance(np.zeros(3), np.eye(3), delta, np.eye(3)) == pytest.approx(
        delta @ delta, rel=1e-10)
    s = np.array([0.5, 1.0, 2.0])
    assert ts.frechet_distance(np.zeros(3), np.eye(3), delta, np.diag(s ** 2)) == pytest.approx(
        delta @ delta + ((1 - s) ** 2).sum(), rel=1e-8)


def test_fpd_of_identical_samples_is_zero_within_its_error():
    x = _gauss(17, 20000, 4)
    value, err = ts.fpd(x, x, min_samples=2000, max_samples=10000)
    assert 0 <= value < 3 * err and err < 1e-3


def test_fpd_extrapolates_to_the_analytic_frechet_distance():
    """N(0, I) vs N(δ, diag(s²)), 20 000 rows each, not normalised: FPD = |δ|² + Σ(1 - s_i)²
    within 4 fit errors plus the sampling bias of the two finite samples (≈ 2d/n)."""
    s, delta = np.array([1.0, 1.0, 1.5, 0.5]), np.array([0.3, -0.2, 0.0, 0.0])
    real, gen = _gauss(18, 20000, 4), _gauss(19, 20000, 4) * s + delta
    value, err = ts.fpd(real, gen, min_samples=2000, max_samples=10000, normalise=False)
    assert value == pytest.approx(delta @ delta + ((1 - s) ** 2).sum(), abs=4 * err + 8 / 20000)


def test_kpd_is_zero_for_one_sample_and_resolves_a_shift():
    """KPD (unbiased MMD²) of a sample with itself is 0 within 3 errors; a visible
    difference is > 3 errors away from 0."""
    x = _gauss(20, 20000, 4)
    value, err = ts.kpd(x, x, batch_size=2000)
    assert abs(value) < 3 * err
    shifted, shifted_err = ts.kpd(x, _gauss(21, 20000, 4) * [1, 1, 1.5, 0.5] + [0.3, 0, 0, 0],
                                  batch_size=2000)
    assert shifted > 3 * shifted_err


def test_poly_mmd2_leaves_out_the_self_pairs():
    """Degree-1 kernel x·y + 1 in 1-D, by hand: the unbiased MMD² is
    Σ_{i≠j} x_i x_j / (m(m-1)) + Σ_{i≠j} y_i y_j / (n(n-1)) - 2 mean(x) mean(y)
    (the constant 1 cancels)."""
    x, y = np.array([[1.0], [2.0], [4.0]]), np.array([[0.0], [3.0]])
    expect = ((1 * 2 + 1 * 4 + 2 * 4) * 2 / 6 + 0 - 2 * (7 / 3) * 1.5)
    assert ts.poly_mmd2(x, y, degree=1) == pytest.approx(expect)


# ------------------------------------------------------------------------- errors

def test_mismatched_features_are_a_data_error():
    with pytest.raises(DataError, match="features"):
        ts.wasserstein_1d(np.zeros((5, 2)), np.zeros((5, 3)))


def test_nan_rows_are_a_data_error():
    bad = _gauss(22, 10, 2)
    bad[3, 1] = np.nan
    with pytest.raises(DataError, match="NaN"):
        ts.prdc(_gauss(23, 10, 2), bad, k=2)


# ------------------------------------------------------------------------- Standardiser

def test_standardiser_round_trip_and_constant_feature():
    rng = np.random.default_rng(24)
    x = np.column_stack([rng.normal(3.0, 2.0, 1000), np.full(1000, 7.0)])
    s = Standardiser.fit(x)
    z = s.transform(x)
    assert np.allclose(z[:, 0].mean(), 0) and np.allclose(z[:, 0].std(), 1)
    assert np.all(z[:, 1] == 0) and s.scale[1] == 1.0
    assert np.allclose(s.inverse_transform(z), x)
    restored = Standardiser.from_state_dict(s.state_dict())
    assert restored == s and restored != Standardiser.fit(x + 1)
    assert np.array_equal(restored.transform(x), z)


def test_standardiser_pools_leading_axes():
    x = np.arange(24, dtype=float).reshape(2, 3, 4)
    s = Standardiser.fit(x)
    assert np.allclose(s.mean, x.reshape(-1, 4).mean(0))
    assert s.transform(x).shape == x.shape


@pytest.mark.parametrize("x", [np.zeros((0, 3)), np.array([[1.0, np.inf]])])
def test_standardiser_refuses_empty_or_non_finite_input(x):
    with pytest.raises(DataError):
        Standardiser.fit(x)


def test_one_vs_rest_auc_matches_sklearn_and_combines_errors():
    from sklearn.metrics import roc_auc_score

    from hepchain.core.twosample import auc_error, one_vs_rest_auc

    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 600)
    logits = rng.normal(size=(600, 3)) + 1.5 * np.eye(3)[y] * np.array([0.5, 1.0, 2.0])
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    per_class, (macro, err) = one_vs_rest_auc(y, probs)
    assert macro == pytest.approx(roc_auc_score(y, probs, multi_class="ovr"), abs=1e-12)
    assert per_class[0].value < per_class[1].value < per_class[2].value  # separations ordered
    errs = [auc_error(a, int((y == k).sum()), int((y != k).sum()))
            for k, (a, _) in enumerate(per_class)]
    assert err == pytest.approx(np.sqrt(np.sum(np.square(errs))) / 3)
