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


def generate(config: dict[str, Any], specs: list[dict[str, Any]], what: str) -> None:
    """Generate the datasets of ``specs`` not yet in the cache, one process each:
    ``data.workers`` local processes, or the tasks of the Dask cluster at ``data.scheduler``
    (its workers write to this cache's absolute path, so they must share its filesystem);
    ``what`` names the progress bar ("{} datasets", filled with their number)."""
    from hepchain.core.executors import make_executor
    from hepchain.core.progress import track

    d = config["data"]
    scheduler = d.get("scheduler")
    root = str(data_root().absolute()) if scheduler else None  # workers start elsewhere
    pending = [(s, d["seed"], d.get("shard_size"), root) for s in specs
               if find_cached(s["process"], n_events=s["events"], seed=d["seed"],
                              options=s["options"], shard_size=d.get("shard_size")) is None]
    if pending:
        with make_executor(min(int(d.get("workers", 1)), len(pending)), scheduler) as ex:
            for _ in track(ex.map(_generate_point, pending), what.format(len(pending)),
                           total=len(pending)):
                pass


def load_points(config: dict[str, Any], space: ParameterSpace, points: list[Point],
                events: int, min_selected: int = MIN_SELECTED
                ) -> tuple[dict[Point, np.ndarray], list[float], list]:
    """Feature matrices per point [GeV], generation seconds per point, manifests; every
    point must keep ``min_selected`` events after the selection.

    Points not yet in the cache are generated first, one process per point
    (:func:`generate`); each point's recorded cost is its own generation wall time.
    """
    d = config["data"]
    specs = [point_spec(config, space, p, events) for p in points]
    generate(config, specs, "generating {} mass points")
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


def load_continuous(config: dict[str, Any], space: ParameterSpace, events: int,
                    margin: float = 0.0, flat: bool = False
                    ) -> tuple[np.ndarray, np.ndarray, float, dict[str, Any]]:
    """One dataset of ``events`` events with every scanned mass spread over the box, widened
    by ``margin`` of its side at each end (:meth:`ParameterSpace.spread_options`) and, with
    ``flat``, drawn flat over it (:mod:`hepchain.collider.flatmass`; else as the parton
    luminosities fall), generated in one process like a grid point: the selected events'
    features (masses in TeV, :func:`features.compute`), each one's own generated masses [GeV]
    (its hard-process record; one mass point per event), the generation seconds and the
    manifest."""
    from hepchain.analysis.dijets import from_events, has_dijet, lhco_mask
    from hepchain.collider.processes import WPRIME_XY_IDS
    from hepchain.core.dataset import ShardedDataset

    spec = {"process": "wprime_xy", "events": events,
            "options": {"mwprime": config["data"]["mwprime"], **space.spread_options(margin),
                        **({"flat": 1} if flat else {})}}
    generate(config, [spec], "generating {} dataset with the masses spread over a box")
    d = config["data"]
    ds = cached_spec(spec, d["seed"], 1, d.get("shard_size"))
    record = ShardedDataset(ds.path).read(columns=["fatjets", "partons"])
    record = record[has_dijet(record)]
    jets = from_events(record, 1)
    keep = lhco_mask(jets, **config["selection"])
    if keep.sum() < MIN_SELECTED:
        raise DataError(f"Only {int(keep.sum())} of {events} events with masses spread over the "
                        f"box pass the selection (at least {MIN_SELECTED} needed); generate "
                        "more events.")
    partons = record["partons"][keep]
    theta = np.stack([_first_mass(partons, WPRIME_XY_IDS[n]) for n in space.names], axis=1)
    return features.compute(jets[keep], config["features"]), theta, ds.generation_s, \
        ds.manifest.summary()


def _first_mass(partons, pid: int) -> np.ndarray:
    """The generated mass [GeV] of each event's first hard-process particle ``pid`` (either
    charge)."""
    import awkward as ak

    mass = ak.firsts(partons["mass"][abs(partons["pid"]) == pid])
    if ak.any(ak.is_none(mass)):
        raise DataError(f"An event has no particle {pid} in its hard-process record; the "
                        "dataset is not a wprime_xy sample.")
    return ak.to_numpy(mass).astype(float)
