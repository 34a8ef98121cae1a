"""Figures of the tagger zoo, built on :mod:`hepchain.core.plotting`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from hepchain.core import plotting


def rejection_figure(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], path: Path,
                     baseline: str) -> str:
    """Background rejection vs signal efficiency (ROC in the tagging convention) with a ratio
    panel to ``baseline``; ``curves[model] = (is_signal, score)`` of the test jets."""
    return plotting.rejection_curves(curves, path, baseline=baseline,
                                     title="top vs QCD, test jets").name


def loss_figure(histories: Mapping[str, list[dict[str, float]]], path: Path) -> str:
    """Training and validation loss per epoch of every network."""
    return plotting.loss_curves(histories, path).name
