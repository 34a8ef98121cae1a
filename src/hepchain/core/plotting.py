"""Plots shared by all studies (matplotlib + mplhep style). Every function saves a PNG and
returns its path, so studies can list it in ``Result.figures``::

    path = plotting.rejection_curves({"GN1": (y, s1), "DL1": (y, s2)}, workdir / "rej.png",
                                     baseline="DL1")
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import mplhep
import numpy as np

from hepchain.core import metrics

plt.style.use(mplhep.style.ROOT)
plt.rcParams.update({"figure.figsize": (7, 5), "font.size": 12, "axes.titlesize": 12,
                     "legend.fontsize": 10,
                     # ten distinct colours: ablation plots carry up to ten curves
                     "axes.prop_cycle": matplotlib.cycler(color=plt.cm.tab10.colors)})


def slug(text: str) -> str:
    """A file-name-safe version of ``text``."""
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower()[:60]


def save(fig: plt.Figure, path: str | Path) -> Path:
    """Save ``fig`` as PNG (creating the directory) and close it."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return p


def roc_curves(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], path: str | Path,
               title: str = "") -> Path:
    """ROC curves (TPR vs FPR) with AUC in the legend; ``curves[name] = (y_true, score)``."""
    fig, ax = plt.subplots()
    for name, (y, s) in curves.items():
        fpr, tpr, _ = metrics.roc_curve(y, s)
        ax.plot(fpr, tpr, label=f"{name} (AUC {metrics.roc_auc(y, s):.3f})")
    ax.plot([0, 1], [0, 1], ls=":", color="grey")
    ax.set(xlabel="background efficiency", ylabel="signal efficiency", title=title)
    ax.legend()
    return save(fig, path)


def rejection_curves(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], path: str | Path,
                     baseline: str | None = None, xlabel: str = "signal efficiency",
                     ylabel: str = "background rejection", title: str = "") -> Path:
    """Rejection 1/ε_B vs signal efficiency (log y), with a ratio panel to ``baseline``."""
    fig, (ax, rax) = plt.subplots(2, 1, sharex=True, height_ratios=(3, 1),
                                  figsize=(7, 6.5)) if baseline else (*plt.subplots(), None)
    eff = np.linspace(0.4, 1.0, 61)
    rej = {name: metrics.rejection_curve(y, s, eff)[1] for name, (y, s) in curves.items()}
    for name, r in rej.items():
        ax.plot(eff, r, label=name)
    ax.set(yscale="log", ylabel=ylabel, title=title)
    ax.legend()
    if rax is not None:
        for r in rej.values():
            with np.errstate(divide="ignore", invalid="ignore"):
                rax.plot(eff, r / rej[baseline])
        rax.axhline(1.0, color="grey", ls=":")
        rax.set(ylabel=f"ratio to {baseline}", xlabel=xlabel)
    else:
        ax.set_xlabel(xlabel)
    return save(fig, path)


def sic_curves(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], path: str | Path,
               title: str = "") -> Path:
    """Significance improvement ε_S/√ε_B vs ε_S."""
    fig, ax = plt.subplots()
    for name, (y, s) in curves.items():
        tpr, sic = metrics.sic_curve(y, s)
        ax.plot(tpr, sic, label=f"{name} (max {sic.max() if sic.size else float('nan'):.1f})")
    ax.axhline(1.0, color="grey", ls=":")
    ax.set(xlabel="signal efficiency", ylabel="SIC", title=title)
    ax.legend()
    return save(fig, path)


def resolution_curves(series: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
                      path: str | Path, fits: Mapping[str, metrics.ResolutionFit] | None = None,
                      reference: tuple[float, float] | None = None, title: str = "") -> Path:
    """σ/E vs E; ``series[name] = (E [GeV], σ/E, error)``; optional fits and an a/√E ⊕ b
    reference curve (e.g. the SiD design 17%/√E ⊕ 1%)."""
    fig, ax = plt.subplots()
    grid = None
    for i, (name, (e, r, err)) in enumerate(series.items()):
        color = f"C{i}"
        ax.errorbar(e, r, yerr=err, fmt="o", color=color, label=name)
        grid = np.geomspace(min(e), max(e), 100)
        if fits and name in fits:
            f = fits[name]
            ax.plot(grid, f(grid), color=color, ls="--",
                    label=rf"  {100 * f.a:.1f}%/$E^{{1/2}}$ $\oplus$ {100 * f.b:.1f}% $\oplus$ {f.c:.2f}/E")
    if reference is not None and grid is not None:
        a, b = reference
        ax.plot(grid, metrics.resolution_function(grid, a, b), color="k", ls=":",
                label=rf"reference {100 * a:.0f}%/$E^{{1/2}}$ $\oplus$ {100 * b:.0f}%")
    ax.set(xlabel="E [GeV]", ylabel="σ(E)/E", title=title)
    ax.legend()
    return save(fig, path)


def response_curves(series: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
                    path: str | Path, band: float = 0.01, title: str = "") -> Path:
    """Linearity: mean response E_pred/E vs E; ``series[name] = (E [GeV], response, error)``,
    with a ±``band`` band around 1."""
    fig, ax = plt.subplots()
    for i, (name, (e, r, err)) in enumerate(series.items()):
        ax.errorbar(e, r, yerr=err, fmt="o-", color=f"C{i}", label=name)
    ax.axhspan(1 - band, 1 + band, color="0.85", zorder=0, label=f"±{100 * band:g}%")
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set(xlabel="E [GeV]", ylabel=r"$\langle E_{pred}/E \rangle$ (Gaussian core)",
           xscale="log", title=title)
    ax.legend()
    return save(fig, path)


def loss_curves(histories: Mapping[str, Sequence[Mapping[str, float]]], path: str | Path,
                keys: Sequence[str] = ("train_total", "val_loss"), title: str = "") -> Path:
    """Training/validation losses per epoch from :class:`~hepchain.core.trainer.History`."""
    fig, ax = plt.subplots()
    for i, (name, epochs) in enumerate(histories.items()):
        for key, ls in zip(keys, ("-", "--", ":"), strict=False):
            ys = [e[key] for e in epochs if key in e]
            if ys:
                ax.plot(range(len(ys)), ys, color=f"C{i}", ls=ls, label=f"{name} {key}")
    ax.set(xlabel="epoch", ylabel="loss", title=title)
    ax.legend()
    return save(fig, path)


def box_plot(values: Mapping[str, Sequence[float]], path: str | Path, ylabel: str = "",
             reference: Mapping[str, float] | None = None, title: str = "") -> Path:
    """One box per method over seeds, individual seeds overlaid; optional reference lines."""
    fig, ax = plt.subplots()
    names = list(values)
    ax.boxplot([np.asarray(values[n], float) for n in names], tick_labels=names)
    for i, n in enumerate(names, start=1):
        v = np.asarray(values[n], float)
        ax.scatter(np.full(v.size, i) + np.linspace(-0.08, 0.08, v.size), v, s=12, color="C1",
                   zorder=3)
    for j, (label, val) in enumerate((reference or {}).items()):
        ax.axhline(val, ls="--", color=f"C{j + 2}", label=label)
    if reference:
        ax.legend()
    ax.set(ylabel=ylabel, title=title)
    ax.tick_params(axis="x", rotation=20)
    return save(fig, path)


def histograms(samples: Mapping[str, np.ndarray], path: str | Path, xlabel: str,
               bins: int | np.ndarray = 50, density: bool = True, logy: bool = False,
               title: str = "") -> Path:
    """Overlaid step histograms (e.g. real vs generated, signal vs background)."""
    fig, ax = plt.subplots()
    edges = bins
    if isinstance(bins, int):
        allv = np.concatenate([np.asarray(v, float).ravel() for v in samples.values()])
        allv = allv[np.isfinite(allv)]
        edges = np.linspace(*np.percentile(allv, [0.5, 99.5]), bins + 1)
    for name, v in samples.items():
        ax.hist(np.asarray(v, float).ravel(), bins=edges, histtype="step", density=density,
                label=name, lw=1.5)
    ax.set(xlabel=xlabel, ylabel="density" if density else "entries", title=title)
    if logy:
        ax.set_yscale("log")
    ax.legend()
    return save(fig, path)
