"""Study-specific figures of ipknob (all saved through :func:`hepchain.core.plotting.save`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from hepchain.accelerator.ipknob.dataset import ScanData
from hepchain.accelerator.ipknob.scan import CHANNELS
from hepchain.core import plotting


def mismatch_gallery(data: ScanData, idx: Sequence[int], predictions: Mapping[str, np.ndarray],
                     test: np.ndarray, path: Path) -> Path:
    """Test scans (step-mean L_sp vs knob) with the operator's and each method's set value.

    ``idx`` are positions within ``test`` (e.g. the largest model–operator mismatches).
    """
    n = len(idx)
    cols = min(3, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.3 * rows), squeeze=False)
    for ax, j in zip(axes.ravel(), idx, strict=False):
        i = test[j]
        u, lsp = data.steps[i]
        order = np.argsort(u)
        ax.plot(u[order], lsp[order], "o-", color="grey", ms=3, label="L_sp (step means)")
        ax.axvline(data.set_value[i], color="k", lw=2, label="operator")
        for c, (name, pred) in enumerate(predictions.items()):
            ax.axvline(pred[j], color=f"C{c}", ls="--", label=name)
        if data.truth is not None:
            ax.axvline(data.truth[i]["optimum"], color="C3", ls=":", label="hidden optimum")
        ax.set_title(f"{data.knob[i]}  (step {data.step[i]:.3g})", fontsize=10)
        ax.tick_params(labelsize=8)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=7)
    fig.supxlabel("knob value [knob units]")
    fig.supylabel(r"$L_\mathrm{sp}$ [$10^{31}$ cm$^{-2}$ s$^{-1}$ mA$^{-2}$]")
    fig.tight_layout()
    return plotting.save(fig, path)


def per_knob_bars(per_knob: Mapping[str, Mapping[str, Sequence[float]]], path: Path) -> Path:
    """Mean test L1 (scan steps) per knob and method, error bars = std over splits."""
    methods = list(per_knob)
    knobs = sorted({k for m in methods for k in per_knob[m]})
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.8 / len(methods)
    for c, m in enumerate(methods):
        vals = [np.nanmean(per_knob[m].get(k, [np.nan])) for k in knobs]
        errs = [np.nanstd(per_knob[m].get(k, [np.nan])) for k in knobs]
        ax.bar(np.arange(len(knobs)) + c * width, vals, width, yerr=errs, label=m)
    ax.set_xticks(np.arange(len(knobs)) + 0.4 - width / 2, knobs, rotation=20)
    ax.axhline(1.0, color="grey", ls=":")
    ax.set(ylabel="test L1 [scan steps]")
    ax.legend(fontsize=8)
    return plotting.save(fig, path)


def channel_weights(weights: np.ndarray, path: Path) -> Path:
    """WS per-channel score weights, mean ± std over splits (weights: (splits, 6))."""
    w = np.atleast_2d(weights)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar(CHANNELS, w.mean(0), yerr=w.std(0) if len(w) > 1 else None, color="C0")
    ax.axhline(0, color="k", lw=0.8)
    ax.set(ylabel="WS score weight w_c")
    ax.tick_params(axis="x", rotation=20)
    return plotting.save(fig, path)


def tuning_traces(traces: Mapping[str, Sequence[Sequence[float]]], path: Path,
                  level: float = 0.98) -> Path:
    """Incumbent L_sp fraction vs measurements, median and 16–84 % band over machine states."""
    fig, ax = plt.subplots()
    for c, (name, runs) in enumerate(traces.items()):
        n = max(len(r) for r in runs)
        arr = np.array([np.pad(r, (0, n - len(r)), mode="edge") for r in runs])
        x = np.arange(1, n + 1)
        ax.plot(x, np.median(arr, 0), color=f"C{c}", label=name)
        ax.fill_between(x, *np.percentile(arr, [16, 84], axis=0), color=f"C{c}", alpha=0.2)
    ax.axhline(level, color="grey", ls=":", label=f"{level:.0%} of optimum")
    ax.set(xlabel="measurements", ylabel="L_sp / L_sp(optimum)")
    ax.legend()
    return plotting.save(fig, path)
