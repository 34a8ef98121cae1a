"""The weakly/fully supervised classifier of CATHODE, CWoLa hunting, the idealised anomaly
detector and the supervised upper bound: an ensemble of gradient-boosted trees.

CATHODE used a small NN; boosted decision trees are as good on these few high-level features
and much more stable with tiny signal fractions (Finke et al. 2023, "Back to the roots"), and train in
seconds on a laptop CPU. Each ensemble member uses a different random train/validation split
(early stopping on the validation loss); the score is the mean predicted probability.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

from hepchain.core.seeding import derive_seed
from hepchain.core.twosample import Fit, Scorer


def train_ensemble(x1: np.ndarray, x0: np.ndarray, cfg: dict[str, Any],
                   seed: int) -> list[HistGradientBoostingClassifier]:
    """Fit ``cfg['members']`` classifiers separating class 1 (``x1``) from class 0 (``x0``).

    The classes are re-weighted to equal total weight. ``cfg``: members, max_iter,
    learning_rate, max_leaf_nodes, validation_fraction.
    """
    x = np.concatenate([x1, x0])
    y = np.r_[np.ones(len(x1)), np.zeros(len(x0))]
    w = np.where(y == 1, len(x) / (2 * len(x1)), len(x) / (2 * len(x0)))
    models = []
    for k in range(int(cfg.get("members", 5))):
        clf = HistGradientBoostingClassifier(
            max_iter=int(cfg.get("max_iter", 200)), learning_rate=float(cfg.get("learning_rate", 0.1)),
            max_leaf_nodes=int(cfg.get("max_leaf_nodes", 31)), early_stopping=True,
            validation_fraction=float(cfg.get("validation_fraction", 0.3)),
            n_iter_no_change=10, random_state=derive_seed(seed, "member", k))
        clf.fit(x, y, sample_weight=w)
        models.append(clf)
    return models


def predict(models: list[HistGradientBoostingClassifier], x: np.ndarray) -> np.ndarray:
    """Mean class-1 probability of the ensemble."""
    return np.mean([m.predict_proba(x)[:, 1] for m in models], axis=0)


def fitter(cfg: dict[str, Any]) -> Fit:
    """The ensemble as the classifier of :func:`hepchain.core.twosample.c2st`:
    ``c2st(a, b, fitter(cfg), seed=seed)`` tests whether ``a`` and ``b`` can be told apart."""
    def fit(x1: np.ndarray, x0: np.ndarray, seed: int) -> Scorer:
        models = train_ensemble(x1, x0, cfg, seed)
        return lambda x: predict(models, x)
    return fit
