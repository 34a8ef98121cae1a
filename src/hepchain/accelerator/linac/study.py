"""Study ``linac`` (seed 000, theme 1): operations logs of a cheetah linac, generative
simulators (GAN vs VAE -> latent GAN -> decoder vs conditional GAN, conditional VAE) and an
RL steering controller pre-trained on the learned simulator and evaluated on the machine
against the recall-the-set-point baseline, BO, Nelder-Mead and random search, all on the same
states."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hepchain.accelerator.linac import control, oplog, plots, surrogates
from hepchain.accelerator.linac import surrogate_metrics as sm
from hepchain.accelerator.linac.envs import LearnedEnv, MachineEnv, Randomisation, check_choices
from hepchain.accelerator.linac.machine import HIDDEN
from hepchain.core import plotting, twosample
from hepchain.core.cache import cached_dataset
from hepchain.core.dataset import Manifest
from hepchain.core.errors import DataError, UsageError
from hepchain.core.executors import LocalExecutor
from hepchain.core.result import Reference, Result
from hepchain.core.seeding import derive_seed
from hepchain.core.standardise import Standardiser
from hepchain.core.study import Study
from hepchain.core.threads import set_torch_threads
from hepchain.core.trainer import TrainConfig

# ARES EA transverse tuning in simulation, threshold 40 um (reference/accelerator.md Sec. 2.5)
# (success rate, median best MAE [um]); its median steps count successful episodes only, ours
# all episodes (failures at the budget), so they are not printed as a reference
ARES = {"rl": (0.92, 6.95), "bo": (0.43, 45.3), "nelder_mead": (0.01, 736.0),
        "random": (0.0, 7542.0)}
RECALL = "recall set point"  # the baseline every controller must beat
ARES_SRC = "ARES EA sim, Kaiser et al. (tolerance 40 um)"
PARTS = {"generative": "generative models", "control": "control"}  # what a run may do
TRAININGS = ("gan", "vae_baseline", "vae_improved", "latent_gan", "cgan", "cvae")
MODELS = ("gan", "vae_gan", "cgan", "twin")  # generative simulators a run may compare
TRAIN_DAYS = "real training days"  # the ceiling row: what a perfect copy of them would score
TWIN = "log generator"  # its rows: "log generator | <given>, <drifts> redrawn" (twin_rows)
METHOD_LABEL = {"bo": "BO (BoTorch)", "nelder_mead": "Nelder-Mead", "random": "random search"}
TRAIN_STATES = "linac-rl-training-states"  # key of the machine states RL may train on
ALGOS = ("sac", "td3", "ppo")  # stable-baselines3 algorithms control.train_agent knows
# learned-simulator decoders (cvae.decoders): RL row name, simulator row label
SIMULATORS = {"mlp": ("learned sim", "conditional VAE"),
              "lattice": ("learned sim (lattice decoder)", "conditional VAE, lattice decoder")}
VAL_EPISODES = 1000  # rl-curve's validation episodes are reset(seed=1000 + i)


def split_days(frame: pd.DataFrame, val_days: int, test_days: int
               ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Train / validation / test by whole days (test = last days, never seen in training)."""
    days = np.sort(frame["day"].unique())
    if len(days) < val_days + test_days + 1:
        raise UsageError(f"The log has {len(days)} days; need at least {val_days + test_days + 1}"
                         " for train/validation/test splits (raise log.days).")
    test = days[len(days) - test_days:]
    val = days[len(days) - test_days - val_days: len(days) - test_days]
    sel = lambda d: frame[frame["day"].isin(d)].reset_index(drop=True)  # noqa: E731
    return sel(days[: len(days) - test_days - val_days]), sel(val), sel(test)


class LinacStudy(Study):
    name = "linac"
    description = ("Cheetah linac logs, GAN vs VAE-latent GAN simulators, RL steering "
                   "pre-trained on the learned simulator")
    seed_doc = "000"

    def add_commands(self, app: Any) -> None:
        """``hepchain linac generate``, ``rl-curve``, ``pool``, ``evaluate`` and
        ``check-log`` (:mod:`hepchain.accelerator.linac.verbs`)."""
        from hepchain.accelerator.linac.verbs import add_verbs

        add_verbs(self, app)

    def run(self, config: dict[str, Any], workdir: Path, seed: int) -> Result:
        parts = list(config["parts"])
        if not parts or set(parts) - set(PARTS):
            raise UsageError(f"parts must name one or more of {list(PARTS)}, got {parts}.")
        for key in TRAININGS:  # bad training settings fail now, not after the log is made
            TrainConfig.from_dict(config[key]["train"], device=config["device"])
        _models(config)
        bad = set(config["cvae"]["decoders"]) - set(SIMULATORS)
        if not config["cvae"]["decoders"] or bad:
            raise UsageError(f"cvae.decoders must name one or more of {list(SIMULATORS)}, got "
                             f"{config['cvae']['decoders']}.")
        check_rl(config["rl"])
        set_torch_threads(int(config.get("threads", 1)))
        t0 = time.perf_counter()
        result = Result(study=self.name, preset="")
        log, frame = operations_log(config, seed)
        result.provenance.datasets.append(log.manifest.summary())
        machine = oplog.machine_from_settings(oplog.log_settings(config))
        train, val, test = split_days(frame, config["split"]["val_days"],
                                      config["split"]["test_days"])
        result.notes.append(f"log: {len(frame)} samples x {len(oplog.data_channels(frame))} "
                            f"channels, {frame['day'].nunique()} days; test = last "
                            f"{config['split']['test_days']} day(s)")
        times = [f"log {time.perf_counter() - t0:.0f} s"]
        # with workers, the generative models train in a process of their own beside the
        # controller part (their rows do not depend on each other); merged in `parts` order
        beside = set(parts) == set(PARTS) and int(config["workers"]) > 1
        rows: dict[str, tuple[Result, float]] = {}
        with LocalExecutor(2 if beside else 1) as side:
            if "generative" in parts:
                generative = side.submit(_generative_part, (self, config, workdir, seed, train,
                                                            val, test, len(machine.modes),
                                                            log.manifest))
            if "control" in parts:
                t, part = time.perf_counter(), Result(study=self.name, preset="")
                self._control(config, workdir, seed, machine, train, val, part)
                rows["control"] = part, time.perf_counter() - t
            if "generative" in parts:
                rows["generative"] = generative.result()
        for name in parts:
            part, seconds = rows[name]
            result.metrics += part.metrics
            result.notes += part.notes
            result.figures += part.figures
            times.append(f"{PARTS[name]} {seconds:.0f} s")
        result.notes.append("wall time: " + ", ".join(times)
                            + (" (side by side)" if beside else ""))
        return result

    # ------------------------------------------------------------------ generative models
    def _generative(self, config: dict[str, Any], workdir: Path, seed: int,
                    train: pd.DataFrame, val: pd.DataFrame, test: pd.DataFrame, n_modes: int,
                    log: Manifest, result: Result) -> None:
        channels = oplog.data_channels(train)
        scale = Standardiser.fit(train[channels].to_numpy(float))
        x_tr, x_va, x_te = (scale.transform(f[channels].to_numpy(float)) for f in (train, val, test))
        mc = config["metrics"]
        n = min(mc["n_samples"], len(x_te))
        pick_test = np.random.default_rng(seed).permutation(len(x_te))[:n]
        real = x_te[pick_test]
        models, device = _models(config), config["device"]
        # the ceiling of any model of the training days: those days themselves
        samples = {TRAIN_DAYS: x_tr[np.random.default_rng(seed + 1).permutation(len(x_tr))[:n]]}
        prior: dict[str, np.ndarray] = {}  # conditional models' samples for the mode coverage
        hists: dict[str, list] = {}

        if "gan" in models:
            gan, gan_hist = surrogates.fit_gan(x_tr, x_va, config["gan"], seed, device)
            hists["GAN"] = gan_hist.epochs
            samples["plain GAN"] = surrogates.sample_gan(gan, n, derive_seed(seed, "samples"))
        if "vae_gan" in models:
            self._latent_gans(config, seed, x_tr, x_va, x_te, n, samples, hists, result)
        if "gan" in models and "vae_gan" in models:
            result.notes.append(_gan_budgets(config))
        if "cgan" in models:
            modes_tr, modes_te = train["mode"].to_numpy(), test["mode"].to_numpy()[pick_test]
            rows = np.random.default_rng(seed + 2).integers(0, len(x_tr), n)
            for spec in config["cgan"]["conditions"]:
                cond = surrogates.Conditioning.parse(spec, channels, n_modes)
                c_tr, c_va = (cond.condition(x, f["mode"].to_numpy())
                              for x, f in ((x_tr, train), (x_va, val)))
                cgan, h = surrogates.fit_gan(x_tr[:, cond.free], x_va[:, cond.free],
                                             config["cgan"], seed, device, cond=(c_tr, c_va))
                label = f"cGAN | {spec}"
                hists[label] = h.epochs
                c_te, c_prior = cond.condition(real, modes_te), cond.condition(x_tr[rows],
                                                                               modes_tr[rows])
                samples[label] = cond.fill(real, surrogates.sample_gan(  # test rows' conditions
                    cgan, n, derive_seed(seed, "samples"), c_te))
                prior[label] = cond.fill(x_tr[rows], surrogates.sample_gan(
                    cgan, n, derive_seed(seed, "prior"), c_prior))
            result.notes.append("cGAN | <given>: conditional GAN given the operating mode, "
                                "the set values and/or the environment channels; its "
                                "fidelity rows use the conditions of the compared test rows, "
                                "its mode coverage conditions of random training rows")
        if "twin" in models:
            twin = twin_rows(config["twin"], seed, test, log, channels, scale, n_modes)
            samples.update({label: rows[pick_test] for label, rows in twin.items()})
            result.notes.append(f"{TWIN} | <given>, <drifts> redrawn: the generator of the log "
                                "remaking each test day with its schedule, settings and "
                                "environment, the named unmeasured drifts and the instrument "
                                "noise drawn anew; the <given> channels are the compared test "
                                "rows' own, as for the cGAN; its mode coverage is that of the "
                                "test days' own schedule")

        modes = train["mode"].to_numpy()
        record_fidelity(result, config["metrics"], x_tr, modes, n_modes, real, samples, prior,
                        seed)
        result.figures.append(steering_figure(scale, channels, x_tr, modes, real, samples,
                                              workdir / "steering_real_vs_gen.png").name)
        if hists:
            result.figures.append(plotting.loss_curves(hists, workdir / "generative_losses.png")
                                  .name)

    @staticmethod
    def _latent_gans(config: dict[str, Any], seed: int, x_tr: np.ndarray, x_va: np.ndarray,
                     x_te: np.ndarray, n: int, samples: dict[str, np.ndarray],
                     hists: dict[str, list], result: Result) -> None:
        """The two VAEs (reconstruction rows) and a latent GAN in each one's latent space."""
        device = config["device"]
        vaes = {}
        for key in ("vae_baseline", "vae_improved"):
            vaes[key], h = surrogates.fit_vae(x_tr, x_va, config[key], seed, device)
            hists[key] = h.epochs
            result.add("VAE reconstruction MSE (test, std. units)",
                       "VAE baseline (seed-like)" if key == "vae_baseline" else "VAE improved",
                       surrogates.reconstruction_mse(vaes[key], x_te), higher_is_better=False)
        base = surrogates.reconstruction_mse(vaes["vae_baseline"], x_te)
        better = surrogates.reconstruction_mse(vaes["vae_improved"], x_te)
        result.add("VAE reconstruction MSE reduction", "VAE improved vs baseline",
                   100 * (base - better) / base, unit="%", higher_is_better=True)
        for key, label in (("vae_baseline", "VAE(baseline)+latent GAN"),
                           ("vae_improved", "VAE(improved)+latent GAN")):
            z_tr = surrogates.latents(vaes[key], x_tr)
            z_scale = Standardiser.fit(z_tr)
            z_va = z_scale.transform(surrogates.latents(vaes[key], x_va))
            lgan, h = surrogates.fit_gan(z_scale.transform(z_tr), z_va, config["latent_gan"], seed,
                                         device)
            hists[f"latent GAN ({key})"] = h.epochs
            samples[label] = surrogates.sample_latent_gan(vaes[key], lgan, z_scale, n,
                                                          derive_seed(seed, "samples"))

    # ------------------------------------------------------------------ control
    def _control(self, config: dict[str, Any], workdir: Path, seed: int, machine: Any,
                 train: pd.DataFrame, val: pd.DataFrame, result: Result) -> None:
        """The RL benchmark: learned simulators of the training days, every controller on
        the same machine states, their metrics, per-state episodes and convergence figure."""
        rc = config["rl"]
        unknown = set(rc["baselines"]) - set(METHOD_LABEL)
        if unknown:
            raise UsageError(f"Unknown baseline(s) {sorted(unknown)} in rl.baselines; use "
                             f"{sorted(METHOD_LABEL)}.")
        sims, targets = learned_sims(config, seed, machine, train, val, result)
        # the evaluation pool does not depend on the run seed: comparisons are paired
        eval_env = machine_env(config, machine, rc["pool_seed"], targets)
        tasks = control_tasks(config, seed, machine, sims, eval_env, targets)
        done, reused = control.run_tasks(tasks, config["workers"])
        if reused:
            result.notes.append(f"{reused} of {len(tasks)} controller tasks were kept from an "
                                "interrupted run of the same command (same settings, same "
                                "learned-simulator weights), not run again")
        episodes: dict[str, list[control.Episode]] = {}
        for task, eps in done:
            episodes.setdefault(task.label, []).extend(eps)
            if task.history:
                result.notes.append(
                    f"{task.label}: policy chosen on {rc['select_episodes']} validation "
                    "episodes (steps: success, median steps, median best MAE um) " + ", ".join(
                        f"{n}: {r:.2f}, {k:g}, {m:.0f}" for n, r, k, m in task.history)
                    + f"; kept {task.kept} steps")
        record_control(result, episodes, {t.label: t.method for t in tasks})
        result.notes.append(f"DR = domain randomisation of the learned sim: per-episode "
                            f"offsets {rc['sim_offset']} x its validation MAE, response gains "
                            f"U(1 -+ {rc['sim_gain']})")
        result.notes.append(f"control: steer the beam to the target from the set point +- "
                            f"{rc['start_spread']} (normalised); tolerance "
                            f"{1e3 * rc['tolerance_mm']:.0f} um MAE over "
                            f"(mu_x, sigma_x, mu_y, sigma_y), budget {rc['max_steps']} readings, "
                            f"the same {rc['eval_states']} machine states (pool seed "
                            f"{rc['pool_seed']}) for every controller; steps = median over all "
                            "episodes, failures counted at the budget; randomised per "
                            f"episode: {rc['randomise']}")
        control.write_episodes(workdir, episodes)
        if control.save_policies(workdir, done):
            result.notes.append(f"the trained controllers' kept policies are in "
                                f"{control.POLICIES}/: `hepchain linac evaluate` runs them on "
                                "other machine states without training")
        result.figures.append(plots.convergence(episodes, rc["tolerance_mm"], rc["max_steps"],
                                                workdir / "control_convergence.png").name)


def _generative_part(job: tuple[Any, ...]) -> tuple[Result, float]:
    """The generative-model rows of one run and their wall time [s] (a worker's job:
    ``(study, config, workdir, seed, train, val, test, n_modes, log)``, ``log`` the log's
    manifest)."""
    study, config, workdir, seed, train, val, test, n_modes, log = job
    set_torch_threads(int(config.get("threads", 1)))
    t, part = time.perf_counter(), Result(study=study.name, preset="")
    study._generative(config, workdir, seed, train, val, test, n_modes, log, part)
    return part, time.perf_counter() - t


def record_fidelity(result: Result, mc: dict[str, Any], x_tr: np.ndarray, modes: np.ndarray,
                    n_modes: int, real: np.ndarray, samples: dict[str, np.ndarray],
                    prior: dict[str, np.ndarray], seed: int) -> None:
    """Every simulator's samples (standardised log rows) against the ``real`` test rows:
    mode coverage, share distance and off-/between-mode fractions in the training days' PCA
    mode space (conditional models judged on their ``prior`` samples), per-channel W1,
    k-NN precision/recall/density/coverage and the classifier two-sample AUC."""
    space = sm.ModeSpace.fit(x_tr, modes, n_modes, components=mc["pca_components"], seed=seed)
    real_cov = sm.mode_coverage(space, real, mc["min_fraction"])
    result.add("mode coverage", "real test days", real_cov["coverage"], higher_is_better=True)
    result.notes.append("Seed 000 states qualitatively (KEK linac data) that the "
                        "VAE-latent GAN suppresses mode collapse; it gives no number to "
                        "compare the mode coverage with.")
    result.add("between-mode fraction", "real test days", sm.between_modes(space, real),
               higher_is_better=False)
    for label, gen in samples.items():
        cov = sm.mode_coverage(space, prior.get(label, gen), mc["min_fraction"])
        knn = twosample.prdc(space.pca.transform(real), space.pca.transform(gen), mc["knn_k"])
        result.add("mode coverage", label, cov["coverage"], higher_is_better=True)
        result.add("mode-share TV distance", label, cov["tv_distance"], higher_is_better=False)
        result.add("off-mode fraction", label, cov["off_mode"], higher_is_better=False)
        result.add("between-mode fraction", label, sm.between_modes(space, gen),
                   higher_is_better=False)
        result.add("mean per-channel W1 (std. units)", label,
                   twosample.wasserstein_1d(real, gen).mean(), higher_is_better=False)
        for name, value in knn._asdict().items():  # density > 1: gen piles up on real
            result.add(f"k-NN {name}", label, value,
                       higher_is_better=None if name == "density" else True)
        auc, auc_err = twosample.c2st(real, gen, seed=seed)
        result.add("classifier two-sample AUC", label, auc, higher_is_better=False)
        result.add("classifier two-sample AUC, stat. error", label, auc_err)
        result.notes.append(f"{label}: generated mode shares "
                            f"{np.round(cov['shares'], 3).tolist()} (real "
                            f"{np.round(space.shares, 3).tolist()})")


def twin_rows(twin: dict[str, Any], seed: int, test: pd.DataFrame, log: Manifest,
              channels: list[str], scale: Standardiser, n_modes: int) -> dict[str, np.ndarray]:
    """Per ``twin.hidden`` entry, the test rows as the generator of ``log`` (its manifest:
    settings, day seeds) makes them again (:func:`oplog.twin_day`: same schedule, settings and
    environment, those unmeasured drifts and the instrument noise drawn anew), standardised,
    once per ``twin.given`` entry with those channels (a cGAN condition) the test rows' own.
    DataError if the test days are not the generator's (a real log has no twin)."""
    day_seeds = {shard.index: shard.seed for shard in log.shards}
    x_test = scale.transform(test[channels].to_numpy(float))
    names = set(channels)
    set_values = [j for j, c in enumerate(channels) if f"{c}.rb" in names]
    out = {}
    days = {int(d): oplog.simulate_day(log.settings, day_seeds[d], log.shard_size)
            for d in test["day"].unique()}
    for spec in twin["hidden"]:
        remade = [oplog.twin_day(day, tuple(spec.split("+")), derive_seed(seed, "twin", spec, d))
                  for d, day in days.items()]
        rows = scale.transform(pd.concat(remade)[channels].to_numpy(float))
        if rows.shape != x_test.shape or not np.allclose(rows[:, set_values],
                                                         x_test[:, set_values]):
            raise DataError("The test days' set values differ from the log generator's for "
                            "the same days: the twin rows need the generator's own log.")
        for given in twin["given"]:
            cond = surrogates.Conditioning.parse(given, channels, n_modes)
            out[f"{TWIN} | {given}, {spec} redrawn"] = cond.fill(x_test, rows[:, cond.free])
    return out


def steering_figure(scale: Standardiser, channels: list[str], x_tr: np.ndarray,
                    modes: np.ndarray, real: np.ndarray, samples: dict[str, np.ndarray],
                    path: Path) -> Path:
    """The seed's figure 2: the two steering magnets whose means differ most between the
    training days' modes, real test rows against each simulator's samples (mrad)."""
    corr = [j for j, c in enumerate(channels) if c.endswith(".angle") and "E_" not in c]
    sep = [np.var([x_tr[modes == m, j].mean() for m in np.unique(modes)]) for j in corr]
    pick = [corr[i] for i in np.argsort(sep)[-2:]]
    raw = {"real (test days)": scale.inverse_transform(real)[:, pick]}
    raw.update({k: scale.inverse_transform(v)[:, pick] for k, v in samples.items()})
    return plots.steering_scatter(raw, (channels[pick[0]], channels[pick[1]]), path)


def operations_log(config: dict[str, Any], seed: int) -> tuple[Any, pd.DataFrame]:
    """The run's simulated operations log (cached dataset) and its rows."""
    settings, per_day = oplog.log_settings(config), int(config["log"]["samples_per_day"])
    log = cached_dataset(oplog.PROCESS, n_events=int(config["log"]["days"]) * per_day,
                         seed=seed, options=settings, shard_size=per_day,
                         workers=int(config["workers"]), progress=config.get("progress", False))
    return log, oplog.load_log(log.path)


def evaluate_run(run: Path, pool_seed: int, states: int) -> dict[str, list[control.Episode]]:
    """The kept policies of one seed's ``run`` (``hepchain linac run/bench`` with the control
    part) and the recall baseline on the first ``states`` states of the machine-state pool
    ``pool_seed``, with the run's own settings, machine and per-mode targets; no training."""
    if states <= 0:
        raise UsageError(f"--states must be positive, got {states}.")
    results = run / "results.json"
    try:
        saved = json.loads(results.read_text())
        config = saved["provenance"]["config"] if saved.get("study") == "linac" else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        config = None
    if config is None:
        raise DataError(f"No readable linac results.json in {run}; pass one seed's directory "
                        "of a finished `hepchain linac run/bench` (e.g. runs/X/seed0).")
    control.policy_files(run)  # before the log is loaded: a run without policies fails now
    seed = int(config["seed"])
    _, frame = operations_log({**config, "progress": False}, seed)
    machine = oplog.machine_from_settings(oplog.log_settings(config))
    train, _, _ = split_days(frame, config["split"]["val_days"], config["split"]["test_days"])
    targets, _ = surrogates.operating_points(train, len(machine.modes))
    env = machine_env(config, machine, pool_seed, targets)
    seeds = list(range(states))
    episodes = {label: control.evaluate(env, "rl", seeds, agent)
                for label, agent in control.load_agents(run, env).items()}
    episodes[RECALL] = control.evaluate(env, "recall", seeds)
    return episodes


def learned_sims(config: dict[str, Any], seed: int, machine: Any, train: pd.DataFrame,
                 val: pd.DataFrame, result: Result
                 ) -> tuple[dict[str, tuple[LearnedEnv, LearnedEnv]], np.ndarray]:
    """A conditional VAE per ``cvae.decoders`` fitted on the training days, each as a
    (training, validation-days) environment pair by RL row name (with a domain-randomised
    variant when ``rl.sim_offset``/``rl.sim_gain`` > 0; its screen MAE on the validation days
    added to ``result``), and the per-mode targets (modes, 4) [mm] of the training days."""
    rc = config["rl"]
    ctx_cols = surrogates.context_columns(machine.lattice.bpms)
    n_modes = len(machine.modes)
    ctx_scale = Standardiser.fit(train[ctx_cols].to_numpy(float))
    y_scale = Standardiser.fit(surrogates.screen_targets(train))
    d_tr, d_va = (surrogates.conditional_arrays(f, ctx_cols, n_modes, ctx_scale, y_scale)
                  for f in (train, val))
    targets, set_points = surrogates.operating_points(train, n_modes)
    env_kw = env_settings(rc)
    randomise = Randomisation.from_config(rc["randomise"])
    sims = {}
    for decoder in config["cvae"]["decoders"]:
        cvae, _ = surrogates.fit_cvae(d_tr, d_va, config["cvae"], seed, config["device"],
                                      decoder, y_scale, surrogates.mode_energies(train, n_modes))
        sim_mae = surrogates.cvae_screen_mae(cvae, d_va, y_scale)
        name, label = SIMULATORS[decoder]
        result.add("target-screen MAE of learned sim (val days)", label,
                   1e3 * sim_mae.mean(), unit="um", higher_is_better=False)
        result.notes.append(f"{label}: MAE per beam parameter (mu_x, sigma_x, mu_y, "
                            f"sigma_y) on validation days {np.round(1e3 * sim_mae).tolist()}"
                            " um")
        variants = {name: (0.0, 0.0)}
        if rc["sim_offset"] > 0 or rc["sim_gain"] > 0:  # the domain-randomised variant too
            variants[f"{name} + DR"] = (rc["sim_offset"], rc["sim_gain"])
        for v, (off, gain) in variants.items():  # (training env, validation env)
            sims[v] = tuple(LearnedEnv(cvae, d.context, f["mode"].to_numpy(), set_points,
                                       y_scale.mean, y_scale.scale, targets,
                                       offset_mm=off * sim_mae, gain_spread=gain,
                                       randomise=sim_randomisation(randomise, decoder),
                                       **env_kw) for d, f in ((d_tr, train), (d_va, val)))
    return sims, targets


def control_tasks(config: dict[str, Any], seed: int, machine: Any,
                  sims: dict[str, tuple[LearnedEnv, LearnedEnv]], eval_env: MachineEnv,
                  targets: np.ndarray) -> list[control.Task]:
    """Every controller of the ``rl`` block on ``eval_env``'s first ``rl.eval_states``
    states: each algorithm trained on each learned simulator (and on the machine's own
    training states when ``rl.machine_timesteps`` > 0), the recall baseline, and the
    ``rl.baselines`` split over the workers."""
    rc = config["rl"]
    seeds = list(range(rc["eval_states"]))
    arch = tuple(rc["net_arch"])
    train_env = (machine_env(config, machine, derive_seed(seed, TRAIN_STATES), targets)
                 if rc["machine_timesteps"] > 0 else None)  # never used for evaluation
    select = lambda env: (control.Selection(  # noqa: E731
        env, list(range(VAL_EPISODES, VAL_EPISODES + rc["select_episodes"])),
        rc["select_every"]) if rc["select_every"] > 0 else None)
    tasks: list[control.Task] = []
    for algo in rc["algorithms"]:
        tasks += [control.Task(f"{algo.upper()} trained on {name}", "rl", eval_env, seeds,
                               env, algo, rc["sim_timesteps"], seed, arch, rc["agent"],
                               select(val_env))
                  for name, (env, val_env) in sims.items()]
        if rc["machine_timesteps"] > 0:
            tasks.append(control.Task(
                f"{algo.upper()} trained on machine", "rl", eval_env, seeds, train_env, algo,
                rc["machine_timesteps"], seed, arch, rc["agent"],
                select(machine_env(config, machine, rc["val_pool_seed"], targets))))
    tasks.append(control.Task(RECALL, "recall", eval_env, seeds, seed=seed))
    chunk = -(-len(seeds) // config["workers"])  # spread the states over the workers
    for method in rc["baselines"]:  # every controller runs on every evaluation state
        tasks += [control.Task(METHOD_LABEL[method], method, eval_env, seeds[i: i + chunk],
                               seed=seed) for i in range(0, len(seeds), chunk)]
    return tasks


def record_control(result: Result, episodes: dict[str, list[control.Episode]],
                   kinds: dict[str, str]) -> None:
    """Each controller's success rate (binomial error, ARES reference), median steps to
    tolerance (bootstrap error), median best MAE [um] and success gain over the recall
    baseline (paired over states); ``kinds`` maps a row label to its method."""
    for label, eps in episodes.items():
        s = control.summarise(eps)
        result.add("success rate (machine)", label, s["success_rate"], n=len(eps),
                   higher_is_better=True, reference=_ares(kinds[label], 0))
        result.add("success rate, stat. error (binomial)", label, s["success_rate_err"],
                   n=len(eps))
        result.add("median steps to tolerance", label, s["median_steps"], n=len(eps),
                   higher_is_better=False)
        result.add("median steps to tolerance, stat. error (bootstrap)", label,
                   s["median_steps_err"], n=len(eps))
        result.add("median best MAE", label, s["median_final_mae_um"], unit="um",
                   n=len(eps), higher_is_better=False, reference=_ares(kinds[label], 1))
        if label != RECALL:
            gain, err = control.paired_gain(eps, episodes[RECALL])
            result.add("success rate gain over recall (paired)", label, gain, n=len(eps),
                       higher_is_better=True)
            result.add("success rate gain over recall, stat. error", label, err, n=len(eps))


def sim_randomisation(randomise: Randomisation, decoder: str) -> Randomisation:
    """What a learned simulator's episodes draw: the task's targets always; the beam and
    error changes only with the lattice decoder (the MLP model has no beam to change)."""
    if decoder == "lattice":
        return randomise
    return Randomisation(targets=randomise.targets,
                         target_position_mm=randomise.target_position_mm,
                         target_size_mm=randomise.target_size_mm)


def env_settings(rc: dict[str, Any]) -> dict[str, Any]:
    """The task settings of the ``rl`` block shared by every environment."""
    return {k: rc[k] for k in ("tolerance_mm", "max_steps", "action_scale", "start_spread",
                               "observation", "reward", "action_map", "step_cost")}


def check_rl(rc: dict[str, Any]) -> None:
    """UsageError for a bad choice in the ``rl`` block (observation, reward, action map, the
    policy-selection settings), before anything runs."""
    check_choices(rc["observation"], rc["reward"], rc["action_map"], rc["step_cost"])
    if rc["select_every"] < 0 or (rc["select_every"] > 0 and rc["select_episodes"] <= 0):
        raise UsageError(f"rl.select_every must be 0 (off) or a positive step count with "
                         f"rl.select_episodes > 0, got {rc['select_every']} and "
                         f"{rc['select_episodes']}.")


def machine_env(config: dict[str, Any], machine: Any, state_seed: int,
                targets: np.ndarray | None = None) -> MachineEnv:
    """The machine task of ``config`` on ``rl.state_pool`` drift states drawn from
    ``state_seed``; ``targets`` (modes, 4) [mm] are the per-mode targets of the fixed task
    (unused with ``rl.randomise.targets``; zeros if not given)."""
    rc = config["rl"]
    targets = np.zeros((len(machine.modes), 4)) if targets is None else targets
    return MachineEnv(machine, targets, rc["state_pool"], state_seed=state_seed,
                      randomise=Randomisation.from_config(rc["randomise"]), **env_settings(rc))


def _ares(method: str, column: int) -> Reference | None:
    """The ARES table's value (success rate, best MAE = column 0, 1) for a method."""
    return Reference(ARES[method][column], ARES_SRC) if method in ARES else None


def _models(config: dict[str, Any]) -> list[str]:
    """The generative models to compare, after checking them and the cGAN conditions (one
    UsageError sentence each)."""
    models = list(config["models"])
    if not models or set(models) - set(MODELS):
        raise UsageError(f"models must name one or more of {list(MODELS)}, got {models}.")
    conditions = list(config["cgan"]["conditions"])  # checked even when cgan is not run
    if not conditions:
        raise UsageError("cgan.conditions is empty; give one or more, e.g. [mode].")
    for spec in conditions:
        surrogates.Conditioning.parse(spec, [], 1)
    if not config["twin"]["given"]:
        raise UsageError("twin.given is empty; give one or more, e.g. "
                         "[mode+settings+environment].")
    for spec in config["twin"]["given"]:
        surrogates.Conditioning.parse(spec, [], 1)
    hidden = list(config["twin"]["hidden"])
    for spec in hidden or [""]:
        names = spec.split("+")
        if not spec or set(names) - set(HIDDEN) or len(set(names)) != len(names):
            raise UsageError(f"twin.hidden entries must join distinct names from {list(HIDDEN)}"
                             f" with '+', e.g. 'beam+energy+phase'; got {hidden}.")
    return models


def _gan_budgets(config: dict[str, Any]) -> str:
    """A note stating the plain and the latent GAN's training budgets, flagged if unequal."""
    budget = {k: (config[k]["train"]["epochs"], config[k]["pack"]) for k in ("gan", "latent_gan")}
    same = "equal" if budget["gan"] == budget["latent_gan"] else "UNEQUAL"
    return (f"GAN budgets ({same}): plain GAN {budget['gan'][0]} epochs, pack "
            f"{budget['gan'][1]}; latent GAN {budget['latent_gan'][0]} epochs, pack "
            f"{budget['latent_gan'][1]}")
