"""Figures of the study on :mod:`hepchain.core.plotting`: label efficiency (a metric against
the fraction of labelled training jets, one line per method)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt

from hepchain.core import plotting


def label_efficiency(series: Mapping[str, list[tuple[float, float, float]]], path: Path,
                     ylabel: str, logy: bool = False) -> Path:
    """``series``: method -> [(label fraction, value, error)], plotted against the fraction."""
    fig, ax = plt.subplots()
    for name, points in series.items():
        f, v, e = zip(*sorted(points), strict=True)
        ax.errorbar(f, v, yerr=e, marker="o", capsize=3, label=name)
    ax.set(xscale="log", xlabel="fraction of labelled training jets", ylabel=ylabel)
    if logy:
        ax.set_yscale("log")
    ax.legend()
    return plotting.save(fig, path)
