"""Figures of the study, built on :mod:`hepchain.core.plotting`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from hepchain.core.plotting import save


def curve_figure(series: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
                 path: Path, xlabel: str, ylabel: str, logx: bool = False) -> Path:
    """Points with error bars, one line per series: ``series[name] = (x, y, y_error)``."""
    fig, ax = plt.subplots()
    for name, (x, y, err) in series.items():
        ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=name)
    if logx:
        ax.set_xscale("log")
    ax.set(xlabel=xlabel, ylabel=ylabel)
    ax.legend()
    return save(fig, path)
