"""Study-specific figures (saved through ``core.plotting.save``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from hepchain.core import metrics, plotting


def confusion(cm: np.ndarray, names: Sequence[str], path: str | Path, title: str = "",
              what: str = "origin") -> Path:
    """Row-normalised confusion matrix (true class rows, predicted class columns); ``what``
    names the classes on the axes."""
    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    im = ax.imshow(cm, cmap="Blues", vmin=0, vmax=1)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, f"{cm[i, j]:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if cm[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set(xlabel=f"predicted {what}", ylabel=f"true {what}", title=title)
    fig.colorbar(im, ax=ax)
    return plotting.save(fig, path)


def rejection_vs_pt(values: Mapping[str, Sequence[metrics.Rejection | None]],
                    edges: Sequence[float], path: str | Path, ylabel: str) -> Path:
    """Rejection (with binomial errors) per jet-pT bin [GeV], one series per tagger; bins
    where it is only a lower limit (no background jet passed) are left out."""
    fig, ax = plt.subplots()
    centres = 0.5 * (np.asarray(edges[:-1]) + np.asarray(edges[1:]))
    half = 0.5 * np.diff(edges)
    for k, (name, rows) in enumerate(values.items()):
        ok = [i for i, r in enumerate(rows) if r is not None and not r.is_lower_limit]
        ax.errorbar(centres[ok] * (1 + 0.02 * k), [rows[i].rejection for i in ok],
                    xerr=half[ok], yerr=[rows[i].error for i in ok], fmt="o", label=name)
    ax.set(xscale="log", yscale="log", xlabel="jet pT [GeV]", ylabel=ylabel)
    ax.legend()
    return plotting.save(fig, path)
