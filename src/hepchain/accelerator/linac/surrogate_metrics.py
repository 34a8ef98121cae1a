"""Operating-mode metrics of generated operations-log samples against held-out real ones.

All inputs are standardised channel matrices (n, channels). Mode assignment works in a PCA
space fitted on the real training data, where the operating modes are well separated and
distances are not dominated by instrument noise; the study computes the k-NN manifold metrics
(``core.twosample.prdc``) in the same space. The generic two-sample metrics (W1, C2ST, PRDC)
live in :mod:`hepchain.core.twosample`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import PCA


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


def between_modes(space: ModeSpace, x: np.ndarray, ratio: float = 0.5) -> float:
    """Fraction of rows lying between operating modes: nearer than ``1 / ratio`` times their
    nearest mode centroid's distance to a second centroid (distance ratio nearest / second
    nearest above ``ratio``). A model that blends modes, e.g. a decoder of latent points
    between clusters, has far more such rows than real data."""
    d = np.sort(np.linalg.norm(space.pca.transform(x)[:, None] - space.centroids[None], axis=2),
                axis=1)
    return float((d[:, 0] > ratio * d[:, 1]).mean())
