"""A simple bump hunt: fit the m_jj spectrum in the side bands, count the excess in the SR.

The background shape is the standard dijet function
``f(m) = p0 (1 − x)^p1 / x^(p2 + p3 ln x)`` with ``x = m / √s`` (√s = 13 TeV; the
four-parameter form follows the trigger turn-on better), fitted by a binned Poisson
likelihood to the side-band bins only and integrated over the signal region. The significance
of the observed count n against the prediction b is the Poisson likelihood-ratio
``Z = sign(n − b) √(2 (n ln(n/b) − n + b))`` (no uncertainty on b; an optimistic simplification
stated in the docs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize

from hepchain.analysis.regions import Window

SQRT_S = 13.0  # TeV


@dataclass(frozen=True)
class BumpFit:
    observed: int
    expected: float
    significance: float
    params: tuple[float, ...]


def dijet_function(m: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Events per TeV at m_jj = ``m`` [TeV] for parameters (log p0, p1, p2, p3)."""
    x = m / SQRT_S
    return np.exp(p[0]) * (1 - x) ** p[1] / x ** (p[2] + p[3] * np.log(x))


def poisson_z(n: float, b: float) -> float:
    """Signed Poisson likelihood-ratio significance of n observed over b expected."""
    if b <= 0:
        return float("nan")
    term = (n * np.log(n / b) if n > 0 else 0.0) - n + b
    return float(np.sign(n - b) * np.sqrt(max(2 * term, 0.0)))


def fit_bump(mjj: np.ndarray, window: Window, bin_width: float = 0.1,
             min_sideband_events: int = 50) -> BumpFit:
    """Fit the side bands of ``mjj`` [TeV] and compare the SR count to the interpolation.

    With fewer than ``min_sideband_events`` side-band events the four-parameter fit is not
    constrained; expected and significance are then NaN (reported as n/a).
    """
    edges = np.arange(window.lo, window.hi + 1e-9, bin_width)
    counts, _ = np.histogram(mjj, edges)
    centres = 0.5 * (edges[1:] + edges[:-1])
    sb = (edges[1:] <= window.sr_lo + 1e-9) | (edges[:-1] >= window.sr_hi - 1e-9)
    observed = int(window.in_sr(mjj).sum())
    if counts[sb].sum() < min_sideband_events:
        return BumpFit(observed, float("nan"), float("nan"), ())

    def nll(p: np.ndarray) -> float:
        with np.errstate(all="ignore"):  # the simplex may probe overflowing parameters
            mu = np.clip(dijet_function(centres[sb], p) * bin_width, 1e-12, None)
            value = float((mu - counts[sb] * np.log(mu)).sum())
        return value if np.isfinite(value) else 1e300

    p1, p2 = 10.0, 5.0
    shape = dijet_function(centres[sb], np.array([0.0, p1, p2, 0.0])) * bin_width
    p0 = np.log(max(counts[sb].sum(), 1) / shape.sum())
    res = optimize.minimize(nll, x0=[p0, p1, p2, 0.0], method="Nelder-Mead",
                            options={"maxiter": 8000, "xatol": 1e-6, "fatol": 1e-8})
    if not res.success:
        return BumpFit(observed, float("nan"), float("nan"), tuple(map(float, res.x)))
    fine = np.linspace(window.sr_lo, window.sr_hi, 201)
    expected = float(np.trapezoid(dijet_function(fine, res.x), fine))
    return BumpFit(observed, expected, poisson_z(observed, expected), tuple(map(float, res.x)))
