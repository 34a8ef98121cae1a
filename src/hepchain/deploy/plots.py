"""Figures of the deploy study, saved through :mod:`hepchain.core.plotting`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import matplotlib.pyplot as plt

from hepchain.core import plotting


class BitsPoint(NamedTuple):
    """One bit width's test accuracy and macro AUC (one vs rest), each with its error."""

    bits: int
    accuracy: float
    accuracy_error: float
    auc: float
    auc_error: float


def accuracy_vs_bits(series: Mapping[str, Sequence[BitsPoint]], reference: BitsPoint,
                     path: Path) -> str:
    """Test accuracy (left) and macro AUC (right) vs bit width, one line per series, the
    float model (``reference``, its ``bits`` ignored) as a ±1σ band."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, label in ((axes[0], "accuracy", "test accuracy (5 classes)"),
                           (axes[1], "auc", "test macro AUC (one vs rest)")):
        for i, (name, points) in enumerate(series.items()):
            ax.errorbar([p.bits for p in points], [getattr(p, key) for p in points],
                        yerr=[getattr(p, f"{key}_error") for p in points], fmt="o-",
                        color=f"C{i}", label=name)
        value, err = getattr(reference, key), getattr(reference, f"{key}_error")
        ax.axhspan(value - err, value + err, color="0.8", zorder=0, label="float (PyTorch)")
        ax.set(xlabel="bit width W", ylabel=label)
    axes[0].legend()
    fig.suptitle("L1 MLP: fixed point vs float")
    return plotting.save(fig, path).name
