"""The L1 jet-tagging set-up of the hls4ml benchmark on our samples: five classes (g, q, W, Z,
t) and 16 high-level features per jet.

Jets: the two leading anti-kt R = 0.8 jets of the ``jetclass`` substrate samples (one cached
sample per source: ``QCD`` for g and q, ``Wqq``, ``Zqq``, ``Tbqq``) inside the pT / |η| window,
labelled by the hard-process record (``partons``): a W, Z or t jet needs the W / Z / top
within ``match_dr`` of its axis; a QCD jet takes the flavour of the nearest outgoing parton of
the 2 → 2 scattering within ``match_dr`` (gluon → g, quark → q); unmatched jets are dropped.

Features (:data:`FEATURES`; GeV, rad). Seven are :func:`hepchain.reco.jettag.features.
high_level_features` (mass, soft-drop mass, τ21, τ32, C2, D2 with β = 1, multiplicity); the
rest follow the hls4ml LHC jet dataset's list (Coleman et al., arXiv:1709.08705; its
``zlogz``, ``c1_b1``, ``c1_b2``) where our record allows, and otherwise standard substructure
observables: ``zlogz`` = Σ z ln z, ``c1_b1`` = e2(β=1), ``c1_b2`` = e2(β=2), pT_D = √Σz²,
z_max (leading constituent's pT fraction), girth = Σ z ΔR, m/pT, m_SD/pT and τ1, with
z = pT_i / Σ pT. The public set's ECFs are on mMDT-groomed constituents (``_mmdt``); ours are
on the ungroomed jet, and it has M2, N2 and β = 2 variants we do not compute.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import awkward as ak
import numpy as np

from hepchain.core.cache import cached_dataset
from hepchain.core.dataset import ShardedDataset
from hepchain.core.errors import UsageError
from hepchain.core.result import Result
from hepchain.core.seeding import derive_seed
from hepchain.reco.jettag.data import split  # noqa: F401 - re-exported: the one split
from hepchain.reco.jettag.features import (
    HIGH_LEVEL,
    energy_correlations,
    high_level_features,
    padded_constituents,
)

CLASSES = ("g", "q", "W", "Z", "t")
#: class -> (jetclass sample, |PDG id| of the hard-process particle that labels the jet)
SOURCES = {"g": ("QCD", 21), "q": ("QCD", 0), "W": ("Wqq", 24), "Z": ("Zqq", 23),
           "t": ("Tbqq", 6)}
FEATURES = (*HIGH_LEVEL, "zlogz", "c1_b1", "c1_b2", "pT_D", "z_max", "girth", "m/pT",
            "m_SD/pT", "tau1")
LIGHT_QUARKS = (1, 2, 3, 4, 5)
N_LEADING = 2  # jets per event considered


@dataclass(frozen=True)
class JetSet:
    """Features (N, 16) per :data:`FEATURES`, class index per jet, the jets' ``fatjets``
    records (with ``constituents``), the class names."""

    features: np.ndarray
    labels: np.ndarray
    records: ak.Array
    classes: tuple[str, ...] = CLASSES


def load_jets(data: dict[str, Any], result: Result) -> JetSet:
    """The labelled jets of all five classes from the dataset cache (module docstring);
    manifests go into ``result``'s provenance."""
    sel = data["selection"]
    samples = list(dict.fromkeys(src for src, _ in SOURCES.values()))
    if sorted(data["n_events"]) != sorted(samples):
        raise UsageError(f"data.n_events needs an event count for each of {', '.join(samples)}; "
                         f"got {', '.join(data['n_events']) or 'none'}.")
    feats, labels, records = [], [], []
    for sample in samples:
        ds = cached_dataset("jetclass", n_events=int(data["n_events"][sample]),
                            seed=derive_seed(int(data["seed"]), sample),
                            options={**data["options"], "label": sample},
                            workers=int(data["workers"]))
        result.provenance.datasets.append(ds.manifest.summary())
        events = ShardedDataset(ds.path).read()
        jets, label = label_jets(events, sample, float(sel["pt_min"]), float(sel["pt_max"]),
                                 float(sel["eta_max"]), float(sel["match_dr"]))
        feats.append(jet_features(jets))
        labels.append(label)
        records.append(jets)
    y = np.concatenate(labels)
    counts = np.bincount(y, minlength=len(CLASSES))
    if counts.min() < 10:
        per_class = ", ".join(f"{c}: {n}" for c, n in zip(CLASSES, counts, strict=True))
        raise UsageError(f"Fewer than 10 jets in a class ({per_class}); raise data.n_events.")
    return JetSet(np.concatenate(feats).astype(np.float32), y, ak.concatenate(records))


def label_jets(events: ak.Array, sample: str, pt_min: float, pt_max: float, eta_max: float,
               match_dr: float) -> tuple[ak.Array, np.ndarray]:
    """The selected, truth-matched leading jets of one sample and their class indices."""
    fat = events["fatjets"][:, :N_LEADING]
    partons = events["partons"]
    pairs = ak.cartesian({"j": fat, "p": partons}, axis=1, nested=True)
    dr = np.hypot(pairs["j", "eta"] - pairs["p", "eta"],
                  (pairs["j", "phi"] - pairs["p", "phi"] + np.pi) % (2 * np.pi) - np.pi)
    pid = abs(pairs["p", "pid"])
    if sample == "QCD":
        outgoing = (pid == 21) | ((pid >= 1) & (pid <= 5))
        dr = ak.where(outgoing, dr, np.inf)
        nearest = ak.argmin(dr, axis=2, keepdims=True)
        matched = ak.fill_none(ak.firsts(dr[nearest], axis=2), np.inf) < match_dr
        is_gluon = ak.fill_none(ak.firsts(pid[nearest], axis=2), 0) == 21
        label = ak.where(is_gluon, CLASSES.index("g"), CLASSES.index("q"))
    else:
        cls = next(c for c, (s, _) in SOURCES.items() if s == sample)
        target = SOURCES[cls][1]
        matched = ak.any((pid == target) & (dr < match_dr), axis=2)
        label = ak.zeros_like(fat["pt"], dtype=np.int64) + CLASSES.index(cls)
    keep = matched & (fat["pt"] > pt_min) & (fat["pt"] < pt_max) & (abs(fat["eta"]) < eta_max)
    return ak.flatten(fat[keep]), ak.to_numpy(ak.flatten(label[keep])).astype(np.int64)


def jet_features(jets: ak.Array) -> np.ndarray:
    """(N, 16) features per :data:`FEATURES` (module docstring)."""
    base = high_level_features(jets)
    pt, deta, dphi, mask = padded_constituents(jets["constituents"])
    z = pt / np.clip(pt.sum(1, keepdims=True), 1e-12, None)
    e2, _ = energy_correlations(deta, dphi, pt, mask)
    # e2(β=2) = Σ_{i<j} z_i z_j R_ij² = Σ z_i r_i² − |Σ z_i r_i|² for Σz = 1, r = (η, φ)
    e2_b2 = (z * (deta**2 + dphi**2)).sum(1) - (z * deta).sum(1) ** 2 - (z * dphi).sum(1) ** 2
    zlogz = np.where(z > 0, z * np.log(np.where(z > 0, z, 1.0)), 0.0).sum(1)
    jet_pt = ak.to_numpy(jets["pt"])
    extra = [zlogz, e2, e2_b2, np.sqrt((z**2).sum(1)), z.max(1),
             (z * np.hypot(deta, dphi)).sum(1), base[:, 0] / jet_pt, base[:, 1] / jet_pt,
             ak.to_numpy(jets["tau1"])]
    return np.concatenate([base, np.stack(extra, 1)], 1)
