"""Tests of the flow-based parameter fit and the MC grid-scan baseline on known densities."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from hepchain.analysis import massfit
from hepchain.analysis.flows import fit_flow
from hepchain.analysis.paramscan.parameters import ParameterSpace, mass_resolution
from hepchain.analysis.paramscan.templates import (
    bin_edges,
    bootstrap_worst,
    check_settings,
    quantile_edges,
    scan_points,
    template_scan,
)
from hepchain.core.errors import UsageError

SIGMA = 0.05
#: the smallest flow, training, fit and classifier: run tests check rows, not accuracy
TINY_RUN = {"flow": {"kind": "maf", "transforms": 1, "hidden": [16]},
            "train": {"epochs": 2, "batch_size": 64, "progress": False},
            "fit": {"starts": 1, "steps": 5, "prescan_points": 3},
            "classifier": {"members": 1, "max_iter": 10, "max_leaf_nodes": 7}}


def toy(theta: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """x = (θ1, θ2, 0) + N(0, σ) per event: the likelihood's curvature error is σ/√n."""
    return np.c_[theta[0] + SIGMA * rng.normal(size=n), theta[1] + SIGMA * rng.normal(size=n),
                 rng.normal(size=n)]


@pytest.fixture(scope="module")
def toy_flow():
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    grid = [np.array([a, b]) for a in np.linspace(0.2, 0.8, 4) for b in np.linspace(0.1, 0.4, 4)]
    x = np.concatenate([toy(t, 250, rng) for t in grid])
    c = np.concatenate([np.tile(t, (250, 1)) for t in grid])
    perm = rng.permutation(len(x))
    model, _ = fit_flow(x[perm[800:]], c[perm[800:]], x[perm[:800]], c[perm[:800]],
                        {"kind": "maf", "transforms": 3, "hidden": [32, 32]},
                        {"epochs": 40, "lr": 3e-3, "patience": 6, "progress": False}, seed=0)
    return model, grid


def test_gradient_fit_recovers_interpolated_parameters(toy_flow):
    model, _ = toy_flow
    truth = np.array([0.45, 0.33])  # between grid points
    x = toy(truth, 400, np.random.default_rng(7))
    fit = massfit.gradient_fit(model, x, np.array([0.2, 0.1]), np.array([0.8, 0.4]), starts=2)
    expected_error = SIGMA / np.sqrt(400)
    assert np.all(np.abs(fit.theta - truth) < 5 * expected_error + 0.01)
    # curvature error close to the analytic σ/√n
    assert np.all((fit.error > 0.5 * expected_error) & (fit.error < 2.0 * expected_error))


def test_the_prescan_ranks_every_grid_point_by_its_own_nll(toy_flow):
    """The batched prescan gives each θ the NLL a separate evaluation gives it, however the
    points are split into flow calls (here 5 events × 7 points per call: 64 points, 10 calls)."""
    model, _ = toy_flow
    x = torch.as_tensor(toy(np.array([0.45, 0.33]), 5, np.random.default_rng(3)),
                        dtype=torch.float32)
    lo, hi = torch.tensor([0.2, 0.1]), torch.tensor([0.8, 0.4])
    order = massfit.prescan(model, x, lo, hi, 8, rows=35)
    with torch.no_grad():
        nll = torch.stack([massfit._nll(model, x, t) for t in order])
    assert len(order) == 64 and len({tuple(t.tolist()) for t in order}) == 64
    assert torch.all(nll[1:] >= nll[:-1] - 1e-4)  # ordered by the per-point NLL
    torch.testing.assert_close(order, massfit.prescan(model, x, lo, hi, 8), rtol=0, atol=0)


def test_grid_scan_picks_the_right_template_and_refines():
    rng = np.random.default_rng(1)
    values = [0.2, 0.4, 0.6, 0.8]
    templates = {(a, b): toy(np.array([a, b]), 2000, rng)[:, :2] for a in values
                 for b in values}
    edges = [np.linspace(0.0, 1.0, 41)] * 2
    truth = np.array([0.45, 0.58])
    scan = massfit.grid_scan(templates, toy(truth, 400, rng)[:, :2], edges)
    assert np.all(np.abs(scan.theta - truth) < 0.1)
    assert np.all(np.isfinite(scan.error))
    # an event outside the binning still gets a finite likelihood
    assert np.isfinite(massfit.template_nll(templates[(0.2, 0.2)], np.array([[5.0, -3.0]]),
                                            edges))


def test_grid_scan_refines_at_the_grid_edge_and_stays_in_the_box():
    """A truth between the edge grid point and its neighbour is refined off the edge (the
    parabola through the edge point and its two inward neighbours), never outside the box."""
    rng = np.random.default_rng(2)

    def events(theta, n):  # resolution 0.15, comparable to the grid spacing 0.2 (as in data)
        return np.asarray(theta) + 0.15 * rng.normal(size=(n, 2))

    values = [0.2, 0.4, 0.6, 0.8]
    templates = {(a, b): events((a, b), 8000) for a in values for b in values}
    edges = [np.linspace(-0.4, 1.4, 37)] * 2
    scan = massfit.grid_scan(templates, events((0.27, 0.5), 4000), edges)
    assert abs(scan.theta[0] - 0.27) < 0.04 and np.isfinite(scan.error[0])
    below = massfit.grid_scan(templates, events((0.0, 0.5), 4000), edges)
    assert below.theta[0] == 0.2  # a truth outside the grid is kept at its edge


def test_template_scan_uses_the_shape_observables():
    """Masses that barely move with θ and a third observable that does: templates binned in
    it (shape bins > 1) fit θ far better than mass-only templates (1 shape bin)."""
    rng = np.random.default_rng(4)

    def events(theta, n):  # columns: mj1, mj2 (weakly informative), tau21-like (informative)
        return np.c_[theta[1] + 0.3 * rng.normal(size=n), theta[0] + 0.3 * rng.normal(size=n),
                     theta[0] + theta[1] + 0.05 * rng.normal(size=n)]

    values = [0.2, 0.4, 0.6]
    templates = {(a, b): events((a, b), 1500) for a in values for b in values}
    pooled = np.concatenate(list(templates.values()))
    points = {(400.0, 400.0): events((0.4, 0.4), 400), (600.0, 200.0): events((0.6, 0.2), 400)}
    truth = {p: np.array(p) / 1000 for p in points}
    res = {p: np.array([0.02, 0.02]) for p in points}
    _, mass_only, _ = scan_points(templates, points, truth, res, quantile_edges(pooled, 4, 1))
    _, with_shape, _ = scan_points(templates, points, truth, res, quantile_edges(pooled, 4, 6))
    assert len(quantile_edges(pooled, 4, 6)[2]) == 7
    assert with_shape < 0.5 * mass_only


def test_product_templates_stay_dense_where_the_joint_histogram_is_sparse():
    """Four observables, each measuring one parameter, 100 events per template: binned 12 per
    axis the joint histogram has 20,736 bins, nearly all empty, while the product of 1-D
    histograms keeps ~8 events per bin. The product fits every truth within half a grid step
    and closer than the joint; with one observable both forms are the same likelihood."""
    rng = np.random.default_rng(0)

    def events(theta, n):  # observable j = θ_j + N(0, 0.1)
        return np.asarray(theta) + 0.1 * rng.normal(size=(n, 4))

    values = [0.2, 0.4, 0.6, 0.8]
    templates = {t: events(t, 100) for t in itertools.product(values, repeat=4)}
    edges = quantile_edges(np.concatenate(list(templates.values())), 12, 1, n_mass=4)
    err = {True: [], False: []}
    for truth in [(0.45, 0.55, 0.35, 0.65), (0.3, 0.7, 0.5, 0.5), (0.5, 0.5, 0.5, 0.5),
                  (0.65, 0.35, 0.55, 0.45)]:
        x = events(truth, 400)
        for product in err:
            theta = massfit.grid_scan(templates, x, edges, product=product).theta
            err[product].append(np.max(np.abs(theta - truth)))
    assert max(err[True]) < 0.1
    assert np.mean(err[True]) < np.mean(err[False])
    one = templates[(0.4, 0.4, 0.4, 0.4)][:, :1]
    assert massfit.template_nll(one, x[:, :1], edges[:1], product=True) == pytest.approx(
        massfit.template_nll(one, x[:, :1], edges[:1]), rel=1e-12)


def test_the_template_form_is_chosen_with_the_binning_on_the_validation_points():
    """Every (bins, shape bins, form) is tried on the validation points and the smallest worst
    pull there is applied; the joint form alone reproduces the joint-only choice; an unknown
    form is refused in one sentence."""
    rng = np.random.default_rng(8)
    values = np.linspace(0.2, 0.8, 4)
    templates = {(1000 * a, 1000 * b): toy(np.array([a, b]), 150, rng)
                 for a in values for b in values}
    pts = lambda thetas: {tuple(1000 * np.array(t)): toy(np.array(t), 300, rng)  # noqa: E731
                          for t in thetas}
    tests, vals = pts([(0.45, 0.55), (0.3, 0.7)]), pts([(0.55, 0.35), (0.7, 0.5)])
    truth = {p: np.array(p) / 1000 for p in [*tests, *vals]}
    res = {p: np.array([SIGMA, SIGMA]) for p in truth}
    kw = {"columns": [0, 1, 2], "n_mass": 2, "tests": tests, "truth": truth,
          "resolution": res, "bins": [4, 8], "shape_bins": [1, 2]}
    vals_res = (vals, {p: res[p] for p in vals})
    both = template_scan(templates, validation=vals_res, forms=["joint", "product"], **kw)
    assert {k[2] for k in both.validation} == {"joint", "product"} and len(both.validation) == 8
    assert both.validation[(both.bins, both.shape_bins, both.form, both.edges)] == min(
        both.validation.values())
    joint = template_scan(templates, validation=vals_res, **kw)
    assert joint.form == "joint" and len(joint.validation) == 4
    assert joint.validation == {k: v for k, v in both.validation.items() if k[2] == "joint"}
    with pytest.raises(UsageError, match="scan_templates"):
        check_settings([4], [1], ["joint", "smooth"])


def test_equal_width_mass_bins_spread_over_the_peaks_where_quantile_bins_follow_a_tail():
    """Half of every template's events sit in a soft low-mass tail (like groomed jet masses):
    of 8 quantile bins at most 5 lie above the tail, of 8 equal-width bins more; the tau21-like
    bins stay quantiles, the outer mass edges reach the extremes; the scheme is chosen with the
    binning on the validation points (whether it fits better is the data's question), and an
    unknown scheme is refused in one sentence."""
    rng = np.random.default_rng(3)

    def events(theta, n):  # peak θ_j + N(0, 0.02) or, half the time, a tail U(0, 0.3) θ_j
        peak = np.asarray(theta) + 0.02 * rng.normal(size=(n, 2))
        tail = np.asarray(theta) * rng.uniform(0, 0.3, size=(n, 2))
        return np.c_[np.where(rng.random((n, 1)) < 0.5, tail, peak), rng.normal(size=n)]

    values = np.linspace(0.2, 0.8, 4)
    templates = {(1000 * a, 1000 * b): events((a, b), 400) for a in values for b in values}
    pooled = np.concatenate(list(templates.values()))
    quantile, uniform = bin_edges(pooled, 8, 2), bin_edges(pooled, 8, 2, scheme="uniform")
    widths = np.diff(uniform[0][1:-1])
    np.testing.assert_allclose(widths, widths[0])
    assert uniform[0][0] == pooled[:, 0].min() and uniform[1][-1] == pooled[:, 1].max()
    np.testing.assert_array_equal(uniform[2], quantile[2])
    assert np.sum(quantile[0][1:] > 0.2) <= 5 < np.sum(uniform[0][1:] > 0.2)
    pts = lambda thetas: {tuple(1000 * np.array(t)): events(t, 400)  # noqa: E731
                          for t in thetas}
    tests, vals = pts([(0.45, 0.55), (0.3, 0.7), (0.65, 0.35)]), pts([(0.55, 0.35), (0.7, 0.5)])
    truth = {p: np.array(p) / 1000 for p in [*tests, *vals]}
    res = {p: np.array([0.02, 0.02]) for p in truth}
    kw = {"columns": [0, 1, 2], "n_mass": 2, "tests": tests, "truth": truth, "resolution": res,
          "bins": [8], "shape_bins": [1], "validation": (vals, {p: res[p] for p in vals})}
    both = template_scan(templates, schemes=["quantile", "uniform"], **kw)
    only = template_scan(templates, **kw)
    assert only.edges == "quantile" and len(both.validation) == 2 * len(only.validation)
    assert only.validation == {k: v for k, v in both.validation.items() if k[3] == "quantile"}
    assert both.validation[(both.bins, both.shape_bins, both.form, both.edges)] == min(
        both.validation.values())
    with pytest.raises(UsageError, match="scan_edges"):
        check_settings([4], [1], ["joint"], ["quantile", "log"])


def test_the_template_bootstrap_spread_shrinks_with_the_grids_statistics():
    """Resampling each template's events moves the worst pull by the grid's own MC noise:
    100 events per grid point spread it several times more than 10,000 (1/√n: 10×); the
    replicas are reproducible from their seed."""
    rng = np.random.default_rng(5)
    values = np.linspace(0.2, 0.8, 5)
    points = {(430.0, 570.0): toy(np.array([0.43, 0.57]), 2000, rng)}
    truth = {p: np.array(p) / 1000 for p in points}
    res = {p: np.array([SIGMA, SIGMA]) for p in points}
    spread = {}
    for n in (100, 10_000):
        templates = {(a, b): toy(np.array([a, b]), n, rng) for a in values for b in values}
        edges = quantile_edges(np.concatenate(list(templates.values())), 8, 1)
        worst = bootstrap_worst(templates, points, truth, res, edges, replicas=30, seed=1)
        assert len(worst) == 30
        np.testing.assert_array_equal(
            worst, bootstrap_worst(templates, points, truth, res, edges, replicas=30, seed=1))
        spread[n] = np.std(worst, ddof=1)
    assert spread[100] > 3 * spread[10_000] > 0


def test_mass_resolution_is_the_peak_width():
    rng = np.random.default_rng(2)
    heavy = np.r_[rng.normal(0.5, 0.03, 3000), rng.uniform(0.05, 0.25, 1500)]  # + uncontained
    x = np.c_[rng.normal(0.1, 0.008, 4500), heavy]
    res = mass_resolution(x, ["mj1", "mj2"], np.array([0.5, 0.1]), ["mj2", "mj1"])
    np.testing.assert_allclose(res, [0.03, 0.008], rtol=0.1)


def test_paramscan_needs_the_jet_masses(tmp_path):
    from hepchain.core.errors import UsageError
    from hepchain.core.study import run_study

    with pytest.raises(UsageError, match="must include mj2 and mj1"):
        run_study("paramscan", "quick", tmp_path, overrides={"features": ["tau21_j1"]})


def _space(params, grid):
    return ParameterSpace.from_config({"params": params, "grid": grid,
                                       "heldout": [[0.0] * len(params)],
                                       "validation_points": [[1.0] * len(params)]})


def test_mc_grids_nest_and_keep_the_box():
    from hepchain.core.errors import UsageError

    space = _space(["mx", "my"], {"mx": [300, 500, 700], "my": [60, 180]})
    coarse, fine = space.mc_grid([4, 4]), space.mc_grid([13, 13])
    assert len(space.grid) == 6 and len(coarse) == 16 and len(fine) == 169
    assert {(300.0, 60.0), (700.0, 180.0), (433.0, 100.0)} <= set(coarse)
    assert set(coarse) <= set(fine)  # a finer grid reuses the coarse grid's samples
    with pytest.raises(UsageError, match="2 numbers >= 2"):
        space.mc_grid([1, 4])


def test_three_parameters_span_a_product_grid_with_their_observables():
    from hepchain.core.errors import UsageError

    space = _space(["mwprime", "mx", "my"],
                   {"mwprime": [3000, 4000], "mx": [300, 700], "my": [60, 100, 180]})
    assert len(space.grid) == 12 and space.grid[0] == (3000.0, 300.0, 60.0)
    assert space.observables == ["mjj", "mj2", "mj1"]
    assert space.tag((3250.0, 430.0, 100.0)) == "(3250, 430, 100) GeV"
    assert space.options((3250.0, 430.0, 100.0)) == {"mwprime": 3250.0, "mx": 430.0, "my": 100.0}
    assert len(space.mc_grid([4, 4, 4])) == 64
    # the central composite design: 8 corners, 6 face centres and the centre of the 3^3 grid
    ccd = space.central_composite()
    assert len(ccd) == 15 and set(ccd) <= set(space.mc_grid([3, 3, 3]))
    assert {(3000.0, 300.0, 60.0), (3500.0, 500.0, 120.0), (3500.0, 300.0, 120.0)} <= set(ccd)
    assert (3000.0, 300.0, 120.0) not in ccd  # an edge's midpoint is not in the design
    assert len(_space(["mx", "my"], {"mx": [300, 700], "my": [60, 180]}).central_composite()) == 9
    # space-filling designs: a Latin hypercube has one point in each of its 15 slices of
    # every parameter, a scrambled Sobol set 16 points; both inside the box, fixed by the seed
    lhs = space.space_filling("latin_hypercube", 15, seed=2)
    lo, hi = space.box
    assert len(set(lhs)) == 15 and np.all((np.array(lhs) >= lo) & (np.array(lhs) <= hi))
    for j in range(3):
        slices = np.floor((np.array(lhs)[:, j] - lo[j]) / (hi[j] - lo[j]) * 15).clip(0, 14)
        assert len(set(slices)) >= 14  # rounding to GeV may move one value across a slice edge
    assert lhs == space.space_filling("latin_hypercube", 15, seed=2)
    assert lhs != space.space_filling("latin_hypercube", 15, seed=3)
    assert not set(space.space_filling("sobol", 16, seed=2)) & set(space.mc_grid([3, 3, 3]))
    with pytest.raises(UsageError, match="power of two"):
        space.space_filling("sobol", 15, seed=2)
    with pytest.raises(UsageError, match="Unknown space-filling design"):
        space.space_filling("halton", 16, seed=2)
    narrow = _space(["mx", "my"], {"mx": [300, 303], "my": [60, 62]})  # 4 x 3 GeV values
    with pytest.raises(UsageError, match="repeats a point"):
        narrow.space_filling("latin_hypercube", 20, seed=2)
    with pytest.raises(UsageError, match="exactly the params"):
        _space(["mwprime", "mx", "my"], {"mx": [300, 700], "my": [60, 180]})
    with pytest.raises(UsageError, match="distinct names"):
        _space(["mz", "my"], {"mz": [1, 2], "my": [60, 180]})
    with pytest.raises(UsageError, match="one value per param"):
        ParameterSpace.from_config({"params": ["mx", "my"], "grid": {"mx": [1], "my": [2]},
                                    "heldout": [[430.0]], "validation_points": [[1, 2]]})


def test_a_width_is_measured_on_its_mass_peak():
    from hepchain.core.errors import UsageError

    space = _space(["mwprime", "mx", "my", "gx"], {"mwprime": [3000, 4000], "mx": [300, 700],
                                                   "my": [60, 180], "gx": [5, 65, 125]})
    assert len(space.grid) == 24 and space.observables == ["mjj", "mj2", "mj1", "mj2"]
    assert space.labels[3] == "Gamma_X"
    # each parameter's peak: its own value for a mass, m_X for the X width
    assert space.peaks(np.array([3.2, 0.45, 0.1, 0.03])).tolist() == [3.2, 0.45, 0.1, 0.45]
    assert len(space.mc_grid([4, 4, 4, 3])) == 192  # fewer width values than masses
    assert len(space.central_composite()) == 25  # 16 corners, 8 face centres, the centre
    with pytest.raises(UsageError, match=r"gx \(a width\) needs its mass mx"):
        _space(["my", "gx"], {"my": [60, 180], "gx": [5, 125]})


@pytest.mark.parametrize(("override", "message"),
                         [({"scan_bins": 12}, "scan_bins must be a list"),
                          ({"mc_grids": [{"points": 5}]}, "mc_grids must be a non-empty list"),
                          ({"mc_grids": []}, "mc_grids must be a non-empty list"),
                          ({"mc_grids": [{"points": [5]}]}, "2 numbers >= 2"),
                          ({"flow_grids": [{"points": [1, 3]}]}, "2 numbers >= 2"),
                          ({"flow_grids": [{"points": [3, 3], "events_per_point": 0}]},
                           "flow_grids must be a list"),
                          ({"flow_grids": [{"design": "sobol"}]}, "flow_grids must be a list"),
                          ({"flow_grids": [{"points": [3, 3], "design": "sobol"}]},
                           "flow_grids must be a list"),
                          ({"flow_grids": [{"design": "sobol", "size": 12}]}, "power of two"),
                          ({"flow_grids": [{"design": "central_composite", "size": 9}]},
                           "flow_grids must be a list"),
                          ({"flow_grids": [{"design": "latin_hypercube", "size": "9"}]},
                           "flow_grids must be a list"),
                          ({"mc_grids": [{"points": [3, 3], "event_per_point": 500}]},
                           "mc_grids must be a non-empty list"),  # a misspelt key
                          ({"flow_grids": [{"points": [3, 3], "design": "central_composite"}]},
                           "flow_grids must be a list"),
                          ({"mc_grids": [{"design": "central_composite"}]},
                           "mc_grids must be a non-empty list"),
                          ({"mc_grids": [{"points": [3, 3], "events_per_point": 2.5}]},
                           "mc_grids must be a non-empty list"),
                          ({"mc_grids": [{"points": [3, 3], "ensemble": 3}]},
                           "mc_grids must be a non-empty list"),  # flows only
                          ({"flow_grids": [{"points": [2, 2], "ensemble": 0}]},
                           "and ensemble"),
                          ({"flow_grids": [{"design": "continuous", "size": 100,
                                            "events_per_point": 5}]}, "no events_per_point"),
                          ({"flow_grids": [{"design": "continuous"}]}, "design: continuous"),
                          ({"flow_grids": [{"design": "continuous", "size": "100"}]},
                           "design: continuous"),
                          ({"flow_grids": [{"design": "continuous", "size": 0}]},
                           "design: continuous"),
                          ({"flow_grids": [{"points": [2, 2], "margin": 0.1}]},
                           "flow_grids must be a list"),  # only a continuous sample
                          ({"flow_grids": [{"design": "continuous", "size": 100,
                                            "margin": 0.6}]}, "keep every mass above 0"),
                          ({"flow_grids": [{"points": [2, 2], "flat": True}]},
                           "flow_grids must be a list"),  # only a continuous sample
                          ({"flow_grids": [{"design": "continuous", "size": 100,
                                            "flat": 1}]}, "flow_grids must be a list"),
                          ({"heldout": [[430, 100], [400, 90]]}, "off every grid"),  # 5 x 5
                          ({"validation_points": [[700, 60]]}, "off every grid"),
                          ({"scan_bins_shape": [0]}, "scan_bins_shape"),
                          ({"validation_points": [[430, 100]]}, "differ from the heldout")])
def test_bad_scan_settings_are_refused_before_generation(override, message, tmp_path):
    from hepchain.core.errors import UsageError
    from hepchain.core.study import run_study

    with pytest.raises(UsageError, match=message):
        run_study("paramscan", "quick", tmp_path / "run", overrides=override)
    assert not (tmp_path / "data").exists()  # nothing generated


def test_held_out_points_must_be_off_the_central_composite_design_too():
    from hepchain.analysis.paramscan.study import check_settings
    from hepchain.core.config import load_presets, preset_config
    from hepchain.core.errors import UsageError

    centre = [3500, 500, 120]  # the design's centre: on no 4^3 grid over the box
    config = preset_config(load_presets("paramscan"), "paper-3d", {
        "mc_grids": [{"points": [4, 4, 4]}], "flow_grids": [{"points": [2, 2, 2]}],
        "heldout": [centre]}, study="paramscan")
    check_settings(config)
    config["flow_grids"].append({"design": "central_composite", "events_per_point": 60})
    with pytest.raises(UsageError, match=r"heldout \[\[3500, 500, 120\]\] lie on a grid"):
        check_settings(config)


def test_paramscan_run_is_one_seed_reproducible_per_seed(tmp_path):
    """Tiny grid (its own MC grid, so the events are generated once, cached under the test's HEPCHAIN_DATA)."""
    from _helpers import assert_seed_reproducible

    overrides = {"data": {"seed": 2, "workers": 1,
                          "shard_size": 40, "mwprime": 3500, "events_per_point": 40,
                          "events_heldout": 40},
                 "grid": {"mx": [300, 500], "my": [60, 120]}, "heldout": [[400, 90]],
                 "validation_points": [[450, 100]],
                 "mc_grids": [{"points": [2, 2]}], "scan_bins": [3], "scan_bins_shape": [1, 2],
                 **TINY_RUN}
    assert_seed_reproducible("paramscan", overrides, tmp_path)


def test_a_three_parameter_scan_fits_the_wprime_mass_too(tmp_path):
    """m_W' joins (m_X, m_Y) on a 2 x 2 x 2 grid (its own MC grid): every fit and resolution
    row names three masses, and m_W' comes from the dijet mass."""
    from hepchain.analysis.paramscan.summary import BOOTSTRAP_NAME
    from hepchain.core.study import run_study

    overrides = {"data": {"seed": 2, "workers": 1, "shard_size": 40, "mwprime": 3500,
                          "events_per_point": 40,
                          "events_heldout": 40},
                 "params": ["mwprime", "mx", "my"],
                 "grid": {"mwprime": [3000, 4000], "mx": [300, 500], "my": [60, 120]},
                 "heldout": [[3450, 420, 80]], "validation_points": [[3300, 450, 100]],
                 "features": ["mjj", "mj1", "mj2", "tau21_j1"],
                 "mc_grids": [{"points": [2, 2, 2]}],
                 "flow_grids": [{"points": [2, 2, 2]},
                                {"design": "central_composite", "events_per_point": 60},
                                {"design": "latin_hypercube", "size": 4, "events_per_point": 10},
                                {"design": "central_composite", "events_per_point": 60,
                                 "ensemble": 2},
                                {"design": "continuous", "size": 60}],
                 "scan_bins": [3], "scan_bins_shape": [1], **TINY_RUN}
    result = run_study("paramscan", "quick", tmp_path, overrides=overrides)
    names = {m.name for m in result.metrics}
    tag = "(3450, 420, 80) GeV"
    assert {f"{p} fit at {tag}" for p in ("m_W'", "m_X", "m_Y")} <= names
    assert f"dijet-mass resolution m_W' at {tag}" in names
    wprime = result.get(f"m_W' fit at {tag}", "flow gradient fit")
    assert 3000 <= wprime.value <= 4000  # inside the trained box
    assert any(m.method.startswith("MC grid scan 2x2x2 x 40 events") for m in result.metrics)
    boot = [m for m in result.metrics if m.name == BOOTSTRAP_NAME]  # 20 replicas (quick)
    assert len(boot) == 1 and boot[0].method.startswith("MC grid scan 2x2x2 x 40 events")
    assert np.isfinite(boot[0].value) and boot[0].value >= 0
    # the flow on flow_grids' 2 x 2 x 2 grid (the main grid's points) is measured beside it
    coarse = result.get(f"m_W' fit at {tag}", "flow gradient fit, 2x2x2 grid")
    assert 3000 <= coarse.value <= 4000
    assert result.get("grid generation time", "flow's grid, 8 points x 40 events").value > 0
    assert result.get("grid generation time",
                      "flow's grid, 8 points x 40 events (2x2x2)").value > 0
    assert result.get("flow training time", "flow (once, all grid points), 2x2x2 grid").value > 0
    # a flow on the central composite design (15 of the 3^3 grid's points) with its own
    # events per point: generated apart, its rows name the design and the events
    ccd = "flow gradient fit, 15-point central-composite grid x 60 events"
    assert 3000 <= result.get(f"m_W' fit at {tag}", ccd).value <= 4000
    assert result.get("grid generation time",
                      "flow's grid, 15 points x 60 events (15-point central-composite)").value > 0
    assert result.get("total compute (generation + training + one fit)", ccd).value > 0
    assert (tmp_path / "interp_3450_420_80_grid15-point_central-composite_60events.png").exists()
    # a flow on a 4-point Latin hypercube (from a seed derived from the data seed) of 10
    # events per point, fewer than a held-out or MC-grid point must keep after the selection
    # (20): its own rows, its grid's generation apart from the 2 x 2 x 2 grid of as many
    # points, and no nearest-grid-point AUC (too few events for a classifier)
    lhs = "flow gradient fit, 4-point Latin-hypercube grid x 10 events"
    assert 3000 <= result.get(f"m_W' fit at {tag}", lhs).value <= 4000
    generation = [m for m in result.metrics if m.name == "grid generation time"]
    assert len({m.method for m in generation}) == len(generation) == 5
    assert result.get("grid generation time",
                      "flow's grid, 4 points x 10 events (4-point Latin-hypercube)").value > 0
    nearest = {m.method.removeprefix("nearest grid point ").split(")", 1)[1]
               for m in result.metrics if m.method.startswith("nearest grid point")}
    assert nearest == {"", ", 2x2x2 grid", ", 15-point central-composite grid x 60 events",
                       ", 15-point central-composite grid x 60 events, 2-flow ensemble"}
    # two flows, each from its own seed, on the CCD's samples, fitted as their mixture: rows
    # of their own, the grid's generation once, and two trainings in its training time
    both = "flow gradient fit, 15-point central-composite grid x 60 events, 2-flow ensemble"
    assert 3000 <= result.get(f"m_W' fit at {tag}", both).value <= 4000
    assert result.get(f"m_W' fit at {tag}", both).value != result.get(
        f"m_W' fit at {tag}", ccd).value
    train = "flow (once, all grid points), 15-point central-composite grid x 60 events"
    assert result.get("flow training time", f"{train}, 2-flow ensemble").value > result.get(
        "flow training time", train).value
    assert (tmp_path / "interp_3450_420_80_grid15-point_central-composite_60events"
            "_ensemble2.png").exists()
    # one sample of 60 events with the masses spread over the box: each selected event is a
    # training point of its own (one event per point), so no nearest-grid-point AUC
    cont = "flow gradient fit, 60-point continuous grid"
    assert 3000 <= result.get(f"m_W' fit at {tag}", cont).value <= 4000
    (row,) = [m for m in generation if m.method.endswith("x 1 events (60-point continuous)")]
    assert row.value > 0 and 20 <= int(row.method.split()[2]) <= 60  # selected events
    assert result.get("total compute (generation + training + one fit)", cont).value > 0


def test_a_continuous_sample_gives_each_event_its_own_generated_masses(tmp_path):
    """One sample with (m_W', m_X, m_Y) spread over the box: every selected event's features
    sit beside its own masses, so the dijet mass follows m_W' event by event (a shuffled
    pairing gives a correlation of 0 +- 0.1); widths cannot be spread."""
    from hepchain.analysis.paramscan.data import load_continuous
    from hepchain.core.config import load_presets, preset_config

    data = {"seed": 2, "workers": 1, "shard_size": 150, "mwprime": 3500,
            "events_per_point": 40, "events_heldout": 40}
    config = preset_config(load_presets("paramscan"), "paper-3d", {"data": data},
                           study="paramscan")
    space = ParameterSpace.from_config(config)
    x, theta, seconds, manifest = load_continuous(config, space, 150)
    assert len(x) == len(theta) >= 50 and seconds > 0 and manifest["n_events"] == 150
    lo, hi = space.box
    assert np.all((theta >= lo) & (theta <= hi))
    assert np.all(np.ptp(theta, axis=0) > 0.5 * (hi - lo))  # spread, not one point
    mjj = x[:, config["features"].index("mjj")]
    assert np.corrcoef(theta[:, space.names.index("mwprime")], mjj)[0, 1] > 0.4
    # a margin widens the window by that fraction of the box side at each end
    wide = space.spread_options(0.1)
    assert (wide["mx"], wide["mx_max"], wide["my"], wide["my_max"]) == pytest.approx(
        (lo[1] - 0.1 * (hi[1] - lo[1]), hi[1] + 0.1 * (hi[1] - lo[1]),
         lo[2] - 0.1 * (hi[2] - lo[2]), hi[2] + 0.1 * (hi[2] - lo[2])))
    width = preset_config(load_presets("paramscan"), "paper-4d", study="paramscan")
    with pytest.raises(UsageError, match="widths"):
        ParameterSpace.from_config(width).spread_options()


def test_a_flat_continuous_grid_is_named_and_requests_the_flat_draw() -> None:
    """``flat: true`` on a continuous flow grid names the grid and adds ``flat=1`` to its
    sample's request (so it is cached apart from the falling draw)."""
    from hepchain.analysis.paramscan.study import _grid_entry_ok, flow_points
    from hepchain.core.config import load_presets, preset_config

    config = preset_config(load_presets("paramscan"), "paper-3d", study="paramscan")
    space = ParameterSpace.from_config(config)
    grid = {"design": "continuous", "size": 500, "margin": 0.2, "flat": True}
    assert _grid_entry_ok(grid, designs=True)
    assert flow_points(space, grid, 2)[1].endswith("(box ±20%, flat masses)")
    assert flow_points(space, {**grid, "flat": False}, 2)[1].endswith("(box ±20%)")


def test_a_width_scan_fits_gamma_x_in_units_of_the_x_mass_resolution(tmp_path):
    """Gamma_X joins (m_X, m_Y) on a 2 x 2 x 2 grid: its fits and pulls have rows of their
    own, measured in m_X's resolution (a width has no peak of its own)."""
    from hepchain.core.study import run_study

    overrides = {"data": {"seed": 2, "workers": 1, "shard_size": 40, "mwprime": 3500,
                          "events_per_point": 40, "events_heldout": 60},
                 "params": ["mx", "my", "gx"],
                 "grid": {"mx": [300, 500], "my": [60, 120], "gx": [5, 125]},
                 "heldout": [[420, 80, 40]], "validation_points": [[450, 100, 90]],
                 "features": ["mj1", "mj2", "tau21_j1"],
                 "mc_grids": [{"points": [2, 2, 2]}], "flow_grids": [],
                 "scan_bins": [3], "scan_bins_shape": [2], **TINY_RUN}
    result = run_study("paramscan", "quick", tmp_path, overrides=overrides)
    tag = "(420, 80, 40) GeV"
    names = {m.name for m in result.metrics}
    assert f"jet-mass resolution m_X at {tag}" in names
    assert f"jet-mass resolution Gamma_X at {tag}" not in names  # m_X's is its unit
    res_x = result.get(f"jet-mass resolution m_X at {tag}", "Gaussian core of held-out events")
    assert np.isfinite(res_x.value) and res_x.value > 5  # GeV
    mc = "MC grid scan 2x2x2 x 40 events (3 x 2 bins)"  # m_X's and m_Y's jet masses x tau21
    for method in ("flow gradient fit", mc):
        width = result.get(f"Gamma_X fit at {tag}", method).value
        assert 5 <= width <= 125  # GeV, inside the trained box
        pull = result.get(f"|fit - true| / resolution, Gamma_X at {tag}", method).value
        assert pull == pytest.approx(abs(width - 40) / res_x.value, rel=1e-6)


def test_a_flow_ensemble_is_the_equal_weight_mixture_of_its_members():
    """log p = log of the members' mean density; each sample comes from one member."""
    from hepchain.analysis.flows import ConditionalFlow, FlowEnsemble

    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    x, c = rng.normal(size=(200, 2)), rng.uniform(size=(200, 1))
    members = [ConditionalFlow(x, c, transforms=1, hidden=[8]) for _ in range(2)]
    members[1].x_mean += 100.0  # member 1 lives 100 away from member 0
    ensemble = FlowEnsemble(members)
    xt = torch.as_tensor(x[:20], dtype=torch.float32)
    ct = torch.as_tensor(c[:20], dtype=torch.float32)
    with torch.no_grad():
        p0, p1 = (m.log_prob(xt, ct).double().exp() for m in members)
        mixed = ensemble.log_prob(xt, ct).double()
        torch.testing.assert_close(mixed, torch.log((p0 + p1) / 2), rtol=1e-5, atol=1e-5)
        draws = ensemble.sample(torch.as_tensor(c, dtype=torch.float32))[:, 0].numpy()
    far = draws > 50
    assert 60 < far.sum() < 140  # binomial(200, 1/2): 100 +- 7
    assert np.all(np.abs(draws[~far]) < 30) and np.all(np.abs(draws[far] - 100) < 30)


def _flow(grid: str, compute_s: float, worst: float):
    from hepchain.analysis.paramscan.summary import FlowCost

    return FlowCost(grid, 8, 10, False, compute_s - 2.0, 1.0, 1.0, worst, 0.1)


@pytest.mark.parametrize(("flows", "mc", "ratio", "limit"), [
    # the cheaper flow within resolution sets the ratio
    ([("", 100.0, 0.5), ("3x3", 40.0, 0.8)], [("4x4", 250, 50.0, 2.0), ("9x9", 1000, 800.0, 0.9)],
     800.0 / 40.0, None),
    # a cheaper flow outside resolution does not count
    ([("", 100.0, 0.5), ("3x3", 40.0, 1.5)], [("9x9", 1000, 800.0, 0.9)], 800.0 / 100.0, None),
    # no MC grid within resolution: a lower limit from the largest grid
    ([("", 100.0, 0.5), ("3x3", 40.0, 0.9)], [("4x4", 250, 50.0, 2.0), ("9x9", 1000, 800.0, 1.2)],
     800.0 / 40.0, "lower"),
    # no flow within resolution (a NaN fit counts as outside): no ratio
    ([("", 100.0, float("nan")), ("3x3", 40.0, 1.1)], [("9x9", 1000, 800.0, 0.9)], None, None),
])
def test_the_compute_ratio_takes_the_cheapest_flow_and_grid_within_resolution(
        flows, mc, ratio, limit, tmp_path):
    from hepchain.analysis.paramscan.summary import (
        RATIO_METHOD,
        RATIO_NAME,
        GridCost,
        compute_summary,
    )
    from hepchain.core.result import Result

    result = Result(study="paramscan", preset="")
    space = _space(["mx", "my"], {"mx": [300, 700], "my": [60, 180]})
    config = {"data": {"events_per_point": 10}, "heldout": [[400, 90]]}
    compute_summary(result, tmp_path, config, space,
                    [_flow(g, c, w) for g, c, w in flows], [GridCost(*g) for g in mc])
    rows = [m for m in result.metrics if (m.name, m.method) == (RATIO_NAME, RATIO_METHOD)]
    if ratio is None:
        assert not rows and "no flow fit is within" in result.notes[-1]
    else:
        assert len(rows) == 1 and rows[0].value == pytest.approx(ratio)
        assert rows[0].limit == limit
    assert result.get("flow training time", "flow (once, all grid points), 3x3 grid").value == 1


def test_mass_points_generate_on_a_dask_cluster_into_this_cache_as_locally(tmp_path,
                                                                           monkeypatch):
    """``data.scheduler``: one cluster task per missing point; the workers (started with
    another cache in their environment) write to the client's cache, the same bytes as a
    local generation, and cached points are not sent again."""
    from distributed import Client, LocalCluster, get_task_stream

    from hepchain.analysis.paramscan.data import load_points
    from hepchain.core.cache import find_cached
    from hepchain.core.study import get_study

    data = {"seed": 2, "workers": 1, "shard_size": 40, "mwprime": 3500,
            "events_per_point": 40, "events_heldout": 40}
    config = get_study("paramscan").config("quick", {"data": data})
    space = ParameterSpace.from_config(config)
    points = [(300.0, 60.0), (700.0, 180.0)]
    monkeypatch.setenv("HEPCHAIN_DATA", str(tmp_path / "workers' own"))
    with (LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                       dashboard_address=None) as cluster, Client(cluster) as client):
        monkeypatch.setenv("HEPCHAIN_DATA", str(tmp_path / "dask"))
        on_dask = {**config, "data": {**data, "scheduler": cluster.scheduler_address}}
        with get_task_stream(client) as tasks:
            remote, seconds, _ = load_points(on_dask, space, points, 40)
            load_points(on_dask, space, points, 40)  # cached: nothing sent
    assert sum(t["key"].startswith("_generate_point") for t in tasks.data) == 2
    assert not (tmp_path / "workers' own").exists() and all(s > 0 for s in seconds)
    monkeypatch.setenv("HEPCHAIN_DATA", str(tmp_path / "local"))
    local, _, _ = load_points(config, space, points, 40)
    for p in points:
        np.testing.assert_array_equal(remote[p], local[p])
        shas = [[s.sha256 for s in find_cached("wprime_xy", n_events=40, seed=2, shard_size=40,
                                               options={"mwprime": 3500, **space.options(p)},
                                               root=tmp_path / where).manifest.shards]
                for where in ("dask", "local")]
        assert shas[0] == shas[1]


def test_the_accuracy_figure_joins_only_grids_of_one_design_and_events(tmp_path, monkeypatch):
    """A product grid refined is a line; designs of as many events per point are markers of
    their own colour, never joined to a grid or to another design."""
    from hepchain.analysis import plots
    from hepchain.analysis.paramscan.summary import GridCost, compute_summary
    from hepchain.core.result import Result

    drawn = []
    monkeypatch.setattr(plots.plotting, "save", lambda fig, path: drawn.append(fig) or path)
    flows = [_flow(g, c, w) for g, c, w in [("", 90.0, 0.5), ("3x3", 40.0, 0.9),
                                            ("2x2", 20.0, 1.4), ("9-point Latin-hypercube",
                                                                 30.0, 1.1),
                                            ("8-point Sobol", 25.0, 0.8)]]
    assert [f.design for f in flows] == ["grid"] * 3 + ["Latin-hypercube", "Sobol"]
    mc = [GridCost("4x4", 10, 50.0, 2.0), GridCost("9x9", 10, 800.0, 0.9)]
    compute_summary(Result(study="paramscan", preset=""), tmp_path,
                    {"data": {"events_per_point": 10}, "heldout": [[400, 90]]},
                    _space(["mx", "my"], {"mx": [300, 700], "my": [60, 180]}), flows, mc)
    lines = [ln for ln in drawn[0].axes[0].lines if len(ln.get_xdata()) > 0
             and ln.get_linestyle() != ":"]
    joined = sorted(tuple(ln.get_xdata()) for ln in lines if ln.get_linestyle() == "-")
    assert joined == [(20.0, 40.0, 90.0), (50.0, 800.0)]  # the flow's grids, the MC grids
    alone = sorted(tuple(ln.get_xdata()) for ln in lines if ln.get_linestyle() == "None")
    assert alone == [(25.0,), (30.0,)]
    assert len({ln.get_color() for ln in lines}) == 4
