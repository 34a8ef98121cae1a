"""Sparse-sensing plots: resolution vs reduction rate and learned patterns per layer."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from hepchain.core import plotting


def reduction_curves(curves: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
                     path: str | Path, energy: float, none_value: float | None = None) -> Path:
    """σ/E [%] vs reduction rate; ``curves[pattern] = (rates, mean, std)``."""
    fig, ax = plt.subplots()
    for i, (name, (rates, mean, std)) in enumerate(curves.items()):
        ax.errorbar(100 * np.asarray(rates), mean, yerr=std, marker="o", capsize=3,
                    color=f"C{i}", label=name)
    if none_value is not None:
        ax.axhline(none_value, color="k", ls="--", label="no reduction")
    ax.set(xlabel="reduction rate [%]", ylabel=f"σ/E at {energy:g} GeV [%]",
           title=f"energy calibration vs data reduction, {energy:g} GeV e-")
    ax.legend()
    return plotting.save(fig, path)


def pattern_pictures(scores: np.ndarray, pattern: np.ndarray, path: str | Path,
                     title: str) -> Path:
    """One panel per layer: the learned score (colour) with dropped pixels hatched grey."""
    layers = scores.shape[0]
    cols = 10
    rows = int(np.ceil(layers / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.7 * rows + 0.6),
                             squeeze=False)
    lo, hi = float(np.min(scores)), float(np.max(scores))
    for i, ax in enumerate(axes.ravel()):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= layers:
            ax.axis("off")
            continue
        shown = np.where(pattern[i], scores[i], np.nan)
        ax.imshow(np.ones_like(scores[i]), cmap="Greys", vmin=0, vmax=4, origin="lower")
        ax.imshow(shown, cmap="viridis", vmin=lo, vmax=hi, origin="lower")
        ax.set_title(f"L{i} ({pattern[i].mean():.0%})", fontsize=8)
    fig.suptitle(title, fontsize=10)
    return plotting.save(fig, path)
