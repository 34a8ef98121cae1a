"""Metrics that compare generated operations-log samples with held-out real ones.

All inputs are standardised channel matrices (n, channels). Mode assignment and the k-NN
manifold metrics work in a PCA space fitted on the real training data, where the operating
modes are well separated and distances are not dominated by instrument noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.distance import cdist
from scipy.stats import wasserstein_distance
from sklearn.decomposition import PCA
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.neighbors import NearestNeighbors

from hepchain.core import metrics


def mean_channel_w1(real: np.ndarray, gen: np.ndarray) -> float:
    """Mean over channels of the 1-D Wasserstein-1 distance (standardised units)."""
    return float(np.mean([wasserstein_distance(real[:, j], gen[:, j])
                          for j in range(real.shape[1])]))


@dataclass
class ModeSpace:
    """PCA embedding with per-mode centroids and radii from real data."""

    pca: PCA
    centroids: np.ndarray  # (modes, k)
    radii: np.ndarray  # (modes,)
    shares: np.ndarray  # real share per mode

    @classmethod
    def fit(cls, train: np.ndarray, train_modes: np.ndarray, n_modes: int,
            components: int = 10, quantile: float = 0.99, seed: int = 0) -> ModeSpace:
        """Centroids from the training rows of each mode; radius = 1.5 x the ``quantile`` of
        the training rows' distances to their own centroid."""
        pca = PCA(components, random_state=seed).fit(train)
        emb = pca.transform(train)
        cents, radii = [], []
        for m in range(n_modes):
            rows = emb[train_modes == m]
            c = rows.mean(0)
            cents.append(c)
            radii.append(1.5 * np.quantile(np.linalg.norm(rows - c, axis=1), quantile))
        shares = np.bincount(train_modes, minlength=n_modes) / len(train_modes)
        return cls(pca, np.array(cents), np.array(radii), shares)

    def assign(self, x: np.ndarray) -> np.ndarray:
        """Mode index of each row, or -1 when it is outside every mode's radius."""
        d = np.linalg.norm(self.pca.transform(x)[:, None] - self.centroids[None], axis=2)
        best = d.argmin(1)
        return np.where(d[np.arange(len(x)), best] <= self.radii[best], best, -1)


def mode_coverage(space: ModeSpace, gen: np.ndarray, min_fraction: float = 0.2
                  ) -> dict[str, float | list[float]]:
    """Fraction of modes generated with at least ``min_fraction`` of their real share, the
    generated share per mode, the off-mode fraction and the total-variation distance of the
    mode proportions (off-mode mass counted as its own bin)."""
    labels = space.assign(gen)
    n = len(space.shares)
    gen_share = np.array([(labels == m).mean() for m in range(n)])
    off = float((labels == -1).mean())
    covered = gen_share >= min_fraction * space.shares
    tv = 0.5 * (np.abs(gen_share - space.shares).sum() + off)
    return {"coverage": float(covered.mean()), "shares": gen_share.tolist(), "off_mode": off,
            "tv_distance": float(tv)}


def knn_precision_recall(real: np.ndarray, gen: np.ndarray, k: int = 5) -> tuple[float, float]:
    """Improved precision/recall (Kynkaanniemi et al. 2019): a sample is inside the other
    set's manifold when it falls in a ball around one of its points whose radius is that
    point's distance to its k-th nearest neighbour in its own set."""

    def radii(x: np.ndarray) -> np.ndarray:
        return NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x)[0][:, -1]

    def inside(points: np.ndarray, ref: np.ndarray, r: np.ndarray) -> float:
        hits = [(cdist(points[i:i + 512], ref) <= r[None]).any(1)
                for i in range(0, len(points), 512)]
        return float(np.concatenate(hits).mean())

    return inside(gen, real, radii(real)), inside(real, gen, radii(gen))


def c2st_auc(real: np.ndarray, gen: np.ndarray, seed: int = 0) -> float:
    """Classifier two-sample test: ROC AUC of a gradient-boosted classifier separating real
    from generated rows on a held-out half (0.5 = indistinguishable, 1 = fully separable)."""
    n = min(len(real), len(gen))
    rng = np.random.default_rng(seed)
    x = np.concatenate([real[rng.permutation(len(real))[:n]], gen[rng.permutation(len(gen))[:n]]])
    y = np.concatenate([np.ones(n), np.zeros(n)])
    idx = rng.permutation(2 * n)
    train, test = idx[: n], idx[n:]
    clf = HistGradientBoostingClassifier(max_iter=100, random_state=seed)
    clf.fit(x[train], y[train])
    return metrics.roc_auc(y[test], clf.predict_proba(x[test])[:, 1])
