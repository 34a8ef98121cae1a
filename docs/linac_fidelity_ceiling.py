"""linac, diagnostic: what the fidelity goal against held-out log days asks of a simulator (issue 24).

Not part of the package; it uses the study's log, day split, standardisation, PCA mode space,
k-NN precision and classifier two-sample AUC. Two measurements on the last test day of each
seed's log:

1. *The day against itself*: its rows cut into blocks of ``L`` consecutive readings (one
   reading every 2.9 min in the quick preset), alternate blocks against the others. The AUC
   says how fast the machine's state moves on from a classifier's point of view.
2. *The generator's twin with the injected beam's offset estimated*: the test day remade by
   the log generator (``oplog.simulate_day``: same schedule, settings, environment, klystron
   phases), its injected-beam offset replaced by (a) the true one, (b) a ridge estimate from
   the row's set values (the orbit feedback's correctors among them), environment and mode,
   fitted on the training days' true offsets, (c) the training days' mean offset. The
   channels of ``mode+settings+environment+klystrons`` are the test rows' own, as in the
   study's ``log generator`` rows. This bounds what inferring the offset from those
   conditions can give.

Usage::

    .venv/bin/python docs/linac_fidelity_ceiling.py --preset quick --seeds 0,1,2
    .venv/bin/python docs/linac_fidelity_ceiling.py --preset paper --seeds 0
"""

import argparse
import dataclasses
from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.linear_model import RidgeCV

from hepchain.accelerator.linac import oplog, study, surrogates
from hepchain.accelerator.linac import surrogate_metrics as sm
from hepchain.core import twosample
from hepchain.core.config import load_presets
from hepchain.core.standardise import Standardiser

BLOCKS = (1, 5, 10, 25, 50, 125)
GIVEN = "mode+settings+environment+klystrons"


def score(space: sm.ModeSpace, real: np.ndarray, gen: np.ndarray, seed: int) -> str:
    """k-NN precision (PCA mode space, k = 5) and C2ST AUC of ``gen`` against ``real``."""
    knn = twosample.prdc(space.pca.transform(real), space.pca.transform(gen), 5)
    auc, err = twosample.c2st(real, gen, seed=seed)
    return f"precision {knn.precision:.2f}, AUC {auc:.3f} ± {err:.3f}"


def conditions(day: oplog.Day) -> np.ndarray:
    """What the log shows of a day's conditions: true set values (SI), environment, mode."""
    s = day.state
    return np.c_[day.settings, s.t_out, s.t_air, s.t_water, s.vacuum,
                 np.eye(len(day.machine.modes))[day.modes]]


def phase_jitter(day: oplog.Day) -> np.ndarray:
    """The klystron phases' own drift (n, cells) [deg]: the phase offset less the cooling
    water's part."""
    return day.state.phase_offset - 1.5 * (day.state.t_water - 30)


def ridge_estimate(train: list[oplog.Day], test: oplog.Day,
                   drift: Callable[[oplog.Day], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """A drift (n, k) of ``test`` estimated by ridge regression on :func:`conditions`, fitted on
    the ``train`` days' true drifts, and per channel the share of its training-day variance
    the estimate explains on ``test`` (negative: worse than the training days' mean)."""
    x = np.concatenate([conditions(d) for d in train])
    y = np.concatenate([drift(d) for d in train])
    mu, sd, y_sd = x.mean(0), x.std(0) + 1e-12, y.std(0)
    ridge = RidgeCV(alphas=np.logspace(-2, 5, 15)).fit((x - mu) / sd, y / y_sd)
    estimate = ridge.predict((conditions(test) - mu) / sd).reshape(len(test.t), -1) * y_sd
    return estimate, 1 - ((estimate - drift(test)) ** 2).mean(0) / y.var(0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--seeds", default="0")
    args = ap.parse_args()
    cfg = load_presets("linac")[args.preset]
    for seed in map(int, args.seeds.split(",")):
        log, frame = study.operations_log(cfg, seed)
        train, _, test = study.split_days(frame, cfg["split"]["val_days"],
                                          cfg["split"]["test_days"])
        channels = oplog.data_channels(train)
        scale = Standardiser.fit(train[channels].to_numpy(float))
        x_tr = scale.transform(train[channels].to_numpy(float))
        n_modes = int(frame["mode"].max()) + 1
        space = sm.ModeSpace.fit(x_tr, train["mode"].to_numpy(), n_modes, components=10,
                                 seed=seed)
        last = int(test["day"].max())
        real = scale.transform(test[test["day"] == last][channels].to_numpy(float))
        n = len(real)
        print(f"seed {seed}, {args.preset}: test day {last}, {n} rows x {len(channels)} channels")
        for length in BLOCKS:
            half = (np.arange(n) // length) % 2 == 0
            minutes = length * 1440 / n
            print(f"  day against itself, alternating blocks of {length:3d} readings "
                  f"({minutes:4.0f} min): {score(space, real[half], real[~half], seed)}")

        seeds = {shard.index: shard.seed for shard in log.manifest.shards}
        days = [oplog.simulate_day(log.manifest.settings, seeds[d], log.manifest.shard_size)
                for d in sorted(train["day"].unique())]
        day = oplog.simulate_day(log.manifest.settings, seeds[last], log.manifest.shard_size)
        estimate, explained = ridge_estimate(days, day, lambda d: d.state.beam_offset)
        print("  injected-beam offset (x, x', y, y'): variance a ridge estimate explains on the "
              "test day " + ", ".join(f"{v:.2f}" for v in explained))
        for name, drift in (("injected energy", lambda d: d.state.energy_offset[:, None]),
                            ("klystron phases' own drift", phase_jitter)):
            share = np.median(ridge_estimate(days, day, drift)[1])
            print(f"  {name}: variance a ridge estimate explains on the test day "
                  f"(median over channels) {share:.2f}")
        mean = np.concatenate([d.state.beam_offset for d in days]).mean(0)
        given = surrogates.Conditioning.parse(GIVEN, channels, n_modes)
        for label, offset in (("true offset", day.state.beam_offset),
                              ("ridge estimate", estimate),
                              ("training days' mean", np.repeat(mean[None], n, 0))):
            state = dataclasses.replace(day.state, beam_offset=offset)
            readings = day.machine.track(day.modes, day.settings, state)
            table = oplog.channel_table(day.machine, day.modes, day.settings, readings, state,
                                        np.random.default_rng(seed + 99))
            twin = scale.transform(pd.DataFrame(table)[channels].to_numpy(float))
            twin = given.fill(real, twin[:, given.free])
            print(f"  twin | {GIVEN}, beam offset = {label:20s}: {score(space, real, twin, seed)}")


if __name__ == "__main__":
    main()
