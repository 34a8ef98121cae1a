"""Figures of the study on :mod:`hepchain.core.plotting`: label efficiency (a metric against
the fraction of labelled training jets, one line per method, published numbers as open
markers marked "different dataset")."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt

from hepchain.core import plotting


def label_efficiency(series: Mapping[str, list[tuple[float, float, float]]], path: Path,
                     ylabel: str, logy: bool = False,
                     references: Mapping[str, tuple[float, float]] | None = None) -> Path:
    """``series``: method -> [(label fraction, value, error)], plotted against the fraction;
    ``references``: source -> (label fraction, value) of published numbers."""
    fig, ax = plt.subplots()
    for name, points in series.items():
        f, v, e = zip(*sorted(points), strict=True)
        ax.errorbar(f, v, yerr=e, marker="o", capsize=3, label=name)
    for k, (source, (f, v)) in enumerate((references or {}).items()):
        ax.plot([f], [v], marker="*^sD"[k % 4], markersize=10, fillstyle="none",
                linestyle="none", label=f"{source} (different dataset)")
    ax.set(xscale="log", xlabel="fraction of labelled training jets", ylabel=ylabel)
    if logy:
        ax.set_yscale("log")
    ax.legend(fontsize="x-small", loc="upper left")
    return plotting.save(fig, path)
