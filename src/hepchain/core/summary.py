"""The summary of a study run for a reader in a hurry: the seed's question, the headline
numbers beside their references, the goals and whether the run meets them, the key figure.

What each study declares is data, in ``hepchain/configs/summaries.yaml`` (see its header);
:func:`summarise` evaluates it against a :class:`~hepchain.core.result.Result`. In metric and
method names ``*`` matches any text, so one entry covers every energy or efficiency point.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import PurePosixPath
from typing import Any

import yaml

from hepchain.core.errors import UsageError
from hepchain.core.result import Metric, Result

SUMMARIES_FILE = "summaries.yaml"


@dataclass(frozen=True)
class Goal:
    """A goal of the study's issue and the measured rows it is judged on.

    ``met`` is True when every matching row lies within the bounds by more than its error
    (value − error ≥ ``at_least``, value + error ≤ ``at_most``; the error is the row's ±: seed
    std after a bench, else the test set's statistical error; a lower limit counts at its
    bound) — with ``require: any``, when at least one does ("the best controller reaches
    ..."); False when not, and None when the run measured no finite matching row. A goal whose
    bound lies inside a row's error is therefore not met: not resolved is not reached.
    """

    text: str
    rows: tuple[Metric, ...]
    met: bool | None


@dataclass(frozen=True)
class Summary:
    """The card of one study: question, headline rows, goals, key figure (or None)."""

    study: str
    question: str
    headlines: tuple[Metric, ...]
    goals: tuple[Goal, ...]
    figure: str | None


def load_declarations() -> dict[str, dict[str, Any]]:
    """The parsed ``configs/summaries.yaml``: study name -> declaration."""
    text = resources.files("hepchain.configs").joinpath(SUMMARIES_FILE).read_text()
    data = yaml.safe_load(text) or {}
    if not isinstance(data, Mapping):
        raise UsageError(f"configs/{SUMMARIES_FILE} must map study names to declarations.")
    return dict(data)


def _pattern(name: str | Sequence[str]) -> re.Pattern[str]:
    """``name`` with ``*`` matching any text, everything else literal; a list of names matches
    any of them (a study whose presets name a metric differently)."""
    names = [name] if isinstance(name, str) else list(name)
    alternatives = (".*".join(re.escape(part) for part in n.split("*")) for n in names)
    return re.compile("(?:" + "|".join(alternatives) + r")\Z")


def matching(result: Result, metric: str | Sequence[str], method: str) -> list[Metric]:
    """The rows of ``result`` whose metric and method match the (``*``-)patterns."""
    name, how = _pattern(metric), _pattern(method)
    return [m for m in result.metrics if name.match(m.name) and how.match(m.method)]


def _finite(m: Metric) -> bool:
    return m.value is not None and math.isfinite(m.value)


def _goal(result: Result, spec: Mapping[str, Any]) -> Goal:
    rows = tuple(matching(result, spec["metric"], spec["method"]))
    measured = [m for m in rows if _finite(m)]
    low, high = spec.get("at_least"), spec.get("at_most")
    if low is None and high is None:
        raise UsageError(f"Goal {spec.get('text')!r} of configs/{SUMMARIES_FILE} needs "
                         "at_least or at_most.")
    require = spec.get("require", "all")
    if require not in ("all", "any"):
        raise UsageError(f"Goal {spec.get('text')!r} of configs/{SUMMARIES_FILE}: require must "
                         f"be all or any, got {require!r}.")
    met = None
    if measured:
        met = (all if require == "all" else any)(_within(m, low, high) for m in measured)
    return Goal(str(spec["text"]), rows, met)


def _within(m: Metric, low: float | None, high: float | None) -> bool:
    """Whether row ``m`` meets the bounds outside its error (see :class:`Goal`)."""
    err = m.std if m.std is not None and math.isfinite(m.std) else 0.0
    if m.limit == "lower":
        return high is None and m.value >= low
    return (low is None or m.value - err >= low) and (high is None or m.value + err <= high)


def _figure(result: Result, pattern: str | None) -> str | None:
    """The first figure whose file name matches ``pattern``, else the first figure."""
    if pattern:
        match = _pattern(pattern)
        for figure in result.figures:
            if match.match(PurePosixPath(figure).name):
                return figure
    return result.figures[0] if result.figures else None


def summarise(result: Result, declarations: Mapping[str, Any] | None = None) -> Summary:
    """The summary card of ``result`` from its study's declaration (``declarations`` default
    to ``configs/summaries.yaml``); a study without one gets its first figure only."""
    spec = (load_declarations() if declarations is None else declarations).get(result.study)
    spec = spec or {}
    headlines = tuple(m for h in spec.get("headlines", [])
                      for m in matching(result, h["metric"], h["method"]))
    goals = tuple(_goal(result, g) for g in spec.get("goals", []))
    return Summary(result.study, str(spec.get("question", "")), headlines, goals,
                   _figure(result, spec.get("figure")))
