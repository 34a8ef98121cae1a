"""The one per-feature standardiser: ``z = (x - mean) / scale`` fitted on training rows.

Model inputs (linac surrogates, the analysis flows, b-tagging inputs) and two-sample metrics
all standardise features the same way, so the statistics are computed here once. Features are
the last axis; every leading axis is pooled when fitting. Units: ``mean`` has the units of
``x``, ``scale`` too, and ``z`` is dimensionless.

    >>> import numpy as np
    >>> s = Standardiser.fit(np.array([[1.0, 5.0], [3.0, 5.0]]))
    >>> s.transform(np.array([[2.0, 5.0]])).tolist()   # constant column -> scale 1
    [[0.0, 0.0]]
    >>> Standardiser.from_state_dict(s.state_dict()).inverse_transform(np.zeros((1, 2))).tolist()
    [[2.0, 5.0]]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from hepchain.core.errors import DataError


@dataclass(frozen=True, eq=False)
class Standardiser:
    """Per-feature mean and scale (population std; 1 where the std is below ``min_scale``, so
    a constant feature maps to 0 instead of being blown up)."""

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, x: ArrayLike, min_scale: float = 1e-9) -> Standardiser:
        """Mean and std over all rows of ``x`` (..., features). DataError if ``x`` has no rows
        or contains NaN/inf."""
        arr = np.asarray(x, dtype=np.float64)
        arr = arr.reshape(-1, arr.shape[-1]) if arr.ndim > 1 else arr.reshape(-1, 1)
        if len(arr) == 0:
            raise DataError("Cannot standardise features from an empty sample; check the "
                            "training selection.")
        if not np.isfinite(arr).all():
            raise DataError("The features to standardise contain NaN or inf; clean the input "
                            "data first.")
        std = arr.std(0)
        return cls(arr.mean(0), np.where(std > min_scale, std, 1.0))

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Standardiser) and np.array_equal(self.mean, other.mean)
                and np.array_equal(self.scale, other.scale))

    def transform(self, x: ArrayLike) -> np.ndarray:
        """``(x - mean) / scale``, same shape as ``x``."""
        return (np.asarray(x, dtype=np.float64) - self.mean) / self.scale

    def inverse_transform(self, z: ArrayLike) -> np.ndarray:
        """``z * scale + mean``: back to the units of the fitted features."""
        return np.asarray(z, dtype=np.float64) * self.scale + self.mean

    def state_dict(self) -> dict[str, list[float]]:
        """Plain lists (JSON, model files, ONNX metadata)."""
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_state_dict(cls, state: dict[str, list[float]]) -> Standardiser:
        """Inverse of :meth:`state_dict`."""
        return cls(np.asarray(state["mean"], dtype=np.float64),
                   np.asarray(state["scale"], dtype=np.float64))
