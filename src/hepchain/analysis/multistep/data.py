"""Events for the multi-step study: H→ττ (signal) and Z→ττ (background) from the same cached
samples as the ``tauid`` study, each with its two leading tau candidates (inputs and truth),
missing transverse momentum and R = 0.4 jets.

Event kinematics (:data:`KINEMATICS`, GeV, rad): the two candidates' log pT and η, their Δφ and
Δη, log of their visible mass, log MET and its Δφ to each candidate, the number of other jets
(pT > 20 GeV, ΔR > 0.4 from both candidates) and the leading one's log pT and η (0 if none).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import awkward as ak
import numpy as np

from hepchain.core.errors import DataError
from hepchain.core.result import Result
from hepchain.core.seeding import derive_seed
from hepchain.core.standardise import Standardiser
from hepchain.reco.tauid.candidates import Candidates
from hepchain.reco.tauid.data import candidates_of, load_events
from hepchain.reco.tauid.features import high_level_features

SIGNAL, BACKGROUND = "H_tautau", "Z_tautau"
KINEMATICS = ("log_pt1", "eta1", "log_pt2", "eta2", "dphi12", "deta12", "log_m_vis", "log_met",
              "dphi_met1", "dphi_met2", "n_jets", "log_pt_jet1", "eta_jet1")


@dataclass(frozen=True)
class Events:
    """Selected events (N): ``taus`` the 2N leading candidates (event i owns rows 2i, 2i+1),
    ``kinematics`` (N, K) of :data:`KINEMATICS`, ``is_signal`` (N,)."""

    taus: Candidates
    kinematics: np.ndarray
    is_signal: np.ndarray

    def __len__(self) -> int:
        return len(self.is_signal)


def _dphi(a: np.ndarray | ak.Array, b: np.ndarray) -> np.ndarray | ak.Array:
    """φ_a − φ_b wrapped into [−π, π) [rad]."""
    return (a - b + np.pi) % (2 * np.pi) - np.pi


def leading_pair(cands: Candidates) -> tuple[np.ndarray, Candidates]:
    """Events with at least two candidates and the two leading ones of each (by pT)."""
    order = np.lexsort((-cands.pt, cands.event))
    c = cands.take(order)
    first = np.r_[True, c.event[1:] != c.event[:-1]]
    rank = np.arange(len(c)) - np.maximum.accumulate(np.where(first, np.arange(len(c)), 0))
    counts = np.bincount(c.event)
    keep = (rank < 2) & (counts[c.event] >= 2)
    pair = c.take(keep)
    return pair.event[::2], pair


def kinematics(events: ak.Array, event: np.ndarray, pair: Candidates) -> np.ndarray:
    """(N, K) :data:`KINEMATICS` of the selected events."""
    t1, t2 = pair.take(slice(0, None, 2)), pair.take(slice(1, None, 2))
    p = pair.vectors.sum(axis=1)  # candidate four-momenta from their objects (GeV)
    p12 = p[::2] + p[1::2]
    m_vis = np.sqrt(np.maximum(p12[:, 3] ** 2 - (p12[:, :3] ** 2).sum(1), 1e-6))
    met = ak.to_numpy(events.met)[event]
    met_phi = ak.to_numpy(events.met_phi)[event]
    jets = events.jets[event]
    far = ((np.hypot(jets.eta - t1.eta, _dphi(jets.phi, t1.phi)) > 0.4)
           & (np.hypot(jets.eta - t2.eta, _dphi(jets.phi, t2.phi)) > 0.4))
    others = jets[far]
    n_jets = ak.to_numpy(ak.num(others)).astype(float)
    lead_pt = ak.to_numpy(ak.fill_none(ak.firsts(others.pt), 1.0))
    lead_eta = ak.to_numpy(ak.fill_none(ak.firsts(others.eta), 0.0))
    return np.stack([np.log(t1.pt), t1.eta, np.log(t2.pt), t2.eta,
                     np.abs(_dphi(t1.phi, t2.phi)), t1.eta - t2.eta, np.log(m_vis),
                     np.log(np.maximum(met, 1e-3)), np.abs(_dphi(met_phi, t1.phi)),
                     np.abs(_dphi(met_phi, t2.phi)), n_jets, np.log(lead_pt), lead_eta],
                    axis=1).astype(np.float32)


def load_events_pair(data: dict[str, Any], selection: dict[str, Any], result: Result) -> Events:
    """Signal and background events with two candidates each; DataError if either is empty."""
    parts = []
    for label, process in ((1, SIGNAL), (0, BACKGROUND)):
        events = load_events(process, data, result)
        event, pair = leading_pair(candidates_of(events, selection))
        if event.size == 0:
            raise DataError(f"No {process} event has two tau candidates; generate more events "
                            "(data.n_events) or loosen the selection.")
        parts.append(Events(pair, kinematics(events, event, pair),
                            np.full(event.size, label, bool)))
    return Events(Candidates.concat([p.taus for p in parts]),
                  np.concatenate([p.kinematics for p in parts]),
                  np.concatenate([p.is_signal for p in parts]))


def split(n: int, fractions: dict[str, float], seed: int) -> tuple[np.ndarray, ...]:
    """Train / validation / test event indices; the run seed chooses the split."""
    perm = np.random.default_rng(derive_seed(seed, "split")).permutation(n)
    a, b = int(fractions["train"] * n), int((fractions["train"] + fractions["val"]) * n)
    return perm[:a], perm[a:b], perm[b:]


@dataclass(frozen=True)
class Inputs:
    """Standardised per-event inputs: objects (N, 2, T, F), mask (N, 2, T), hand-built tau
    variables (N, 2, H), kinematics (N, K); truth is_tau (N, 2) and is_signal (N,)."""

    objects: np.ndarray
    mask: np.ndarray
    high_level: np.ndarray
    kinematics: np.ndarray
    is_tau: np.ndarray
    is_signal: np.ndarray


def model_inputs(ev: Events, train: np.ndarray) -> Inputs:
    """Inputs standardised on the training events."""
    n, t = len(ev), ev.taus
    rows = np.stack([2 * train, 2 * train + 1], axis=1).ravel()
    obj_scale = Standardiser.fit(t.objects[rows][t.mask[rows]])
    objects = np.where(t.mask[..., None], obj_scale.transform(t.objects), 0.0)
    high = high_level_features(t)
    high = Standardiser.fit(high[rows]).transform(high)
    kin = Standardiser.fit(ev.kinematics[train]).transform(ev.kinematics)
    shape = (n, 2)
    return Inputs(objects.reshape(*shape, *objects.shape[1:]).astype(np.float32),
                  t.mask.reshape(*shape, -1), high.reshape(*shape, -1).astype(np.float32),
                  kin.astype(np.float32), t.is_tau.reshape(shape), ev.is_signal)
