"""Accuracy against compute for the flow and every MC grid, and the compute ratio at
resolution-level accuracy (every parameter within its mass resolution at every held-out
point)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from hepchain.analysis import plots
from hepchain.analysis.paramscan.parameters import ParameterSpace
from hepchain.core.result import Result

RATIO_NAME = "compute ratio at resolution-level accuracy: MC grid / flow"
RATIO_METHOD = "cheapest MC grid within resolution / flow"
BOOTSTRAP_NAME = ("std of the worst |fit - true| / resolution over template bootstraps "
                  "(the MC grid's own statistics)")


def grid_suffix(grid: str, events: int | None = None, members: int = 1) -> str:
    """", 3x3x3 grid" for a flow on one of ``flow_grids``, "" for the main ``grid``;
    ", 3x3x3 grid x 125 events" when the flow's grid states its own ``events`` per point;
    ", 3x3x3 grid x 125 events, 3-flow ensemble" for an ensemble of ``members`` flows."""
    if not grid:
        return ""
    return (f", {grid} grid" + (f" x {events} events" if events else "")
            + (f", {members}-flow ensemble" if members > 1 else ""))


class GridCost(NamedTuple):
    """One MC grid's template scan: its label, generated events per grid point, compute [s]
    (generation + the scans of one pseudo-dataset), worst |fit - true| / resolution and its
    std over the template bootstraps (NaN without)."""

    label: str
    events: int
    compute_s: float
    worst: float
    worst_std: float = float("nan")


@dataclass(frozen=True)
class FlowCost:
    """One trained flow: its grid's name ("3x3x3"; "" for the main ``grid``), size and events
    per point (named in the flow's rows when ``events_named``: its grid's own
    ``events_per_point``), wall seconds of the grid's generation, training and one fit, its
    worst |fit - true| / resolution over the held-out points with that fit's curvature error
    (in resolutions), and its number of flows (``members`` > 1: an ensemble, trained one after
    the other, so its training seconds are their sum)."""

    grid: str
    points: int
    events: int
    events_named: bool
    generation_s: float
    training_s: float
    fit_s: float
    worst: float
    worst_err: float
    members: int = 1

    @property
    def suffix(self) -> str:
        """What the flow's method names end with: ", 3x3x3 grid" ("" for the main grid),
        with its events per point and ensemble when stated (:func:`grid_suffix`)."""
        return grid_suffix(self.grid, self.events if self.events_named else None, self.members)

    @property
    def design(self) -> str:
        """"grid" for a product grid (the main one included), else the design's name
        ("central-composite", "Latin-hypercube", "Sobol"); an ensemble says so
        ("Sobol, 3-flow ensemble")."""
        name = self.grid.split("-point ", 1)[1] if "-point " in self.grid else "grid"
        return name + (f", {self.members}-flow ensemble" if self.members > 1 else "")

    @property
    def label(self) -> str:
        """The method name of the flow's fit rows."""
        return f"flow gradient fit{self.suffix}"

    @property
    def compute_s(self) -> float:
        """Generation + training + one fit [s]."""
        return self.generation_s + self.training_s + self.fit_s


def compute_summary(result: Result, workdir: Path, config: dict[str, Any],
                    space: ParameterSpace, flows: list[FlowCost],
                    mc: list[GridCost]) -> None:
    """Rows, figure and verdict: ``flows`` = the main flow and those on ``flow_grids``, ``mc``
    = one :class:`GridCost` per MC grid (in the figure one colour per design, the MC grids
    one more, and one marker per events per point)."""
    generation = {}  # one row per grid: an ensemble shares its grid with a single flow
    for f in flows:
        generation[f"flow's grid, {f.points} points x {f.events} events"
                   + (f" ({f.grid})" if f.grid else "")] = f.generation_s
    for grid, seconds in generation.items():
        result.add("grid generation time", grid, seconds, unit="s")
    for f in flows:
        result.add("flow training time", f"flow (once, all grid points){f.suffix}",
                   f.training_s, unit="s")
        result.add("worst |fit - true| / resolution over held-out points", f.label, f.worst,
                   std=f.worst_err if np.isfinite(f.worst_err) else None)
        result.add("total compute (generation + training + one fit)", f.label, f.compute_s,
                   unit="s")
    for g in mc:
        result.add("worst |fit - true| / resolution over held-out points", g.label, g.worst,
                   std=g.worst_std if np.isfinite(g.worst_std) else None)
        if np.isfinite(g.worst_std):  # a row of its own: a bench's ± is the seed spread
            result.add(BOOTSTRAP_NAME, g.label, g.worst_std)
        result.add("total compute (generation + training + one fit)", g.label, g.compute_s,
                   unit="s")
    path = plots.families(
        [(f"flow, {f.design}", f.events, f.compute_s, f.worst) for f in flows]
        + [("MC grid scan", g.events, g.compute_s, g.worst) for g in mc],
        workdir / "accuracy_vs_compute.png", "compute: generation + training + one fit [s]",
        "worst |fit - true| / resolution", logx=True, hline=1.0,
        title="resolution-level accuracy: worst pull <= 1")
    result.figures.append(path.name)
    result.notes.append(
        f"Flow grids: {', '.join(f'{f.points} x {f.events}' for f in flows)} points x events "
        f"over ({', '.join(space.labels)}); held-out points {config['heldout']}. Every MC "
        "grid is generated separately over the same mass box and timed in the same run. "
        "Resolution-level accuracy: |fit - true| <= mass resolution for every parameter at "
        "every held-out point; the ratio takes the cheapest flow and the cheapest MC grid that "
        "reach it (one run seed; bench gives the spread over seeds).")
    result.notes.append("Goal (>= 100x less compute than the MC grid scan at resolution-"
                        f"level accuracy): {_verdict(result, flows, mc)}.")


def _verdict(result: Result, flows: list[FlowCost], mc: list[GridCost]) -> str:
    """Add the ratio row (one fixed name, so bench reports its spread) and say what it shows."""
    within = [f for f in flows if f.worst <= 1.0]  # NaN (failed resolution fit) is not within
    if not within:
        return "no flow fit is within the resolution at every held-out point"
    flow = min(within, key=lambda f: f.compute_s)
    good = [(g.compute_s, g.label) for g in mc if g.worst <= 1.0]
    if good:
        c, label = min(good)
        ratio = c / flow.compute_s
        result.add(RATIO_NAME, RATIO_METHOD, ratio, higher_is_better=True)
        return (f"{ratio:.1f}x ({label} / {flow.label}, {flow.points} points; one seed — "
                f"bench gives the spread) -> {'reached' if ratio >= 100 else 'NOT reached'}")
    c, label = max((g.compute_s, g.label) for g in mc)
    ratio = c / flow.compute_s
    result.add(RATIO_NAME, RATIO_METHOD, ratio, limit="lower", higher_is_better=True)
    return (f"> {ratio:.1f}x (no MC grid reached it; largest: {label}; flow: {flow.label}, "
            f"{flow.points} points) -> {'reached' if ratio >= 100 else 'not shown'}")
