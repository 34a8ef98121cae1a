"""Tau-ID figures, built on :mod:`hepchain.core.plotting` (and the b-tagging study's
rejection-vs-pT and confusion-matrix figures, which fit unchanged)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from hepchain.core import metrics, plotting
from hepchain.reco.btag import plots as btag_plots
from hepchain.reco.tauid.truth import DECAY_MODES


def rejection_figures(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], prong: int,
                      workdir: Path, baseline: str) -> str:
    """Fake rejection vs τ efficiency of every model for ``prong``-prong test candidates."""
    return plotting.rejection_curves(
        curves, workdir / f"rejection_{prong}prong.png", baseline=baseline,
        xlabel="τ efficiency", ylabel="fake rejection", title=f"{prong}-prong").name


def rejection_vs_pt_figure(values: Mapping[str, Sequence[metrics.Rejection | None]],
                           edges: Sequence[float], efficiency: float, workdir: Path) -> str:
    """Fake rejection per candidate-pT bin at the working point ``efficiency``."""
    return btag_plots.rejection_vs_pt(
        values, edges, workdir / "rejection_vs_pt.png",
        ylabel=f"fake rejection at ε_τ = {efficiency:.0%}").name


def confusion_figure(cm: np.ndarray, method: str, workdir: Path) -> str:
    """Row-normalised decay-mode confusion matrix of ``method`` on the test τ."""
    return btag_plots.confusion(cm, DECAY_MODES, workdir / f"modes_{plotting.slug(method)}.png",
                                title=method, what="decay mode").name


def loss_figure(histories: Mapping[str, Sequence[Mapping[str, float]]], workdir: Path) -> str:
    """Training and validation losses of every network."""
    return plotting.loss_curves(histories, workdir / "loss.png").name
