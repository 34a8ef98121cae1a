"""Figures of the fastcalo study, saved through :func:`hepchain.core.plotting.save`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from hepchain.core import plotting
from hepchain.fastsim.metrics import HighLevel, HistogramBinning


def _panels(ref: HighLevel) -> list[tuple[str, str, int | None]]:
    """(feature, attribute, layer) of the histogram panels: the total, and the layer with the
    largest mean energy for the per-layer features."""
    peak = int(np.argmax(ref.e_layer.mean(0)))
    return [("E_tot/E_inc", "ratio", None), ("E_layer", "e_layer", peak),
            ("EC x", "ec_x", peak), ("width x", "width_x", peak),
            ("sparsity", "sparsity", peak), ("width r", "width_r", peak)]


def _values(hl: HighLevel, attr: str, layer: int | None) -> np.ndarray:
    if attr == "ratio":
        return hl.e_tot / hl.e_inc
    return getattr(hl, attr)[:, layer]


def feature_histograms(reference: HighLevel, generated: Mapping[str, HighLevel],
                       binning: HistogramBinning, min_energy: float, path: str | Path) -> Path:
    """Normalised histograms of high-level features in the challenge's binning, each with a
    generated / reference ratio panel."""
    panels = _panels(reference)
    fig = plt.figure(figsize=(15, 9))
    grid = fig.add_gridspec(5, 3, height_ratios=[3, 1, 0.7, 3, 1], hspace=0.08, wspace=0.25)
    for k, (name, attr, layer) in enumerate(panels):
        row, col = 3 * (k // 3), k % 3
        ax, rax = fig.add_subplot(grid[row, col]), fig.add_subplot(grid[row + 1, col])
        ref = _values(reference, attr, layer)
        bins = binning.bins(name, ref, min_energy)
        h_ref = np.histogram(ref, bins)[0].astype(float)
        h_ref /= max(h_ref.sum(), 1.0)
        ax.stairs(h_ref, bins, fill=True, alpha=0.25, color="grey", label="full sim")
        for i, (label, hl) in enumerate(generated.items()):
            h = np.histogram(_values(hl, attr, layer), bins)[0].astype(float)
            h /= max(h.sum(), 1.0)
            ax.stairs(h, bins, color=f"C{i}", lw=1.3, label=label)
            with np.errstate(divide="ignore", invalid="ignore"):
                rax.stairs(np.where(h_ref > 0, h / h_ref, np.nan), bins, color=f"C{i}")
        if name == "E_layer":
            ax.set_xscale("log")
            rax.set_xscale("log")
        title = name if layer is None else f"{name}, layer {layer}"
        ax.set(title=title, xticklabels=[])
        ax.set_xlim(bins[0], bins[-1])
        rax.set_xlim(bins[0], bins[-1])
        rax.set_ylim(0, 2)
        rax.axhline(1, color="grey", lw=0.8)
        rax.set_ylabel("gen / full", fontsize=9)
        if k == 0:
            ax.legend(fontsize=8)
    return plotting.save(fig, path)


def longitudinal_profiles(reference: HighLevel, generated: Mapping[str, HighLevel],
                          path: str | Path) -> Path:
    """Mean energy per layer / mean E_inc, with the ratio to the reference."""
    fig, (ax, rax) = plt.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    layers = np.arange(reference.e_layer.shape[1])
    ref = reference.e_layer.mean(0) / reference.e_inc.mean()
    ax.plot(layers, ref, "k-", lw=2, label="full sim")
    for i, (label, hl) in enumerate(generated.items()):
        prof = hl.e_layer.mean(0) / hl.e_inc.mean()
        ax.plot(layers, prof, color=f"C{i}", label=label)
        rax.plot(layers, prof / ref, color=f"C{i}")
    ax.set(ylabel="mean E_layer / mean E_inc", yscale="log")
    rax.set(xlabel="layer", ylabel="gen / full", ylim=(0.5, 1.5))
    rax.axhline(1, color="grey", lw=0.8)
    ax.legend(fontsize=8)
    return plotting.save(fig, path)


def accuracy_speed(points: Mapping[str, tuple[float, tuple[float, float], tuple[float, float]]],
                   path: str | Path, xlabel: str) -> Path:
    """The accuracy–speed front: ``points[name] = (seconds per shower, (low-level AUC, error),
    (high-level AUC, error))``; filled circles low level, open squares high level."""
    fig, ax = plt.subplots()
    for i, (name, (t, (low, low_err), (high, high_err))) in enumerate(points.items()):
        ax.errorbar(t * 1e3, low, yerr=low_err, fmt="o", color=f"C{i}", label=name)
        ax.errorbar(t * 1e3, high, yerr=high_err, fmt="s", mfc="none", color=f"C{i}")
    ax.set(xscale="log", xlabel=xlabel,
           ylabel="AUC (circles: low level, squares: high level)")
    ax.axhline(0.5, color="grey", ls=":", lw=1)
    ax.legend(fontsize=9)
    return plotting.save(fig, path)
