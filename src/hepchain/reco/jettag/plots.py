"""Figures of the tagger zoo, built on :mod:`hepchain.core.plotting`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from hepchain.core import plotting


def rejection_figure(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], path: Path,
                     baseline: str) -> str:
    """Background rejection vs signal efficiency (ROC in the tagging convention) with a ratio
    panel to ``baseline``; ``curves[model] = (is_signal, score)`` of the test jets."""
    return plotting.rejection_curves(curves, path, baseline=baseline,
                                     title="top vs QCD, test jets").name


def loss_figure(histories: Mapping[str, list[dict[str, float]]], path: Path) -> str:
    """Training and validation loss per epoch of every network."""
    return plotting.loss_curves(histories, path).name


def confusion_figure(matrices: Mapping[str, np.ndarray], classes: Sequence[str],
                     path: Path) -> str:
    """One panel per model: the row-normalised confusion matrix C[true, predicted]."""
    n = len(matrices)
    cols = min(n, 3)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.8 * cols, 4.4 * rows), squeeze=False)
    for ax, (name, cm) in zip(axes.flat, matrices.items(), strict=False):
        ax.imshow(cm, vmin=0.0, vmax=1.0, cmap="viridis")
        ax.set_xticks(range(len(classes)), classes, rotation=90, fontsize=8)
        ax.set_yticks(range(len(classes)), classes, fontsize=8)
        ax.set(xlabel="predicted", ylabel="true", title=name)
        ax.minorticks_off()
    for ax in axes.flat[n:]:
        ax.axis("off")
    return plotting.save(fig, path).name
