"""Study-specific figures of the flow analyses (saved through ``core.plotting.save``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import ticker

from hepchain.core import plotting

# symbol and unit of each feature of hepchain.analysis.features (masses in TeV)
FEATURE_AXES = {
    "mjj": ("$m_{jj}$", "TeV"),
    "mj1": ("$m_{J1}$ (lighter jet)", "TeV"),
    "mj2": ("$m_{J2}$ (heavier jet)", "TeV"),
    "dmj": (r"$\Delta m_J = m_{J2} - m_{J1}$", "TeV"),
    "tau21_j1": (r"$\tau_{21}$ of J1", ""),
    "tau21_j2": (r"$\tau_{21}$ of J2", ""),
    "tau32_j1": (r"$\tau_{32}$ of J1", ""),
    "tau32_j2": (r"$\tau_{32}$ of J2", ""),
    "delta_r": (r"$\Delta R(J1, J2)$", ""),
}


def marginals(samples: Mapping[str, np.ndarray], names: Sequence[str], path: Path,
              title: str = "") -> Path:
    """One panel per feature: normalised histograms of each (N, d) sample in ``samples``;
    at most three panels a row, rows filled evenly, so each stays legible at report width."""
    nrow = -(-len(names) // 3)
    ncol = -(-len(names) // nrow)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4 * ncol, 3.4 * nrow), squeeze=False)
    ref = next(iter(samples.values()))
    for j, name in enumerate(names):
        ax = axes.flat[j]
        edges = np.linspace(*np.percentile(ref[:, j], [0.5, 99.5]), 41)
        for label, x in samples.items():
            ax.hist(x[:, j], bins=edges, histtype="step", density=True, lw=1.4, label=label)
        symbol, unit = FEATURE_AXES.get(name, (name, ""))
        ax.set(xlabel=f"{symbol} [{unit}]" if unit else symbol,
               ylabel=f"density [1/{unit}]" if unit else "density")
    for ax in axes.flat[len(names):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return plotting.save(fig, path)


def series(curves: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray | None]], path: Path,
           xlabel: str, ylabel: str, logx: bool = False, title: str = "") -> Path:
    """Lines with optional error bars: ``curves[name] = (x, y, yerr or None)``."""
    fig, ax = plt.subplots()
    for name, (x, y, err) in curves.items():
        ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=name)
    if logx:
        ax.set_xscale("log")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend(fontsize=9)
    return plotting.save(fig, path)


def families(points: Sequence[tuple[str, int, float, float]], path: Path, xlabel: str,
             ylabel: str, logx: bool = False, hline: float | None = None,
             title: str = "") -> Path:
    """Points ``(family, events per point, x, y)``: one colour per family, one marker per
    events per point; the points of one family and events are joined in order of x (a grid
    refined), a lone point is a marker; ``hline`` draws a dotted reference level::

        families([("flow, grid", 125, 40.0, 0.7), ("flow, grid", 125, 98.3, 0.6),
                  ("flow, Sobol", 60, 19.0, 1.2)], path, "compute [s]", "worst pull")
    """
    names = list(dict.fromkeys(p[0] for p in points))
    events = sorted({p[1] for p in points})
    colours = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    shapes = "osD^v<>ph*"
    fig, ax = plt.subplots(figsize=(9.0, 4.8))
    for i, name in enumerate(names):
        for j, n in enumerate(events):
            xy = sorted((p[2], p[3]) for p in points if p[0] == name and p[1] == n)
            if xy:
                ax.plot(*zip(*xy, strict=True), marker=shapes[j % len(shapes)], ms=6,
                        color=colours(i), ls="-" if len(xy) > 1 else "none")
    if hline is not None:
        ax.axhline(hline, color="grey", ls=":", lw=1)
    if logx:
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(ticker.ScalarFormatter())
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    handles = [plt.Line2D([], [], color=colours(i), lw=2) for i in range(len(names))]
    handles += [plt.Line2D([], [], color="black", ls="none", marker=shapes[j % len(shapes)])
                for j in range(len(events))]
    ax.legend(handles, names + [f"{n} events per point" for n in events], fontsize=8,
              loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return plotting.save(fig, path)


def bump(mjj: Mapping[str, np.ndarray], edges: np.ndarray, fits: Mapping[str, np.ndarray],
         sr: tuple[float, float], path: Path, title: str = "") -> Path:
    """m_jj histograms after cuts with the side-band fit curves (events per bin)."""
    fig, ax = plt.subplots()
    centres = 0.5 * (edges[1:] + edges[:-1])
    for name, values in mjj.items():
        counts, _ = np.histogram(values, edges)
        line = ax.errorbar(centres, counts, yerr=np.sqrt(counts), fmt="o", ms=3, label=name)
        if name in fits:
            ax.plot(centres, fits[name], color=line[0].get_color(), lw=1)
    ax.axvspan(*sr, color="grey", alpha=0.15, label="SR")
    ax.set_yscale("log")
    ax.set(xlabel="$m_{jj}$ [TeV]", ylabel="events / bin", title=title)
    ax.legend(fontsize=8)
    return plotting.save(fig, path)
