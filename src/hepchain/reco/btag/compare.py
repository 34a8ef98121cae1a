"""Paired comparisons of taggers over the seeds of a bench (``hepchain btag compare DIR``).

Every seed of ``hepchain btag bench`` trains all taggers on the same jets, so the rejections
of two taggers in one seed form a pair. For each pair (GN1 variants against both DL1-like
baselines, GN1 against GN1 no-aux, GN1 variants against Deep Sets, which has no goal) the
geometric-mean rejection ratio over seeds is given with an error that combines the seed
spread of the per-seed ratios (/√n) with the binomial error of one ratio (the test set is the
same in every seed, so that part does not average down; added conservatively as if the two
taggers' errors were independent), and its significance against 1 and against the goal
(:func:`hepchain.core.compare.compare_methods`). A goal counts as met only when
ratio − error > goal.
"""

from __future__ import annotations

from typing import Any

from hepchain.core.compare import compare_methods
from hepchain.core.errors import UsageError
from hepchain.core.result import Result

#: goal of a rejection ratio by its denominator (GN2/DL1d: 1.8; auxiliary-task gain: 1.10);
#: a ratio to Deep Sets has none
GOALS = {"DL1-like": 1.8, "GN1 no-aux": 1.10}


def paired_rejection_ratios(results: list[Result], eff: float, bkg: str = "light"
                            ) -> list[dict[str, Any]]:
    """One row per (numerator, denominator): ratio, error, z and p against 1, the goal, and
    whether it is met. Pairs with a rejection that is only a lower limit (no background jet
    passed) or is not finite in any seed are left out."""
    metric = f"{bkg} rejection @ {eff:.0%} b-eff"
    methods = {m.method for m in results[0].metrics if m.name == metric}
    gn1 = sorted(m for m in methods if m.startswith("GN1"))
    pairs = [(n, d, GOALS["DL1-like"]) for n in gn1 for d in sorted(methods)
             if d.startswith("DL1-like")]
    if "GN1" in methods and "GN1 no-aux" in methods:
        pairs.append(("GN1", "GN1 no-aux", GOALS["GN1 no-aux"]))
    if "DeepSets" in methods:  # the baseline on the same inputs (the only one on salt files)
        pairs += [(n, "DeepSets", None) for n in gn1]
    rows = []
    for num, den, goal in pairs:
        try:
            c = compare_methods(results, metric, num, den, ratio=True, add_stat_error=True,
                                goal=goal)
        except UsageError:  # fewer than two usable seeds
            continue
        if c.n_dropped:  # a lower limit or NaN/inf in some seed: no honest ratio
            continue
        rows.append({"numerator": num, "denominator": den, "metric": metric,
                     "ratio": c.estimate, "error": c.error, "n_seeds": c.n,
                     "z_vs_1": c.z, "p_vs_1": c.p_value, "goal": goal,
                     "z_vs_goal": c.z_goal, "goal_met": c.goal_met})
    return rows
