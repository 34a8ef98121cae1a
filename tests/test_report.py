"""The generated markdown tables of docs/benchmarks.md (`hepchain report --markdown`)."""

from __future__ import annotations

import base64
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from hepchain.core.errors import DataError
from hepchain.core.provenance import command_line
from hepchain.core.report import (
    BEGIN_MARK,
    END_MARK,
    RunRecord,
    SeedCount,
    build_report,
    generated_part,
    markdown_section,
    markdown_tables,
    splice_generated,
)
from hepchain.core.result import Provenance, Reference, Result
from hepchain.core.summary import load_declarations, matching, summarise
from test_cli import run_cli

DOCS = Path(__file__).resolve().parents[1] / "docs"
NON_FINITE_TEXT = re.compile(r"\b(nan|inf|infinity)\b", re.IGNORECASE)
MACHINE = {"cpu": "Toy CPU 3000", "cores": 2, "memory_gb": 7.5}


def _toy_result() -> Result:
    res = Result(study="toy", preset="quick", provenance=Provenance(
        seeds=[0, 1, 2], started="2026-12-01T10:00:00+00:00", git_revision="abc123",
        command="hepchain toy bench --preset quick --seeds 3", wall_time_s=12.3,
        machine=MACHINE))
    res.add("AUC", "logistic", 0.912, std=0.011, n=3,
            reference=Reference(0.983, "Bayes AUC", same_dataset=True))
    rej = res.add("light rejection @ 70%", "GN1", 250.0, n=3,
                  reference=Reference(1.8, "GN2 paper"))
    rej.limit = "lower"  # a Metric field of the seed layer; set as an attribute here
    res.add("max SIC", "ANODE", float("nan"), std=float("nan"), n=3)
    res.add("rejection @ 99%", "IP3D", float("inf"), std=float("nan"), n=3)
    res.add("B-hadron c*tau", "decay length", 0.47, std=0.03, n=213, unit="mm")
    return res


def _record(result: Result, tmp_path: Path, seeds: int = 3) -> RunRecord:
    counts = {(m.name, m.method): SeedCount(seeds, seeds) for m in result.metrics}
    counts[("max SIC", "ANODE")] = SeedCount(seeds, 0)  # NaN in every seed
    counts[("rejection @ 99%", "IP3D")] = SeedCount(seeds, seeds - 1)  # one seed NaN
    counts[("B-hadron c*tau", "decay length")] = SeedCount(1, 1)  # measured in seed 0 only
    return RunRecord(result, counts if seeds > 1 else {}, tmp_path / "results" / "toy-quick")


def test_bench_table_states_spread_seeds_limits_and_references(tmp_path):
    text = markdown_section(_record(_toy_result(), tmp_path), tmp_path)
    lines = text.splitlines()
    assert lines[0] == "### toy — quick preset"
    assert "seeds: 0, 1, 2 (n = 3)" in text and "date: 2026-12-01" in text
    assert "machine: Toy CPU 3000, 2 cores, 7.5 GiB memory" in text
    assert "Command: `hepchain toy bench --preset quick --seeds 3`" in text
    assert "[results/toy-quick/results.json](results/toy-quick/results.json)" in text
    assert "| metric | method | value ± std over seeds | seeds | reference |" in lines
    assert ("| AUC | logistic | 0.912 ± 0.011 | 3 | 0.983 (reference: Bayes AUC) |"
            in lines)
    assert ("| light rejection @ 70% | GN1 | > 250 | 3 | "
            "1.8 (reference, different dataset: GN2 paper) |" in lines)
    assert "| max SIC | ANODE | n/a (3 of 3 seeds not finite) † | 0 |  |" in lines
    assert "| rejection @ 99% | IP3D | ∞ (1 of 3 seeds not finite) | 2 |  |" in lines
    assert "| B-hadron c*tau | decay length | 0.47 ± 0.03 mm † | 1 |  |" in lines
    assert lines[-1].startswith("† finite in at most one seed")
    assert not NON_FINITE_TEXT.search(text)


def test_single_run_table_says_the_error_is_the_stored_one(tmp_path):
    res = _toy_result()
    res.provenance.machine = {}  # a results.json written before the machine was recorded
    text = markdown_section(_record(res, tmp_path, seeds=1), tmp_path)
    assert "| metric | method | value ± error stored by the run | reference |" in text
    assert "| AUC | logistic | 0.912 ± 0.011 | 0.983 (reference: Bayes AUC) |" in text
    assert "machine: not recorded" in text and "†" not in text


def test_command_is_recorded_as_typed():
    assert (command_line(["/venv/lib/site-packages/hepchain/cli.py", "toy", "bench", "--set",
                          "data.n=3 000"]) == "hepchain toy bench --set 'data.n=3 000'")
    assert command_line(["/venv/bin/hepchain", "list"]) == "hepchain list"
    assert command_line(["/venv/bin/pytest", "-q"]) == "/venv/bin/pytest -q"


def test_results_json_without_machine_still_loads(tmp_path):
    data = _toy_result().to_dict()
    del data["provenance"]["machine"]
    (tmp_path / "results.json").write_text(json.dumps(data))
    assert Result.load(tmp_path).provenance.machine == {}


def test_seeds_json_decides_which_rows_are_seed_spreads(tmp_path):
    res = _toy_result()
    res.save(tmp_path)
    per_seed = [{"metrics": [{"name": "AUC", "method": "logistic", "value": v}]}
                for v in (0.9, float("nan"), 0.92)]
    per_seed[0]["metrics"].append({"name": "B-hadron c*tau", "method": "decay length",
                                   "value": 0.47})
    (tmp_path / "seeds.json").write_text(json.dumps(per_seed))
    record = RunRecord.load(tmp_path)
    assert record.is_bench
    assert record.seed_counts == {("AUC", "logistic"): SeedCount(3, 2),
                                  ("B-hadron c*tau", "decay length"): SeedCount(1, 1)}
    (tmp_path / "seeds.json").write_text("[{\"metrics\": 3}]")
    with pytest.raises(DataError, match="not a valid hepchain seeds file"):
        RunRecord.load(tmp_path)


def test_splice_replaces_only_the_generated_block():
    page = f"# Benchmarks\n\nprose before\n\n{BEGIN_MARK}\nold table\n{END_MARK}\n\nprose after\n"
    new = splice_generated(page, "| a | b |")
    assert new.startswith("# Benchmarks\n\nprose before\n\n") and new.endswith("prose after\n")
    assert generated_part(new) == "| a | b |" and "old table" not in new
    assert splice_generated(new, "| a | b |") == new
    with pytest.raises(DataError, match="exactly one"):
        splice_generated("no markers here", "x")
    with pytest.raises(DataError, match="exactly one"):
        splice_generated(f"{END_MARK}\n{BEGIN_MARK}\n", "x")


def test_cli_writes_tables_between_the_markers(toy_study, tmp_path):
    assert run_cli(["toy", "bench", "--preset", "quick", "--seeds", "2",
                    "--workdir", str(tmp_path / "results" / "toy-bench")]) == 0
    assert run_cli(["toy", "run", "--workdir", str(tmp_path / "results" / "toy-run")]) == 0
    page = tmp_path / "benchmarks.md"
    page.write_text(f"Hand-written intro.\n\n{BEGIN_MARK}\n{END_MARK}\n\nHand-written end.\n")
    runs = [str(tmp_path / "results" / d) for d in ("toy-bench", "toy-run")]
    assert run_cli(["report", "--markdown", str(page), *runs]) == 0
    text = page.read_text()
    assert text.startswith("Hand-written intro.") and text.endswith("Hand-written end.\n")
    block = generated_part(text)
    assert block.index("value ± std over seeds") < block.index("value ± error stored by the run")
    assert "seeds: 0, 1 (n = 2)" in block and "| AUC | logistic |" in block
    assert "(results/toy-bench/results.json)" in block  # relative to the page
    assert block == markdown_tables(runs, tmp_path)
    assert run_cli(["report", "--markdown", str(page), str(tmp_path / "missing")]) == 2
    (tmp_path / "bare.md").write_text("no markers\n")
    assert run_cli(["report", "--markdown", str(tmp_path / "bare.md"), runs[0]]) == 1
    assert (tmp_path / "bare.md").read_text() == "no markers\n"


def test_benchmarks_page_is_generated_from_docs_results():
    """A hand edit of a generated figure in docs/benchmarks.md, or a results.json in
    docs/results/ without the page rebuilt, fails here. Rebuild with
    `hepchain report --markdown docs/benchmarks.md docs/results/*`."""
    runs = sorted(p for p in (DOCS / "results").iterdir() if p.is_dir())
    assert runs, "docs/results/ holds no run directories"
    page = (DOCS / "benchmarks.md").read_text()
    assert generated_part(page) == markdown_tables(runs, DOCS)
    assert not NON_FINITE_TEXT.search(generated_part(page))


# --- the HTML report: summary cards first, clean tables, figures that decode -----------------

TOY_DECLARATION = {"toy": {
    "question": "Can a toy answer a question?",
    "headlines": [{"metric": "AUC", "method": "logistic"},
                  {"metric": "light rejection @ *", "method": "GN1"}],
    "goals": [{"text": "AUC at least 0.9", "metric": "AUC", "method": "*", "at_least": 0.9},
              {"text": "AUC at most 0.5", "metric": "AUC", "method": "*", "at_most": 0.5},
              {"text": "max SIC in [1, 20]", "metric": "max SIC", "method": "ANODE",
               "at_least": 1, "at_most": 20},
              {"text": "not run", "metric": "nothing", "method": "*", "at_least": 0}],
    "figure": "key_*.png"}}


class _Page(HTMLParser):
    """Collects the visible text, the cards and the embedded images of a report page."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.cards: list[str] = []
        self.images: list[tuple[str, str]] = []  # (src, class of the enclosing figure)
        self.headers: list[str] = []
        self.items: list[str] = []  # the text of each <li>
        self._skip = self._in_th = self._in_li = False
        self._figure_class = ""

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self._skip = tag in ("script", "style")
        self._in_th = tag == "th"
        if tag == "li":
            self._in_li = True
            self.items.append("")
        if tag == "article":
            self.cards.append(attrs.get("id") or attrs.get("class", ""))
        if tag == "figure":
            self._figure_class = attrs.get("class") or ""
        if tag == "img" and "src" in attrs:
            self.images.append((attrs["src"], self._figure_class))

    def handle_endtag(self, tag):
        self._skip = self._in_th = False
        self._in_li = self._in_li and tag != "li"

    def handle_data(self, data):
        if not self._skip:
            self.text.append(data)
        if self._in_th:
            self.headers.append(data)
        if self._in_li:
            self.items[-1] += data


def _png(path: Path, width: int, height: int) -> str:
    Image.new("RGB", (width, height), (200, 30, 30)).save(path)
    return path.name


def _page(tmp_path: Path) -> tuple[_Page, str]:
    toy = _toy_result()
    toy.workdir = str(tmp_path / "toy")
    Path(toy.workdir).mkdir()
    toy.figures = [_png(Path(toy.workdir) / "roc.png", 400, 300),
                   _png(Path(toy.workdir) / "key_panels.png", 900, 300)]
    other = Result(study="other", preset="quick", workdir=str(tmp_path / "other"))
    other.add("x", "y", 1.0)
    page = build_report([toy, other], tmp_path / "report", failures={"broken": "no data."},
                        declarations=TOY_DECLARATION)
    parser = _Page()
    text = page.read_text()
    parser.feed(text)
    return parser, text


def test_html_report_opens_with_one_card_per_study(tmp_path):
    parser, text = _page(tmp_path)
    assert parser.cards[:3] == ["card failed", "card-toy", "card-other"]
    assert text.index("card-other") < text.index("<h2 id='toy'>")  # summary before details
    visible = " ".join(parser.text)
    assert "Can a toy answer a question?" in visible
    assert parser.items == ["✓ AUC at least 0.9: met — measured 0.912 ± 0.011",
                            "✗ AUC at most 0.5: not met — measured 0.912 ± 0.011",
                            "– max SIC in [1, 20]: not measured in this run",
                            "– not run: not measured in this run"]
    assert "key figure: key_panels.png" in visible
    assert "failed: no data." in visible


def test_html_tables_define_every_spread_and_show_no_non_finite_text(tmp_path):
    parser, text = _page(tmp_path)
    visible = " ".join(parser.text)
    assert not NON_FINITE_TEXT.search(visible), NON_FINITE_TEXT.search(visible)
    assert "n/a" not in visible
    # the toy aggregates seeds 0-2; "other" is a single run, whose ± the footnote defines
    assert {"± std over 3 seeds", "ours ± std over 3 seeds", "± as stored by the run †"} \
        <= set(parser.headers)
    assert "† ± as stored by the run: the std over its n repetitions" in visible
    assert "> 250" in visible and "∞" in visible  # a lower limit, and the infinite rejection
    assert "<details><summary>all 5 metrics</summary>" in text
    assert "td.num{text-align:right;font-family:ui-monospace,monospace;white-space:nowrap}" \
        in text


def test_html_figures_decode_and_wide_ones_take_the_width(tmp_path):
    parser, _ = _page(tmp_path)
    assert len(parser.images) == 3  # the key figure on the card, then both in the details
    for src, _ in parser.images:
        head, _, data = src.partition(",")
        assert head == "data:image/png;base64"
        Image.open(io.BytesIO(base64.b64decode(data))).verify()
    assert [cls for _, cls in parser.images] == ["wide", "", "wide"]  # key figure: 3:1


def test_summary_goals_use_every_matching_row():
    res = _toy_result()
    res.add("AUC", "other", 0.4)
    summary = summarise(res, TOY_DECLARATION)
    assert [m.method for m in summary.headlines] == ["logistic", "GN1"]
    verdicts = {g.text: (g.met, [m.method for m in g.rows]) for g in summary.goals}
    assert verdicts["AUC at least 0.9"] == (False, ["logistic", "other"])  # 0.4 fails it
    best = {"toy": {"goals": [{**TOY_DECLARATION["toy"]["goals"][0], "require": "any"}]}}
    assert summarise(res, best).goals[0].met is True  # the logistic row's 0.912 suffices
    assert verdicts["max SIC in [1, 20]"] == (None, ["ANODE"])  # NaN: not measured
    assert verdicts["not run"] == (None, [])


def test_a_headline_may_list_the_names_its_presets_use():
    res = Result(study="toy", preset="quick")
    res.add("AUC", "ParT", 0.95)
    res.add("macro AUC (one vs rest)", "ParT", 0.82)
    res.add("AUC minus PFN's (paired)", "ParT", 0.01)
    names = ["AUC", "macro AUC (one vs rest)"]
    assert [m.value for m in matching(res, names, "ParT")] == [0.95, 0.82]
    assert [m.value for m in matching(res, "AUC", "*")] == [0.95]  # a plain name stays exact
    res.add("worst |fit - true|", "flow", 1.0)
    literal = ["worst |fit - true|", "AUC"]  # "|" inside a name is literal, not alternation
    assert [m.method for m in matching(res, literal, "flow")] == ["flow"]
    assert matching(res, "worst ", "*") == []


def test_every_study_declares_its_summary():
    from hepchain.studies import REGISTRY

    declarations = load_declarations()
    missing = set(REGISTRY) - set(declarations)
    assert not missing, f"declare the report card of {missing} in configs/summaries.yaml"
    for name in REGISTRY:
        spec = declarations[name]
        assert spec["question"].endswith("?") and spec["headlines"] and spec["figure"], name
        for goal in spec.get("goals", []):
            assert {"text", "metric", "method"} <= set(goal), (name, goal)
            assert "at_least" in goal or "at_most" in goal, (name, goal)
            assert goal.get("require", "all") in ("all", "any"), (name, goal)


@pytest.mark.parametrize("run", sorted(p.name for p in (DOCS / "results").iterdir()))
def test_declared_headlines_match_the_stored_runs(run):
    """The stored runs of docs/results/ hold every headline a study declares, so a renamed
    metric cannot silently empty its card. A study's own verbs (jettag's `compare`, `scaling`:
    preset "paper (compare)") measure other things and are tables, not cards. A run of only
    some of a study's parts (linac's `paper-control`: the controller) holds some headlines;
    its study's quick run holds them all."""
    from hepchain.core.study import get_study

    result = Result.load(DOCS / "results" / run)
    if result.preset.endswith(")"):
        pytest.skip(f"{run} is a study verb's run ({result.preset}), not a card")
    if result.study == "demo":
        pytest.skip(f"{run} is `hepchain demo`'s own record (wall times), not a study's card")
    spec = load_declarations()[result.study]
    found = [bool(matching(result, h["metric"], h["method"])) for h in spec["headlines"]]
    parts = result.provenance.config.get("parts")
    if parts is not None and set(parts) < set(get_study(result.study).config("quick")["parts"]):
        assert any(found), run
    else:
        assert all(found), (run, [h for h, f in zip(spec["headlines"], found, strict=True)
                                  if not f])
    assert summarise(result).figure is not None


def test_a_goal_inside_the_error_is_not_met():
    """A goal counts as met only outside the row's error; a lower limit counts at its bound."""
    spec = {"toy": {"question": "q", "headlines": [], "figure": None, "goals": [
        {"text": "x at least 1", "metric": "x", "method": "m", "at_least": 1.0},
        {"text": "y at most 1", "metric": "y", "method": "m", "at_most": 1.0}]}}

    def met(x: float, err: float | None, limit: str | None = None) -> list[bool | None]:
        res = Result(study="toy", preset="quick")
        res.add("x", "m", x, std=err, limit=limit)
        res.add("y", "m", 2.0 - x, std=err)
        return [g.met for g in summarise(res, spec).goals]

    assert met(1.2, 0.3) == [False, False]  # 1.2 ± 0.3 does not resolve the bound 1
    assert met(1.5, 0.3) == [True, True]
    assert met(1.2, None) == [True, True]   # no error stated: the central value decides
    assert met(1.1, None, limit="lower")[0] is True
