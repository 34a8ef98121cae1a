"""Readout sampling patterns: which pixels are read out (True) at a given reduction rate.

The reduction rate is the fraction of pixels dropped, in [0, 1). Patterns are boolean arrays
of the calorimeter image shape (layers, n_pix, n_pix) and are applied by multiplication.
"""

from __future__ import annotations

import numpy as np

from hepchain.core.errors import UsageError

PATTERNS = ("random", "regular", "loupe", "gumbel")


def validate_rate(rate: float) -> float:
    """The reduction rate as float; UsageError unless 0 <= rate < 1."""
    try:
        r = float(rate)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"Reduction rate {rate!r} is not a number; give a value in [0, 1).") from exc
    if not 0.0 <= r < 1.0:
        raise UsageError(f"Reduction rate {r} is outside [0, 1); it is the fraction of pixels "
                         "dropped, so use e.g. 0.34.")
    return r


def n_keep(n_cells: int, rate: float) -> int:
    """Number of pixels read out at reduction ``rate`` (at least one)."""
    return max(1, round(n_cells * (1.0 - validate_rate(rate))))


def random_pattern(shape: tuple[int, ...], rate: float, rng: np.random.Generator) -> np.ndarray:
    """Exactly ``n_keep`` pixels chosen uniformly at random."""
    n = int(np.prod(shape))
    keep = np.zeros(n, dtype=bool)
    keep[rng.choice(n, n_keep(n, rate), replace=False)] = True
    return keep.reshape(shape)


def regular_pattern(shape: tuple[int, int, int], rate: float) -> np.ndarray:
    """Evenly spaced pixels per layer: pixel (l, i, j) has rank r = i·(n+1) + j + l and is kept
    when ⌊(r+1)·f⌋ > ⌊r·f⌋ with f the kept fraction (f = 1/2 gives a checkerboard that
    alternates between layers; f = 1/k keeps every k-th pixel)."""
    layers, ny, nx = shape
    f = 1.0 - validate_rate(rate)
    ly, iy, ix = np.meshgrid(np.arange(layers), np.arange(ny), np.arange(nx), indexing="ij")
    r = iy * (nx + 1) + ix + ly
    return np.floor((r + 1) * f + 1e-9) > np.floor(r * f + 1e-9)


def top_k_pattern(scores: np.ndarray, rate: float) -> np.ndarray:
    """The ``n_keep`` pixels with the highest scores (ties broken by index)."""
    flat = np.asarray(scores, dtype=float).ravel()
    keep = np.zeros(flat.size, dtype=bool)
    keep[np.argsort(-flat, kind="stable")[: n_keep(flat.size, rate)]] = True
    return keep.reshape(np.shape(scores))
