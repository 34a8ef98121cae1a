"""Calorimeter validation plots (saved through :func:`hepchain.core.plotting.save`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from hepchain.calo.geometry import ECalGeometry
from hepchain.calo.validation import expected_tmax, longitudinal_profile
from hepchain.core import plotting


def profile_comparison(samples: Mapping[str, tuple[float, np.ndarray]], geometry: ECalGeometry,
                       path: str | Path) -> Path:
    """Normalised mean longitudinal profiles vs depth [X0]; ``samples[label] = (E, showers)``;
    dotted lines mark t_max = ln(E/E_c) − 0.5."""
    fig, ax = plt.subplots()
    t = geometry.depth_x0()
    for i, (label, (energy, showers)) in enumerate(samples.items()):
        prof = longitudinal_profile(showers)
        ax.plot(t, prof / prof.sum(), marker="o", ms=3, color=f"C{i}", label=label)
        ax.axvline(expected_tmax(energy, geometry), color=f"C{i}", ls=":", lw=1)
    ax.set(xlabel="depth [X0]", ylabel="fraction of visible energy per layer")
    ax.legend()
    return plotting.save(fig, path)


def radial_profiles(samples: Mapping[str, np.ndarray], geometry: ECalGeometry,
                    path: str | Path) -> Path:
    """Mean visible energy vs pixel distance from the axis [mm] (log y)."""
    fig, ax = plt.subplots()
    c = (np.arange(geometry.n_pix) + 0.5) * geometry.pixel - geometry.half_width
    r = np.hypot(*np.meshgrid(c, c)).ravel()
    edges = np.arange(0, r.max() + geometry.pixel, geometry.pixel)
    for label, showers in samples.items():
        xy = showers.sum(axis=1).mean(axis=0).ravel()
        h, _ = np.histogram(r, edges, weights=xy)
        n, _ = np.histogram(r, edges)
        ax.step(edges[:-1], np.where(n > 0, h / np.maximum(n, 1), np.nan), where="post",
                label=label)
    ax.axvline(geometry.effective_moliere_mm(), color="grey", ls=":", label="R_M (W + gap)")
    ax.set(xlabel="r [mm]", ylabel="mean visible energy per pixel [MeV]", yscale="log")
    ax.legend()
    return plotting.save(fig, path)
