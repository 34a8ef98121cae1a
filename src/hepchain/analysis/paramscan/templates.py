"""The Monte-Carlo alternative to the flow: histogram templates of the flow's observables on a
separately generated parameter grid, a binned-likelihood scan (:func:`massfit.grid_scan`) at
every pseudo-dataset, and the template binning chosen on validation points::

    scan = template_scan(samples, columns, n_mass=2, tests=held_out, validation=(vals, val_res),
                         truth=truth, resolution=res, bins=[4, 8], shape_bins=[1, 2],
                         forms=["joint", "product"])
    scan.fits[(430.0, 100.0)]   # fitted parameters [TeV]

A template is one histogram over all observables (``joint``) or the product of one 1-D
histogram per observable (``product``: dense bins at any dimension, correlations ignored). The
mass bins are quantiles of the pooled template events (``quantile``) or of equal width
(``uniform``, :func:`bin_edges`); the other observables' bins are always quantiles.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hepchain.analysis import massfit
from hepchain.analysis.paramscan.parameters import Point
from hepchain.core.errors import UsageError

FORMS = ("joint", "product")
EDGES = ("quantile", "uniform")


def quantile_edges(pooled: np.ndarray, bins: int, shape_bins: int,
                   n_mass: int = 2) -> list[np.ndarray]:
    """Quantile bin edges of template events ``pooled`` (the ``n_mass`` parameter observables
    first): ``bins`` per mass axis and ``shape_bins`` per other observable."""
    counts = [bins] * n_mass + [shape_bins] * (pooled.shape[1] - n_mass)
    return [np.quantile(pooled[:, j], np.linspace(0, 1, int(n) + 1))
            for j, n in enumerate(counts)]


def bin_edges(pooled: np.ndarray, bins: int, shape_bins: int, n_mass: int = 2,
              scheme: str = "quantile") -> list[np.ndarray]:
    """:func:`quantile_edges`, or with ``scheme="uniform"`` the ``n_mass`` mass axes cut into
    ``bins`` of equal width [GeV] between the pooled events' 1st and 99th percentiles, the
    outer two stretched to their minimum and maximum (every template event binned)."""
    if scheme == "quantile":
        return quantile_edges(pooled, bins, shape_bins, n_mass)
    mass = []
    for j in range(n_mass):
        lo, hi = np.percentile(pooled[:, j], [1, 99])
        edges = np.linspace(lo, hi, bins + 1)
        edges[[0, -1]] = pooled[:, j].min(), pooled[:, j].max()
        mass.append(edges)
    return mass + quantile_edges(pooled[:, n_mass:], shape_bins, shape_bins, n_mass=0)


def scan_points(templates: dict[tuple[float, ...], np.ndarray], events: dict[Point, np.ndarray],
                truth: dict[Point, np.ndarray], resolution: dict[Point, np.ndarray],
                edges: list[np.ndarray], form: str = "joint"
                ) -> tuple[dict[Point, np.ndarray], float, float]:
    """Template scan at every point of ``events`` (keyed by the point [GeV]; templates keyed
    by θ [TeV], same parameter order; ``form`` one of :data:`FORMS`): fitted θ [TeV] per
    point, the worst |fit − true| / resolution over the points and the scans' seconds."""
    fits, seconds = {}, 0.0
    for p, x in events.items():
        scan = massfit.grid_scan(templates, x, edges, product=form == "product")
        fits[p], seconds = scan.theta, seconds + scan.seconds
    worst = float(np.max([np.abs(f - truth[p]) / resolution[p] for p, f in fits.items()]))
    return fits, worst, seconds


def bootstrap_worst(templates: dict[tuple[float, ...], np.ndarray],
                    events: dict[Point, np.ndarray], truth: dict[Point, np.ndarray],
                    resolution: dict[Point, np.ndarray], edges: list[np.ndarray],
                    replicas: int, seed: int, form: str = "joint") -> np.ndarray:
    """The worst pull of :func:`scan_points` with every template's events resampled with
    replacement, ``replicas`` times (the pseudo-data ``events`` and the binning fixed): how
    much the worst pull moves with the grid's own MC statistics."""
    rng = np.random.default_rng(seed)
    worst = []
    for _ in range(replicas):
        boot = {t: v[rng.integers(0, len(v), len(v))] for t, v in templates.items()}
        worst.append(scan_points(boot, events, truth, resolution, edges, form)[1])
    return np.array(worst)


@dataclass(frozen=True)
class TemplateScan:
    """One MC grid's scan: chosen binning, template form and edge scheme, fits at the test
    points [TeV], worst pull, the test scans' seconds, the worst validation pull of every
    (bins, shape bins, form, edges) tried and the worst test pull of each template bootstrap
    replica (:func:`bootstrap_worst`; empty without)."""

    bins: int
    shape_bins: int
    form: str
    edges: str
    fits: dict[Point, np.ndarray]
    worst: float
    seconds: float
    validation: dict[tuple[int, int, str, str], float]
    bootstrap: np.ndarray


def template_scan(samples: dict[Point, np.ndarray], columns: list[int], n_mass: int,
                  tests: dict[Point, np.ndarray],
                  validation: tuple[dict[Point, np.ndarray], dict[Point, np.ndarray]],
                  truth: dict[Point, np.ndarray], resolution: dict[Point, np.ndarray],
                  bins: list[int], shape_bins: list[int], replicas: int = 0,
                  seed: int = 0, forms: list[str] | tuple[str, ...] = ("joint",),
                  schemes: list[str] | tuple[str, ...] = ("quantile",)) -> TemplateScan:
    """Scan ``tests`` with templates of ``samples`` (events per grid point [GeV], feature
    columns reordered by ``columns``, the ``n_mass`` parameter observables first).

    Every binning ``bins`` × ``shape_bins`` (bins per mass / per other observable; 1 = not
    used) of every template form in ``forms`` and mass-edge scheme in ``schemes``
    (:func:`bin_edges`) is tried on the ``validation`` points (events, resolution); the one
    with the smallest worst pull there (on a tie the first in the order schemes, forms, bins,
    shape_bins) is applied to the test points, then to ``replicas`` template bootstraps (rng
    ``seed``).
    """
    check_settings(bins, shape_bins, forms, schemes)
    pooled = np.concatenate(list(samples.values()))[:, columns]
    templates = {tuple(np.array(p) / 1000): v[:, columns] for p, v in samples.items()}
    cut = lambda pts: {p: x[:, columns] for p, x in pts.items()}  # noqa: E731
    vals, val_res = validation
    tried = {(b, s, f, e): scan_points(templates, cut(vals), truth, val_res,
                                       bin_edges(pooled, b, s, n_mass, e), f)[1]
             for e in schemes for f in forms for b in bins for s in shape_bins}
    b, s, f, e = min(tried, key=tried.get)
    edges = bin_edges(pooled, b, s, n_mass, e)
    fits, worst, seconds = scan_points(templates, cut(tests), truth, resolution, edges, f)
    boot = bootstrap_worst(templates, cut(tests), truth, resolution, edges, replicas, seed, f)
    return TemplateScan(b, s, f, e, fits, worst, seconds, tried, boot)


def check_settings(bins: object, shape_bins: object, forms: object = ("joint",),
                   schemes: object = ("quantile",)) -> None:
    """One clear error for malformed template-scan settings, before any generation."""
    for key, value, allowed, what in (("scan_templates", forms, FORMS, "template forms"),
                                      ("scan_edges", schemes, EDGES, "mass-edge schemes")):
        if not isinstance(value, list | tuple) or not value or not set(value) <= set(
                allowed) or len(set(value)) != len(value):
            raise UsageError(f"{key} must be a list of distinct {what} out of "
                             f"{list(allowed)}, got {value!r}.")
    if not isinstance(bins, list) or not bins or not all(
            isinstance(b, int) and b >= 2 for b in bins):
        raise UsageError(f"scan_bins must be a list of bin counts >= 2, got {bins!r}.")
    if not isinstance(shape_bins, list) or not shape_bins or not all(
            isinstance(b, int) and b >= 1 for b in shape_bins):
        raise UsageError(f"scan_bins_shape must be a list of bin counts >= 1, got "
                         f"{shape_bins!r}.")
