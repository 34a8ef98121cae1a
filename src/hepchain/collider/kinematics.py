"""Angular distances in (η, φ) used across the chain (rad).

    >>> round(float(delta_phi(3.0, -3.0)), 4)   # 6 rad wrapped into [-π, π]
    -0.2832
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def delta_phi(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """a − b folded into [−π, π] (rad)."""
    return np.angle(np.exp(1j * (np.asarray(a) - np.asarray(b))))


def delta_r(eta1: ArrayLike, phi1: ArrayLike, eta2: ArrayLike, phi2: ArrayLike) -> np.ndarray:
    """ΔR = √(Δη² + Δφ²) with Δφ wrapped; broadcasts like NumPy."""
    return np.hypot(np.asarray(eta1) - np.asarray(eta2), delta_phi(phi1, phi2))
