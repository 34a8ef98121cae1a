"""Baselines for the set value, from the per-step means of L_sp (knob units).

- ``max_lsp``: the scanned knob value with the highest step-mean L_sp (seed 004's baseline);
- ``peak_fit``: the vertex of a least-squares parabola in the knob value, fitted to
  ``log L_sp`` (a Gaussian peak) or to ``L_sp⁻²`` (exact for the geometric knob response
  L ∝ 1/sqrt(σ₀² + k (u − u₀)²) of reference §6.6); a fit without a peak inside the scan falls
  back to ``max_lsp``, and the vertex is clipped to the scanned range.
"""

from __future__ import annotations

import numpy as np


def max_lsp(u: np.ndarray, lsp: np.ndarray) -> float:
    """Knob value at the maximum step-mean L_sp."""
    return float(np.asarray(u)[int(np.argmax(lsp))])


def peak_fit(u: np.ndarray, lsp: np.ndarray, model: str = "inverse_square") -> float:
    """Vertex of a parabola fitted to ``log L_sp`` ('gaussian') or ``L_sp⁻²`` ('inverse_square')."""
    u, lsp = np.asarray(u, float), np.asarray(lsp, float)
    ok = lsp > 0
    if ok.sum() < 3:
        return max_lsp(u, lsp)
    uu, ll = u[ok], lsp[ok]
    if model == "gaussian":
        y, sign = np.log(ll / ll.max()), -1.0
    elif model == "inverse_square":
        y, sign = (ll.max() / ll) ** 2, 1.0
    else:
        raise ValueError(f"unknown peak model {model!r}; use 'gaussian' or 'inverse_square'")
    centre, width = uu.mean(), np.ptp(uu) or 1.0
    a, b, _ = np.polyfit((uu - centre) / width, y, 2)
    if sign * a <= 0:
        return max_lsp(u, lsp)
    vertex = centre - width * b / (2 * a)
    return float(np.clip(vertex, uu.min(), uu.max()))
