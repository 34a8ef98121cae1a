"""Paired comparisons of taggers over the seeds of a bench (``hepchain btag compare DIR``).

Every seed of ``hepchain btag bench`` trains all taggers on the same jets, so the rejections
of two taggers in one seed form a pair. For each pair (GN1 variants against both DL1-like
baselines, GN1 against GN1 no-aux) the geometric-mean rejection ratio over seeds is given with
an error that combines the seed spread of the per-seed ratios (/√n) with the binomial error of
one ratio (the test set is the same in every seed, so that part does not average down), and
its significance against 1 and against the goal (:func:`hepchain.core.metrics.paired_ratio`).
A goal counts as met only when ratio − error > goal.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from hepchain.core.errors import DataError
from hepchain.core.metrics import paired_ratio
from hepchain.core.result import Result

#: goal of a rejection ratio by its denominator (GN2/DL1d: 1.8; auxiliary-task gain: 1.10)
GOALS = {"DL1-like": 1.8, "GN1 no-aux": 1.10}


def load_seeds(bench_dir: Path) -> list[Result]:
    """The per-seed results of a ``hepchain btag bench`` directory (``seeds.json``)."""
    path = Path(bench_dir) / "seeds.json"
    if not path.is_file():
        raise DataError(f"{path} does not exist; pass the --workdir of `hepchain btag bench` "
                        "(with at least two seeds).")
    return [Result.from_dict(d) for d in json.loads(path.read_text())]


def _per_seed(results: list[Result], metric: str, method: str) -> tuple[np.ndarray, np.ndarray]:
    rows = [r.get(metric, method) for r in results]
    return (np.array([np.nan if m.limit else m.value for m in rows], float),
            np.array([m.std if m.std is not None else np.nan for m in rows], float))


def paired_rejection_ratios(results: list[Result], eff: float, bkg: str = "light"
                            ) -> list[dict[str, Any]]:
    """One row per (numerator, denominator): ratio, error, z and p against 1, the goal, and
    whether it is met. Pairs with a rejection that is only a lower limit (no background jet
    passed) in any seed are left out."""
    metric = f"{bkg} rejection @ {eff:.0%} b-eff"
    methods = {m.method for m in results[0].metrics if m.name == metric}
    gn1 = sorted(m for m in methods if m.startswith("GN1"))
    pairs = [(n, d, GOALS["DL1-like"]) for n in gn1 for d in sorted(methods)
             if d.startswith("DL1-like")]
    if "GN1" in methods and "GN1 no-aux" in methods:
        pairs.append(("GN1", "GN1 no-aux", GOALS["GN1 no-aux"]))
    rows = []
    for num, den, goal in pairs:
        a, ea = _per_seed(results, metric, num)
        b, eb = _per_seed(results, metric, den)
        if not (np.isfinite(a).all() and np.isfinite(b).all()) or len(a) < 2:
            continue
        rel = np.hypot(ea / a, eb / b)
        vs_one = paired_ratio(a, b, rel_stat_error=rel)
        vs_goal = paired_ratio(a, b, rel_stat_error=rel, null=goal)
        rows.append({"numerator": num, "denominator": den, "metric": metric,
                     "ratio": vs_one.estimate, "error": vs_one.error, "n_seeds": vs_one.n,
                     "z_vs_1": vs_one.z, "p_vs_1": vs_one.p_value, "goal": goal,
                     "z_vs_goal": vs_goal.z,
                     "goal_met": bool(vs_one.estimate - vs_one.error > goal)})
    return rows
