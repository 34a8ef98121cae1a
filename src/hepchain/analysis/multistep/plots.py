"""Multi-step figures, built on :mod:`hepchain.core.plotting`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from hepchain.core import plotting


def roc_figure(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], workdir: Path) -> str:
    """Step (b) ROC curves of every strategy on the test events."""
    return plotting.roc_curves(curves, workdir / "roc_step_b.png",
                               title="H→ττ vs Z→ττ (test events)").name


def scan_figure(weights: Sequence[float], aucs: Sequence[float], errors: Sequence[float],
                lines: Mapping[str, float], workdir: Path) -> str:
    """Step (b) test AUC against the static weight w_a, other strategies as lines."""
    fig, ax = plt.subplots()
    ax.errorbar(weights, aucs, yerr=errors, fmt="o-", label="connected, static w_a")
    for i, (name, auc) in enumerate(lines.items()):
        ax.axhline(auc, ls="--", color=f"C{i + 1}", label=name)
    ax.set(xlabel="static weight w_a of the tau-ID loss", ylabel="step (b) AUC")
    ax.legend()
    return plotting.save(fig, workdir / "static_scan.png").name


def weights_figure(histories: Mapping[str, Sequence[Mapping[str, float]]],
                   workdir: Path) -> str:
    """Per-epoch loss weights of the dynamic weightings."""
    fig, ax = plt.subplots()
    for i, (name, epochs) in enumerate(histories.items()):
        for key, ls in (("weight_a", "-"), ("weight_b", "--")):
            ax.plot([e[key] for e in epochs], color=f"C{i}", ls=ls, label=f"{name}: {key}")
    ax.set(xlabel="epoch", ylabel="loss weight")
    ax.legend()
    return plotting.save(fig, workdir / "dynamic_weights.png").name
