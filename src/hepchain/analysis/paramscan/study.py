"""Study ``paramscan``: a normalizing flow conditioned on the signal-model parameters
(seed 001; Saito et al., arXiv:2409.13201).

The W' → X Y (X, Y → qq̄) signal is generated on a grid of the scanned masses (``params``:
(m_X, m_Y), or (m_W', m_X, m_Y)); one flow p(x | θ) is trained on all grid points (x = the
jet masses, τ21 and, when m_W' is scanned, the dijet mass; TeV); with ``flow_grids``, further
flows on coarser grids over the same box are measured the same way. At held-out points, never
used in training:

- interpolation: flow samples vs generated events (classifier AUC ≈ 0.5 is perfect; the AUC of
  the nearest grid point's events vs the held-out events shows what no interpolation gives),
  and the mean KS distance of the 1-D marginals;
- mass fit: θ by gradient descent on the flow likelihood of the held-out events (curvature
  errors) versus MC grid scans with histogram templates of the same observables
  (:mod:`.templates`), each on its own separately generated grid (``mc_grids``: the flow's grid
  and finer ones), the binning chosen on separate ``validation_points``; accuracy relative to
  the mass resolution (Gaussian-core width of each parameter's mass peak);
- compute: generation + training + fit of the flow against generation + scan of each MC grid,
  all measured in the same run, and the ratio at equal (resolution-level) accuracy
  (:mod:`.summary`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hepchain.analysis import flows, massfit, plots
from hepchain.analysis.classifier import fitter
from hepchain.analysis.paramscan import templates
from hepchain.analysis.paramscan.data import MIN_SELECTED, load_continuous, load_points
from hepchain.analysis.paramscan.parameters import (
    CONTINUOUS,
    DESIGNS,
    PARAMETERS,
    SPACE_FILLING,
    ParameterSpace,
    Point,
    mass_resolution,
)
from hepchain.analysis.paramscan.summary import FlowCost, GridCost, compute_summary, grid_suffix
from hepchain.core import twosample
from hepchain.core.errors import DataError, UsageError
from hepchain.core.result import Result
from hepchain.core.seeding import derive_seed
from hepchain.core.study import Study
from hepchain.core.threads import set_torch_threads

Rows = dict[tuple[str, str], float]  # (metric, method) -> value, added to the result at the end
_DESIGN_FORMS = (" or {design: central_composite} or {design: latin_hypercube | sobol, size: n}"
                 " or {design: continuous, size: events} (no events_per_point; optionally"
                 " margin, a fraction >= 0 of the box side added at each end, and flat: true,"
                 " the masses drawn flat over the box)")
_ENSEMBLE = " and ensemble (flows trained on the grid, a whole number >= 1)"


@dataclass(frozen=True)
class FlowGrid:
    """A flow's training grid: the features of each point's events [GeV], the grid's
    generation seconds, its name ("3x3x3"; "" for the main ``grid``, whose rows carry no grid
    name), its generated events per point, whether its rows name them (a grid of
    ``flow_grids`` with its own ``events_per_point``) and how many flows are trained on it
    (``ensemble``; 1: one flow)."""

    train: dict[Point, np.ndarray]
    generation_s: float
    name: str
    events: int
    events_named: bool
    members: int = 1


@dataclass(frozen=True)
class Heldout:
    """The held-out points' events (features [GeV]), true masses and resolutions [TeV]."""

    events: dict[Point, np.ndarray]
    truth: dict[Point, np.ndarray]
    resolution: dict[Point, np.ndarray]


class ParamScanStudy(Study):
    name = "paramscan"
    description = "Flow p(x | masses) for interpolation and gradient-based mass fits vs MC scan"
    seed_doc = "001"

    def run(self, config: dict[str, Any], workdir: Path, seed: int) -> Result:
        set_torch_threads(int(config.get("threads", 1)))
        space, names = check_settings(config)
        result = Result(study=self.name, preset="")
        events = int(config["data"]["events_per_point"]), int(config["data"]["events_heldout"])
        train, t_grid, manifests = load_points(config, space, space.grid, events[0])
        held = [tuple(map(float, p)) for p in config["heldout"]]
        vals = [tuple(map(float, p)) for p in config["validation_points"]]
        tests, _, man_tests = load_points(config, space, held, events[1])
        validation, _, man_vals = load_points(config, space, vals, events[1])
        result.provenance.datasets = manifests + man_tests + [m for m in man_vals
                                                             if m not in man_tests]
        truth = {p: np.array(p) / 1000 for p in [*held, *vals]}
        res = {p: mass_resolution(x, names, space.peaks(truth[p]), space.observables)
               for p, x in tests.items()}
        val_res = {p: mass_resolution(x, names, space.peaks(truth[p]), space.observables)
                   for p, x in validation.items()}
        rows: Rows = {}
        at = Heldout(tests, truth, res)
        main = FlowGrid(train, float(np.sum(t_grid)), "", events[0], False)
        fitted = [measure_flow(g, space, at, names, config, seed, rows, workdir, result)
                  for g in [main, *(coarser_grid(config, space, g, result)
                                    for g in config["flow_grids"])]]
        add_resolution(result, space, res)
        mc = [mc_grid(config, space, g, tests, (validation, val_res), truth, res, names, rows,
                      result.provenance.datasets) for g in config["mc_grids"]]
        for (name, method), value in rows.items():
            unit = ("s" if "time" in name else
                    "GeV" if name.startswith(tuple(space.labels)) else "")
            result.add(name, method, value, unit=unit, n=int(np.isfinite(value)))
        compute_summary(result, workdir, config, space, fitted, mc)
        return result


def check_settings(config: dict[str, Any]) -> tuple[ParameterSpace, list[str]]:
    """The parameter space and feature names, or one clear error before any generation."""
    space = ParameterSpace.from_config(config)
    names = list(config["features"])
    missing = [o for o in space.observables if o not in names]
    if missing:
        raise UsageError(f"paramscan features must include {' and '.join(space.observables)} "
                         f"(the masses that measure {', '.join(space.labels)}); missing "
                         f"{missing}.")
    templates.check_settings(config["scan_bins"], config["scan_bins_shape"],
                             config["scan_templates"], config["scan_edges"])
    for key in ("mc_grids", "flow_grids"):  # the template scan needs at least one MC grid
        grids, flows = config[key], key == "flow_grids"
        if not isinstance(grids, list) or not (grids or flows) or not all(
                _grid_entry_ok(g, flows) for g in grids):
            raise UsageError(f"{key} must be a{' non-empty' * (not flows)} list of "
                             f"{{points: [n per param]}}"
                             f"{_DESIGN_FORMS * flows}, optionally "
                             f"with events_per_point (a whole number >= 1)"
                             f"{_ENSEMBLE * flows}, got {grids!r}.")
    if {tuple(map(float, p)) for p in config["validation_points"]} & {
            tuple(map(float, p)) for p in config["heldout"]}:
        raise UsageError("validation_points must differ from the heldout points: the MC "
                         "template binning is chosen on them.")
    on_grid = set(space.grid).union(*(flow_points(space, g, config["data"]["seed"])[0]
                                      for g in [*config["mc_grids"], *config["flow_grids"]]))
    for key in ("heldout", "validation_points"):
        hits = [p for p in config[key] if tuple(map(float, p)) in on_grid]
        if hits:
            raise UsageError(f"{key} {hits} lie on a grid the flows or the MC scans use "
                             "(grid, flow_grids, mc_grids); points must be off every grid.")
    return space, names


def fit_flow(train: dict[Point, np.ndarray], config: dict[str, Any], seed: int,
             members: int = 1) -> flows.AnyFlow:
    """The flow on every grid point's events (θ in TeV), a fifth held out for early stopping;
    with ``members`` > 1 an equal-weight ensemble of that many flows, each trained from its
    own seed on the same split."""
    x = np.concatenate(list(train.values()))
    c = np.concatenate([np.tile(np.array(p) / 1000, (len(v), 1)) for p, v in train.items()])
    perm = np.random.default_rng(derive_seed(seed, "validation split")).permutation(len(x))
    n_val = len(perm) // 5
    fitted = [flows.fit_flow(x[perm[n_val:]], c[perm[n_val:]], x[perm[:n_val]],
                             c[perm[:n_val]], config["flow"], config["train"], s)[0]
              for s in ([seed] if members == 1 else
                        [derive_seed(seed, "ensemble member", k) for k in range(members)])]
    return fitted[0] if members == 1 else flows.FlowEnsemble(fitted)


def _grid_entry_ok(grid: Any, designs: bool) -> bool:
    """Whether ``grid`` is ``{points: [...]}`` or (``designs``) ``{design: central_composite}``
    or ``{design: latin_hypercube | sobol, size: n}``, optionally with a whole
    ``events_per_point`` >= 1 and (``designs``: a flow's grid) a whole ``ensemble`` >= 1, and
    nothing else."""
    if not isinstance(grid, dict) or not set(grid) <= {"points", "design", "size",
                                                       "events_per_point", "ensemble", "margin",
                                                       "flat"}:
        return False
    if not designs and "ensemble" in grid:
        return False
    shape = isinstance(grid.get("points"), list) and set(grid) <= {"points", "events_per_point",
                                                                   "ensemble"}
    kind = grid.get("design")
    margin = grid.get("margin", 0)
    if (kind != CONTINUOUS and ("margin" in grid or "flat" in grid)) or not (
            isinstance(margin, int | float) and not isinstance(margin, bool) and margin >= 0
            ) or not isinstance(grid.get("flat", False), bool):
        return False  # only a continuous sample reaches beyond the box or draws its masses
    if kind == CONTINUOUS and ("events_per_point" in grid or type(grid.get("size")) is not int
                               or grid["size"] < 1):
        return False  # one event per mass point, a whole number >= 1 of events
    sized = type(grid.get("size")) is int if kind in (*SPACE_FILLING, CONTINUOUS) else (
        "size" not in grid and kind == "central_composite")
    design = designs and sized and "points" not in grid
    events, members = grid.get("events_per_point", 1), grid.get("ensemble", 1)
    return ((shape or design) and type(events) is int and events >= 1
            and type(members) is int and members >= 1)


def flow_points(space: ParameterSpace, grid: dict[str, Any], seed: int) -> tuple[list[Point], str]:
    """The points [GeV] and name of one entry of ``flow_grids`` (or ``mc_grids``): ``points``
    per param evenly spaced over the box ("3x3x3"), ``design: central_composite``
    ("15-point central-composite") or a space-filling design of ``size`` points drawn from
    a seed derived from ``seed`` (the data seed: the same points in every run) and the
    design's name ("15-point Latin-hypercube"); ``design: continuous`` has no fixed points
    (each of its ``size`` events draws its own: :func:`continuous_grid`)."""
    if grid.get("design") == CONTINUOUS:
        margin = grid.get("margin", 0)
        space.spread_options(margin)  # a width cannot be spread: refused before generation
        notes = [f"box ±{100 * margin:g}%"] if margin else []
        if grid.get("flat"):
            notes.append("flat masses")
        return [], f"{grid['size']}-point {DESIGNS[CONTINUOUS]}" + (
            f" ({', '.join(notes)})" if notes else "")
    if "points" in grid:
        return space.mc_grid(grid["points"]), "x".join(map(str, grid["points"]))
    if grid["design"] == "central_composite":
        points = space.central_composite()
    else:
        points = space.space_filling(grid["design"], grid["size"],
                                     derive_seed(seed, grid["design"], "design"))
    return points, f"{len(points)}-point {DESIGNS[grid['design']]}"


def coarser_grid(config: dict[str, Any], space: ParameterSpace, grid: dict[str, Any],
                 result: Result) -> FlowGrid:
    """One of ``flow_grids`` (its points: :func:`flow_points`), of ``events_per_point`` events
    each (default ``data.events_per_point``), for ``ensemble`` flows (default 1); a point
    needs only one selected event (the flow pools them: many points of few events approach
    one θ per event)."""
    if grid.get("design") == CONTINUOUS:
        return continuous_grid(config, space, grid, result)
    events = int(grid.get("events_per_point", config["data"]["events_per_point"]))
    points, name = flow_points(space, grid, config["data"]["seed"])
    train, seconds, made = load_points(config, space, points, events, min_selected=1)
    result.provenance.datasets.extend(m for m in made if m not in result.provenance.datasets)
    return FlowGrid(train, float(np.sum(seconds)), name, events, "events_per_point" in grid,
                    int(grid.get("ensemble", 1)))


def continuous_grid(config: dict[str, Any], space: ParameterSpace, grid: dict[str, Any],
                    result: Result) -> FlowGrid:
    """``{design: continuous, size: n}``: n events with every mass spread over the box (with
    ``margin``: widened by that fraction of its side at each end, while the fits stay in the
    box; with ``flat: true`` drawn flat over it; :func:`load_continuous`), each selected
    event its own training point at its generated masses, one event per point (the seed
    paper's continuous training)."""
    x, theta, seconds, manifest = load_continuous(config, space, int(grid["size"]),
                                                  float(grid.get("margin", 0)),
                                                  grid.get("flat", False))
    train = {tuple(map(float, t)): row[None] for t, row in zip(theta, x, strict=True)}
    if len(train) < len(x):  # each point keys its events: none may repeat
        raise DataError("Two events of the continuous sample drew the same masses; their "
                        "training points would merge.")
    if manifest not in result.provenance.datasets:
        result.provenance.datasets.append(manifest)
    _, name = flow_points(space, grid, config["data"]["seed"])
    return FlowGrid(train, seconds, name, 1, False, int(grid.get("ensemble", 1)))


def measure_flow(grid: FlowGrid, space: ParameterSpace, held: Heldout, names: list[str],
                 config: dict[str, Any], seed: int, rows: Rows, workdir: Path, result: Result
                 ) -> FlowCost:
    """Train the flow on ``grid``, then interpolate and fit at every held-out point."""
    train = grid.train
    suffix = grid_suffix(grid.name, grid.events if grid.events_named else None, grid.members)
    method = f"flow gradient fit{suffix}"
    t0 = time.perf_counter()
    model = fit_flow(train, config, seed, grid.members)
    training_s = time.perf_counter() - t0
    lo, hi = (b / 1000 for b in space.box)
    worst, worst_err, fit_seconds = 0.0, float("nan"), []
    for point, x in held.events.items():
        tag, theta, res = space.tag(point), held.truth[point], held.resolution[point]
        xs = flows.sample(model, np.tile(theta, (len(x), 1)), seed)
        rows[(f"flow vs MC AUC at {tag}", f"flow interpolation{suffix}")] = twosample.c2st(
            xs, x, fitter(config["classifier"]), seed=seed).value
        rows[(f"marginal KS at {tag}", f"flow interpolation{suffix}")] = float(
            twosample.ks_statistic(xs, x).mean())
        fit = massfit.gradient_fit(model, x, lo, hi, **config["fit"])
        pulls = np.abs(fit.theta - theta) / res
        if not np.max(pulls) <= worst:  # NaN (failed fit) propagates
            worst = float(np.max(pulls))
            worst_err = float((fit.error / res)[np.argmax(pulls)])
        for j, label in enumerate(space.labels):
            rows[(f"|fit - true| / resolution, {label} at {tag}", method)] = pulls[j]
            rows[(f"{label} fit at {tag}", method)] = fit.theta[j] * 1000
            rows[(f"{label} fit error at {tag}", method)] = fit.error[j] * 1000
        fit_seconds.append(fit.seconds)
        nearest = min(train, key=lambda p: np.linalg.norm(np.array(p) / 1000 - theta))
        if len(train[nearest]) >= MIN_SELECTED:  # too few events for a classifier otherwise
            rows[(f"flow vs MC AUC at {tag}", f"nearest grid point {nearest}{suffix}")] = (
                twosample.c2st(train[nearest], x, fitter(config["classifier"]), seed=seed).value)
        stem = ("_".join(f"{v:.0f}" for v in point)
                + (f"_grid{grid.name.replace(' ', '_')}" if grid.name else "")
                + (f"_{grid.events}events" if grid.events_named else "")
                + (f"_ensemble{grid.members}" if grid.members > 1 else ""))
        path = plots.marginals({"generated (held out)": x, "flow samples": xs}, names,
                               workdir / f"interp_{stem}.png",
                               title=f"interpolation at ({', '.join(space.labels)}) = {tag}"
                               + suffix.replace(", ", ", flow on the ", 1))
        result.figures.append(path.name)
    fit_s = float(np.mean(fit_seconds))
    rows[("fit time per pseudo-dataset", method)] = fit_s
    return FlowCost(grid.name, len(train), grid.events, grid.events_named, grid.generation_s,
                    training_s, fit_s, worst, worst_err, grid.members)


def add_resolution(result: Result, space: ParameterSpace, res: dict[Point, np.ndarray]) -> None:
    """The mass resolution of every mass parameter at every held-out point [GeV] (a width's
    is its particle's mass resolution)."""
    for point, widths in res.items():
        for j, (label, obs) in enumerate(zip(space.labels, space.observables, strict=True)):
            if PARAMETERS[space.names[j]].peak:
                continue
            what = "dijet-mass" if obs == "mjj" else "jet-mass"
            result.add(f"{what} resolution {label} at {space.tag(point)}",
                       "Gaussian core of held-out events", widths[j] * 1000, unit="GeV",
                       n=int(np.isfinite(widths[j])))
    if not np.all(np.isfinite(list(res.values()))):
        result.notes.append("A Gaussian-core fit of a mass peak failed (NaN resolution); "
                            "the pulls at that held-out point are NaN.")


#: how a template form and a mass-edge scheme show in row names (quantile bins of one joint
#: histogram, as before the other two)
_FORM_TAG = {"joint": "", "product": ", product of 1-D templates"}
_EDGES_TAG = {"quantile": "", "uniform": ", equal-width mass bins"}


def mc_grid(config: dict[str, Any], space: ParameterSpace, grid: dict[str, Any],
            tests: dict[Point, np.ndarray], validation: tuple[dict, dict],
            truth: dict[Point, np.ndarray], res: dict[Point, np.ndarray], names: list[str],
            rows: Rows, manifests: list) -> GridCost:
    """Template scan on one separately generated MC grid at every held-out point."""
    points = space.mc_grid(grid["points"])
    events = int(grid.get("events_per_point", config["data"]["events_per_point"]))
    samples, seconds, made = load_points(config, space, points, events)
    manifests.extend(m for m in made if m not in manifests)
    # the parameters' observables once each (a width is measured on its mass's peak)
    first = list(dict.fromkeys(names.index(o) for o in space.observables))
    columns = first + [j for j in range(len(names)) if j not in first]
    per_axis = [len({p[j] for p in points}) for j in range(len(space.names))]
    grid_name = f"{'x'.join(map(str, per_axis))} x {events} events"
    scan = templates.template_scan(  # bootstrap seed from the data: the same in every run seed
        samples, columns, len(first), tests, validation, truth, res, config["scan_bins"],
        config["scan_bins_shape"], int(config["scan_bootstrap"]),
        derive_seed(int(config["data"]["seed"]), f"template bootstrap {grid_name}"),
        config["scan_templates"], config["scan_edges"])
    for (bins, shape_bins, form, edges), worst in scan.validation.items():
        rows[(f"validation worst |fit - true| / resolution, {bins} mass x {shape_bins} tau21 "
              f"bins{_FORM_TAG[form]}{_EDGES_TAG[edges]}", f"MC grid scan {grid_name}")] = worst
    label = (f"MC grid scan {grid_name} ({scan.bins} x {scan.shape_bins} bins"
             f"{_FORM_TAG[scan.form]}{_EDGES_TAG[scan.edges]})")
    for point, fitted in scan.fits.items():
        tag = space.tag(point)
        pulls = np.abs(fitted - truth[point]) / res[point]
        for j, mass in enumerate(space.labels):
            rows[(f"|fit - true| / resolution, {mass} at {tag}", label)] = pulls[j]
            rows[(f"{mass} fit at {tag}", label)] = fitted[j] * 1000
    boot = scan.bootstrap
    return GridCost(label, events, float(np.sum(seconds) + scan.seconds / len(tests)),
                    scan.worst, float(np.std(boot, ddof=1)) if len(boot) > 1 else float("nan"))
