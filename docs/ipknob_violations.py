"""Where the all-knobs BO's background-limit violations happen: on the tuning states of a
preset (run seed 0), which measurement of each tuning exceeded the limit and by how much.

    PYTHONPATH=src python docs/ipknob_violations.py --preset quick --states 10 --knobs 12

``--knobs 12`` tunes the paper preset's 12 knobs with the paper budget (54 measurements) at
the preset's BO effort; ``--knobs 6`` the quick preset's knobs and budget. ``--seed 1`` takes
the states of run seed 1 (to choose settings on states other than those they are judged on);
``--set safe_beta=3`` changes a ``tuning.bo`` setting.
"""

import argparse
import time

import numpy as np
import torch

from hepchain.accelerator.ipknob import tuning
from hepchain.accelerator.ipknob.machine import Machine
from hepchain.core.study import get_study

parser = argparse.ArgumentParser()
parser.add_argument("--preset", default="quick")
parser.add_argument("--states", type=int, default=10)
parser.add_argument("--knobs", type=int, choices=(6, 12), default=12)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
args = parser.parse_args()
torch.set_num_threads(1)
torch.manual_seed(0)  # BoTorch's raw samples and restarts
study = get_study("ipknob")
cfg = study.config(args.preset)
tcfg = dict(cfg["tuning"])
if args.knobs == 12:
    paper = study.config("paper")["tuning"]
    tcfg.update(knobs=paper["knobs"], bo_all_budget=paper["bo_all_budget"])
machine = Machine(**cfg["simulation"].get("machine", {}))
tcfg["bo"] = {**tcfg["bo"], **{k: type(tcfg["bo"][k])(v) if k in tcfg["bo"] else float(v)
                               for k, v in (kv.split("=", 1) for kv in args.set)}}
bo, _ = tuning.bo_settings(tcfg)
print(f"run seed {args.seed}, {args.knobs} knobs, tuning.bo = {tcfg['bo']}", flush=True)
over: list[tuple[int, float]] = []  # (measurement number, margin above the limit)
measure = tuning.Session.measure


def logged(self: tuning.Session, setting: np.ndarray):
    margin = float((self.collider.true_background(np.asarray(setting, float)) / self.limit).max())
    if margin > 1:
        over.append((self.trace.n, margin - 1))
    return measure(self, setting)


tuning.Session.measure = logged
counts, finals = [], []
for i in range(args.states):
    over.clear()
    t0 = time.process_time()
    session = tuning.Session(tuning.machine_state(tcfg, args.seed, i, machine), "BO all-knobs",
                             tcfg["dwell_s"], tcfg["bg_limit"])
    trace = tuning.bo_all_knobs(session, list(tcfg["knobs"]), tcfg["bo_all_budget"], bo,
                                tuning.method_rng(args.seed, i, "BO all-knobs"))
    print(f"state {i}: {trace.violations} violations at measurements {[k for k, _ in over]} "
          f"(margins {[round(m, 3) for _, m in over]}), final L_sp fraction {trace.final:.4f}, "
          f"{time.process_time() - t0:.0f} CPU-s", flush=True)
    counts.append(trace.violations)
    finals.append(trace.final)
print(f"mean over {args.states} states: {np.mean(counts):.2f} violations per tuning, final L_sp "
      f"fraction {np.mean(finals):.4f} ± {np.std(finals, ddof=1):.4f}")
