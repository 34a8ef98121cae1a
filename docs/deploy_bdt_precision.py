"""How the conifer emulation of the deploy study's jet BDT agrees with xgboost as the fixed-point
type widens: the paper preset's BDT of each run seed (same data, split and xgboost seed as
``hepchain deploy bench --preset paper``), emulated by conifer's cpp backend at each
``ap_fixed<W,I>`` (inputs, thresholds and scores), on the test jets.

    PYTHONPATH=src python docs/deploy_bdt_precision.py --seeds 0 1 2 --out runs/deploy_bdt_precision.json

The xgboost test accuracy is printed beside the bench's value (``--bench DIR``) to show it is
the same booster.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from hepchain.core.result import Result
from hepchain.core.seeding import derive_seed
from hepchain.core.standardise import Standardiser
from hepchain.core.study import get_study
from hepchain.deploy import bdt
from hepchain.deploy.data import load_jets, split
from hepchain.reco.jettag.models.bdt import fit_bdt

PRECISIONS = ["ap_fixed<18,8>", "ap_fixed<20,8>", "ap_fixed<22,8>", "ap_fixed<24,8>",
              "ap_fixed<28,8>", "ap_fixed<32,8>"]
parser = argparse.ArgumentParser()
parser.add_argument("--preset", default="paper")
parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
parser.add_argument("--precisions", nargs="+", default=PRECISIONS)
parser.add_argument("--bench", type=Path, help="the bench's workdir (seedN/results.json)")
parser.add_argument("--out", type=Path)
args = parser.parse_args()
torch.set_num_threads(1)
config = get_study("deploy").config(args.preset)
jets = load_jets(config["data"], Result(study="deploy", preset=args.preset))
rows = []
for seed in args.seeds:
    train, val, test = split(jets.labels.size, config["split"], seed)
    x = Standardiser.fit(jets.features[train]).transform(jets.features).astype(np.float32)
    y = jets.labels
    booster = fit_bdt(x[train], y[train], x[val], y[val], config["bdt"],
                      derive_seed(seed, "bdt")).get_booster()
    ref = bdt.margins(booster, x[test])
    acc = float(np.mean(ref.argmax(1) == y[test]))
    bench = ""
    if args.bench:
        r = json.loads((args.bench / f"seed{seed}" / "results.json").read_text())
        [m] = [m for m in r["metrics"] if m["name"] == "test accuracy"
               and m["method"] == "BDT (xgboost)"]
        bench = f" (bench: {m['value']:.5f})"
    print(f"seed {seed}: {len(booster.get_dump())} trees, {test.size} test jets, xgboost test "
          f"accuracy {acc:.5f}{bench}", flush=True)
    for precision in args.precisions:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.process_time()
            emu = bdt.emulate_bdt(booster, tmp, precision)
            out = emu.decision_function(x[test])
        same = float(np.mean(out.argmax(1) == ref.argmax(1)))
        row = {"seed": seed, "precision": precision, "identical_top_class": same,
               "n_test": int(test.size), "max_abs_delta": float(np.abs(out - ref).max()),
               "median_abs_delta": float(np.median(np.abs(out - ref))),
               "cpu_s": round(time.process_time() - t0 + emu.compile_cpu_s, 1)}
        rows.append(row)
        print(f"  {precision:16s} identical top class {same:.5f} ({round((1 - same) * test.size)}"
              f" jets differ), max |Δ| {row['max_abs_delta']:.3g}, median |Δ| "
              f"{row['median_abs_delta']:.2g}", flush=True)
if args.out:
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1))
