"""The signal-model parameters a scan fits: their grid, MC grids over the same box and the
resolution that measures a fit's accuracy (masses and widths in GeV, TeV inside flows and
fits)::

    space = ParameterSpace.from_config(config)  # params [mx, my], [mwprime, mx, my] or + gx
    space.grid                                   # the flow's training points, GeV tuples
    space.mc_grid([7, 7, 7])                     # evenly spaced over the same box
    space.central_composite()                    # 15 of the 3 x 3 x 3 grid's 27 points
    space.space_filling("latin_hypercube", 15, seed=2)  # 15 points filling the box
    space.tag((3250.0, 430.0, 100.0))            # "(3250, 430, 100) GeV"
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from hepchain.core import metrics
from hepchain.core.errors import UsageError

Point = tuple[float, ...]  # one parameter point [GeV], in the order of ParameterSpace.names


@dataclass(frozen=True)
class Parameter:
    """A scanned mass or width: its label, the observable whose peak measures it and, for a
    width, the mass parameter at whose peak it is measured (its accuracy unit is that peak's
    resolution)."""

    label: str
    observable: str
    peak: str | None = None


PARAMETERS = {"mx": Parameter("m_X", "mj2"), "my": Parameter("m_Y", "mj1"),
              "mwprime": Parameter("m_W'", "mjj"), "gx": Parameter("Gamma_X", "mj2", "mx")}

#: the point designs a flow grid may use instead of a product grid, as their rows name them
DESIGNS = {"central_composite": "central-composite", "latin_hypercube": "Latin-hypercube",
           "sobol": "Sobol", "continuous": "continuous"}
SPACE_FILLING = ("latin_hypercube", "sobol")  # of these, the ones drawn at a given size
#: the design of one mass point per event: every mass spread over the box in one sample
CONTINUOUS = "continuous"


@dataclass(frozen=True)
class ParameterSpace:
    """The scanned parameters (``names``, keys of :data:`PARAMETERS`) and the flow's grid."""

    names: tuple[str, ...]
    grid: list[Point]

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ParameterSpace:
        """``params`` and the product of the ``grid`` values per parameter; the held-out and
        validation points must have one value per parameter."""
        names = tuple(config["params"])
        unknown = [n for n in names if n not in PARAMETERS]
        if unknown or len(set(names)) != len(names) or not names:
            raise UsageError(f"params must be distinct names out of {sorted(PARAMETERS)}, "
                             f"got {list(names)}.")
        for n in names:
            if PARAMETERS[n].peak and PARAMETERS[n].peak not in names:
                raise UsageError(f"params {n} (a width) needs its mass {PARAMETERS[n].peak} "
                                 "among the params: its resolution is that peak's width.")
        if sorted(config["grid"]) != sorted(names):
            raise UsageError(f"grid must give values for exactly the params {list(names)}, got "
                             f"{sorted(config['grid'])}.")
        for key in ("heldout", "validation_points"):
            points = config[key]
            if not isinstance(points, list) or not points or not all(
                    isinstance(p, list) and len(p) == len(names) for p in points):
                raise UsageError(f"{key} must be a list of points with one value per param "
                                 f"{list(names)} (GeV), got {points!r}.")
        grid = [tuple(float(v) for v in p)
                for p in itertools.product(*(config["grid"][n] for n in names))]
        return cls(names, grid)

    @property
    def labels(self) -> list[str]:
        return [PARAMETERS[n].label for n in self.names]

    @property
    def observables(self) -> list[str]:
        """The feature whose peak measures each parameter (jet or dijet mass)."""
        return [PARAMETERS[n].observable for n in self.names]

    def peaks(self, theta: np.ndarray) -> np.ndarray:
        """Where each parameter's peak lies at ``theta`` (any unit): its own value for a mass,
        its particle's mass for a width."""
        return np.array([theta[self.names.index(PARAMETERS[n].peak or n)] for n in self.names])

    @property
    def box(self) -> tuple[np.ndarray, np.ndarray]:
        """Lowest and highest grid value per parameter [GeV]."""
        return np.min(self.grid, axis=0), np.max(self.grid, axis=0)

    def mc_grid(self, shape: list[int]) -> list[Point]:
        """``shape`` (points per parameter) evenly spaced points [GeV, rounded] over the box."""
        if len(shape) != len(self.names) or min(shape) < 2:
            raise UsageError(f"mc_grids points must be {len(self.names)} numbers >= 2 (one per "
                             f"param {list(self.names)}), got {shape}.")
        axes = [np.round(np.linspace(a, b, int(n)))
                for a, b, n in zip(*self.box, shape, strict=True)]
        return [tuple(float(v) for v in p) for p in itertools.product(*axes)]

    def central_composite(self) -> list[Point]:
        """The face-centred central composite design over the box [GeV]: its 2^n corners, 2n
        face centres and centre (n parameters; 15 points for three, where the 3^n grid has 27,
        and the whole 3 x 3 grid for two), all points of ``mc_grid([3] * n)``.

        A response-surface design: enough to pin down a smooth, up to quadratic, dependence on
        every parameter and their pairwise products with far fewer points than a grid.
        """
        n = len(self.names)
        levels = itertools.product(range(3), repeat=n)  # mc_grid's order: 0 low, 1 middle, 2 high
        return [p for p, level in zip(self.mc_grid([3] * n), levels, strict=True)
                if level.count(1) in (0, n - 1, n)]

    def space_filling(self, design: str, size: int, seed: int) -> list[Point]:
        """``size`` points [GeV, rounded] of a space-filling design over the box, drawn from
        ``seed``: ``latin_hypercube`` (one point in each of ``size`` equal slices of every
        parameter; scipy's, its centred discrepancy lowered by random coordinate swaps) or
        ``sobol`` (the scrambled Sobol sequence; ``size`` a power of two, which keeps its
        balance).

        Unlike :meth:`central_composite`, these fill the interior and put no point on a
        corner of the box (one may land on a face once rounded).
        """
        from scipy.stats import qmc

        n = len(self.names)
        if design not in SPACE_FILLING:
            raise UsageError(f"Unknown space-filling design {design!r}; use one of "
                             f"{list(SPACE_FILLING)}.")
        if design == "latin_hypercube" and size >= 2:
            unit = qmc.LatinHypercube(d=n, optimization="random-cd", seed=seed).random(size)
        elif design == "sobol" and size >= 2 and size & (size - 1) == 0:
            unit = qmc.Sobol(d=n, scramble=True, seed=seed).random(size)
        else:
            raise UsageError(f"A {design} design needs a size >= 2 (a power of two for "
                             f"sobol), got {size}.")
        lo, hi = self.box
        points = [tuple(float(v) for v in p) for p in np.round(lo + (hi - lo) * unit)]
        if len(set(points)) < size:  # each point is its own sample: none may repeat
            raise UsageError(f"The {design} design of {size} points repeats a point once "
                             "rounded to GeV; use fewer points or a wider box.")
        return points

    @staticmethod
    def tag(point: Point) -> str:
        """``"(430, 100) GeV"``: how a point is named in metric rows and figures."""
        return "(" + ", ".join(f"{v:.0f}" for v in point) + ") GeV"

    def options(self, point: Point) -> dict[str, float]:
        """The producer options that set ``point``."""
        return dict(zip(self.names, point, strict=True))

    def spread_options(self, margin: float = 0.0) -> dict[str, float]:
        """The producer options that spread every scanned mass over the box widened by
        ``margin`` of its side at each end, one mass point per event (``mx`` and ``mx_max``
        ...: the window's low and high edge [GeV]); a width is no per-event quantity and
        cannot be spread."""
        widths = [n for n in self.names if PARAMETERS[n].peak]
        if widths:
            raise UsageError(f"A continuous flow grid spreads masses only; the params {widths} "
                             "are widths (one per sample, not per event).")
        lo, hi = self.box
        lo, hi = lo - margin * (hi - lo), hi + margin * (hi - lo)
        if not (margin >= 0 and np.all(lo > 0)):
            raise UsageError(f"A continuous flow grid's margin must be >= 0 and keep every mass "
                             f"above 0, got {margin} (lowest mass {lo.min():.0f} GeV).")
        return {k: float(v) for n, a, b in zip(self.names, lo, hi, strict=True)
                for k, v in ((n, a), (f"{n}_max", b))}


def mass_resolution(x: np.ndarray, names: list[str], theta: np.ndarray,
                    observables: list[str], window: float = 0.3) -> np.ndarray:
    """Gaussian-core width [TeV] of each parameter's mass peak (``observables[j]``, a column
    of ``x`` named in ``names``, around ``theta[j]`` [TeV]).

    Only entries within ±``window`` (relative) of the true mass enter, so that events whose
    X decay is not contained in the jet (a second, low-mass population) do not inflate the
    width. A failed core fit gives NaN.
    """
    out = []
    for name, mass in zip(observables, theta, strict=True):
        v = x[:, names.index(name)]
        core = metrics.gaussian_core_fit(v[np.abs(v - mass) < window * mass])
        out.append(core.sigma if core.valid else float("nan"))
    return np.array(out)
