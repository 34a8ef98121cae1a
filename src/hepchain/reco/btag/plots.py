"""Study-specific figures (saved through ``core.plotting.save``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from hepchain.core import metrics, plotting
from hepchain.reco.btag.labels import ORIGIN_CLASSES


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


def study_figures(scores: Mapping[str, np.ndarray], label: np.ndarray, classes: Sequence[str],
                  baseline: str, per_pt: Mapping[str, Sequence[metrics.Rejection | None]],
                  pt_edges: Sequence[float], wp: float,
                  confusions: Mapping[str, np.ndarray],
                  histories: Mapping[str, Sequence[Mapping[str, float]]], full: str,
                  workdir: Path) -> list[str]:
    """The study's figures in ``workdir``, returned by file name: rejection vs b-efficiency
    against light and c jets (``scores``: test scores per tagger, ``label``: test classes),
    light rejection per jet-pT bin [GeV] (when ``per_pt`` has taggers), the ``full`` GN1's
    D_b per class and its track-origin confusion matrix (when trained), and the loss curves."""
    names = []
    b = classes.index("b")
    for bkg in ("light", "c"):
        sel = (label == b) | (label == classes.index(bkg))
        curves = {name: (label[sel] == b, s[sel]) for name, s in scores.items()}
        names.append(plotting.rejection_curves(
            curves, workdir / f"rejection_{bkg}.png", baseline=baseline,
            xlabel="b-jet efficiency", ylabel=f"{bkg}-jet rejection").name)
    if per_pt:
        names.append(rejection_vs_pt(per_pt, pt_edges, workdir / "rejection_vs_pt.png",
                                     f"light rejection @ {wp:.0%} b-eff").name)
    if full in scores:
        names.append(plotting.histograms(
            {f"{c}-jets": scores[full][label == i] for i, c in enumerate(classes)},
            workdir / "db_gn1.png", xlabel=f"{full} D_b", logy=True).name)
    if full in confusions:
        names.append(confusion(confusions[full], ORIGIN_CLASSES, workdir / "origin_confusion.png",
                               f"{full} track origin (test)").name)
    names.append(plotting.loss_curves(histories, workdir / "loss_curves.png",
                                      keys=("val_jet", "val_loss")).name)
    return names
