"""What a study run returns: a metrics table, figures and provenance.

Example::

    result = Result(study="ipknob", preset="quick")
    result.add("test L1 [knob units]", "CNN", 0.15, std=0.01, n=3,
               reference=Reference(0.16, "seed 004 (SuperKEKB 2024 scans)"))
    result.save(workdir)           # writes results.json
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from hepchain.core.metrics import Rejection


@dataclass(frozen=True)
class Reference:
    """A published number printed beside ours.

    ``same_dataset`` is False when the reference was measured on other data (the usual case:
    the seed's machine or the public benchmark); the table then says "reference, different
    dataset".
    """

    value: float
    source: str
    same_dataset: bool = False

    @property
    def label(self) -> str:
        kind = "reference" if self.same_dataset else "reference, different dataset"
        return f"{kind}: {self.source}"


LIMITS = ("lower", "upper")


@dataclass
class Metric:
    """One number of one method, with its spread over seeds and an optional reference.

    ``n`` counts the finite values behind ``value``; ``n_nonfinite`` the seeds whose value was
    NaN or ±inf (left out of ``value`` and ``std``, shown by :meth:`formatted`). With
    ``limit`` = "lower" ("upper") ``value`` is a one-sided limit: the true value is above
    (below) it and ``std`` is None.
    """

    name: str
    method: str
    value: float
    std: float | None = None
    n: int = 1
    unit: str = ""
    reference: Reference | None = None
    higher_is_better: bool | None = None
    limit: str | None = None
    n_nonfinite: int = 0

    def __post_init__(self) -> None:
        if self.limit not in (None, *LIMITS):
            raise ValueError(f"Metric.limit must be None, 'lower' or 'upper', got {self.limit!r}.")

    def formatted(self, digits: int = 3) -> str:
        """The value as text: ``mean ± std`` when a spread is known, ``> x`` / ``< x`` for a
        limit, and how many seeds were NaN/inf when some were."""
        if self.value is None or (isinstance(self.value, float) and math.isnan(self.value)):
            text = "n/a"
        else:
            text = _fmt(self.value, digits)
            if self.limit is not None:
                text = f"{'>' if self.limit == 'lower' else '<'} {text}"
            elif self.std is not None:
                text += f" ± {_fmt(self.std, digits)}"
        if self.n_nonfinite:
            text += f" ({self.n_nonfinite} seed{'s' * (self.n_nonfinite > 1)} NaN/inf)"
        return text


def _fmt(x: float, digits: int) -> str:
    if x == 0 or 1e-3 <= abs(x) < 1e5:
        return f"{x:.{digits}g}" if abs(x) >= 1 else f"{x:.{digits}f}".rstrip("0").rstrip(".")
    return f"{x:.{digits - 1}e}"


@dataclass
class Provenance:
    """Where a number came from: config, versions, git revision, seeds, data, cost.

    ``machine`` describes the computer that ran it (``cpu`` model, usable ``cores``,
    ``memory_gb`` in GiB); results written before it was recorded load with ``{}``.
    """

    config: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    git_revision: str = "unknown"
    seeds: list[int] = field(default_factory=list)
    failed_seeds: list[dict[str, Any]] = field(default_factory=list)  # {"seed", "error"}
    datasets: list[dict[str, Any]] = field(default_factory=list)
    wall_time_s: float = 0.0
    peak_memory_mb: float = 0.0
    started: str = ""
    command: str = ""
    machine: dict[str, Any] = field(default_factory=dict)


@dataclass
class Result:
    """The outcome of ``Study.run``: metrics table, figures (paths relative to the run
    directory), free-text notes and provenance."""

    study: str
    preset: str
    metrics: list[Metric] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    provenance: Provenance = field(default_factory=Provenance)
    workdir: str = ""

    def add(self, name: str, method: str, value: float, **kwargs: Any) -> Metric:
        """Append a metric row and return it."""
        metric = Metric(name=name, method=method, value=float(value), **kwargs)
        self.metrics.append(metric)
        return metric

    def add_rejection(self, name: str, method: str, rejection: Rejection,
                      **kwargs: Any) -> Metric:
        """Append a background rejection: 1/ε_B ± its binomial error, or a lower limit
        (``limit="lower"``, no std) when no background passed the cut."""
        if rejection.is_lower_limit:
            return self.add(name, method, rejection.rejection, limit="lower", **kwargs)
        return self.add(name, method, rejection.rejection, std=rejection.error, **kwargs)

    def add_seeds(self, name: str, method: str, values: list[float] | np.ndarray,
                  **kwargs: Any) -> Metric:
        """Append a metric measured once per seed, reported as mean ± std (ddof=1)."""
        arr = np.asarray(values, dtype=float)
        std = float(arr.std(ddof=1)) if arr.size > 1 else None
        return self.add(name, method, float(arr.mean()), std=std, n=int(arr.size), **kwargs)

    def get(self, name: str, method: str) -> Metric:
        """The metric row with this name and method (KeyError if absent)."""
        for m in self.metrics:
            if m.name == name and m.method == method:
                return m
        raise KeyError(f"{name!r} / {method!r}")

    def metric_names(self) -> list[str]:
        return list(dict.fromkeys(m.name for m in self.metrics))

    def table(self, title: str | None = None):  # -> rich.table.Table
        """A rich table: one row per (metric, method), with the reference beside ours."""
        from rich.table import Table

        table = Table(title=title or f"{self.study} ({self.preset})", show_lines=False)
        for col in ("metric", "method", "value", "seeds", "reference"):
            table.add_column(col, overflow="fold")
        for m in self.metrics:
            ref = ""
            if m.reference is not None:
                ref = f"{_fmt(m.reference.value, 3)} ({m.reference.label})"
            name = f"{m.name} [{m.unit}]" if m.unit else m.name
            table.add_row(name, m.method, m.formatted(), str(m.n), ref)
        return table

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Result:
        metrics = []
        for m in data.get("metrics", []):
            ref = m.get("reference")
            metrics.append(Metric(**{**m, "reference": Reference(**ref) if ref else None}))
        return cls(
            study=data["study"],
            preset=data["preset"],
            metrics=metrics,
            figures=list(data.get("figures", [])),
            notes=list(data.get("notes", [])),
            provenance=Provenance(**data.get("provenance", {})),
            workdir=data.get("workdir", ""),
        )

    def save(self, workdir: str | Path) -> Path:
        """Write ``results.json`` atomically into ``workdir`` and return its path."""
        from hepchain.core.io import atomic_write_text

        path = Path(workdir) / "results.json"
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2, default=_json_default))
        return path

    @classmethod
    def load(cls, path: str | Path) -> Result:
        """Read a ``results.json`` (or the one inside a run directory)."""
        from hepchain.core.errors import DataError

        p = Path(path)
        if p.is_dir():
            p = p / "results.json"
        if not p.is_file():
            raise DataError(f"No results.json at {p}; run the study first or pass its run directory.")
        try:
            return cls.from_dict(json.loads(p.read_text()))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DataError(f"{p} is not a valid hepchain results file ({exc}).") from exc


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
