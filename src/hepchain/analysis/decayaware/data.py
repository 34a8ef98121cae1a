"""Samples, b-tagging, selection and splits.

Signal ``ttH_bb`` and background semileptonic tt̄ (natural tt̄ + bb̄ content, optionally a
``ttbb``-enriched sample) through the one dataset cache; jets b-tagged by the b-tagging
study's GN1 at its 70 % working point or by the parameterised tagger (``btag.tagger``, see
:mod:`.btagging`; with GN1 both taggers' efficiencies and selections are reported);
selection like a ttH(bb̄) analysis: exactly one lepton, ≥ ``min_jets`` jets, ≥ ``min_btags``
b-tags. Each sample's expected yield at the luminosity uses its cross
section times the fraction of its generated events that pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import awkward as ak
import numpy as np

from hepchain.analysis.decayaware.btagging import (
    GN1_COLUMNS,
    TAGGERS,
    GN1WorkingPoint,
    gn1_working_point,
    tag_efficiencies,
    tag_jets,
)
from hepchain.analysis.decayaware.objects import EventObjects, build_objects
from hepchain.core.cache import cached_dataset
from hepchain.core.dataset import ShardedDataset
from hepchain.core.errors import DataError, UsageError
from hepchain.core.result import Result
from hepchain.core.seeding import derive_seed

#: result row labels of the two taggers
TAGGER_LABELS = {"gn1": "GN1 D_b (70 % WP)", "parameterised": "parameterised"}
COLUMNS = ["jets.pt", "jets.eta", "jets.phi", "jets.mass", "jets.flavour", "leptons.*",
           "met", "met_phi", "partons.*"]


@dataclass
class Sample:
    """Selected events of all samples: objects, labels (1 ttH), sample index per event,
    expected selected yield of each sample at the luminosity [events] (σ × L × selection
    efficiency), the b-tags per jet, the tagger's score per jet (GN1's D_b; None for the
    parameterised tagger), each sample's selection efficiency and a line on the tagger
    used."""

    objects: EventObjects
    labels: np.ndarray
    sample: np.ndarray
    yields: np.ndarray
    events: ak.Array
    btag: ak.Array
    score: ak.Array | None
    efficiencies: dict[str, float]
    tagger: str


def load_samples(config: dict[str, Any], result: Result) -> Sample:
    """Generate or reuse every sample of ``config["data"]``, tag, select, build objects."""
    sel, parts, btag_cfg = config["selection"], [], config["btag"]
    lumi = float(config["data"]["luminosity_fb"])
    tagger = str(btag_cfg["tagger"])
    if tagger not in TAGGERS:
        raise UsageError(f"btag.tagger must be one of {', '.join(TAGGERS)}, got {tagger!r}.")
    gn1 = gn1_working_point(btag_cfg, result) if tagger == "gn1" else None
    for name, spec in config["data"]["samples"].items():
        ds = cached_dataset(spec["process"], n_events=int(spec["n_events"]),
                            seed=int(spec["seed"]), options=spec.get("options") or {})
        result.provenance.datasets.append(ds.manifest.summary())
        events = ShardedDataset(ds.path).read(COLUMNS)
        rng = np.random.default_rng(derive_seed(int(spec["seed"]), "btag", name))
        tags = {"parameterised": tag_jets(events.jets.flavour, btag_cfg["efficiency"], rng)}
        score = None
        if gn1 is not None:
            score = ak.concatenate([gn1.scores(shard.jets) for shard in
                                    ShardedDataset(ds.path).iter_shards(GN1_COLUMNS)])
            tags["gn1"] = gn1.tag_of(score)
        add_tagger_rows(result, name, events, tags, sel)
        btag = tags[tagger]
        keep = select(events, btag, sel)
        eff = float(keep.mean())
        n_sel = int(keep.sum())
        if n_sel < 10:
            raise DataError(f"Sample {name!r} keeps {n_sel} of {len(events)} events after the "
                            "selection; raise its n_events or loosen the selection.")
        expected = float(spec["cross_section_fb"]) * lumi * eff
        parts.append((name, int(spec["signal"]), events[keep], btag[keep], expected, eff,
                      None if score is None else score[keep]))
    events = ak.concatenate([p[2] for p in parts])
    btag = ak.concatenate([p[3] for p in parts])
    score = None if gn1 is None else ak.concatenate([p[6] for p in parts])
    labels = np.concatenate([np.full(len(p[2]), p[1]) for p in parts])
    sample = np.concatenate([np.full(len(p[2]), k) for k, p in enumerate(parts)])
    objects = build_objects(events, btag, int(config["objects"]["max_jets"]),
                            int(sel["min_jets"]), score)
    return Sample(objects, labels, sample, np.array([p[4] for p in parts]), events, btag,
                  score, {p[0]: p[5] for p in parts}, tagger_note(gn1, btag_cfg["efficiency"]))


def add_tagger_rows(result: Result, name: str, events: ak.Array, tags: dict[str, ak.Array],
                    sel: dict[str, Any]) -> None:
    """Each tagger's tag efficiency per ghost flavour over all jets of sample ``name`` and
    its selection efficiency, with binomial errors."""
    for tagger, btag in tags.items():
        label = TAGGER_LABELS[tagger]
        for flav, (eff, err, n) in tag_efficiencies(events.jets.flavour, btag).items():
            result.add(f"b-tag efficiency, {flav}-jets ({name})", label, eff, std=err, n=n)
        keep = select(events, btag, sel)
        eff = float(keep.mean())
        result.add(f"selection efficiency ({name})", label, eff,
                   std=float(np.sqrt(eff * (1 - eff) / keep.size)), n=int(keep.size))


def tagger_note(gn1: GN1WorkingPoint | None, efficiency: dict[str, float]) -> str:
    """One line saying which b-tags the selection and the objects use."""
    if gn1 is None:
        return ("b-tags: parameterised tagger (tag probability per ghost flavour "
                f"{', '.join(f'{k} {v:g}' for k, v in efficiency.items())}).")
    return (f"b-tags: GN1 D_b ≥ {gn1.threshold:.3f} (btag's {gn1.efficiency:.0%} working point "
            f"on its validation jets; GN1 {gn1.source}); the parameterised tagger's "
            "efficiencies and selection are reported beside it.")


def select(events: ak.Array, btag: ak.Array, sel: dict[str, Any]) -> np.ndarray:
    """Exactly one lepton, ≥ ``min_jets`` jets and ≥ ``min_btags`` b-tagged jets."""
    n_lep = ak.to_numpy(ak.num(events.leptons))
    n_jet = ak.to_numpy(ak.num(events.jets))
    n_tag = ak.to_numpy(ak.sum(btag, axis=1))
    return (n_lep == 1) & (n_jet >= int(sel["min_jets"])) & (n_tag >= int(sel["min_btags"]))


def split(labels: np.ndarray, fractions: dict[str, float], seed: int
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train / validation / test indices, stratified by label; the run seed chooses them."""
    rng = np.random.default_rng(derive_seed(seed, "split"))
    out: list[list[np.ndarray]] = [[], [], []]
    for cls in (0, 1):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        a = int(fractions["train"] * idx.size)
        b = int((fractions["train"] + fractions["val"]) * idx.size)
        for k, part in enumerate((idx[:a], idx[a:b], idx[b:])):
            out[k].append(part)
    return tuple(rng.permutation(np.concatenate(o)) for o in out)


def subsample(train: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """The first ``fraction`` of the training indices in a seeded order (nested: 10 % ⊂ 30 %)."""
    order = np.random.default_rng(derive_seed(seed, "learning-curve")).permutation(train)
    return order[:max(round(fraction * train.size), 2)]
