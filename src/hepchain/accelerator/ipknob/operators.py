"""Simulated operators: each chooses a set value from what the scan shows, with own habits.

An operator looks at the per-step means of the readouts and scores every step::

    score_j = L̃_sp,j / max L̃_sp − w_size Σ_rings (σ_j / min σ − 1)
              − w_bg Σ_rings max(0, R_j / min R − 1 − tol)

(L̃_sp smoothed over ±``smooth_steps`` steps), takes the best step, optionally refines it by a
parabola through the neighbouring scores, pulls it toward the knob's value before the scan
(``conservatism``), rounds it to a fraction of the step (``resolution``) and sets it by hand
(``noise``, rms in steps). The models never see who the operator was.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hepchain.accelerator.ipknob.scan import step_means


@dataclass(frozen=True)
class Operator:
    """One operator's habits (dimensionless; ``noise`` and ``resolution`` in scan steps)."""

    name: str
    smooth_steps: int = 1
    size_weight: float = 0.3
    bg_tolerance: float = 0.05
    bg_weight: float = 2.0
    interpolate: bool = True
    conservatism: float = 0.0
    resolution: float = 0.5
    noise: float = 0.15

    def choose(self, scan: dict[str, Any], rng: np.random.Generator) -> float:
        """The set value (knob units) this operator picks after ``scan``."""
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return self._choose(scan, rng)

    def _choose(self, scan: dict[str, Any], rng: np.random.Generator) -> float:
        u, lsp, s1, s2, b1, b2 = step_means(
            scan["knob_value"], scan["lsp"], scan["ler_size"], scan["her_size"],
            scan["ler_background"], scan["her_background"])
        order = np.argsort(u)
        u, lsp, s1, s2, b1, b2 = (a[order] for a in (u, lsp, s1, s2, b1, b2))
        w = self.smooth_steps
        smooth = np.array([lsp[max(0, j - w): j + w + 1].mean() for j in range(len(u))])
        score = smooth / smooth.max()
        score -= self.size_weight * (s1 / s1.min() - 1 + s2 / s2.min() - 1)
        for b in (b1, b2):
            score -= self.bg_weight * np.clip(b / b.min() - 1 - self.bg_tolerance, 0, None)
        score = np.nan_to_num(score, nan=-np.inf)
        j = int(np.argmax(score))
        step = (u[-1] - u[0]) / (len(u) - 1)
        value = u[j]
        if self.interpolate and 0 < j < len(u) - 1:
            left, mid, right = score[j - 1: j + 2]
            curv = left - 2 * mid + right
            if curv < 0:
                value += step * float(np.clip(0.5 * (left - right) / curv, -0.5, 0.5))
        value = (1 - self.conservatism) * value + self.conservatism * float(u.mean())
        if self.resolution > 0:
            grid = self.resolution * step
            value = u[0] + round((value - u[0]) / grid) * grid
        return float(value + self.noise * step * rng.standard_normal())


def operators_from_config(items: list[dict[str, Any]]) -> list[Operator]:
    """The operator pool from the preset's ``operators:`` list."""
    return [Operator(**item) for item in items]
