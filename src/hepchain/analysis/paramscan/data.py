"""W' → X Y samples at parameter points, through the dataset cache: one dataset per point,
generated one process per point, then selected and turned into the flow's features."""

from __future__ import annotations

from typing import Any

import numpy as np

from hepchain.analysis import features
from hepchain.analysis.paramscan.parameters import ParameterSpace, Point
from hepchain.analysis.samples import cached_spec, make_sample
from hepchain.core.cache import data_root, find_cached
from hepchain.core.errors import DataError

#: selected events a held-out, validation or MC-grid point needs (peak fits and templates); a
#: point of a flow's grid needs one (the flow pools every point's events)
MIN_SELECTED = 20


def point_spec(config: dict[str, Any], space: ParameterSpace, point: Point,
               events: int) -> dict[str, Any]:
    """The ``wprime_xy`` request of ``events`` events at ``point`` (``data.mwprime`` [GeV]
    unless it is scanned)."""
    return {"process": "wprime_xy", "events": events,
            "options": {"mwprime": config["data"]["mwprime"], **space.options(point)}}


def _generate_point(job: tuple[dict[str, Any], int, int | None, str | None]) -> None:
    spec, seed, shard_size, root = job
    cached_spec(spec, seed, 1, shard_size, root)


def load_points(config: dict[str, Any], space: ParameterSpace, points: list[Point],
                events: int, min_selected: int = MIN_SELECTED
                ) -> tuple[dict[Point, np.ndarray], list[float], list]:
    """Feature matrices per point [GeV], generation seconds per point, manifests; every
    point must keep ``min_selected`` events after the selection.

    Points not yet in the cache are generated first, one process per point: ``data.workers``
    local processes, or the tasks of the Dask cluster at ``data.scheduler`` (its workers write
    to this cache's absolute path, so they must share its filesystem); each point's recorded
    cost is its own generation wall time.
    """
    from hepchain.core.executors import make_executor
    from hepchain.core.progress import track

    d = config["data"]
    scheduler = d.get("scheduler")
    root = str(data_root().absolute()) if scheduler else None  # workers start elsewhere
    specs = [point_spec(config, space, p, events) for p in points]
    pending = [(s, d["seed"], d.get("shard_size"), root) for s in specs
               if find_cached(s["process"], n_events=s["events"], seed=d["seed"],
                              options=s["options"], shard_size=d.get("shard_size")) is None]
    if pending:
        with make_executor(min(int(d.get("workers", 1)), len(pending)), scheduler) as ex:
            for _ in track(ex.map(_generate_point, pending), f"generating {len(pending)} "
                           "mass points", total=len(pending)):
                pass
    out, seconds, manifests = {}, [], []
    for point, spec in zip(points, specs, strict=True):
        sample = make_sample(spec, d["seed"], 1, config["selection"], 1, d.get("shard_size"))
        if len(sample.jets) < min_selected:
            raise DataError(f"Only {len(sample.jets)} of {events} events at {space.tag(point)} "
                            f"pass the selection (at least {min_selected} needed); generate "
                            "more events per point.")
        out[point] = features.compute(sample.jets, config["features"])
        seconds.append(sample.generation_s)
        manifests.append(sample.manifest)
    return out, seconds, manifests
