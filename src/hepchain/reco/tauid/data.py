"""Tau candidates for training: real τ from the cached Z→ττ and H→ττ samples, fakes from QCD
dijets in the same pT range, with standardised inputs and a train / validation / test split.

Every sample comes from :func:`hepchain.core.cache.cached_dataset` with the options of
:data:`~.candidates.SAMPLE_OPTIONS`, so the ``multistep`` study reuses the same events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import awkward as ak
import numpy as np

from hepchain.core.cache import cached_dataset
from hepchain.core.dataset import ShardedDataset
from hepchain.core.errors import DataError
from hepchain.core.result import Result
from hepchain.core.seeding import derive_seed
from hepchain.core.standardise import Standardiser
from hepchain.reco.tauid.candidates import SAMPLE_OPTIONS, Candidates, build_candidates
from hepchain.reco.tauid.features import high_level_features

TAU_PROCESSES = ("Z_tautau", "H_tautau")
FAKE_PROCESS = "qcd_dijet"


def load_events(process: str, data: dict[str, Any], result: Result | None = None) -> ak.Array:
    """The cached events of ``process`` (``data.n_events[process]`` events, ``data.seed``,
    the tau-candidate options plus ``data.options``); the manifest goes into ``result``."""
    ds = cached_dataset(process, n_events=int(data["n_events"][process]), seed=int(data["seed"]),
                        options={**SAMPLE_OPTIONS, **data["options"]},
                        workers=int(data["workers"]), progress=False)
    if result is not None:
        result.provenance.datasets.append(ds.manifest.summary())
    return ShardedDataset(ds.path).read()


def candidates_of(events: ak.Array, selection: dict[str, Any]) -> Candidates:
    """The tau candidates of ``events`` with ``selection`` (pt_min GeV, eta_max, max_objects)."""
    return build_candidates(events, float(selection["pt_min"]), float(selection["eta_max"]),
                            int(selection["max_objects"]))


def load_candidates(data: dict[str, Any], selection: dict[str, Any],
                    result: Result) -> Candidates:
    """Matched hadronic τ of the τ samples and every candidate of the QCD sample (fakes),
    with pT below ``selection.pt_max``. DataError if either class is empty."""
    taus = [c.take(c.is_tau) for c in (candidates_of(load_events(p, data, result), selection)
                                       for p in TAU_PROCESSES)]
    fakes = candidates_of(load_events(FAKE_PROCESS, data, result), selection)
    fakes = fakes.take(~fakes.is_tau)
    cands = Candidates.concat([*taus, fakes])
    cands = cands.take(cands.pt < float(selection["pt_max"]))
    require_both_classes(cands)
    return cands


def require_both_classes(cands: Candidates) -> None:
    """DataError when no real τ or no fake candidate passed the selection."""
    for label, n in (("real tau", int(cands.is_tau.sum())), ("fake", int((~cands.is_tau).sum()))):
        if n == 0:
            raise DataError(f"No {label} candidates passed the selection; generate more events "
                            "(data.n_events) or loosen the selection.")


@dataclass(frozen=True)
class Inputs:
    """Model inputs of all candidates: standardised objects (N, T, F), mask (N, T),
    standardised high-level variables (N, H), and the training weight of each candidate."""

    objects: np.ndarray
    mask: np.ndarray
    high_level: np.ndarray
    weight: np.ndarray


def split(n: int, fractions: dict[str, float], seed: int) -> tuple[np.ndarray, ...]:
    """Train / validation / test indices; the run seed chooses the split."""
    perm = np.random.default_rng(derive_seed(seed, "split")).permutation(n)
    a, b = int(fractions["train"] * n), int((fractions["train"] + fractions["val"]) * n)
    return perm[:a], perm[a:b], perm[b:]


def pt_weights(pt: np.ndarray, is_tau: np.ndarray, train: np.ndarray,
               bins: np.ndarray) -> np.ndarray:
    """Per-candidate training weights: 1 for τ, and for fakes the ratio of the training τ to
    training fake pT histograms (``bins`` in GeV), so that the classifier cannot separate the
    classes by their pT spectra alone; normalised to mean 1 over the training fakes."""
    idx = np.clip(np.digitize(pt, bins) - 1, 0, len(bins) - 2)
    h_tau = np.bincount(idx[train][is_tau[train]], minlength=len(bins) - 1).astype(float)
    h_fake = np.bincount(idx[train][~is_tau[train]], minlength=len(bins) - 1).astype(float)
    ratio = np.divide(h_tau / h_tau.sum(), h_fake / h_fake.sum(), out=np.zeros_like(h_tau),
                      where=h_fake > 0)
    w = np.where(is_tau, 1.0, ratio[idx])
    fakes = train[~is_tau[train]]
    return np.where(is_tau, 1.0, w / max(w[fakes].mean(), 1e-12)).astype(np.float32)


def model_inputs(c: Candidates, train: np.ndarray, pt_bins: list[float]) -> Inputs:
    """Standardise objects and high-level variables on the training candidates."""
    high = high_level_features(c)
    obj_scale = Standardiser.fit(c.objects[train][c.mask[train]])
    objects = np.where(c.mask[..., None], obj_scale.transform(c.objects), 0.0)
    high = Standardiser.fit(high[train]).transform(high)
    weight = pt_weights(c.pt, c.is_tau, train, np.asarray(pt_bins, float))
    return Inputs(objects.astype(np.float32), c.mask, high.astype(np.float32), weight)
