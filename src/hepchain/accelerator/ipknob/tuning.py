"""Tuning the IP knobs on the simulated machine: the operators' linear scans, Bayesian
optimisation (BoTorch) of one knob at a time or all 12 at once, and Nelder–Mead.

Every method works through a :class:`Session`, which counts measurements (one measurement =
``dwell_s`` seconds of 1 Hz readouts averaged at one setting), counts background-constraint
violations (the noise-free background of either ring above ``bg_limit`` times its value at the
starting setting) and records, after each measurement, two things about the setting the method
would leave the machine at if stopped there (its incumbent): the method's own estimate of its
L_sp from the readouts (``believed``: BO's posterior mean, Nelder–Mead's best measured value,
the operator's step mean at the chosen set value) and, for evaluation only, its true L_sp
fraction relative to the hidden optimum (``fraction``). Stopping rules and counts of
measurements use ``believed`` only; ``fraction`` scores the setting a method returned.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from scipy.optimize import minimize

from hepchain.accelerator.ipknob.machine import KNOB_NAMES, Machine, knob_index
from hepchain.accelerator.ipknob.operators import Operator
from hepchain.accelerator.ipknob.scan import linear_scan, random_collider, step_means
from hepchain.accelerator.ipknob.simulator import Collider, Noise
from hepchain.core.progress import track
from hepchain.core.seeding import derive_seed


@dataclass
class Trace:
    """What one tuning run did, per measurement: the incumbent's true L_sp fraction (evaluation
    only), the method's own estimate of the incumbent's L_sp (NaN before it has one), and the
    number of background violations."""

    method: str
    fraction: list[float] = field(default_factory=list)
    believed: list[float] = field(default_factory=list)
    violations: int = 0

    @property
    def n(self) -> int:
        return len(self.fraction)

    @property
    def final(self) -> float:
        return self.fraction[-1]

    def at_budget(self, budget: int) -> float:
        """True L_sp fraction of the setting returned after ``budget`` measurements (NaN if the
        method used fewer)."""
        return self.fraction[budget - 1] if 0 < budget <= self.n else float("nan")

    def first_believing(self, level: float) -> float:
        """Measurements until the method's own estimate of its incumbent first reaches
        ``level`` (NaN if never): a stopping rule that needs no knowledge of the true L_sp."""
        with np.errstate(invalid="ignore"):
            hit = np.flatnonzero(np.asarray(self.believed, float) >= level)
        return float(hit[0] + 1) if hit.size else float("nan")


class Session:
    """Measurements on one collider, with bookkeeping for :class:`Trace`."""

    def __init__(self, collider: Collider, method: str, dwell_s: int, bg_limit: float) -> None:
        self.collider, self.dwell = collider, dwell_s
        self.limit = bg_limit * collider.true_background(collider.setting)
        self.trace = Trace(method)

    def measure(self, setting: np.ndarray) -> tuple[float, np.ndarray, dict[str, np.ndarray]]:
        """Dwell at ``setting``; return mean L_sp, mean background per ring, raw readouts."""
        setting = np.asarray(setting, float)
        read = self.collider.run(np.repeat(setting[None, :], self.dwell, axis=0))
        if (self.collider.true_background(setting) > self.limit).any():
            self.trace.violations += 1
        bg = np.array([read["ler_background"].mean(), read["her_background"].mean()])
        return float(read["lsp"].mean()), bg, read

    def record(self, incumbent: np.ndarray, believed: float) -> None:
        """After a measurement: the incumbent setting and the method's estimate of its L_sp."""
        self.trace.fraction.append(float(self.collider.lsp_fraction(incumbent)))
        self.trace.believed.append(float(believed))


# ---------------------------------------------------------------------------- linear scans


def operator_scans(session: Session, knobs: list[str], operators: list[Operator],
                   rng: np.random.Generator, half_range: float, n_steps: int) -> Trace:
    """The operators' procedure: scan each knob linearly (±``half_range`` knob scales,
    ``n_steps`` steps), let a random operator choose the set value, set it, next knob. The
    operators' estimate of the L_sp they leave is the step mean nearest their set value."""
    c = session.collider
    for knob in knobs:
        k = knob_index(knob)
        start = c.setting.copy()
        values = start[k] + np.linspace(-1, 1, n_steps) * half_range * c.scales[k]
        c.setting = start.copy()
        scan = linear_scan(c, knob, values, session.dwell)
        per_step = np.repeat(start[None, :], n_steps, axis=0)
        per_step[:, k] = values
        session.trace.violations += int(
            (c.true_background(per_step) > session.limit).any(axis=-1).sum())
        op = operators[int(rng.integers(len(operators)))]
        new = start.copy()
        new[k] = op.choose(scan, rng)
        u, lsp = step_means(scan["knob_value"], scan["lsp"])
        belief = session.trace.believed[-1] if session.trace.n else float("nan")
        for _ in range(n_steps - 1):
            session.record(start, belief)
        c.setting = new
        session.record(new, float(lsp[np.argmin(np.abs(u - new[k]))]))
    return session.trace


# ---------------------------------------------------------------------------- Bayesian optimisation


@dataclass(frozen=True)
class BOSettings:
    """BO scan settings: search box (± knob scales around the start), per-step travel limit
    (fraction of the box), initial points (the start plus random ones within the travel
    limit), acquisition ('qlognei' or 'ucb'), acquisition-optimiser and GP-fit effort."""

    box: float = 1.5
    travel: float = 0.2
    init: int = 3
    acquisition: str = "qlognei"
    beta: float = 2.0
    restarts: int = 4
    raw_samples: int = 128
    fit_maxiter: int = 50
    refit_until: int = 8  # refit hyperparameters after every measurement up to this many,
    refit_every: int = 4  # then every this many (in between: same hyperparameters, new data)

    @classmethod
    def from_dict(cls, data: dict | None) -> BOSettings:
        return cls(**(data or {}))


def _fit_models(x: torch.Tensor, y: torch.Tensor, maxiter: int, previous: Any = None) -> Any:
    """Independent GPs (inferred homoscedastic noise) for L_sp and the background ratio
    max_ring(R / R_limit). Hyperparameters are fitted by L-BFGS (at most ``maxiter``
    iterations), or taken over from ``previous`` (a model fitted on fewer points) when given."""
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import ModelListGP, SingleTaskGP
    from botorch.models.transforms import Standardize
    from gpytorch.mlls import ExactMarginalLogLikelihood

    models = []
    for i in range(y.shape[1]):
        gp = SingleTaskGP(x, y[:, i:i + 1], outcome_transform=Standardize(m=1))
        if previous is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit_gpytorch_mll(ExactMarginalLogLikelihood(gp.likelihood, gp),
                                 optimizer_kwargs={"options": {"maxiter": maxiter}})
        else:
            old = previous.models[i].state_dict()
            gp.load_state_dict({k: v for k, v in old.items()
                                if not k.startswith("outcome_transform")}, strict=False)
        gp.eval()
        models.append(gp)
    return ModelListGP(*models)


def _acquisition(model: Any, x: torch.Tensor, cfg: BOSettings) -> Any:
    """qLogNEI or UCB of L_sp, both with the background constraint R / R_limit ≤ 1."""
    from botorch.acquisition import qUpperConfidenceBound
    from botorch.acquisition.logei import qLogNoisyExpectedImprovement
    from botorch.acquisition.objective import ConstrainedMCObjective, GenericMCObjective

    def lsp(z: torch.Tensor, X: torch.Tensor | None = None) -> torch.Tensor:
        return z[..., 0]

    constraints = [lambda z: z[..., 1] - 1.0]
    if cfg.acquisition == "qlognei":
        return qLogNoisyExpectedImprovement(model, x, objective=GenericMCObjective(lsp),
                                            constraints=constraints, prune_baseline=True)
    if cfg.acquisition == "ucb":
        objective = ConstrainedMCObjective(lsp, constraints, infeasible_cost=0.0)
        return qUpperConfidenceBound(model, beta=cfg.beta, objective=objective)
    raise ValueError(f"unknown acquisition {cfg.acquisition!r}; use 'qlognei' or 'ucb'")


def _incumbent(model: Any, x: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Evaluated point with the best posterior-mean L_sp among those predicted feasible, and
    that posterior mean (the optimiser's estimate of the incumbent's L_sp)."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # jitter notices for near-duplicate points
        mean = model.posterior(x).mean
    score = mean[:, 0].clone()
    score[mean[:, 1] > 1.0] = -torch.inf
    if torch.isinf(score).all():
        score = mean[:, 0]
    best = int(torch.argmax(score))
    return x[best], float(mean[best, 0])


def bo_optimise(session: Session, start: np.ndarray, dims: list[int], budget: int,
                cfg: BOSettings, rng: np.random.Generator) -> np.ndarray:
    """Maximise L_sp over the knobs ``dims`` (others fixed at ``start``) with ``budget``
    measurements; return the setting left on the machine (the feasible incumbent)."""
    from botorch.optim import optimize_acqf

    scales = session.collider.scales[dims]
    lo, hi = start[dims] - cfg.box * scales, start[dims] + cfg.box * scales

    def to_setting(xu: np.ndarray) -> np.ndarray:
        s = start.copy()
        s[dims] = lo + xu * (hi - lo)
        return s

    d = len(dims)
    xs = [np.full(d, 0.5)]
    for _ in range(max(2, cfg.init) - 1):
        xs.append(np.clip(0.5 + rng.uniform(-cfg.travel, cfg.travel, d), 0, 1))
    ys: list[list[float]] = []
    incumbent, model = start.copy(), None
    belief = session.trace.believed[-1] if session.trace.n else float("nan")
    for i in range(budget):
        if i >= len(xs):
            last = xs[-1]
            bounds = torch.as_tensor(np.stack([np.clip(last - cfg.travel, 0, 1),
                                               np.clip(last + cfg.travel, 0, 1)]),
                                     dtype=torch.double)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                acq = _acquisition(model, torch.as_tensor(np.array(xs), dtype=torch.double),
                                   cfg)
                cand, _ = optimize_acqf(acq, bounds, q=1, num_restarts=cfg.restarts,
                                        raw_samples=cfg.raw_samples)
            xs.append(cand[0].numpy())
        lsp, bg, _ = session.measure(to_setting(xs[i]))
        ys.append([lsp, float((bg / session.limit).max())])
        if i == 0:
            belief = lsp  # the start, measured once
        else:
            x_t = torch.as_tensor(np.array(xs[: i + 1]), dtype=torch.double)
            refit = model is None or i < cfg.refit_until or i % cfg.refit_every == 0
            model = _fit_models(x_t, torch.as_tensor(np.array(ys), dtype=torch.double),
                                cfg.fit_maxiter, previous=None if refit else model)
            best, belief = _incumbent(model, x_t)
            incumbent = to_setting(best.numpy())
        session.record(incumbent, belief)
    session.collider.setting = incumbent
    return incumbent


def bo_one_knob(session: Session, knobs: list[str], budget_per_knob: int, cfg: BOSettings,
                rng: np.random.Generator) -> Trace:
    """BO of each knob in turn (1-d GP), ``budget_per_knob`` measurements each."""
    setting = session.collider.setting.copy()
    for knob in knobs:
        setting = bo_optimise(session, setting, [knob_index(knob)], budget_per_knob, cfg, rng)
    return session.trace


def bo_all_knobs(session: Session, knobs: list[str], budget: int, cfg: BOSettings,
                 rng: np.random.Generator) -> Trace:
    """BO of all ``knobs`` at once (one GP over the joint space)."""
    bo_optimise(session, session.collider.setting.copy(), [knob_index(k) for k in knobs],
                budget, cfg, rng)
    return session.trace


# ---------------------------------------------------------------------------- Nelder–Mead


class _BudgetSpent(Exception):
    pass


def nelder_mead(session: Session, knobs: list[str], budget: int, step: float = 0.5) -> Trace:
    """Nelder–Mead on the noisy L_sp over ``knobs`` (in knob scales), ``budget`` measurements;
    the incumbent is the best measured point. No background constraint."""
    c = session.collider
    dims = [knob_index(k) for k in knobs]
    start = c.setting.copy()
    best = [-np.inf, start.copy()]

    def setting_of(z: np.ndarray) -> np.ndarray:
        s = start.copy()
        s[dims] = start[dims] + z * c.scales[dims]
        return s

    def objective(z: np.ndarray) -> float:
        if session.trace.n >= budget:
            raise _BudgetSpent
        s = setting_of(z)
        lsp, _, _ = session.measure(s)
        if lsp > best[0]:
            best[:] = [lsp, s]
        session.record(best[1], best[0])
        return -lsp

    simplex = np.vstack([np.zeros(len(dims)), step * np.eye(len(dims))])
    with contextlib.suppress(_BudgetSpent):
        minimize(objective, np.zeros(len(dims)), method="Nelder-Mead",
                 options={"initial_simplex": simplex, "maxfev": budget, "xatol": 1e-3,
                          "fatol": 0.0})
    c.setting = best[1]
    return session.trace


def compare(cfg: dict[str, Any], seed: int, machine: Machine,
            operators: list[Operator]) -> dict[str, list[Trace]]:
    """Run every method on the same ``cfg['states']`` simulated machine states.

    Each method starts from an identical copy of each state (same hidden optimum, setting,
    currents and random stream); knobs outside ``cfg['knobs']`` start at their optimum.
    ``cfg`` is the preset's ``tuning:`` mapping.
    """
    torch.set_num_threads(1)
    knobs = list(cfg["knobs"])
    noise = Noise.from_dict(cfg.get("noise"))
    bo = BOSettings.from_dict(cfg.get("bo"))
    runs: dict[str, Callable[[Session, np.random.Generator], Trace]] = {
        "linear scan": lambda s, r: operator_scans(s, knobs, operators, r,
                                                   cfg["scan"]["half_range"],
                                                   cfg["scan"]["steps"]),
        "BO one-knob": lambda s, r: bo_one_knob(s, knobs, cfg["bo_one_knob_budget"], bo, r),
        "BO all-knobs": lambda s, r: bo_all_knobs(s, knobs, cfg["bo_all_budget"], bo, r),
        "Nelder-Mead": lambda s, r: nelder_mead(s, knobs, cfg["nm_budget"]),
    }
    out: dict[str, list[Trace]] = {name: [] for name in runs}
    for i in track(range(cfg["states"]), "tuning comparison"):
        state_seed = derive_seed(seed, "tuning-state", i)
        for name, fn in runs.items():
            collider = random_collider(np.random.default_rng(state_seed), machine, noise,
                                       cfg["other_offset"])
            untuned = [i for i in range(12) if KNOB_NAMES[i] not in knobs]
            collider.setting[untuned] = collider.optimum[untuned]
            session = Session(collider, name, cfg["dwell_s"], cfg["bg_limit"])
            out[name].append(fn(session, np.random.default_rng(derive_seed(state_seed, name))))
    return out
