"""Paired comparisons of two methods over the seeds of a bench (``hepchain compare PATH``).

Every seed of ``hepchain <study> bench`` evaluates all methods on the same events, so the
values of methods A and B in one seed form a pair; :func:`compare_methods` pairs them over the
seeds and judges the mean difference A − B (or the geometric-mean ratio A / B) with
:func:`hepchain.core.metrics.paired_difference` / :func:`~hepchain.core.metrics.paired_ratio`.

Example::

    results = load_seed_results("docs/results/multistep-paper")
    c = compare_methods(results, "step (b) AUC (H→ττ vs Z→ττ)", "connected, DWA", "serial")
    c.estimate, c.error, c.p_value
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hepchain.core.errors import DataError, UsageError
from hepchain.core.metrics import paired_difference, paired_ratio
from hepchain.core.result import Metric, Result


def load_seed_results(path: str | Path) -> list[Result]:
    """The per-seed results of a bench: ``PATH/seeds.json`` (what ``bench`` writes beside
    ``results.json``), ``PATH`` itself when it is such a file, or else every
    ``PATH/seed*/results.json`` of a bench ``--workdir``. DataError when there are none."""
    p = Path(path)
    seeds_file = p if p.is_file() else p / "seeds.json"
    if seeds_file.is_file():
        try:
            return [Result.from_dict(d) for d in json.loads(seeds_file.read_text())]
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            raise DataError(f"{seeds_file} is not a valid hepchain seeds file ({exc}).") from exc
    runs = sorted(p.glob("seed*/results.json")) if p.is_dir() else []
    if not runs:
        raise DataError(f"{p} has no seeds.json and no seed*/results.json; pass the --workdir "
                        "of a `hepchain <study> bench` (or the seeds.json it wrote).")
    return [Result.load(run) for run in runs]


@dataclass(frozen=True)
class Comparison:
    """Method ``a`` against method ``b`` on ``metric``, paired over seeds.

    ``estimate`` is the mean of a_i − b_i, or with ``ratio`` the geometric mean of a_i / b_i;
    ``error`` its standard error (seed spread / √n, with the per-seed test-set errors added
    when ``stat_error_added``); ``seed_std`` the standard deviation (ddof=1) over seeds of the
    per-seed difference (or ratio), ``per_seed`` those values by seed. ``z`` and ``p_value``
    are against 0 (ratio: 1). ``n_dropped`` counts matched seeds left out because a value
    was NaN/inf or only a one-sided limit, ``n_unmatched`` seeds of the bench where ``a`` or
    ``b`` has no row. With a ``goal``: ``z_goal`` against it and ``goal_met`` when the
    estimate is beyond the goal by more than its error (``estimate − error > goal``, or
    ``estimate + error < goal`` when ``higher_is_better`` is False).
    """

    metric: str
    a: str
    b: str
    ratio: bool
    estimate: float
    error: float
    seed_std: float
    n: int
    z: float
    p_value: float
    n_dropped: int
    n_unmatched: int
    stat_error_added: bool
    per_seed: dict[int, float]
    higher_is_better: bool | None = None
    goal: float | None = None
    z_goal: float | None = None
    goal_met: bool | None = None


def _seed_ids(results: list[Result]) -> list[int]:
    """Each result's seed (its provenance's only seed, else its position)."""
    ids = [r.provenance.seeds[0] if len(r.provenance.seeds) == 1 else i
           for i, r in enumerate(results)]
    if len(set(ids)) != len(ids):
        raise DataError(f"The per-seed results repeat a seed ({ids}); pass one bench's seeds.")
    return ids


def _rows(results: list[Result], metric: str, method: str) -> dict[int, Metric]:
    """The ``metric`` row of ``method`` in every seed that has one, by seed."""
    out = {}
    for seed, r in zip(_seed_ids(results), results, strict=True):
        row = next((m for m in r.metrics if m.name == metric and m.method == method), None)
        if row is not None:
            out[seed] = row
    return out


def methods_of(results: list[Result], metric: str) -> list[str]:
    """The methods with a ``metric`` row in any seed, in first-seen order; UsageError naming
    the available metrics when no seed has ``metric``."""
    names = list(dict.fromkeys(m.name for r in results for m in r.metrics))
    if metric not in names:
        raise UsageError(f"No metric {metric!r} in these results; metrics: "
                         f"{'; '.join(repr(n) for n in names)}.")
    return list(dict.fromkeys(m.method for r in results for m in r.metrics if m.name == metric))


def compare_methods(results: list[Result], metric: str, a: str, b: str, *, ratio: bool = False,
                    add_stat_error: bool = False, goal: float | None = None) -> Comparison:
    """Pair method ``a`` with method ``b`` on ``metric`` over the seeds of ``results``.

    Only seeds where both have a row are paired (the others are counted in
    ``n_unmatched``); a pair where either value is NaN/inf or a one-sided limit is dropped
    and counted in ``n_dropped``, never silently. UsageError for an unknown metric or
    method (naming the available ones), a ratio of non-positive values, or fewer than two
    usable pairs.

    Errors. By default the error is the seed spread of the per-seed differences / √n with a
    Student-t p-value: it answers "over training seeds, is A better than B on these test
    events" (when every seed uses the same test events, their sampling fluctuation is common
    to all pairs and not in the seed spread, so the default leaves it out). The per-seed test-set error of a difference of two models evaluated on the same
    events is *not* the quadrature sum of their errors (the two values are positively
    correlated, so that sum over-states it), and the correct one needs per-event scores the
    results do not keep. ``add_stat_error=True`` is therefore a conservative option: it adds,
    per seed, √(σ_a² + σ_b²) (ratio: √((σ_a/a)² + (σ_b/b)²)) from the rows' ``std`` as a
    common error that does not average down over seeds (p-value still Student t with n − 1
    degrees of freedom). Rows without a ``std`` leave it out (``stat_error_added`` False).
    """
    if a == b:
        raise UsageError(f"--a and --b are both {a!r}; name two different methods.")
    methods = methods_of(results, metric)
    for method in (a, b):
        if method not in methods:
            raise UsageError(f"No method {method!r} has metric {metric!r}; methods: "
                             f"{'; '.join(repr(m) for m in methods)}.")
    rows_a, rows_b = _rows(results, metric, a), _rows(results, metric, b)
    matched = sorted(set(rows_a) & set(rows_b))
    usable = [s for s in matched if all(np.isfinite(r[s].value) and r[s].limit is None
                                        for r in (rows_a, rows_b))]
    va = np.array([rows_a[s].value for s in usable], float)
    vb = np.array([rows_b[s].value for s in usable], float)
    if ratio and ((va <= 0) | (vb <= 0)).any():
        raise UsageError(f"--ratio needs positive values; {metric!r} of {a!r} or {b!r} is "
                         "zero or negative in some seed (compare the difference instead).")
    if len(usable) < 2:
        raise UsageError(f"{a!r} and {b!r} have {len(usable)} usable pair(s) of {metric!r} "
                         f"({len(matched) - len(usable)} dropped as NaN/inf or limit, "
                         f"{len(results) - len(matched)} seeds unmatched); need at least two.")
    ea = np.array([rows_a[s].std if rows_a[s].std is not None else np.nan for s in usable])
    eb = np.array([rows_b[s].std if rows_b[s].std is not None else np.nan for s in usable])
    stat = np.hypot(ea / va, eb / vb) if ratio else np.hypot(ea, eb)
    use_stat = add_stat_error and bool(np.isfinite(stat).all())
    common = stat if use_stat else None
    pair = paired_ratio if ratio else paired_difference
    res = pair(va, vb, common, 1.0 if ratio else 0.0)
    per_seed = va / vb if ratio else va - vb
    hib = rows_a[usable[0]].higher_is_better
    z_goal = met = None
    if goal is not None:
        z_goal = pair(va, vb, common, goal).z
        met = bool(res.estimate + res.error < goal if hib is False
                   else res.estimate - res.error > goal)
    return Comparison(metric, a, b, ratio, res.estimate, res.error,
                      float(per_seed.std(ddof=1)), res.n, res.z, res.p_value,
                      len(matched) - len(usable), len(results) - len(matched), use_stat,
                      {s: float(v) for s, v in zip(usable, per_seed, strict=True)}, hib, goal,
                      z_goal, met)


def compare_against(results: list[Result], metric: str, reference: str, *, ratio: bool = False,
                    add_stat_error: bool = False, goal: float | None = None
                    ) -> tuple[list[Comparison], dict[str, str]]:
    """Every other method with ``metric`` against ``reference`` (A = method, B = reference),
    and, by method, why a method could not be compared (e.g. fewer than two usable pairs)."""
    methods = methods_of(results, metric)
    if reference not in methods:
        raise UsageError(f"No method {reference!r} has metric {metric!r}; methods: "
                         f"{'; '.join(repr(m) for m in methods)}.")
    rows, skipped = [], {}
    for method in methods:
        if method == reference:
            continue
        try:
            rows.append(compare_methods(results, metric, method, reference, ratio=ratio,
                                        add_stat_error=add_stat_error, goal=goal))
        except UsageError as exc:
            skipped[method] = str(exc)
    return rows, skipped


def comparison_table(rows: list[Comparison], title: str):  # -> rich.table.Table
    """A rich table: one row per comparison, ``estimate ± error`` with the seed spread, the
    seeds used / dropped / unmatched, z and p, and the goal when one was given."""
    from rich.table import Table

    table = Table(title=title)
    op = "/" if rows and rows[0].ratio else "−"
    cols = ["A", "B", f"A {op} B ± error", "seed std", "seeds", "dropped", "unmatched", "z", "p"]
    if any(r.goal is not None for r in rows):
        cols += ["goal", "met"]
    for col in cols:
        table.add_column(col, overflow="fold")
    for r in rows:
        sign = "" if r.ratio else "+"
        cells = [r.a, r.b, f"{r.estimate:{sign}.3g} ± {r.error:.2g}", f"{r.seed_std:.2g}",
                 str(r.n), str(r.n_dropped), str(r.n_unmatched), f"{r.z:+.2f}", f"{r.p_value:.2g}"]
        if r.goal is not None:
            cells += [f"{r.goal:g}", "yes" if r.goal_met else "no"]
        table.add_row(*cells)
    return table
