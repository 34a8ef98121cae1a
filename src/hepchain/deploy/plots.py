"""Figures of the deploy study, saved through :mod:`hepchain.core.plotting`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt

from hepchain.core import plotting


def accuracy_vs_bits(series: Mapping[str, tuple[list[int], list[float], list[float]]],
                     float_acc: tuple[float, float], path: Path) -> str:
    """Test accuracy vs bit width; ``series[name] = (bits, accuracy, error)``, the float
    model as a band."""
    fig, ax = plt.subplots()
    for i, (name, (bits, acc, err)) in enumerate(series.items()):
        ax.errorbar(bits, acc, yerr=err, fmt="o-", color=f"C{i}", label=name)
    acc, err = float_acc
    ax.axhspan(acc - err, acc + err, color="0.8", zorder=0, label="float (PyTorch)")
    ax.set(xlabel="bit width W", ylabel="test accuracy (5 classes)",
           title="L1 MLP: fixed point vs float")
    ax.legend()
    return plotting.save(fig, path).name
