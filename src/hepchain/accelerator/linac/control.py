"""Controllers for the end-section task and their evaluation with the ARES-benchmark metrics.

Every method gets the same machine states (``MachineEnv.reset(seed=...)``) and the same budget
of ``max_steps`` screen readings after the initial one. Per episode we record the MAE after
each reading; an episode succeeds at the first reading with MAE < tolerance.

* recall: set the actuators to the mode's stored set point (one reading) — what an operator's
  saved settings give; every controller has to beat it;
* RL: a stable-baselines3 policy acting deterministically (one reading per action);
* BO: BoTorch ``SingleTaskGP`` on -log10(MAE) with LogEI, 5 initial readings, each new point
  restricted to +-``trust`` (normalised units) around the best so far (as in rl-vs-bo);
* Nelder-Mead (scipy) from the initial settings, initial simplex of size 0.25;
* random search: uniform settings.

A run keeps every controller's steps and success per state (:func:`write_episodes`), so the
seeds of a bench can be pooled (:func:`pooled_summary`, ``hepchain linac pool``), and keeps
each controller's result as soon as it ends (:func:`run_tasks`), so a run stopped during the
baselines and started again does not train its agents again.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import json
import re
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import minimize

from hepchain.accelerator.linac.envs import N_ACT, SteeringEnv
from hepchain.core.checkpoints import kept_piece
from hepchain.core.errors import DataError, UsageError
from hepchain.core.executors import LocalExecutor
from hepchain.core.io import atomic_torch_save, atomic_write_text
from hepchain.core.metrics import bootstrap_error


@dataclass
class Episode:
    errors: list[float]  # MAE [mm] after each reading (index 0: initial reading)
    tolerance: float
    budget: int  # readings allowed after the initial one

    @property
    def steps(self) -> int:
        """Readings to tolerance; the whole budget for an episode that never gets there."""
        step = self.success_step
        return self.budget if step is None else step

    @property
    def success_step(self) -> int | None:
        hits = [i for i, e in enumerate(self.errors) if e < self.tolerance]
        return hits[0] if hits else None

    @property
    def best(self) -> float:
        return float(min(self.errors))


def step_summary(success: list[bool], steps: list[int]) -> dict[str, float]:
    """Success rate with its binomial error and median steps to tolerance with its bootstrap
    error, from each episode's success and steps (a failure counted as the whole budget)."""
    rate = float(np.mean(success))
    return {"success_rate": rate,
            "success_rate_err": float(np.sqrt(rate * (1 - rate) / len(success))),
            "median_steps": float(np.median(steps)),
            "median_steps_err": bootstrap_error(steps)}


def summarise(episodes: list[Episode]) -> dict[str, float]:
    """:func:`step_summary` of the episodes and their median best MAE [um] (best reading of
    the episode, the rl-vs-bo ``eval.py`` definition)."""
    return {**step_summary([e.success_step is not None for e in episodes],
                           [e.steps for e in episodes]),
            "median_final_mae_um": 1e3 * float(np.median([e.best for e in episodes]))}


EPISODES_FILE = "episodes.json"  # a run's per-state steps and success of every controller


def write_episodes(workdir: Path, episodes: dict[str, list[Episode]]) -> None:
    """Each controller's steps to tolerance and success on each evaluation state, in state
    order, to ``workdir/episodes.json`` (what :func:`pooled_summary` reads)."""
    atomic_write_text(workdir / EPISODES_FILE, json.dumps(
        {label: {"steps": [e.steps for e in eps],
                 "success": [e.success_step is not None for e in eps]}
         for label, eps in episodes.items()}))


def _load_episodes(runs: list[Path]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every controller's (steps, success), each (states, runs), from the ``episodes.json`` of
    ``runs`` (run directories of one bench: the same evaluation states in each)."""
    files = [r / EPISODES_FILE for r in runs]
    missing = [str(f) for f in files if not f.is_file()]
    if not runs or missing:
        raise DataError(f"No {EPISODES_FILE} in {', '.join(missing) or 'no run'}; pass run "
                        "directories of `hepchain linac run/bench` with the control part.")
    data = [json.loads(f.read_text()) for f in files]
    shapes = {(label, len(v["steps"])) for d in data for label, v in d.items()}
    if any({(label, len(v["steps"])) for label, v in d.items()} != shapes for d in data):
        raise DataError("The runs differ in their controllers or number of states; pool the "
                        "seeds of one bench.")
    return {label: (np.array([d[label]["steps"] for d in data], float).T,
                    np.array([d[label]["success"] for d in data], float).T)
            for label in data[0]}


def pooled_summary(runs: list[Path]) -> dict[str, dict[str, float]]:
    """:func:`step_summary` of every controller over all episodes of ``runs`` (run
    directories of one bench: the same evaluation states in each), the errors from a
    bootstrap over states that keeps a state's episodes of all runs together."""
    out = {}
    for label, (steps, success) in _load_episodes(runs).items():
        out[label] = {"episodes": steps.size, "success_rate": float(success.mean()),
                      "success_rate_err": bootstrap_error(success, np.mean),
                      "median_steps": float(np.median(steps)),
                      "median_steps_err": bootstrap_error(steps)}
    return out


def pooled_difference(runs: list[Path], against: list[Path]) -> dict[str, dict[str, float]]:
    """Pooled success rate and median steps of ``runs`` minus those of ``against`` (two
    benches on the same evaluation states, e.g. two settings of one controller) for every
    controller in both, each with a paired bootstrap error: the states are resampled, each
    keeping its episodes of both benches together. DataError if the state counts differ::

        pooled_difference(sorted(Path("runs/new").glob("seed*")),
                          sorted(Path("runs/old").glob("seed*")))["TD3 ..."]["median_steps"]
    """
    a, b = _load_episodes(runs), _load_episodes(against)
    common = [label for label in a if label in b]
    if not common or any(len(a[k][0]) != len(b[k][0]) for k in common):
        raise DataError("The two benches share no controller or differ in their number of "
                        "evaluation states; compare benches run on the same states.")
    out = {}
    for label in common:
        row = {}
        for key, stat, i in (("success_rate", np.mean, 1), ("median_steps", np.median, 0)):
            x, y = a[label][i], b[label][i]
            width = x.shape[1] + y.shape[1]

            def diff(flat: np.ndarray, axis: int = 1, stat=stat, n=x.shape[1], w=width):
                cube = flat.reshape(len(flat), -1, w)  # (replicas, states, runs of both)
                return (stat(cube[:, :, :n].reshape(len(flat), -1), axis=axis)
                        - stat(cube[:, :, n:].reshape(len(flat), -1), axis=axis))

            row[key] = float(stat(x) - stat(y))
            row[f"{key}_err"] = bootstrap_error(np.hstack([x, y]), diff)
        out[label] = {"states": len(a[label][0]), **row}
    return out


def paired_gain(episodes: list[Episode], baseline: list[Episode]) -> tuple[float, float]:
    """Success-rate gain over ``baseline`` on the same states (same order), with the standard
    error of the mean of the per-state differences (a paired comparison)."""
    diff = np.array([(a.success_step is not None) - (b.success_step is not None)
                     for a, b in zip(episodes, baseline, strict=True)], float)
    err = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else float("nan")
    return float(diff.mean()), float(err)


class _Done(Exception):
    """Raised inside an optimiser's objective when the budget is spent or tolerance met."""


def _objective(env: SteeringEnv, errors: list[float]) -> Callable[[np.ndarray], float]:
    def f(u: np.ndarray) -> float:
        if len(errors) > env.max_steps or (errors and errors[-1] < env.tolerance):
            raise _Done
        errors.append(env.measure(u))
        return errors[-1]

    return f


def run_policy(env: SteeringEnv, act: Callable[[np.ndarray], np.ndarray], seed: int) -> Episode:
    obs, info = env.reset(seed=seed)
    errors = [info["mae"]]
    done = info["success"]
    while not done:
        obs, _, term, trunc, info = env.step(act(obs))
        errors.append(info["mae"])
        done = term or trunc
    return Episode(errors, env.tolerance, env.max_steps)


def run_recall(env: SteeringEnv, seed: int) -> Episode:
    """Return to the mode's stored set point: one reading, no feedback from the screen."""
    _, info = env.reset(seed=seed)
    errors = [info["mae"]]
    if not info["success"]:
        errors.append(env.measure(env.set_point))
    return Episode(errors, env.tolerance, env.max_steps)


def run_random(env: SteeringEnv, seed: int) -> Episode:
    _, info = env.reset(seed=seed)
    errors = [info["mae"]]
    f = _objective(env, errors)
    rng = np.random.default_rng(seed)
    try:
        while True:
            f(rng.uniform(-1, 1, N_ACT))
    except _Done:
        pass
    return Episode(errors, env.tolerance, env.max_steps)


def run_nelder_mead(env: SteeringEnv, seed: int) -> Episode:
    _, info = env.reset(seed=seed)
    errors = [info["mae"]]
    u0 = env.u.copy()
    f = _objective(env, errors)
    simplex = np.vstack([u0, u0 + 0.25 * np.eye(N_ACT)])
    with contextlib.suppress(_Done):
        minimize(f, u0, method="Nelder-Mead",
                 options={"maxfev": 10 * env.max_steps, "initial_simplex": simplex,
                          "xatol": 1e-6, "fatol": 1e-9})
    return Episode(errors, env.tolerance, env.max_steps)


def run_bo(env: SteeringEnv, seed: int, n_init: int = 5, trust: float = 0.2) -> Episode:
    """BoTorch (GP + log EI in a trust region of half-width ``trust`` around the best reading)
    from ``n_init`` readings around the start. The episode depends on ``seed`` only: the
    acquisition's random restarts draw from a torch generator seeded with it, and the
    caller's global torch RNG is left as it was."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return _bo_episode(env, seed, n_init, trust)


def _bo_episode(env: SteeringEnv, seed: int, n_init: int, trust: float) -> Episode:
    from botorch.acquisition import LogExpectedImprovement
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from botorch.models.transforms import Normalize, Standardize
    from botorch.optim import optimize_acqf
    from gpytorch.mlls import ExactMarginalLogLikelihood

    _, info = env.reset(seed=seed)
    errors = [info["mae"]]
    xs = [env.u.copy()]
    f = _objective(env, errors)
    rng = np.random.default_rng(seed)
    bounds01 = torch.tensor([[-1.0] * N_ACT, [1.0] * N_ACT], dtype=torch.float64)
    try:
        for _ in range(n_init - 1):
            x = np.clip(xs[0] + rng.uniform(-trust, trust, N_ACT), -1, 1)
            f(x)
            xs.append(x)
        while True:
            tx = torch.tensor(np.array(xs), dtype=torch.float64)
            ty = -torch.log10(torch.tensor(errors, dtype=torch.float64)).unsqueeze(-1)
            gp = SingleTaskGP(tx, ty, input_transform=Normalize(N_ACT, bounds=bounds01),
                              outcome_transform=Standardize(1))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit_gpytorch_mll(ExactMarginalLogLikelihood(gp.likelihood, gp),
                                 optimizer_kwargs={"options": {"maxiter": 40}})
                best = tx[int(ty.argmax())]
                lo = (best - trust).clamp(-1, 1)
                hi = (best + trust).clamp(-1, 1)
                cand, _ = optimize_acqf(LogExpectedImprovement(gp, ty.max()),
                                        torch.stack([lo, hi]), q=1, num_restarts=2,
                                        raw_samples=32, options={"maxiter": 30})
            x = cand[0].numpy()
            f(x)
            xs.append(x)
    except _Done:
        pass
    return Episode(errors[: env.max_steps + 1], env.tolerance, env.max_steps)


def selection_score(summary: dict[str, float]) -> tuple[float, float, float]:
    """Order of policies on validation episodes (higher is better): success rate, then fewer
    median steps to tolerance, then lower median best MAE (a :func:`summarise` dict)."""
    return (summary["success_rate"], -summary["median_steps"],
            -summary["median_final_mae_um"])


@dataclass
class Selection:
    """Choose the policy on validation episodes during training: every ``every`` steps the
    deterministic policy runs ``val_env``'s episodes ``seeds``; the one with the highest
    success rate (then the fewest median steps to tolerance, then the lowest median best MAE)
    is kept. Guards against a late collapse of the training and never sees the evaluation
    states."""

    val_env: SteeringEnv
    seeds: list[int]
    every: int


def _selection_callback(selection: Selection):
    """A stable-baselines3 callback that evaluates and keeps the best policy; its ``history``
    lists (steps, success rate, median steps to tolerance, median best MAE [um]) of every
    check. A check at N steps sees the policy after N steps and their updates (it runs when
    the next rollout starts, and once more when training ends); ``kept`` is the step count
    of the policy kept."""
    from stable_baselines3.common.callbacks import BaseCallback

    class BestOnValidation(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.history: list[tuple[int, float, float, float]] = []
            self.best: tuple[float, float, float] | None = None
            self.kept, self.state = 0, None
            self.next = selection.every

        def _check(self) -> None:
            s = summarise(evaluate(selection.val_env, "rl", selection.seeds, self.model))
            self.history.append((self.num_timesteps, s["success_rate"], s["median_steps"],
                                 s["median_final_mae_um"]))
            score = selection_score(s)
            if self.best is None or score > self.best:
                self.best, self.kept = score, self.num_timesteps
                self.state = copy.deepcopy(self.model.policy.state_dict())

        def _on_rollout_start(self) -> None:
            if self.num_timesteps >= self.next:
                self._check()
                self.next = (self.num_timesteps // selection.every + 1) * selection.every

        def _on_step(self) -> bool:
            return True

        def _on_training_end(self) -> None:
            if not self.history or self.history[-1][0] != self.num_timesteps:
                self._check()
            self.model.policy.load_state_dict(self.state)

    return BestOnValidation()


def make_agent(algo: str, env: SteeringEnv, seed: int, net_arch: tuple[int, ...] = (64, 64),
               gamma: float = 0.99, learning_starts: int = 500, action_noise: float = 0.2,
               gradient_steps: int = 1):
    """An untrained stable-baselines3 agent (ppo, sac or td3) with MLP policies of
    ``net_arch``: discount ``gamma``; for SAC/TD3 ``learning_starts`` random steps before the
    first update, ``gradient_steps`` updates per environment step and (TD3) Gaussian
    exploration noise of std ``action_noise`` (in units of the action range [-1, 1])."""
    from stable_baselines3 import PPO, SAC, TD3
    from stable_baselines3.common.noise import NormalActionNoise

    torch.set_num_threads(1)
    kw = {"seed": seed, "verbose": 0, "gamma": gamma,
          "policy_kwargs": {"net_arch": list(net_arch)}}
    off_policy = {"learning_starts": learning_starts, "batch_size": 128,
                  "gradient_steps": gradient_steps}
    if algo == "ppo":
        return PPO("MlpPolicy", env, n_steps=1024, batch_size=128, **kw)
    if algo == "sac":
        return SAC("MlpPolicy", env, **off_policy, **kw)
    if algo == "td3":
        noise = NormalActionNoise(np.zeros(N_ACT), action_noise * np.ones(N_ACT))
        return TD3("MlpPolicy", env, action_noise=noise, **off_policy, **kw)
    raise UsageError(f"Unknown RL algorithm {algo!r}; use ppo, sac or td3.")


def train_agent(algo: str, env: SteeringEnv, timesteps: int, seed: int,
                net_arch: tuple[int, ...] = (64, 64), selection: Selection | None = None,
                **hyper: float):
    """Train :func:`make_agent`'s agent (``hyper``: its hyperparameters) ``timesteps`` steps
    on ``env``. With a ``selection``, the policy chosen on its validation episodes is
    returned (its checks in ``model.selection_history``, its step count in
    ``model.selection_kept``)."""
    model = make_agent(algo, env, seed, net_arch, **hyper)
    callback = None if selection is None else _selection_callback(selection)
    model.learn(total_timesteps=timesteps, callback=callback)
    model.selection_history = [] if callback is None else callback.history
    model.selection_kept = None if callback is None else callback.kept
    return model


def learning_curve(algo: str, train_env: SteeringEnv, val_env: SteeringEnv,
                   checkpoints: list[int], val_seeds: list[int], seed: int,
                   net_arch: tuple[int, ...] = (64, 64), **agent: float) -> Iterator[dict]:
    """Success of one agent on ``val_env``'s episodes ``val_seeds`` after each number of
    training steps in ``checkpoints`` (increasing; training continues between them), with
    the training CPU time so far [s] (process time: what the steps cost on an idle core);
    one row per checkpoint, yielded as soon as it is measured."""
    model, done, cpu = None, 0, 0.0
    for steps in checkpoints:
        start = time.process_time()
        if model is None:
            model = train_agent(algo, train_env, steps, seed, net_arch, **agent)
        else:
            model.learn(steps - done, reset_num_timesteps=False)
        cpu, done = cpu + time.process_time() - start, steps
        s = summarise(evaluate(val_env, "rl", val_seeds, model))
        yield {"steps": steps, "success_rate": s["success_rate"],
               "success_rate_err": s["success_rate_err"],
               "median_best_mae_um": s["median_final_mae_um"], "train_cpu_s": cpu}


def evaluate(env: SteeringEnv, method: str, seeds: list[int], agent=None) -> list[Episode]:
    """Run ``method`` (rl, recall, bo, nelder_mead, random) on the states picked by
    ``seeds``."""
    if method == "rl":
        act = lambda obs: agent.predict(obs, deterministic=True)[0]  # noqa: E731
        return [run_policy(env, act, s) for s in seeds]
    runner = {"recall": run_recall, "bo": run_bo, "nelder_mead": run_nelder_mead,
              "random": run_random}[method]
    return [runner(env, s) for s in seeds]


@dataclass
class Task:
    """One controller on a list of machine states: ``method`` is rl (an agent of ``algo``
    trained ``timesteps`` steps on ``train_env`` first), recall, bo, nelder_mead or random."""

    label: str
    method: str
    eval_env: SteeringEnv
    states: list[int]
    train_env: SteeringEnv | None = None
    algo: str = "sac"
    timesteps: int = 0
    seed: int = 0
    net_arch: tuple[int, ...] = (64, 64)
    agent: dict[str, float] = field(default_factory=dict)  # train_agent's hyperparameters
    selection: Selection | None = None  # choose the policy on validation episodes
    history: list[tuple[int, float, float, float]] = field(default_factory=list)  # checks
    kept: int | None = None  # step count of the policy the selection kept
    policy: dict[str, torch.Tensor] | None = None  # the trained (kept) policy's weights


def run_task(task: Task) -> tuple[Task, list[Episode]]:
    """Train (RL) and evaluate one task; module-level so that an executor can ship it to a
    worker process. Results do not depend on where a task runs."""
    torch.set_num_threads(1)
    agent = None
    if task.method == "rl":
        agent = train_agent(task.algo, task.train_env, task.timesteps, task.seed,
                            task.net_arch, selection=task.selection, **task.agent)
        task.history, task.kept = agent.selection_history, agent.selection_kept
        task.policy = agent.policy.state_dict()
    return task, evaluate(task.eval_env, task.method, task.states, agent)


def task_key(task: Task) -> str:
    """A digest of what a task's result depends on beyond the run's config and seed: its
    label, method, states and training settings, and the weights of the learned simulator it
    trains on (a retrained simulator that came out different gives a different key)."""
    h = hashlib.sha256(json.dumps(
        [task.label, task.method, task.states, task.seed, task.algo, task.timesteps,
         list(task.net_arch), task.agent,
         None if task.selection is None else [task.selection.seeds, task.selection.every]],
        sort_keys=True, default=str).encode())
    model = getattr(task.train_env, "model", None)
    if model is not None:
        for name, tensor in model.state_dict().items():
            h.update(name.encode())
            h.update(tensor.detach().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def _save_task(path: Path, task: Task, episodes: list[Episode]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if task.policy is not None:  # before the JSON, whose presence marks the piece complete
        atomic_torch_save(task.policy, path.with_suffix(".pt"))
    atomic_write_text(path, json.dumps({
        "episodes": [dataclasses.asdict(e) for e in episodes],
        "history": task.history, "kept": task.kept}))


def _load_task(path: Path, task: Task) -> tuple[Task, list[Episode]]:
    d = json.loads(path.read_text())
    weights = path.with_suffix(".pt")
    policy = torch.load(weights, weights_only=True) if weights.is_file() else None
    return (dataclasses.replace(task, history=[tuple(h) for h in d["history"]],
                                kept=d["kept"], policy=policy),
            [Episode(**e) for e in d["episodes"]])


def _run_numbered(item: tuple[int, Task]) -> tuple[int, tuple[Task, list[Episode]]]:
    return item[0], run_task(item[1])


def run_tasks(tasks: list[Task], workers: int = 1
              ) -> tuple[list[tuple[Task, list[Episode]]], int]:
    """Run ``tasks`` on ``workers`` processes; returns their (task, episodes) in task order
    and how many were reused. Inside a checkpoint scope (every ``hepchain linac run``) each
    task's result is kept the moment it ends (:func:`~hepchain.core.checkpoints.kept_piece`,
    under :func:`task_key`), so the same run started again after a kill runs only the tasks
    that had not finished::

        done, reused = run_tasks([Task("NM", "nelder_mead", env, [0, 1])], workers=2)
    """
    paths = [kept_piece(f"control-{task_key(t)}") for t in tasks]
    done = {i: _load_task(p, t) for i, (t, p) in enumerate(zip(tasks, paths, strict=True))
            if p is not None and p.is_file()}
    reused = len(done)
    with LocalExecutor(workers) as ex:  # results arrive in any order
        for i, (task, eps) in ex.map(_run_numbered, [(i, t) for i, t in enumerate(tasks)
                                                     if i not in done]):
            if paths[i] is not None:
                _save_task(paths[i], task, eps)
            done[i] = task, eps
    return [done[i] for i in range(len(tasks))], reused


POLICIES = "policies"  # a run's kept policies: <workdir>/policies/<row>.pt


def save_policies(workdir: Path, done: list[tuple[Task, list[Episode]]]) -> list[Path]:
    """Each trained controller's policy (the one its selection kept) with what rebuilds its
    agent (row label, algorithm, network, hyperparameters, seed) to
    ``workdir/policies/<row>.pt``, so that :func:`load_agents` can evaluate it on other
    machine states without training."""
    paths = []
    for task, _ in done:
        if task.policy is None:
            continue
        path = workdir / POLICIES / (re.sub(r"[^A-Za-z0-9]+", "-", task.label).strip("-")
                                     .lower() + ".pt")
        atomic_torch_save({"label": task.label, "algo": task.algo,
                            "net_arch": list(task.net_arch), "agent": dict(task.agent),
                            "seed": task.seed, "state_dict": task.policy}, path)
        paths.append(path)
    return paths


def policy_files(run: Path) -> list[Path]:
    """The policy files a run kept (:func:`save_policies`); DataError if it kept none."""
    files = sorted((run / POLICIES).glob("*.pt"))
    if not files:
        raise DataError(f"No kept policies in {run / POLICIES}; pass one seed's directory of "
                        "a `hepchain linac run/bench` with the control part (runs before "
                        "2026-12-05 did not keep them).")
    return files


def load_agents(run: Path, env: SteeringEnv) -> dict[str, object]:
    """The policies a run kept (:func:`save_policies`), each as an agent acting on ``env``,
    by row label; DataError if the run kept none."""
    agents = {}
    for f in policy_files(run):
        d = torch.load(f, weights_only=True)
        agent = make_agent(d["algo"], env, d["seed"], tuple(d["net_arch"]), **d["agent"])
        agent.policy.load_state_dict(d["state_dict"])
        agents[d["label"]] = agent
    return agents
