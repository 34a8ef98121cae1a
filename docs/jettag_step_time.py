"""Time training steps of jettag's paper-size networks on random jets, with glibc's default
allocator settings or with hepchain's (``core.malloc.keep_freed_memory``), on one thread:
user and system CPU seconds, minor page faults and wall time.

    PYTHONPATH=src python docs/jettag_step_time.py ParticleNet 8           # glibc defaults
    PYTHONPATH=src python docs/jettag_step_time.py ParticleNet 8 --keep    # hepchain's setting
"""

import argparse
import resource
import time

import numpy as np
import torch

from hepchain.core.malloc import keep_freed_memory
from hepchain.core.study import get_study
from hepchain.reco.jettag.data import ParticleTensors
from hepchain.reco.jettag.models import build_network

parser = argparse.ArgumentParser()
parser.add_argument("network")
parser.add_argument("steps", type=int)
parser.add_argument("--keep", action="store_true", help="keep freed memory (hepchain's setting)")
args = parser.parse_args()
torch.set_num_threads(1)
if args.keep:
    keep_freed_memory()
cfg = get_study("jettag").config("paper")
P, B, F = int(cfg["max_particles"]), int(cfg["train"]["batch_size"]), 17
rng = np.random.default_rng(0)
jets = ParticleTensors(rng.normal(size=(B, P, F)).astype(np.float32),
                       np.abs(rng.normal(size=(B, P, 4))).astype(np.float32) + 1,
                       np.ones((B, P), bool),
                       ("part_deta", "part_dphi", *(f"f{i}" for i in range(F - 2))))
net = build_network(args.network, cfg["models"][args.network], jets, 10, seed=0)
opt = torch.optim.Adam(net.parameters(), 1e-3)
x, v, mask = (torch.as_tensor(a) for a in (jets.features, jets.vectors, jets.mask))
y = torch.as_tensor(rng.integers(0, 10, B))


def step() -> None:
    opt.zero_grad()
    torch.nn.functional.cross_entropy(net(x, v, mask), y).backward()
    opt.step()


step()  # warm-up
r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
for _ in range(args.steps):
    step()
r1 = resource.getrusage(resource.RUSAGE_SELF)
print(f"{args.network}{' (keep)' if args.keep else ''}: user {r1.ru_utime - r0.ru_utime:.2f} s, "
      f"sys {r1.ru_stime - r0.ru_stime:.2f} s, minor faults {r1.ru_minflt - r0.ru_minflt}, "
      f"wall {time.perf_counter() - t0:.2f} s for {args.steps} steps")
