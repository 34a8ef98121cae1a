"""The one metrics module: classification, rejection, SIC, energy resolution, regression.

Conventions: ``y_true`` is 1 for signal and 0 for background; scores are "higher = more
signal-like"; efficiencies are fractions in [0, 1]; energies are in GeV.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import optimize, special, stats

# ---------------------------------------------------------------------------- classification


def roc_curve(y_true: ArrayLike, score: ArrayLike,
              weights: ArrayLike | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False- and true-positive rates for every distinct threshold, from the highest score down.

    Returns ``(fpr, tpr, thresholds)`` starting at (0, 0) like scikit-learn's ``roc_curve``
    with ``drop_intermediate=False``.
    """
    y = np.asarray(y_true).astype(bool)
    s = np.asarray(score, dtype=float)
    w = np.ones_like(s) if weights is None else np.asarray(weights, dtype=float)
    if y.all() or not y.any():
        raise ValueError("roc_curve needs both signal (1) and background (0) entries.")
    return _roc_rates(y, s, w)


def _roc_rates(y: np.ndarray, s: np.ndarray, w: np.ndarray, order: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`roc_curve` of boolean ``y`` and float ``s`` for weights ``w`` of shape (n,) or
    (k, n): one sort serves every row of weights (NaN rates for a row without one class);
    ``order``: ``s``'s descending stable argsort, if already known."""
    if order is None:
        order = np.argsort(-s, kind="mergesort")
    s, y, w = s[order], y[order], w[..., order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]
    tp = np.cumsum(w * y, axis=-1)[..., last_of_tie]
    fp = np.cumsum(w * ~y, axis=-1)[..., last_of_tie]
    zero = np.zeros((*w.shape[:-1], 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        tpr = np.concatenate([zero, tp / tp[..., -1:]], axis=-1)
        fpr = np.concatenate([zero, fp / fp[..., -1:]], axis=-1)
    return fpr, tpr, np.r_[np.inf, s[last_of_tie]]


def roc_auc(y_true: ArrayLike, score: ArrayLike, weights: ArrayLike | None = None) -> float:
    """Area under the ROC curve (trapezoidal, ties handled as in scikit-learn)."""
    fpr, tpr, _ = roc_curve(y_true, score, weights)
    return float(np.trapezoid(tpr, fpr))


def bootstrap_aucs(y_true: ArrayLike, scores: list[ArrayLike], groups: ArrayLike | None = None,
                   n_boot: int = 200, seed: int = 0, max_bytes: int = 2**30) -> np.ndarray:
    """ROC AUCs of several ``scores`` of the same samples on ``n_boot`` common resamplings,
    shape (n_boot, len(scores)). The ``groups`` (e.g. the jet of each track; default: each
    sample its own) are drawn with replacement, so the samples of a group move together
    (a cluster bootstrap) and every score sees the same resampling. The standard deviation of
    a column is that AUC's statistical error, that of a difference of two columns the paired
    error of the AUC difference (smaller than the two errors in quadrature when the scores
    are correlated). Seeded; resamplings without both classes are dropped. The resamplings
    are evaluated a few at a time so that their working arrays stay within about twice
    ``max_bytes`` (≈ 80 bytes per sample and resampling; the result does not depend on it)::

        reps = bootstrap_aucs(is_b, [score_a, score_b], groups=jet_of_track)
        error = np.std(reps[:, 0] - reps[:, 1], ddof=1)
    """
    y = np.asarray(y_true).astype(bool)
    group = (np.arange(y.size) if groups is None
             else np.unique(np.asarray(groups), return_inverse=True)[1])
    n_groups = int(group.max()) + 1
    draws = np.random.default_rng(seed).multinomial(n_groups, np.full(n_groups, 1 / n_groups),
                                                    n_boot)
    # batches of >= 2 resamplings: numpy sums a single row in another order (1e-14 apart)
    rows = max(2, max_bytes // (80 * max(y.size, 1)))
    sorted_scores = [(s, np.argsort(-s, kind="mergesort"))
                     for s in (np.asarray(score, dtype=float) for score in scores)]
    out = np.empty((n_boot, len(scores)))
    for batch in np.array_split(np.arange(n_boot), max(1, n_boot // rows)):
        # (batch, samples): times drawn, integer so that the sums are exact
        weights = draws[batch][:, group].astype(np.int32)
        for k, (s, order) in enumerate(sorted_scores):
            fpr, tpr, _ = _roc_rates(y, s, weights, order)
            out[batch, k] = np.trapezoid(tpr, fpr, axis=-1)
    return out[np.isfinite(out).all(axis=1)]


REJECTION_LIMIT_CL = 0.68
"""Confidence level of the one-sided Clopper–Pearson limit used when no background passes."""


@dataclass(frozen=True)
class Rejection:
    """Background rejection 1/ε_B at a signal efficiency, with its binomial uncertainty.

    With ``is_lower_limit`` the rejection is a one-sided lower limit (``error`` is NaN): no
    background event passed the cut, see :func:`rejection_at_efficiency`.
    """

    efficiency: float
    rejection: float
    error: float
    threshold: float
    n_background: int
    is_lower_limit: bool = False


def rejection_at_efficiency(y_true: ArrayLike, score: ArrayLike, efficiency: float) -> Rejection:
    """Cut on ``score`` keeping ``efficiency`` of the signal; return 1/ε_B ± binomial error.

    The threshold is the signal-score quantile; ε_B counts background with score ≥ threshold.
    σ(ε_B) = sqrt(ε_B (1 − ε_B) / N_B) and σ(1/ε_B) = σ(ε_B)/ε_B². With no background passing,
    the result is a lower limit (``is_lower_limit``, NaN error): 1/ε_up, where ε_up is the
    one-sided Clopper–Pearson upper limit on ε_B at ``REJECTION_LIMIT_CL`` = 68 % confidence
    for 0 passing out of N_B, ε_up = 1 − (1 − 0.68)^(1/N_B) (the 68 % quantile of Beta(1, N_B)).
    """
    if not 0.0 < efficiency <= 1.0:
        raise ValueError(f"efficiency must be in (0, 1], got {efficiency}.")
    y = np.asarray(y_true).astype(bool)
    s = np.asarray(score, dtype=float)
    sig, bkg = s[y], s[~y]
    threshold = float(np.quantile(sig, 1.0 - efficiency, method="inverted_cdf"))
    return rejection_from_counts(int((bkg >= threshold).sum()), bkg.size, efficiency, threshold)


def rejection_from_counts(n_pass: int, n_background: int, efficiency: float,
                          threshold: float) -> Rejection:
    """1/ε_B ± binomial error from ``n_pass`` of ``n_background`` events passing a cut, or the
    68 % CL lower limit when none passes (see :func:`rejection_at_efficiency`)."""
    if n_pass == 0:
        eps_up = -np.expm1(np.log1p(-REJECTION_LIMIT_CL) / n_background)
        return Rejection(efficiency, float(1.0 / eps_up), float("nan"), threshold,
                         n_background, is_lower_limit=True)
    eps_b = n_pass / n_background
    err_eps = np.sqrt(eps_b * (1.0 - eps_b) / n_background)
    return Rejection(efficiency, 1.0 / eps_b, float(err_eps / eps_b**2), threshold,
                     n_background)


def rejection_curve(y_true: ArrayLike, score: ArrayLike,
                    efficiencies: ArrayLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Signal efficiencies and the background rejection 1/ε_B at each (for plots)."""
    eff = np.linspace(0.3, 1.0, 71) if efficiencies is None else np.asarray(efficiencies)
    fpr, tpr, _ = roc_curve(y_true, score)
    eps_b = np.interp(eff, tpr, fpr)
    with np.errstate(divide="ignore"):
        return eff, 1.0 / eps_b


def sic_curve(y_true: ArrayLike, score: ArrayLike,
              min_background: int = 25) -> tuple[np.ndarray, np.ndarray]:
    """Significance improvement ε_S/√ε_B versus ε_S.

    Points where fewer than ``min_background`` background events pass (relative statistical
    error on ε_B above 1/√min_background = 20%) are dropped, as in the LHC Olympics papers.
    """
    y = np.asarray(y_true).astype(bool)
    fpr, tpr, _ = roc_curve(y, score)
    n_bkg = (~y).sum()
    keep = fpr * n_bkg >= min_background
    return tpr[keep], tpr[keep] / np.sqrt(fpr[keep])


def max_sic(y_true: ArrayLike, score: ArrayLike, min_background: int = 25) -> float:
    """Maximum of the SIC curve (see :func:`sic_curve`)."""
    _, sic = sic_curve(y_true, score, min_background)
    return float(sic.max()) if sic.size else float("nan")


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int | None = None,
                     normalize: bool = False) -> np.ndarray:
    """Counts C[i, j] of true class i predicted as j; rows sum to 1 if ``normalize``."""
    t = np.asarray(y_true, dtype=int)
    p = np.asarray(y_pred, dtype=int)
    k = n_classes or int(max(t.max(), p.max()) + 1)
    cm = np.bincount(t * k + p, minlength=k * k).reshape(k, k).astype(float)
    if normalize:
        rows = cm.sum(axis=1, keepdims=True)
        cm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    return cm


# ---------------------------------------------------------------------------- regression


def l1(pred: ArrayLike, true: ArrayLike) -> float:
    """Mean absolute error."""
    return float(np.mean(np.abs(np.asarray(pred, float) - np.asarray(true, float))))


def l2(pred: ArrayLike, true: ArrayLike) -> float:
    """Root-mean-square error."""
    return float(np.sqrt(np.mean((np.asarray(pred, float) - np.asarray(true, float)) ** 2)))


# ---------------------------------------------------------------------------- energy resolution


@dataclass(frozen=True)
class GaussianCore:
    """Mean and width of the Gaussian core of a distribution, with statistical errors.

    ``valid`` is False when the fit failed: the minimiser did not converge or the Hessian of
    the likelihood at the minimum is not positive definite. The errors are then NaN and
    ``mean`` / ``sigma`` are the last iterate, not a measurement.
    """

    mean: float
    sigma: float
    mean_error: float
    sigma_error: float
    n_core: int
    valid: bool = True


def gaussian_core_fit(x: ArrayLike, n_sigma: float = 2.0, max_iter: int = 20,
                      tol: float = 1e-4) -> GaussianCore:
    """Fit the Gaussian core of ``x`` iteratively within ±``n_sigma`` σ.

    Each iteration fits a normal distribution truncated to [μ − nσ, μ + nσ] by maximum
    likelihood to the values inside the window, then moves the window. Starts from the median
    and the IQR-based width. Errors come from the inverse Hessian of the truncated likelihood;
    a failed fit (minimiser failure, or a Hessian that is not positive definite) is returned
    with ``valid=False`` and NaN errors. Used for the resolution of (E_pred − E)/E.
    """
    v = np.asarray(x, dtype=float)
    v = v[np.isfinite(v)]
    if v.size < 10:
        raise ValueError(f"gaussian_core_fit needs at least 10 finite values, got {v.size}.")
    mu = float(np.median(v))
    sigma = float(stats.iqr(v) / 1.349) or float(v.std()) or 1e-12
    core = v
    minimised = True
    for _ in range(max_iter):
        lo, hi = mu - n_sigma * sigma, mu + n_sigma * sigma
        core = v[(v >= lo) & (v <= hi)]

        def nll(p: np.ndarray, core=core, lo=lo, hi=hi) -> float:
            # truncated-normal NLL; scipy.special instead of stats.norm: same math, several times faster
            m, log_s = p
            s = np.exp(log_s)
            norm = special.ndtr((hi - m) / s) - special.ndtr((lo - m) / s)
            logpdf = -0.5 * ((core - m) / s) ** 2 - log_s - 0.5 * np.log(2 * np.pi)
            return -(logpdf.sum() - core.size * np.log(max(norm, 1e-300)))

        res = optimize.minimize(nll, x0=[mu, np.log(sigma)], method="Nelder-Mead",
                                options={"xatol": 1e-8, "fatol": 1e-10, "maxiter": 2000})
        minimised = bool(res.success) and bool(np.all(np.isfinite(res.x)))
        new_mu, new_sigma = float(res.x[0]), float(np.exp(res.x[1]))
        converged = abs(new_mu - mu) < tol * sigma and abs(new_sigma - sigma) < tol * sigma
        mu, sigma = new_mu, new_sigma
        if converged or not minimised:
            break
    errors = _covariance_errors(
        lambda p: nll(np.array([p[0], np.log(p[1])])), np.array([mu, sigma])
    ) if minimised and sigma > 0 else None
    if errors is None:
        return GaussianCore(mu, sigma, float("nan"), float("nan"), int(core.size), valid=False)
    return GaussianCore(mu, sigma, errors[0], errors[1], int(core.size))


def _covariance_errors(nll, p: np.ndarray) -> tuple[float, float] | None:
    """√diag of the inverse Hessian of ``nll`` at ``p``; None unless it is positive definite."""
    with np.errstate(invalid="ignore", divide="ignore"):  # steps beyond σ > 0 give NaN
        hess = _numeric_hessian(nll, p)
    if not np.all(np.isfinite(hess)):
        return None
    try:
        np.linalg.cholesky(hess)  # positive definite Hessian <=> positive definite covariance
    except np.linalg.LinAlgError:
        return None
    cov = np.linalg.inv(hess)
    return float(np.sqrt(cov[0, 0])), float(np.sqrt(cov[1, 1]))


def _numeric_hessian(f, p: np.ndarray, rel: float = 1e-3) -> np.ndarray:
    h = np.maximum(np.abs(p) * rel, 1e-6)
    n = p.size
    hess = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            ei, ej = np.eye(n)[i] * h[i], np.eye(n)[j] * h[j]
            hess[i, j] = (f(p + ei + ej) - f(p + ei - ej) - f(p - ei + ej) + f(p - ei - ej)) / (
                4 * h[i] * h[j])
    return hess


@dataclass(frozen=True)
class ResolutionFit:
    """σ/E = a/√E ⊕ b ⊕ c/E (E in GeV; a in √GeV, b dimensionless, c in GeV)."""

    a: float
    b: float
    c: float
    a_error: float
    b_error: float
    c_error: float
    chi2_ndf: float

    def __call__(self, energy: ArrayLike) -> np.ndarray:
        return resolution_function(np.asarray(energy, dtype=float), self.a, self.b, self.c)


def resolution_function(energy: np.ndarray, a: float, b: float, c: float = 0.0) -> np.ndarray:
    """σ/E = sqrt((a/√E)² + b² + (c/E)²)."""
    return np.sqrt((a / np.sqrt(energy)) ** 2 + b**2 + (c / energy) ** 2)


def fit_resolution(energy: ArrayLike, rel_sigma: ArrayLike, rel_sigma_error: ArrayLike,
                   noise_term: bool = True) -> ResolutionFit:
    """Least-squares fit of σ/E(E) to a/√E ⊕ b ⊕ c/E (``noise_term=False`` fixes c = 0).

    Points whose σ/E or error is not finite (a failed :func:`gaussian_core_fit`) are left out.
    """
    e = np.asarray(energy, dtype=float)
    y = np.asarray(rel_sigma, dtype=float)
    err = np.asarray(rel_sigma_error, dtype=float)
    ok = np.isfinite(e) & np.isfinite(y) & np.isfinite(err)
    e, y, err = e[ok], y[ok], err[ok]
    if noise_term:
        f = resolution_function
        p0, lower = [0.15, 0.01, 0.01], [0.0, 0.0, 0.0]
    else:
        def f(en, a, b):
            return resolution_function(en, a, b, 0.0)
        p0, lower = [0.15, 0.01], [0.0, 0.0]
    if e.size < len(p0):
        raise ValueError(f"fit_resolution needs at least {len(p0)} energy points with a "
                         f"finite σ/E and error, got {e.size}.")
    popt, pcov = optimize.curve_fit(f, e, y, p0=p0, sigma=err, absolute_sigma=True,
                                    bounds=(lower, np.inf), maxfev=20000)
    perr = np.sqrt(np.clip(np.diag(pcov), 0, None))
    ndf = max(e.size - len(p0), 1)
    chi2 = float((((f(e, *popt) - y) / err) ** 2).sum() / ndf)
    c, c_err = (popt[2], perr[2]) if noise_term else (0.0, 0.0)
    return ResolutionFit(float(popt[0]), float(popt[1]), float(c), float(perr[0]),
                         float(perr[1]), float(c_err), chi2)


# ---------------------------------------------------------------------------- paired comparisons


@dataclass(frozen=True)
class PairedComparison:
    """A paired comparison of two methods over seeds (or other matched pairs).

    ``estimate`` is the mean difference, or for :func:`paired_ratio` the geometric-mean ratio;
    ``error`` its standard error (seed spread / √n, combined in quadrature with the
    statistical error common to all pairs when one is given); ``z`` = (estimate − null) /
    error; ``p_value`` two-sided from Student t with n − 1 degrees of freedom (with a common
    error too: the seed spread is still estimated from n pairs, and t(n − 1) is the
    conservative end between it and the normal).
    """

    estimate: float
    error: float
    n: int
    z: float
    p_value: float


def bootstrap_error(x: ArrayLike, statistic=np.median, n_boot: int = 1000,
                    seed: int = 0) -> float:
    """Statistical error of ``statistic`` of the sample ``x`` from its finite size: the
    standard deviation of the statistic over ``n_boot`` resamplings with replacement
    (seeded, so the same sample gives the same error). The rows of a 2-D ``x`` are resampled
    as units (a cluster bootstrap: e.g. one row per test state, one column per run on it)::

        bootstrap_error([3, 5, 9, 50, 7])  # error of the median
        bootstrap_error(steps_per_state_and_seed, np.mean)
    """
    x = np.asarray(x, dtype=float)
    if len(x) < 2:
        return float("nan")
    idx = np.random.default_rng(seed).integers(0, len(x), (n_boot, len(x)))
    return float(np.std(statistic(x[idx].reshape(n_boot, -1), axis=1), ddof=1))


def paired_difference(a: ArrayLike, b: ArrayLike, stat_error: ArrayLike | None = None,
                      null: float = 0.0) -> PairedComparison:
    """Mean of a_i − b_i over matched pairs i and its significance against ``null``.

    ``stat_error`` (per pair, optional) is the statistical error of a_i − b_i from the finite
    test set. When every pair is evaluated on the *same* test set that error does not average
    down over the pairs, so its mean square is added to the squared standard error of the
    mean. The p-value is Student t with n − 1 degrees of freedom either way (a normal would
    make adding the error *lower* p for a few seeds). Needs at least two pairs.
    """
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if d.size < 2 or not np.isfinite(d).all():
        raise ValueError("paired_difference needs at least two finite pairs.")
    var = d.var(ddof=1) / d.size
    if stat_error is not None:
        var += float(np.mean(np.asarray(stat_error, dtype=float) ** 2))
    err = float(np.sqrt(var))
    est = float(d.mean())
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.float64(est - null) / err
    p = 2 * stats.t(df=d.size - 1).sf(abs(z))
    return PairedComparison(est, err, int(d.size), float(z), float(p))


def paired_ratio(a: ArrayLike, b: ArrayLike, rel_stat_error: ArrayLike | None = None,
                 null: float = 1.0) -> PairedComparison:
    """Geometric-mean ratio exp(mean ln(a_i / b_i)) over matched pairs and its significance
    against the ratio ``null`` (e.g. 1, or a goal such as 1.8).

    Works on ln(a_i/b_i) with :func:`paired_difference`; ``rel_stat_error`` is the relative
    statistical error of each ratio a_i/b_i (the error of its logarithm). ``estimate`` and
    ``error`` are returned on the ratio scale (error by the delta method: ratio × σ_ln).
    """
    log_r = np.log(np.asarray(a, dtype=float) / np.asarray(b, dtype=float))
    res = paired_difference(log_r, np.zeros_like(log_r), rel_stat_error, np.log(null))
    ratio = float(np.exp(res.estimate))
    return PairedComparison(ratio, ratio * res.error, res.n, res.z, res.p_value)
