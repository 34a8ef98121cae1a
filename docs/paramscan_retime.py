"""Re-time a paramscan bench's flow samples on an idle machine (docs/paramscan.md, "Four
parameters"): the flows' grids of PRESET (the main grid and every ``flow_grids`` entry) are
generated again, as the bench does (``data.workers`` processes), into the empty cache SCRATCH;
every shard must equal the bench cache's (sha256). Each flow's and MC grid's compute in the
bench's ``seeds.json`` then gets the re-timed generation seconds of those samples instead of
the recorded ones (training, fit and template scans as measured), and the cheapest flow
within resolution is set against the cheapest MC grid within resolution, or against the
largest MC grid when none is (a lower limit, as the study reports it). Writes OUT (JSON).

    PYTHONPATH=src python docs/paramscan_retime.py paper-4d <bench cache> <scratch cache> \\
        runs/paramscan/paper-4d/seeds.json out.json
"""

import json
import os
import sys
from pathlib import Path

import numpy as np

from hepchain.analysis.paramscan.data import load_points, point_spec
from hepchain.analysis.paramscan.study import check_settings, flow_points
from hepchain.analysis.paramscan.summary import grid_suffix
from hepchain.core.cache import find_cached
from hepchain.core.config import load_presets

COMPUTE = "total compute (generation + training + one fit)"
WORST = "worst |fit - true| / resolution over held-out points"


def generation(config: dict, space, points: list, events: int, bench: str, scratch: str
               ) -> tuple[float, float, bool]:
    """Recorded and re-timed generation seconds of ``points`` and whether the bytes agree."""
    old = new = 0.0
    same = True
    for p in points:
        spec = point_spec(config, space, p, events)
        kw = {"n_events": events, "seed": config["data"]["seed"], "options": spec["options"],
              "shard_size": config["data"]["shard_size"]}
        a = find_cached("wprime_xy", root=bench, **kw)
        b = find_cached("wprime_xy", root=scratch, **kw) or a
        old, new = old + a.generation_s, new + b.generation_s
        same &= [s.sha256 for s in a.manifest.shards] == [s.sha256 for s in b.manifest.shards]
    return old, new, same


def main(preset: str, bench: str, scratch: str, seeds_json: str, out: str) -> None:
    config = load_presets("paramscan")[preset]
    space, _ = check_settings(config)
    events = int(config["data"]["events_per_point"])
    flows = {"flow gradient fit": (space.grid, events)}
    for g in config["flow_grids"]:
        points, name = flow_points(space, g, config["data"]["seed"])
        n = int(g.get("events_per_point", events))
        suffix = grid_suffix(name, n if "events_per_point" in g else None, g.get("ensemble", 1))
        flows[f"flow gradient fit{suffix}"] = (points, n)
    os.environ["HEPCHAIN_DATA"] = scratch
    for points, n in flows.values():
        load_points(config, space, points, n, min_selected=1)  # generates what is missing
    shift, identical = {}, True
    grids = dict(flows)
    for g in config["mc_grids"]:  # keyed as the rows name them: "6x6x6x4 x 250"
        n = int(g.get("events_per_point", events))
        grids[f"{'x'.join(map(str, g['points']))} x {n}"] = (space.mc_grid(g["points"]), n)
    for key, (points, n) in grids.items():
        old, new, same = generation(config, space, points, n, bench, scratch)
        shift[key], identical = new - old, identical and same
    rows = []
    for run in json.loads(Path(seeds_json).read_text()):
        compute = {m["method"]: m["value"] for m in run["metrics"] if m["name"] == COMPUTE}
        worst = {m["method"]: m["value"] for m in run["metrics"] if m["name"] == WORST}
        timed = {k: v + shift[k if k.startswith("flow") else " ".join(k.split()[3:6])]
                 for k, v in compute.items()}
        within = {k: v for k, v in timed.items() if worst[k] <= 1}
        flow = min((k for k in within if k.startswith("flow")), key=timed.get)
        mc = [k for k in within if k.startswith("MC")]
        grid = (min(mc, key=timed.get) if mc
                else max((k for k in timed if k.startswith("MC")), key=timed.get))
        rows.append({"flow": flow, "flow_s": timed[flow], "mc": grid, "mc_s": timed[grid],
                     "ratio": timed[grid] / timed[flow], "lower_limit": not mc,
                     "compute_s": timed})
    ratios = [r["ratio"] for r in rows]
    summary = {"identical_shards": identical, "generation_shift_s": shift, "seeds": rows,
               "ratio_mean": float(np.mean(ratios)), "ratio_std": float(np.std(ratios, ddof=1))}
    Path(out).write_text(json.dumps(summary, indent=1))
    print(f"identical shards: {identical}; ratio {'>' if rows[0]['lower_limit'] else ''} "
          f"{summary['ratio_mean']:.1f} ± {summary['ratio_std']:.1f} "
          f"({' / '.join(f'{r:.1f}' for r in ratios)})")


if __name__ == "__main__":
    main(*sys.argv[1:6])
