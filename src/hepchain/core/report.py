"""The HTML report: every study's metrics table, figures and provenance on one page.

``build_report(results, out_dir)`` writes ``out_dir/index.html`` with images embedded
(base64), so the page is self-contained and can be mailed or archived as one file.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from hepchain.core.io import atomic_write_text
from hepchain.core.result import Result

_CSS = """
body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;color:#222}
h1{border-bottom:2px solid #345}h2{margin-top:2em;color:#345}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}th{background:#eef}
td.num{text-align:right;font-family:monospace}.ref{color:#666;font-style:italic}
figure{display:inline-block;margin:0.5em;vertical-align:top}
figure img{max-width:540px;border:1px solid #ddd}figcaption{font-size:0.8em;color:#555}
details{margin:1em 0}pre{background:#f6f6f6;padding:0.5em;overflow-x:auto;font-size:0.8em}
.note{background:#ffd;padding:0.3em 0.6em;border-left:3px solid #cc5}
"""


def _img(path: Path) -> str:
    if not path.is_file():
        return f"<p class='note'>missing figure {html.escape(str(path))}</p>"
    data = base64.b64encode(path.read_bytes()).decode()
    return (f"<figure><img src='data:image/png;base64,{data}' alt='{html.escape(path.name)}'>"
            f"<figcaption>{html.escape(path.name)}</figcaption></figure>")


def _table(result: Result) -> str:
    rows = ["<table><tr><th>metric</th><th>method</th><th>value</th><th>seeds</th>"
            "<th>reference</th></tr>"]
    for m in result.metrics:
        name = f"{m.name} [{m.unit}]" if m.unit else m.name
        ref = ""
        if m.reference is not None:
            ref = (f"{m.reference.value:.4g} <span class='ref'>"
                   f"({html.escape(m.reference.label)})</span>")
        rows.append(f"<tr><td>{html.escape(name)}</td><td>{html.escape(m.method)}</td>"
                    f"<td class='num'>{html.escape(m.formatted())}</td><td>{m.n}</td>"
                    f"<td>{ref}</td></tr>")
    rows.append("</table>")
    return "\n".join(rows)


def study_section(result: Result, base: Path) -> str:
    """The HTML block of one study: table, notes, figures, provenance."""
    p = result.provenance
    parts = [f"<h2 id='{html.escape(result.study)}'>{html.escape(result.study)} "
             f"<small>({html.escape(result.preset)})</small></h2>", _table(result)]
    parts += [f"<p class='note'>{html.escape(n)}</p>" for n in result.notes]
    parts += [_img(base / f) for f in result.figures]
    prov = {"command": p.command, "git": p.git_revision, "started": p.started,
            "wall_time_s": round(p.wall_time_s, 1), "peak_memory_mb": round(p.peak_memory_mb),
            "seeds": p.seeds, "versions": p.versions, "config": p.config, "datasets": p.datasets}
    parts.append("<details><summary>provenance</summary><pre>"
                 f"{html.escape(json.dumps(prov, indent=2, default=str))}</pre></details>")
    return "\n".join(parts)


def build_report(results: list[Result], out_dir: str | Path, title: str = "hepchain report",
                 failures: dict[str, str] | None = None) -> Path:
    """Write ``out_dir/index.html`` for ``results`` (each with its ``workdir``) and return it."""
    out = Path(out_dir)
    body = [f"<h1>{html.escape(title)}</h1>"]
    if not results and not failures:
        body.append("<p class='note'>No studies are registered yet, so there is nothing to "
                    "report. Studies add themselves in <code>hepchain/studies.py</code>.</p>")
    if results:
        body.append("<ul>" + "".join(f"<li><a href='#{html.escape(r.study)}'>"
                                     f"{html.escape(r.study)}</a></li>" for r in results) + "</ul>")
    for name, message in (failures or {}).items():
        body.append(f"<h2>{html.escape(name)}</h2><p class='note'>failed: "
                    f"{html.escape(message)}</p>")
    for r in results:
        body.append(study_section(r, Path(r.workdir) if r.workdir else out))
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>{_CSS}</style></head><body>{''.join(body)}</body></html>")
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
