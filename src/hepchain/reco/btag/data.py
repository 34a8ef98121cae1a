"""The study's jets: ttbar events from the collider provider (through the dataset cache), the jet
selection, an event-level train/validation/test split and the separate test sample."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from hepchain.core.cache import cached_dataset
from hepchain.core.dataset import Manifest, ShardedDataset
from hepchain.core.errors import DataError, UsageError
from hepchain.core.seeding import derive_seed
from hepchain.reco.btag.labels import jet_labels
from hepchain.reco.btag.schema import flatten_jets, require_fields


def load_events(cfg: dict[str, Any]) -> tuple[ak.Array, Manifest]:
    """The events of ``cfg`` = {process, n_events, seed, options, shard_size, workers} from
    the dataset cache (generated there on first use, regenerated if the cached manifest does
    not match); ``cfg['path']`` (if set) reads an existing dataset directory instead."""
    if cfg.get("path"):
        path = Path(cfg["path"])
        if not (path / "manifest.json").is_file():
            raise DataError(f"{path} is not a hepchain dataset (no manifest.json); pass the "
                            "--out directory of `hepchain generate ttbar`.")
    else:
        path = cached_dataset(cfg["process"], n_events=int(cfg["n_events"]),
                              seed=int(cfg["seed"]), options=cfg.get("options"),
                              shard_size=cfg.get("shard_size"),
                              workers=int(cfg.get("workers", 1))).path
    ds = ShardedDataset(path)
    return ds.read(), ds.manifest


def evaluation_sample(cfg: dict[str, Any]) -> dict[str, Any] | None:
    """The dataset settings of the separate test sample of the data settings ``cfg``: the
    same process, options and sharding, ``cfg['n_test_events']`` events and a seed of its own
    stream, ``derive_seed(seed, "test")`` (so its shard seeds differ from the training
    dataset's and the same data seed reuses it from the cache); None when the test jets are
    the split's test events (``n_test_events`` 0, or an existing dataset given by ``path``)."""
    n_test = int(cfg.get("n_test_events") or 0)
    if n_test < 0:
        raise UsageError(f"data.n_test_events must be >= 0, got {n_test}.")
    if n_test == 0 or cfg.get("path"):
        return None
    return {**cfg, "n_events": n_test, "seed": derive_seed(int(cfg["seed"]), "test") % 900_000_000}


def check_selection(selection: dict[str, Any]) -> None:
    """UsageError unless ``selection.hard_scatter_dr`` and ``selection.lepton_overlap_dr``
    are each null or a positive number (checked before any data is read)."""
    for key, typical in (("hard_scatter_dr", "0.3 as in ATLAS"),
                         ("lepton_overlap_dr", "0.2 as in ATLAS's overlap removal")):
        dr = selection.get(key)
        if dr is not None and (isinstance(dr, bool) or not isinstance(dr, int | float)
                               or dr <= 0):
            raise UsageError(f"selection.{key} must be null or a positive ΔR ({typical}), "
                             f"got {dr!r}.")


def select_jets(events: ak.Array, classes: list[str], pt_min: float, eta_max: float,
                hard_scatter_dr: float | None = None, lepton_overlap_dr: float | None = None
                ) -> tuple[ak.Array, np.ndarray, np.ndarray, dict[str, int]]:
    """Jets with pT > ``pt_min`` [GeV], |η| < ``eta_max``, a flavour among ``classes`` and,
    when ``hard_scatter_dr`` is set, within that ΔR of a hard-scatter truth jet (the jets'
    ``truth_hs_dr``; 0.3 as in ATLAS: the others are pile-up jets, which a JVT cut removes
    in ATLAS and which this substrate does not otherwise suppress); when
    ``lepton_overlap_dr`` is set, without the jets that :func:`lepton_overlap` removes.

    Returns ``(jets, label, event_index, removed)``, ``removed`` the jets that passed the
    kinematic and flavour cuts but not the hard-scatter match (``pileup``) or the overlap
    removal (``lepton_overlap``, counted among the hard-scatter jets).
    """
    jets = flatten_jets(events)
    require_fields(jets, (), ("pt", "eta", "flavour"))
    event = np.repeat(np.arange(len(events)), ak.to_numpy(ak.num(events.jets, axis=1)))
    label = jet_labels(ak.to_numpy(jets.flavour), classes)
    keep = (ak.to_numpy(jets.pt) > pt_min) & (np.abs(ak.to_numpy(jets.eta)) < eta_max) & (
        label >= 0)
    removed = {"pileup": 0, "lepton_overlap": 0}
    if hard_scatter_dr is not None:
        require_fields(jets, (), ("truth_hs_dr",))
        matched = ak.to_numpy(jets.truth_hs_dr) < float(hard_scatter_dr)
        removed["pileup"] = int((keep & ~matched).sum())
        keep &= matched
    if lepton_overlap_dr is not None:
        overlap = lepton_overlap(events, jets, event, float(lepton_overlap_dr))
        removed["lepton_overlap"] = int((keep & overlap).sum())
        keep &= ~overlap
    if not keep.any():
        raise DataError("No jet passes the selection; lower pt_min or generate more events.")
    return jets[keep], label[keep], event[keep], removed


MUON_JET_MAX_TRACKS = 3
"""A jet near an isolated muon is removed only with fewer tracks than this (pT > 0.5 GeV):
ATLAS's muon–jet overlap removal keeps the jet, and drops the muon, otherwise."""


def lepton_overlap(events: ak.Array, jets: ak.Array, event: np.ndarray, dr: float
                   ) -> np.ndarray:
    """True for the ``jets`` (flat, of events ``event``) that ATLAS's lepton–jet overlap
    removal drops: within ``dr`` (0.2) of an isolated electron of the event's ``leptons``,
    or of an isolated muon when the jet has fewer than :data:`MUON_JET_MAX_TRACKS` tracks
    with pT > 0.5 GeV (a muon with little activity around it clustered as a jet).

    >>> ev = ak.Array({"leptons": [[{"pt": 40.0, "eta": 0.0, "phi": 0.0, "pdgid": 11}]]})
    >>> jets = ak.Array([{"eta": 0.1, "phi": 0.0, "tracks": [{"pt": 38.0}]},
    ...                  {"eta": 1.0, "phi": 0.0, "tracks": [{"pt": 5.0}]}])
    >>> lepton_overlap(ev, jets, np.array([0, 0]), 0.2).tolist()
    [True, False]
    """
    if "leptons" not in events.fields:
        raise DataError("selection.lepton_overlap_dr needs the events' isolated leptons (field "
                        "`leptons`); regenerate them with `hepchain generate ttbar` or set it "
                        "to null.")
    lep = events.leptons[event]
    dphi = (lep.phi - jets.phi + np.pi) % (2 * np.pi) - np.pi
    near = (lep.eta - jets.eta) ** 2 + dphi**2 < dr**2
    flavour = abs(lep.pdgid)
    few_tracks = ak.sum(jets.tracks.pt > 0.5, axis=1) < MUON_JET_MAX_TRACKS
    drop = near & ((flavour == 11) | ((flavour == 13) & few_tracks))
    return ak.to_numpy(ak.any(drop, axis=1))


LEPTON_FLAGS: tuple[str, ...] = ("reco", "truth", "none")


def with_lepton_flag(jets: ak.Array, mode: str) -> ak.Array:
    """``jets`` whose track ``lepton_id`` (the lepton input of every tagger) is the detector's
    reconstructed flag (``reco``, unchanged), the true e/μ flavour ``truth_lepton`` (``truth``:
    perfect identification, an ablation that sizes what the reconstructed ID costs) or 0
    (``none``)."""
    if mode not in LEPTON_FLAGS:
        raise UsageError(f"lepton_flag must be one of {', '.join(LEPTON_FLAGS)}, got {mode!r}.")
    if mode == "reco":
        return jets
    if mode == "truth":
        require_fields(jets, ("truth_lepton",))
        flag = jets.tracks.truth_lepton
    else:
        flag = ak.zeros_like(jets.tracks.lepton_id)
    return ak.with_field(jets, ak.with_field(jets.tracks, flag, "lepton_id"), "tracks")


def split_events(event: np.ndarray, fractions: dict[str, float], seed: int
                 ) -> dict[str, np.ndarray]:
    """Boolean jet masks ``train``/``val``/``test``, all jets of an event in the same set."""
    total = sum(fractions.values())
    if set(fractions) != {"train", "val", "test"} or not np.isclose(total, 1.0):
        raise UsageError(f"split must give train, val and test fractions summing to 1, got "
                         f"{fractions}.")
    ids = np.unique(event)
    perm = np.random.default_rng(seed).permutation(ids)
    n_train = int(fractions["train"] * len(ids))
    n_val = int(fractions["val"] * len(ids))
    parts = {"train": perm[:n_train], "val": perm[n_train:n_train + n_val],
             "test": perm[n_train + n_val:]}
    return {k: np.isin(event, v) for k, v in parts.items()}
