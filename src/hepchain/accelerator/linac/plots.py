"""Linac-specific figures (saved through core.plotting.save)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from hepchain.accelerator.linac.control import Episode
from hepchain.core import plotting


def steering_scatter(samples: dict[str, np.ndarray], names: tuple[str, str], path: Path
                     ) -> Path:
    """Like the seed's figure 2: two steering-magnet settings [mrad], real vs each generator.

    ``samples`` maps a label to an (n, 2) array; the first entry is the real data and is drawn
    in grey in every panel.
    """
    labels = list(samples)
    real = samples[labels[0]]
    fig, axes = plt.subplots(1, len(labels) - 1, figsize=(5 * (len(labels) - 1), 4.6),
                             sharex=True, sharey=True, squeeze=False)
    for ax, label in zip(axes[0], labels[1:], strict=True):
        ax.scatter(real[:, 0], real[:, 1], s=4, c="0.6", label=labels[0])
        gen = samples[label]
        ax.scatter(gen[:, 0], gen[:, 1], s=4, c="C3", alpha=0.6, label=label)
        ax.set(xlabel=f"{names[0]} [mrad]", title=label)
        ax.legend(loc="upper right", markerscale=3)
    axes[0][0].set_ylabel(f"{names[1]} [mrad]")
    lo = np.percentile(real, 0.5, axis=0)
    hi = np.percentile(real, 99.5, axis=0)
    pad = 0.3 * (hi - lo)
    axes[0][0].set_xlim(lo[0] - pad[0], hi[0] + pad[0])
    axes[0][0].set_ylim(lo[1] - pad[1], hi[1] + pad[1])
    return plotting.save(fig, path)


def convergence(episodes: dict[str, list[Episode]], tolerance_mm: float, max_steps: int,
                path: Path) -> Path:
    """Median (and 25-75 % band) of the best MAE so far [um] vs step, per method."""
    fig, ax = plt.subplots()
    steps = np.arange(max_steps + 1)
    for i, (name, eps) in enumerate(episodes.items()):
        best = np.array([np.minimum.accumulate(np.pad(e.errors, (0, max_steps + 1 - len(e.errors)),
                                                      mode="edge")) for e in eps]) * 1e3
        med = np.median(best, 0)
        ax.plot(steps, med, color=f"C{i}", label=name)
        ax.fill_between(steps, *np.percentile(best, [25, 75], 0), color=f"C{i}", alpha=0.15)
    ax.axhline(tolerance_mm * 1e3, ls="--", color="grey", label="tolerance")
    ax.set(xlabel="step (screen readings after the first)", ylabel="best MAE so far [um]",
           yscale="log")
    ax.legend()
    return plotting.save(fig, path)
