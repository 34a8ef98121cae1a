"""b-tags of the decay-aware events: the b-tagging study's GN1 at its working point, or a
parameterised tagger as fallback (``btag.tagger`` in ``configs/decayaware.yaml``).

- **GN1** (:func:`gn1_working_point`): btag's ``GN1`` variant trained by the btag study's own
  code (:mod:`hepchain.reco.btag.gn1`) on its preset's tt̄ jets, or loaded from a file written
  by ``hepchain btag run`` (``gn1.pt``); the D_b cut keeping the preset's first efficiency
  (70 %) of btag's *validation* b-jets is the tag; every jet of the decay-aware events (with
  its tracks, the btag schema) gets D_b and the bit.
- **parameterised** (:func:`tag_jets`): a jet is tagged with a fixed probability per truth
  (ghost) flavour, as a Delphes ``BTagging`` module does. Defaults: our GN1's efficiencies at
  its 70 % b-jet working point on our tt̄ jets (``docs/btag.md``, paper preset, 3 seeds):
  b 0.70, c 1 / 11.7 = 0.085, light 1 / 1362 = 0.00073; τ jets take the c value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
from torch import nn

from hepchain.core.errors import DataError, UsageError
from hepchain.core.io import sha256_file
from hepchain.core.result import Result
from hepchain.core.threads import set_torch_threads
from hepchain.reco.btag.data import with_lepton_flag
from hepchain.reco.btag.evaluate import working_point
from hepchain.reco.btag.export import load_tagger
from hepchain.reco.btag.gn1 import btag_config, btag_jets, db_scores, fit_gn1
from hepchain.reco.btag.preprocessing import Preprocessor
from hepchain.reco.btag.schema import JET_INPUTS, TRACK_INPUTS
from hepchain.reco.btag.table import build_table

#: ghost flavour code of the collider jets (5 b, 4 c, 15 τ, 0 light) -> efficiency key
FLAVOURS = {5: "b", 4: "c", 15: "tau", 0: "light"}
TAGGERS = ("gn1", "parameterised")
#: jet columns GN1 reads from a collider dataset (the btag schema)
GN1_COLUMNS = ["jets.pt", "jets.eta", "jets.phi", "jets.tracks.*"]


def tag_jets(flavour: ak.Array, efficiency: dict[str, float],
             rng: np.random.Generator) -> ak.Array:
    """0/1 b-tag per jet (same jagged layout as ``flavour``)."""
    missing = set(FLAVOURS.values()) - set(efficiency)
    if missing:
        raise UsageError(f"btag.efficiency needs a value for {', '.join(sorted(missing))}.")
    if not all(0.0 <= float(v) <= 1.0 for v in efficiency.values()):
        raise UsageError("btag.efficiency values must be probabilities in [0, 1].")
    flat = ak.to_numpy(ak.flatten(flavour))
    eff = np.zeros(flat.size)
    for code, key in FLAVOURS.items():
        eff[flat == code] = float(efficiency[key])
    tagged = (rng.random(flat.size) < eff).astype(np.int64)
    return ak.unflatten(tagged, ak.num(flavour))


@dataclass
class GN1WorkingPoint:
    """A trained GN1 (eval mode) with its preprocessing, class names and btag's charm
    fraction ``fc``; the D_b ``threshold`` keeps ``efficiency`` of btag's validation b-jets.
    ``max_tracks`` and ``lepton_flag`` are btag's table settings; ``source`` says where the
    model came from."""

    model: nn.Module
    preprocessing: Preprocessor
    classes: list[str]
    fc: float
    threshold: float
    efficiency: float
    max_tracks: int
    lepton_flag: str
    source: str

    def scores(self, jets: ak.Array) -> ak.Array:
        """GN1 D_b of every jet of ``jets`` (per event, with tracks: :data:`GN1_COLUMNS`)."""
        flat = with_lepton_flag(ak.flatten(jets), self.lepton_flag)
        table = build_table(flat, self.max_tracks, truth=False)
        d_b = db_scores(self.model, self.preprocessing, table, self.classes, self.fc)
        return ak.unflatten(d_b, ak.num(jets))

    def tag_of(self, scores: ak.Array) -> ak.Array:
        """0/1 b-tag of jets with D_b ``scores``: D_b ≥ :attr:`threshold`."""
        return ak.values_astype(scores >= self.threshold, np.int64)


def gn1_working_point(cfg: dict[str, Any], result: Result) -> GN1WorkingPoint:
    """btag's GN1 for ``cfg`` = the decay-aware ``btag`` settings: trained on the btag preset
    ``cfg["preset"]`` (overrides ``cfg["set"]``, seed ``cfg["seed"]``) or loaded from
    ``cfg["model"]`` (a ``gn1.pt`` of ``hepchain btag run`` with that preset), with the cut at
    the preset's first working point fixed on its validation jets."""
    btag = btag_config(str(cfg["preset"]), cfg.get("set"))
    set_torch_threads(int(btag["train"].get("threads") or 1))
    jets = btag_jets(btag, result, test=False)  # the cut is set on the validation jets
    if cfg.get("model"):
        model, classes, prep = load_gn1(cfg["model"])
        source = f"loaded from {cfg['model']}, sha256 {sha256_file(cfg['model'])[:16]}"
    else:
        fit = fit_gn1(btag, jets, int(cfg["seed"]))
        model, classes, prep = fit.model, jets.classes, fit.preprocessing
        source = f"trained on btag's {cfg['preset']} preset, seed {cfg['seed']}"
    fc, eff = float(btag["fc"]), float(btag["efficiencies"][0])
    val = db_scores(model, prep, jets.tables["val"], classes, fc)
    labels = jets.labels["val"]
    threshold = working_point(labels, val, jets.classes.index("b"),
                              jets.classes.index("light"), eff)
    return GN1WorkingPoint(model, prep, classes, fc, threshold, eff, int(btag["max_tracks"]),
                           str(btag["lepton_flag"]), source)


def load_gn1(path: str | Path) -> tuple[nn.Module, list[str], Preprocessor]:
    """A GN1 written by ``hepchain btag run`` (``gn1.pt``); DataError when it does not fit
    today's btag inputs (track or jet features) or lacks the b, c and light classes."""
    try:
        model, classes, prep = load_tagger(path)
    except (RuntimeError, KeyError, TypeError) as exc:
        raise DataError(f"{path} is not a GN1 tagger file of `hepchain btag run` ({exc}).") from exc
    for kind, have, want in (("track", prep.track_features, TRACK_INPUTS),
                             ("jet", prep.jet_features, JET_INPUTS)):
        if list(have) != list(want):
            raise DataError(
                f"The GN1 in {path} was trained on {len(have)} {kind} features ({have}); the "
                f"btag table has {len(want)} ({list(want)}). Retrain it with `hepchain btag "
                "run` and pass its gn1.pt, or set btag.model: null to train one here.")
    if not {"b", "c", "light"} <= set(classes):
        raise DataError(f"The GN1 in {path} has classes {classes}; D_b needs b, c and light.")
    return model, classes, prep


def tag_efficiencies(flavour: ak.Array, tags: ak.Array) -> dict[str, tuple[float, float, int]]:
    """Fraction of tagged jets per ghost flavour (b, c, τ, light): ``(efficiency, binomial
    error, jets)``; flavours without jets are left out."""
    flav, tag = ak.to_numpy(ak.flatten(flavour)), ak.to_numpy(ak.flatten(tags))
    out = {}
    for code, key in FLAVOURS.items():
        sel = flav == code
        n = int(sel.sum())
        if n:
            eff = float(tag[sel].mean())
            out[key] = (eff, math.sqrt(eff * (1.0 - eff) / n), n)
    return out
