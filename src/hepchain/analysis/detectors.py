"""The resonant anomaly detectors: ANODE, CATHODE, CWoLa hunting, idealised AD, supervised.

All work on feature matrices ``x`` (N, d) and dijet masses ``m`` (N,) in TeV and return a
trained scorer ``score(x, m) -> (N,)`` (higher = more signal-like).

- ANODE (Nachman & Shih 2020): R(x|m) = p_SR(x|m) / p_SB(x|m), with p_SB a conditional flow
  trained on side-band data and interpolated into the SR, p_SR one trained on SR data.
  Outside the SR the flows are evaluated at m clipped to the SR edges.
- CATHODE (Hallin et al. 2022): sample the side-band flow in the SR at m drawn from a KDE of
  the SR data's m_jj, then train a classifier SR data vs samples.
- CWoLa hunting: classifier SR data vs neighbouring side-band data.
- Idealised AD: classifier SR data vs a perfect background template (simulated SR QCD).
- Supervised: classifier signal vs background with truth labels (upper bound).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.stats import gaussian_kde

from hepchain.analysis import classifier, flows
from hepchain.analysis.regions import Window
from hepchain.core.trainer import History

Scorer = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass
class FlowFit:
    """A trained conditional flow with its training history."""

    model: flows.ConditionalFlow
    history: History
    seconds: float = 0.0


def train_val(n: int, rng: np.random.Generator, val_fraction: float = 0.2
              ) -> tuple[np.ndarray, np.ndarray]:
    perm = rng.permutation(n)
    n_val = max(1, round(val_fraction * n))
    return perm[n_val:], perm[:n_val]


def fit_density(x: np.ndarray, m: np.ndarray, flow_cfg: dict[str, Any],
                train_cfg: dict[str, Any], seed: int) -> FlowFit:
    """Conditional flow p(x | m) on (x, m), 80/20 train/validation with early stopping."""
    import time

    rng = np.random.default_rng(seed)
    tr, va = train_val(len(x), rng)
    t0 = time.perf_counter()
    model, history = flows.fit_flow(x[tr], m[tr, None], x[va], m[va, None], flow_cfg, train_cfg,
                                    seed)
    return FlowFit(model, history, time.perf_counter() - t0)


def anode(sb_flow: FlowFit, sr_flow: FlowFit, window: Window) -> Scorer:
    """ANODE likelihood-ratio score log p_SR(x|m) − log p_SB(x|m)."""
    def score(x: np.ndarray, m: np.ndarray) -> np.ndarray:
        mc = np.clip(m, window.sr_lo, window.sr_hi)[:, None]
        return flows.log_prob(sr_flow.model, x, mc) - flows.log_prob(sb_flow.model, x, mc)
    return score


def cathode_samples(sb_flow: FlowFit, m_sr_data: np.ndarray, n: int, window: Window,
                    seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` background samples in the SR: m from a KDE of the SR data, x ~ p_SB(x|m)."""
    rng = np.random.default_rng(seed)
    kde = gaussian_kde(m_sr_data)
    m = np.empty(0)
    while m.size < n:  # rejection into the SR (the KDE leaks past the edges)
        draw = kde.resample(2 * n, seed=rng).ravel()
        m = np.r_[m, draw[window.in_sr(draw)]]
    m = m[:n]
    return flows.sample(sb_flow.model, m[:, None], seed), m


@dataclass
class ClassifierScorer:
    """A classifier ensemble used as scorer (m is ignored: only x is an input)."""

    models: list = field(default_factory=list)

    def __call__(self, x: np.ndarray, m: np.ndarray) -> np.ndarray:
        return classifier.predict(self.models, x)


def classifier_scorer(x1: np.ndarray, x0: np.ndarray, cfg: dict[str, Any],
                      seed: int) -> ClassifierScorer:
    """Train a classifier class 1 vs class 0; the pairs of the module docstring:
    CATHODE (SR data, flow samples), CWoLa (SR data, near-SB data), idealised AD (SR data,
    SR background template), supervised (signal, background)."""
    return ClassifierScorer(classifier.train_ensemble(x1, x0, cfg, seed))
