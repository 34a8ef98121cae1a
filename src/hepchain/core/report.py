"""Reports of results.json files: the HTML page and the generated tables of the docs.

``build_report(results, out_dir)`` writes ``out_dir/index.html`` (layout and style in
``report_template.html``) with images embedded (base64), so the page is self-contained and
can be mailed or archived as one file. It opens with one summary card per study
(:mod:`hepchain.core.summary`); the detail tables follow, collapsed, with every ± defined by
its column (std over the n runs, or the run's statistical error), one-sided limits as
``> x``, and empty cells where a value is not finite.
``write_markdown(page, run_dirs)`` rewrites the block between ``<!-- generated:begin -->``
and ``<!-- generated:end -->`` of a markdown page (``docs/benchmarks.md``) with one table
per run, so no figure of the docs is typed by hand.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import struct
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template

from hepchain.core.errors import DataError, UsageError
from hepchain.core.io import atomic_write_text
from hepchain.core.result import Metric, Provenance, Result, _fmt
from hepchain.core.summary import Goal, Summary, summarise

WIDE_ASPECT = 1.7  # figures wider than this (multi-panel) take the full report width
STORED_SPREAD = ("± as stored by the run: the std over its n repetitions (seeds or data "
                 "splits) where the study repeats a measurement, else a statistical error "
                 "(binomial, or of a mean over n entries)")


def _png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) in pixels from a PNG header, None for anything else."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or len(data) < 24:
        return None
    return struct.unpack(">II", data[16:24])


def _img(path: Path, caption: str | None = None) -> str:
    """A figure embedded as base64; wide (multi-panel) figures get the full width."""
    if not path.is_file():
        return f"<p class='note'>missing figure {html.escape(str(path))}</p>"
    data = path.read_bytes()
    size = _png_size(data)
    wide = " class='wide'" if size and size[0] > WIDE_ASPECT * size[1] else ""
    mime = "image/png" if size else "image/svg+xml" if path.suffix == ".svg" else "image/png"
    return (f"<figure{wide}><img src='data:{mime};base64,{base64.b64encode(data).decode()}' "
            f"alt='{html.escape(path.name)}'><figcaption>"
            f"{html.escape(caption or path.name)}</figcaption></figure>")


def _value_text(m: Metric) -> str:
    """The central value with its unit: ``> x`` / ``< x`` for a one-sided limit
    (``Metric.limit``, where the installed Metric has it), ``∞`` for an infinity, and an empty
    string for NaN (never ``nan``/``inf`` in the page)."""
    value = m.value
    if value is None or math.isnan(value):
        return ""
    text = _number(value)
    if getattr(m, "limit", None) in ("lower", "upper"):
        text = f"{'>' if m.limit == 'lower' else '<'} {text}"
    return f"{text} {m.unit}".strip() if m.unit else text


def _spread(m: Metric) -> str:
    """The ``± x`` cell: empty for a limit, a non-finite value or spread."""
    if m.std is None or not math.isfinite(m.std) or _value_text(m) == "" \
            or getattr(m, "limit", None) in ("lower", "upper"):
        return ""
    return f"± {_number(m.std)}"


def spread_header(result: Result) -> str:
    """What ± means in ``result``'s tables: the std over its seeds for an aggregate of
    several seeds (``hepchain <study> bench``), else what the run stored (a footnote says)."""
    seeds = len(result.provenance.seeds)
    return f"± std over {seeds} seeds" if seeds > 1 else "± as stored by the run †"


def _ours(m: Metric) -> str:
    """A compact ``value ± spread unit`` for the summary card."""
    value, spread = _value_text(m), _spread(m)
    if not spread:
        return value
    number, _, unit = value.partition(" ") if m.unit else (value, "", "")
    return f"{number} {spread} {unit}".strip()


def _footnote(result: Result, short: bool = False) -> str:
    """The footnote that defines ± of a single run (none for an aggregate of seeds)."""
    if len(result.provenance.seeds) > 1:
        return ""
    text = ("± as stored by the run: a std over its repetitions or a statistical error; see "
            "the study's table") if short else STORED_SPREAD
    return f"<p class='foot'>† {html.escape(text)}.</p>"


def _reference_html(m: Metric, short: bool = False) -> str:
    """The reference cell; ``short`` keeps the value and puts the source in a tooltip."""
    ref = m.reference
    if ref is None or ref.value is None or math.isnan(ref.value):
        return ""
    value, label = html.escape(_number(ref.value)), html.escape(ref.label)
    if short:
        where = "same data" if ref.same_dataset else "other data"
        return f"<span title='{label}'>{value} <span class='ref'>({where})</span></span>"
    return f"{value} <span class='ref'>({label})</span>"


def _table(result: Result) -> str:
    rows = ["<table><tr><th>metric</th><th>method</th><th>value</th>"
            f"<th>{html.escape(spread_header(result))}</th><th>n</th><th>reference</th></tr>"]
    for m in result.metrics:
        rows.append(f"<tr><td>{html.escape(m.name)}</td><td>{html.escape(m.method)}</td>"
                    f"<td class='num'>{html.escape(_value_text(m))}</td>"
                    f"<td class='num'>{html.escape(_spread(m))}</td><td class='num'>{m.n}</td>"
                    f"<td>{_reference_html(m)}</td></tr>")
    rows.append("</table>" + _footnote(result))
    return "\n".join(rows)


def _goal_item(goal: Goal) -> str:
    mark, css, verdict = {True: ("✓", "met", "met"), False: ("✗", "missed", "not met"),
                          None: ("–", "unmeasured", "not measured in this run")}[goal.met]
    measured = "; ".join(_ours(m) + (f" ({m.method})" if len(goal.rows) > 1 else "")
                         for m in goal.rows if _value_text(m))
    measured = f" — measured {html.escape(measured)}" if measured else ""
    return (f"<li class='{css}'>{mark} {html.escape(goal.text)}: <b>{verdict}</b>"
            f"{measured}</li>")


def summary_card(result: Result, summary: Summary, base: Path) -> str:
    """The summary card of one study: question, headline numbers beside their references,
    goals with their verdicts and the key figure."""
    p = result.provenance
    seeds = ", ".join(map(str, p.seeds)) or "not recorded"
    parts = [f"<article class='card' id='card-{html.escape(result.study)}'>"
             f"<h3><a href='#{html.escape(result.study)}'>{html.escape(result.study)}</a> "
             f"<small>{html.escape(result.preset)} preset · seeds {html.escape(seeds)} · "
             f"{p.wall_time_s:.0f} s</small></h3>"]
    if summary.question:
        parts.append(f"<p class='question'>{html.escape(summary.question)}</p>")
    if summary.headlines:
        header = html.escape(f"ours {spread_header(result)}")
        parts.append("<table><colgroup><col style='width:25%'><col style='width:18%'>"
                     "<col style='width:34%'><col style='width:23%'></colgroup>"
                     f"<tr><th>metric</th><th>method</th><th>{header}</th>"
                     "<th>reference (hover: source)</th></tr>")
        parts += [f"<tr><td>{html.escape(m.name)}</td><td>{html.escape(m.method)}</td>"
                  f"<td class='num'>{html.escape(_ours(m))}</td>"
                  f"<td class='refcell'>{_reference_html(m, short=True)}</td></tr>"
                  for m in summary.headlines]
        parts.append("</table>" + _footnote(result, short=True))
    if summary.goals:
        parts.append("<ul class='goals'>" + "".join(map(_goal_item, summary.goals)) + "</ul>")
    if summary.figure:
        parts.append(_img(base / summary.figure, f"key figure: {summary.figure}"))
    parts.append("</article>")
    return "".join(parts)


def study_section(result: Result, base: Path) -> str:
    """The detail block of one study: its metrics table (collapsed), notes, figures,
    provenance."""
    p = result.provenance
    parts = [f"<h2 id='{html.escape(result.study)}'>{html.escape(result.study)} "
             f"<small>({html.escape(result.preset)})</small></h2>",
             f"<details><summary>all {len(result.metrics)} metrics</summary>"
             f"{_table(result)}</details>"]
    parts += [f"<p class='note'>{html.escape(n)}</p>" for n in result.notes]
    if result.figures:
        parts.append(f"<details open><summary>{len(result.figures)} figures (click one for "
                     "full size)</summary><div class='figures'>"
                     + "".join(_img(base / f) for f in result.figures) + "</div></details>")
    prov = {"command": p.command, "git": p.git_revision, "started": p.started,
            "wall_time_s": round(p.wall_time_s, 1), "peak_memory_mb": round(p.peak_memory_mb),
            "seeds": p.seeds, "machine": p.machine, "versions": p.versions, "config": p.config,
            "datasets": p.datasets}
    parts.append("<details><summary>provenance</summary><pre>"
                 f"{html.escape(json.dumps(prov, indent=2, default=str))}</pre></details>")
    return "\n".join(parts)


def build_report(results: list[Result], out_dir: str | Path, title: str = "hepchain report",
                 failures: dict[str, str] | None = None,
                 declarations: dict | None = None) -> Path:
    """Write ``out_dir/index.html`` for ``results`` (each with its ``workdir``) and return it:
    a summary card per study (``declarations`` default to ``configs/summaries.yaml``), then
    each study's collapsed tables, figures and provenance."""
    out = Path(out_dir)
    body = [f"<h1>{html.escape(title)}</h1>"]
    if not results and not failures:
        body.append("<p class='note'>No studies are registered yet, so there is nothing to "
                    "report. Studies add themselves in <code>hepchain/studies.py</code>.</p>")
    else:
        body.append("<p class='lead'>One card per study: the seed's question, the headline "
                    "numbers beside their references, the goals (✓ met, ✗ not met, – not "
                    "measured in this run; met only when the bound lies outside the row's ±) and the key figure. "
                    "Click a study for its full table, figures and provenance.</p>")
    cards = [f"<article class='card failed'><h3>{html.escape(name)}</h3><p>failed: "
             f"{html.escape(message)}</p></article>" for name, message in (failures or {}).items()]
    cards += [summary_card(r, summarise(r, declarations), Path(r.workdir) if r.workdir else out)
              for r in results]
    if cards:
        body.append("<section class='cards'>" + "".join(cards) + "</section>")
    for r in results:
        body.append(study_section(r, Path(r.workdir) if r.workdir else out))
    template = Template(resources.files("hepchain.core").joinpath("report_template.html")
                        .read_text())
    page = template.substitute(title=html.escape(title), body="\n".join(body))
    path = out / "index.html"
    atomic_write_text(path, page)
    return path


def collect_results(directory: str | Path) -> list[Result]:
    """Every ``results.json`` below ``directory`` (one level of study folders or deeper)."""
    found = sorted(Path(directory).rglob("results.json"))
    results = []
    for f in found:
        # skip per-seed results inside a bench directory that has its own aggregate
        if (f.parent.parent / "results.json").exists() and f.parent.name.startswith("seed"):
            continue
        r = Result.load(f)
        r.workdir = str(f.parent)
        results.append(r)
    return results


QUICK_BUDGET_S = 90.0  # the contract's limit on one study's quick preset, idle 2-core machine


def demo_record(results: list[Result], failures: dict[str, str], provenance: Provenance
                ) -> Result:
    """The ``hepchain demo`` run as a result of its own (study "demo"): each study's
    quick-preset wall time (s), the whole demo's, how many studies exceeded
    :data:`QUICK_BUDGET_S` and how many failed; ``provenance`` is the demo's."""
    record = Result(study="demo", preset="quick", provenance=provenance)
    for res in results:
        record.add("quick-preset wall time", res.study, res.provenance.wall_time_s, unit="s",
                   higher_is_better=False)
    record.add("make demo wall time", "all studies", provenance.wall_time_s, unit="s",
               higher_is_better=False)
    record.add(f"studies over {QUICK_BUDGET_S:.0f} s", "all studies",
               sum(r.provenance.wall_time_s > QUICK_BUDGET_S for r in results),
               higher_is_better=False)
    record.add("studies failed", "all studies", len(failures), higher_is_better=False)
    record.notes += [f"{name} failed: {why}" for name, why in failures.items()]
    return record


# --- markdown: the generated figures tables of docs/benchmarks.md -------------------------

BEGIN_MARK = "<!-- generated:begin -->"
END_MARK = "<!-- generated:end -->"


@dataclass(frozen=True)
class SeedCount:
    """How many seeds of a bench measured one (metric, method) row, and how many of those
    gave a finite value."""

    present: int
    finite: int


@dataclass(frozen=True)
class RunRecord:
    """One run or bench directory: its (aggregate) result, the per-row seed counts read
    from ``seeds.json`` (empty for a single run) and its path."""

    result: Result
    seed_counts: dict[tuple[str, str], SeedCount]
    path: Path

    @classmethod
    def load(cls, run_dir: str | Path) -> RunRecord:
        """Read ``results.json`` (and ``seeds.json`` when present) from ``run_dir``."""
        path = Path(run_dir)
        result = Result.load(path)
        counts: dict[tuple[str, str], SeedCount] = {}
        seeds_file = path / "seeds.json"
        if seeds_file.is_file():
            try:
                for run in json.loads(seeds_file.read_text()):
                    for m in run["metrics"]:
                        key, ok = (m["name"], m["method"]), math.isfinite(float(m["value"]))
                        old = counts.get(key, SeedCount(0, 0))
                        counts[key] = SeedCount(old.present + 1, old.finite + ok)
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise DataError(f"{seeds_file} is not a valid hepchain seeds file ({exc}).") \
                    from exc
        return cls(result, counts, path)

    @property
    def is_bench(self) -> bool:
        """True when the result aggregates several seeds (a ``hepchain <study> bench``)."""
        return max((c.present for c in self.seed_counts.values()), default=0) > 1


def _number(x: float) -> str:
    """A finite number as text; infinities as ∞ (never ``inf``/``nan`` in the page)."""
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    return _fmt(x, 3)


def _value_cell(m: Metric, count: SeedCount | None = None) -> str:
    """``value ± spread``, ``> x`` / ``< x`` for a one-sided limit (``Metric.limit``, when the
    installed Metric has it), ``n/a`` for NaN, and how many seeds were not finite (from
    ``count`` when the per-seed results are known, else ``Metric.n_nonfinite``)."""
    value = m.value
    if value is None or math.isnan(value):
        text = "n/a"
    elif getattr(m, "limit", None) in ("lower", "upper"):
        text = f"{'>' if m.limit == 'lower' else '<'} {_number(value)}"
    else:
        text = _number(value)
        if m.std is not None and math.isfinite(m.std) and math.isfinite(value):
            text += f" ± {_number(m.std)}"
    if m.unit and text != "n/a":
        text += f" {m.unit}"
    if count is not None:
        bad, total = count.present - count.finite, count.present
    else:
        bad = getattr(m, "n_nonfinite", 0)
        total = bad + m.n
    if bad:
        text += f" ({bad} of {total} seeds not finite)"
    return text


def _reference_cell(m: Metric) -> str:
    ref = m.reference
    if ref is None or ref.value is None or math.isnan(ref.value):
        return ""
    return f"{_number(ref.value)} ({ref.label})"


def _md(text: str) -> str:
    """Text safe inside a markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _machine_text(machine: dict) -> str:
    if not machine:
        return "not recorded"
    parts = [str(machine.get("cpu", "unknown CPU"))]
    if "cores" in machine:
        parts.append(f"{machine['cores']} cores")
    if "memory_gb" in machine:
        parts.append(f"{machine['memory_gb']:g} GiB memory")
    return ", ".join(parts)


def markdown_section(run: RunRecord, relative_to: Path) -> str:
    """The markdown of one run: heading, command, preset, seeds, date, machine and a table
    metric | method | value ± spread | (seeds) | reference. Paths are written relative to
    ``relative_to`` (the folder of the page), so the text does not depend on where it is
    built."""
    res, prov = run.result, run.result.provenance
    where = Path(os.path.relpath(run.path.resolve(), relative_to.resolve())).as_posix()
    seeds = ", ".join(str(s) for s in prov.seeds) or "not recorded"
    lines = [f"### {res.study} — {res.preset} preset",
             "",
             f"Results: [{where}/results.json]({where}/results.json) · "
             f"preset: {res.preset} · seeds: {seeds} (n = {len(prov.seeds)}) · "
             f"date: {prov.started[:10] or 'not recorded'} · git: {prov.git_revision} · "
             f"wall time: {prov.wall_time_s:.0f} s · machine: {_machine_text(prov.machine)}",
             "",
             f"Command: `{prov.command or 'not recorded'}`",
             ""]
    if run.is_bench:
        lines += ["| metric | method | value ± std over seeds | seeds | reference |",
                  "|---|---|---|---|---|"]
    else:
        lines += ["| metric | method | value ± error stored by the run | reference |",
                  "|---|---|---|---|"]
    footnote = False
    for m in res.metrics:
        count = run.seed_counts.get((m.name, m.method)) if run.is_bench else None
        cells = [_md(m.name), _md(m.method), _md(_value_cell(m, count))]
        if count is not None:
            if count.finite < 2:
                cells[2] += " †"
                footnote = True
            cells.append(str(count.finite))
        elif run.is_bench:  # a row the per-seed file does not hold
            cells.append("")
        cells.append(_md(_reference_cell(m)))
        lines.append("| " + " | ".join(cells) + " |")
    if footnote:
        lines += ["", "† finite in at most one seed: ± is the error stored by that run."]
    return "\n".join(lines)


def markdown_tables(run_dirs: list[str | Path], relative_to: Path) -> str:
    """The generated block (without markers): one section per run directory, in order."""
    if not run_dirs:
        raise UsageError("Pass at least one run directory with a results.json.")
    sections = [markdown_section(RunRecord.load(d), relative_to) for d in run_dirs]
    return "\n\n".join(sections)


def _generated_span(page: str, name: str) -> tuple[int, int]:
    """Start and end offsets of the text between the one pair of generated markers."""
    begin, end = page.find(BEGIN_MARK), page.find(END_MARK)
    if begin < 0 or end < begin or page.count(BEGIN_MARK) > 1 or page.count(END_MARK) > 1:
        raise DataError(f"{name} needs exactly one '{BEGIN_MARK}' line followed by one "
                        f"'{END_MARK}' line around the generated tables.")
    return begin + len(BEGIN_MARK), end


def splice_generated(page: str, generated: str, name: str = "the page") -> str:
    """``page`` with the text between its generated markers replaced by ``generated``."""
    start, end = _generated_span(page, name)
    return page[:start] + "\n" + generated + "\n" + page[end:]


def generated_part(page: str, name: str = "the page") -> str:
    """The text between the generated markers of ``page`` (what :func:`splice_generated`
    wrote there)."""
    start, end = _generated_span(page, name)
    return page[start:end].strip("\n")


def write_markdown(out: str | Path, run_dirs: list[str | Path]) -> Path:
    """Rewrite the generated block of ``out`` (created with only that block if it does not
    exist) from the ``results.json`` of ``run_dirs``; the prose around it is kept."""
    path = Path(out)
    generated = markdown_tables(run_dirs, path.parent)
    page = path.read_text() if path.is_file() else f"{BEGIN_MARK}\n{END_MARK}\n"
    atomic_write_text(path, splice_generated(page, generated, str(path)))
    return path
