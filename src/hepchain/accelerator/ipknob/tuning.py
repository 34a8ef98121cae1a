"""Tuning the IP knobs on the simulated machine: the operators' linear scans, Bayesian
optimisation (BoTorch) of one knob at a time or all 12 at once, and Nelder–Mead.

BO treats the background as a constraint in one of three ways (``BOSettings.constraint``):
``none`` ignores it, ``logei`` models it with its own GP and weights the acquisition by the
probability of feasibility (BoTorch's ``constraints=``), ``safe`` adds a safe-set rule on top:
it only proposes points whose background upper confidence bound is below the limit (the
random initial points, drawn before there is a model, are not checked).

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
from hepchain.core.errors import UsageError
from hepchain.core.progress import track
from hepchain.core.seeding import derive_seed

MAX_ABORTS = 20  # dwells in a row lost to beam aborts before a tuning gives up


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
        """Dwell at ``setting``; return mean L_sp, mean background per ring, raw readouts. A
        dwell during which the beam aborted is discarded: the beams are re-injected and the
        setting is measured again (an empty ring reads no background, which a model would take
        for a safe setting)."""
        setting = np.asarray(setting, float)
        dwell = np.repeat(setting[None, :], self.dwell, axis=0)
        read = self.collider.run(dwell)
        for _ in range(MAX_ABORTS):
            if not read["aborted"].any():
                break
            self.collider.reinject()
            read = self.collider.run(dwell)
        else:
            raise UsageError(f"The beam aborted in {MAX_ABORTS} dwells in a row; lower "
                             "noise.abort_per_s (aborts per second).")
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


ACQUISITIONS = ("qlognei", "ucb")
CONSTRAINTS = ("none", "logei", "safe")


@dataclass(frozen=True)
class BOSettings:
    """BO scan settings: search box (± knob scales around the start), per-step travel limit
    (fraction of the box), initial points (the start plus random ones within ``init_step``
    times the travel limit), acquisition ('qlognei' or 'ucb'), background constraint ('none', 'logei' or
    'safe', see the module docstring; ``safe_beta`` is the width of the safe set's upper
    confidence bound in posterior standard deviations, ``safe_scale`` and
    ``safe_lengthscale`` the fixed prior std and lengthscale of the background GP),
    acquisition-optimiser and GP-fit effort."""

    box: float = 1.5
    travel: float = 0.2
    init: int = 3
    init_step: float = 1.0  # random initial points within init_step x travel of the start
    acquisition: str = "qlognei"
    beta: float = 2.0
    constraint: str = "logei"
    safe_beta: float = 2.0
    safe_scale: float = 0.1  # 'safe': prior std of the background margin R / R_limit - 1
    safe_lengthscale: float = 1.0  # 'safe': its GP's lengthscale, knob scales
    restarts: int = 4
    raw_samples: int = 128
    fit_maxiter: int = 50
    refit_until: int = 8  # refit hyperparameters after every measurement up to this many,
    refit_every: int = 4  # then every this many (in between: same hyperparameters, new data)

    @classmethod
    def from_dict(cls, data: dict | None) -> BOSettings:
        """Settings from the preset's ``tuning.bo`` mapping (UsageError, one sentence, for an
        unknown key, acquisition or constraint)."""
        data = dict(data or {})
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise UsageError(f"Unknown tuning.bo settings {unknown}; known: "
                             f"{sorted(cls.__dataclass_fields__)}.")
        cfg = cls(**data)
        if cfg.acquisition not in ACQUISITIONS:
            raise UsageError(f"Unknown tuning.bo.acquisition {cfg.acquisition!r}; use one of "
                             f"{', '.join(ACQUISITIONS)}.")
        if cfg.constraint not in CONSTRAINTS:
            raise UsageError(f"Unknown tuning.bo.constraint {cfg.constraint!r}; use one of "
                             f"{', '.join(CONSTRAINTS)}.")
        return cfg


def _fit_models(x: torch.Tensor, y: torch.Tensor, maxiter: int, previous: Any = None,
                margin_prior: tuple[float, float] | None = None) -> Any:
    """Independent GPs (inferred homoscedastic noise) for L_sp and the background margin
    max_ring(R / R_limit) - 1 (feasible: ≤ 0). Outcomes are standardised by their sample
    mean and std, and hyperparameters fitted by L-BFGS (at most ``maxiter`` iterations) or
    taken over from ``previous`` (a model fitted on fewer points) when given. With
    ``margin_prior`` = (scale, lengthscale) the margin's GP has a fixed prior instead, as a
    safe set needs from its first points on: prior std ``scale`` (ratio units) and the RBF
    lengthscale ``lengthscale`` (unit-box units) in every knob; only its mean and noise are
    fitted."""
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import ModelListGP, SingleTaskGP
    from botorch.models.transforms import Standardize
    from gpytorch.mlls import ExactMarginalLogLikelihood

    models = []
    for i in range(y.shape[1]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the fixed-scale margin is not standardised
            if i == 1 and margin_prior is not None:
                gp = SingleTaskGP(x, y[:, 1:2] / margin_prior[0], outcome_transform=None)
                gp.covar_module.lengthscale = margin_prior[1]
                gp.covar_module.raw_lengthscale.requires_grad_(False)
            else:
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
    """qLogNEI or UCB of L_sp; with ``constraint`` 'logei' or 'safe' weighted by the
    probability that the background margin is ≤ 0, with 'safe' also penalised outside the
    safe set."""
    from botorch.acquisition import qUpperConfidenceBound
    from botorch.acquisition.logei import qLogNoisyExpectedImprovement
    from botorch.acquisition.objective import ConstrainedMCObjective, GenericMCObjective

    def lsp(z: torch.Tensor, X: torch.Tensor | None = None) -> torch.Tensor:
        return z[..., 0]

    constraints = [] if cfg.constraint == "none" else [lambda z: z[..., 1]]
    if cfg.acquisition == "qlognei":
        acq = qLogNoisyExpectedImprovement(model, x, objective=GenericMCObjective(lsp),
                                           constraints=constraints or None,
                                           prune_baseline=True)
    else:
        objective = (ConstrainedMCObjective(lsp, constraints, infeasible_cost=0.0)
                     if constraints else GenericMCObjective(lsp))
        acq = qUpperConfidenceBound(model, beta=cfg.beta, objective=objective)
    return _safe_penalty(acq, cfg.safe_beta) if cfg.constraint == "safe" else acq


def _background_ucb(model: Any, x: torch.Tensor, beta: float) -> torch.Tensor:
    """Upper confidence bound mean + beta·std of the background margin at ``x`` (shape
    (..., d) -> (...), in the GP's units: safe where ≤ 0), from its GP (``model.models[1]``,
    no observation noise)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # jitter notices for near-duplicate points
        post = model.models[1].posterior(x)
    return post.mean[..., 0] + beta * post.variance[..., 0].clamp_min(1e-12).sqrt()


def _safe_penalty(acq: Any, beta: float, weight: float = 100.0) -> Any:
    """``acq`` minus ``weight`` × the squared amount by which the background UCB of each
    point of a q-batch lies above the limit (smooth for L-BFGS): the optimiser is steered
    into the safe set (the final candidate is still checked by :func:`_into_safe_set`)."""
    from botorch.acquisition import AcquisitionFunction

    class SafePenalty(AcquisitionFunction):
        def forward(self, X: torch.Tensor) -> torch.Tensor:
            excess = torch.relu(_background_ucb(self.model, X, beta)).square().sum(-1)
            return acq(X) - weight * excess

    return SafePenalty(acq.model)


def _into_safe_set(model: Any, cand: np.ndarray, xs: list[np.ndarray], beta: float,
                   steps: int = 10) -> np.ndarray:
    """The safe-set rule: ``cand`` if its background UCB is ≤ 0, else the furthest point
    towards it (bisection) from an anchor whose UCB is ≤ 0 — the last measured point if it is
    safe, else the measured point with the lowest UCB (a retreat; if even that one is above
    the limit it is proposed again, i.e. the model is asked for a repeat measurement)."""
    pts = torch.as_tensor(np.array(xs), dtype=torch.double)
    with torch.no_grad():
        ucb_seen = _background_ucb(model, pts, beta)
        if float(_background_ucb(model, torch.as_tensor(cand[None]), beta)[0]) <= 0.0:
            return cand
        anchor = xs[-1] if float(ucb_seen[-1]) <= 0.0 else xs[int(torch.argmin(ucb_seen))]
        lo, hi = 0.0, 1.0
        for _ in range(steps):
            t = 0.5 * (lo + hi)
            x = torch.as_tensor((anchor + t * (cand - anchor))[None])
            if float(_background_ucb(model, x, beta)[0]) <= 0.0:
                lo = t
            else:
                hi = t
    return anchor + lo * (cand - anchor)


def _incumbent(model: Any, x: torch.Tensor,
               constrained: bool = True) -> tuple[torch.Tensor, float]:
    """Evaluated point with the best posterior-mean L_sp among those predicted feasible (all
    of them if not ``constrained``), and that posterior mean (the optimiser's estimate of the
    incumbent's L_sp)."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # jitter notices for near-duplicate points
        mean = model.posterior(x).mean
    score = mean[:, 0].clone()
    if constrained:
        score[mean[:, 1] > 0.0] = -torch.inf
    if torch.isinf(score).all():
        score = mean[:, 0]
    best = int(torch.argmax(score))
    return x[best], float(mean[best, 0])


def initial_points(cfg: BOSettings, d: int, rng: np.random.Generator) -> list[np.ndarray]:
    """BO's first points in the unit box: the start (its centre) and ``max(2, init) - 1``
    random points within ``init_step`` × the travel limit of it."""
    xs = [np.full(d, 0.5)]
    step = cfg.init_step * cfg.travel
    for _ in range(max(2, cfg.init) - 1):
        xs.append(np.clip(0.5 + rng.uniform(-step, step, d), 0, 1))
    return xs


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

    xs = initial_points(cfg, len(dims), rng)
    margin_prior = ((cfg.safe_scale, cfg.safe_lengthscale / (2 * cfg.box))
                    if cfg.constraint == "safe" else None)
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
            cand = cand[0].detach().numpy()
            if cfg.constraint == "safe":
                cand = _into_safe_set(model, cand, xs, cfg.safe_beta)
            xs.append(cand)
        lsp, bg, _ = session.measure(to_setting(xs[i]))
        ys.append([lsp, float((bg / session.limit).max()) - 1.0])
        if i == 0:
            belief = lsp  # the start, measured once
        else:
            x_t = torch.as_tensor(np.array(xs[: i + 1]), dtype=torch.double)
            refit = model is None or i < cfg.refit_until or i % cfg.refit_every == 0
            model = _fit_models(x_t, torch.as_tensor(np.array(ys), dtype=torch.double),
                                cfg.fit_maxiter, previous=None if refit else model,
                                margin_prior=margin_prior)
            best, belief = _incumbent(model, x_t, cfg.constraint != "none")
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


def bo_settings(cfg: dict[str, Any]) -> tuple[BOSettings, dict[str, BOSettings]]:
    """The BO settings of the preset's ``tuning:`` mapping: the main ones (``bo``) and one
    copy per constraint in ``bo_baselines`` (extra "BO all-knobs (constraint …)" rows);
    UsageError, one sentence, for an unknown setting or constraint."""
    bo = BOSettings.from_dict(cfg.get("bo"))
    extra = {f"BO all-knobs (constraint {c})": BOSettings.from_dict({**cfg.get("bo", {}),
                                                                     "constraint": c})
             for c in cfg.get("bo_baselines", [])}
    return bo, extra


def machine_state(cfg: dict[str, Any], seed: int, i: int, machine: Machine) -> Collider:
    """A fresh copy of tuning state ``i`` of run ``seed`` (same hidden optimum, setting,
    currents and random stream every call); knobs outside ``cfg['knobs']`` at their optimum.
    ``cfg`` is the preset's ``tuning:`` mapping."""
    collider = random_collider(np.random.default_rng(derive_seed(seed, "tuning-state", i)),
                               machine, Noise.from_dict(cfg.get("noise")), cfg["other_offset"])
    untuned = [k for k in range(12) if KNOB_NAMES[k] not in cfg["knobs"]]
    collider.setting[untuned] = collider.optimum[untuned]
    return collider


def method_rng(seed: int, i: int, method: str) -> np.random.Generator:
    """The random stream of ``method`` on tuning state ``i`` of run ``seed``."""
    return np.random.default_rng(derive_seed(derive_seed(seed, "tuning-state", i), method))


def compare(cfg: dict[str, Any], seed: int, machine: Machine,
            operators: list[Operator]) -> dict[str, list[Trace]]:
    """Run every method on the same ``cfg['states']`` simulated machine states.

    Each method starts from an identical copy of each state (:func:`machine_state`).
    ``cfg`` is the preset's ``tuning:`` mapping.
    """
    torch.set_num_threads(1)
    knobs = list(cfg["knobs"])
    bo, extra = bo_settings(cfg)
    runs: dict[str, Callable[[Session, np.random.Generator], Trace]] = {
        "linear scan": lambda s, r: operator_scans(s, knobs, operators, r,
                                                   cfg["scan"]["half_range"],
                                                   cfg["scan"]["steps"]),
        "BO one-knob": lambda s, r: bo_one_knob(s, knobs, cfg["bo_one_knob_budget"], bo, r),
        "BO all-knobs": lambda s, r: bo_all_knobs(s, knobs, cfg["bo_all_budget"], bo, r),
        **{name: (lambda s, r, b=b: bo_all_knobs(s, knobs, cfg["bo_all_budget"], b, r))
           for name, b in extra.items()},
        "Nelder-Mead": lambda s, r: nelder_mead(s, knobs, cfg["nm_budget"]),
    }
    out: dict[str, list[Trace]] = {name: [] for name in runs}
    for i in track(range(cfg["states"]), "tuning comparison"):
        for name, fn in runs.items():
            session = Session(machine_state(cfg, seed, i, machine), name, cfg["dwell_s"],
                              cfg["bg_limit"])
            stream = "BO all-knobs" if name in extra else name  # paired: same initial points
            out[name].append(fn(session, method_rng(seed, i, stream)))
    return out
