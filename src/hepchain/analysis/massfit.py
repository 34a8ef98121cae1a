"""Fitting model parameters θ (here the masses m_X, m_Y in TeV) to a pseudo-dataset.

- :func:`gradient_fit`: minimise the flow's negative log-likelihood −Σ log p(x_i | θ) by
  gradient descent (L-BFGS) on θ, started from the best points of a coarse flow-likelihood
  prescan (θ kept in the trained parameter box);
  uncertainties from the inverse Hessian of the NLL at the minimum (likelihood curvature).
- :func:`grid_scan`: the Monte-Carlo alternative — one histogram template per separately
  generated parameter point, binned likelihood of the pseudo-data under each, best point plus
  a parabola through its neighbours along each axis.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from hepchain.analysis.flows import AnyFlow


@dataclass(frozen=True)
class FitResult:
    theta: np.ndarray          # best-fit parameters
    error: np.ndarray          # 1σ from the curvature (NaN if not positive definite)
    nll: float                 # at the best fit (sum over events)
    seconds: float


def _nll(model: AnyFlow, x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    return -model.log_prob(x, theta.expand(len(x), -1)).sum()


@torch.no_grad()
def prescan(model: AnyFlow, x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor,
            points: int, rows: int = 8192) -> torch.Tensor:
    """NLL of ``x`` on a ``points``-per-axis grid of θ in [lo, hi] (flow evaluations only);
    returns the grid points ordered from the lowest NLL.

    The grid points are evaluated together, about ``rows`` events × points per flow call
    (one call per point costs twice the time in Python overhead for a few hundred events).
    """
    axes = [torch.linspace(float(a), float(b), points) for a, b in zip(lo, hi, strict=True)]
    grid = torch.cartesian_prod(*axes).reshape(-1, len(axes))
    per_call = max(1, rows // len(x))
    nll = torch.cat([
        -model.log_prob(x.repeat(len(g), 1), g.repeat_interleave(len(x), 0))
        .reshape(len(g), len(x)).sum(1) for g in grid.split(per_call)])
    return grid[torch.argsort(nll)]


def gradient_fit(model: AnyFlow, x: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                 starts: int = 2, steps: int = 50, prescan_points: int = 6) -> FitResult:
    """Maximum-likelihood θ for events ``x`` under the conditional flow, θ within [lo, hi].

    A coarse flow-likelihood prescan (``prescan_points`` per axis) picks the ``starts`` best
    starting points; from each, L-BFGS (``steps`` iterations) on u with
    θ = lo + (hi − lo)·sigmoid(u), which keeps θ inside the trained box; the best minimum wins.
    """
    t0 = time.perf_counter()
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    xt = torch.as_tensor(x, dtype=torch.float32)
    lo_t, hi_t = (torch.as_tensor(v, dtype=torch.float32) for v in (lo, hi))
    to_theta = lambda u: lo_t + (hi_t - lo_t) * torch.sigmoid(u)  # noqa: E731
    margin = 0.02 * (hi_t - lo_t)  # stay off the box edge, where sigmoid saturates
    inits = prescan(model, xt, lo_t + margin, hi_t - margin, prescan_points)[:starts]
    best_theta, best_nll = None, np.inf
    for init in inits:
        u = torch.logit((init - lo_t) / (hi_t - lo_t)).requires_grad_(True)
        opt = torch.optim.LBFGS([u], lr=1.0, max_iter=steps, line_search_fn="strong_wolfe")

        def closure(u=u, opt=opt) -> torch.Tensor:
            opt.zero_grad()
            loss = _nll(model, xt, to_theta(u)) / len(xt)
            loss.backward()
            return loss

        opt.step(closure)
        with torch.no_grad():
            theta = to_theta(u)
            value = float(_nll(model, xt, theta))
        if value < best_nll:
            best_theta, best_nll = theta.clone(), value
    hess = torch.autograd.functional.hessian(lambda t: _nll(model, xt, t), best_theta)
    try:
        var = torch.diagonal(torch.linalg.inv(hess.double())).numpy()
        err = np.where(var > 0, np.sqrt(np.abs(var)), np.nan)
    except RuntimeError:
        err = np.full(len(lo), np.nan)
    for p in model.parameters():
        p.requires_grad_(True)
    return FitResult(best_theta.numpy().astype(float), err, best_nll, time.perf_counter() - t0)


def template_nll(template: np.ndarray, x: np.ndarray, edges: list[np.ndarray],
                 floor: float = 0.5, product: bool = False) -> float:
    """−Σ log of the binned density of ``template`` at the events ``x`` (empty bins get
    ``floor`` counts, so a template never assigns zero probability). ``product``: the density
    is the product of one 1-D histogram per observable (no sparse multi-dimensional bins;
    the correlations between observables are ignored)."""
    idx = [np.clip(np.searchsorted(e, x[:, j], side="right") - 1, 0, len(e) - 2)
           for j, e in enumerate(edges)]
    if product:
        return float(sum(-np.log(_density(template[:, [j]], [e], floor)[i]).sum()
                         for j, (e, i) in enumerate(zip(edges, idx, strict=True))))
    return float(-np.log(_density(template, edges, floor)[tuple(idx)]).sum())


def _density(template: np.ndarray, edges: list[np.ndarray], floor: float) -> np.ndarray:
    """Normalised binned density of ``template`` with ``floor`` counts added to every bin."""
    counts = np.histogramdd(template, bins=edges)[0] + floor
    volume = np.prod(np.meshgrid(*[np.diff(e) for e in edges], indexing="ij"), axis=0)
    return counts / counts.sum() / volume


def grid_scan(templates: dict[tuple[float, ...], np.ndarray], x: np.ndarray,
              edges: list[np.ndarray], product: bool = False) -> FitResult:
    """Best parameter point of a template grid for events ``x``, refined by a parabola.

    ``templates[θ] = events generated at θ``; along each axis the parabola through the best
    point and its grid neighbours gives the refined θ and its curvature error. When the best
    point is on the grid edge, the parabola runs through it and its two inward neighbours and
    its minimum is kept inside the grid box, so that a truth between the edge point and its
    neighbour is not pinned to the edge; with fewer than three points on the axis, or a
    parabola that is not convex, the grid value is kept and the error is NaN. ``product``:
    templates as products of 1-D histograms (:func:`template_nll`).
    """
    t0 = time.perf_counter()
    nll = {theta: template_nll(t, x, edges, product=product) for theta, t in templates.items()}
    best = min(nll, key=nll.get)
    axes = [sorted({t[j] for t in templates}) for j in range(len(best))]
    theta, err = np.array(best, float), np.full(len(best), np.nan)
    for j, values in enumerate(axes):
        if len(values) < 3:
            continue
        k = min(max(values.index(best[j]), 1), len(values) - 2)  # centre of three points
        pts = [tuple(v if i == j else best[i] for i in range(len(best)))
               for v in values[k - 1:k + 2]]
        if all(p in nll for p in pts):
            a, b, _ = np.polyfit(values[k - 1:k + 2], [nll[p] for p in pts], 2)
            if a > 0:
                theta[j] = np.clip(-b / (2 * a), values[0], values[-1])
                err[j] = 1 / np.sqrt(2 * a)
    return FitResult(theta, err, float(nll[best]), time.perf_counter() - t0)
