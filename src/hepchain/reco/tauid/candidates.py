"""Tau candidates: R = 0.4 particle-flow jets seeded like ATLAS, with their tracks and neutral
particle-flow objects as variable-length inputs, and their truth.

A candidate is an anti-kt R = 0.4 jet of particle-flow objects (the substrate's ``fatjets``
generated with ``fatjet_R=0.4, fatjet_constituents=1``) with pT > ``pt_min`` and
|η| < ``eta_max`` that has 1 or 3 *core tracks*: charged objects with pT > 1 GeV within
ΔR < 0.2 of the jet axis and the ATLAS tau-track impact-parameter cuts |d0| < 1 mm,
|z0 sin θ| < 1.5 mm. Its truth comes from the matching (ΔR < 0.1) R = 0.4 jet's decay tree
(option ``jet_trees=1``, :mod:`.truth`). Units: GeV, mm, rad.
"""

from __future__ import annotations

from dataclasses import dataclass

import awkward as ak
import numpy as np

from hepchain.core.errors import DataError
from hepchain.reco.tauid.truth import OTHER_MODE, tau_of_tree

CORE_DR, CORE_PT_MIN, CORE_D0_MAX, CORE_Z0ST_MAX = 0.2, 1.0, 1.0, 1.5
MATCH_DR = 0.1
PION_MASS = 0.13957
#: per-object input features (the model inputs, before standardisation)
OBJECT_FEATURES = ("log_pt_fraction", "dr", "deta", "dphi", "charge", "d0_significance",
                   "z0_significance", "log_e", "is_track", "is_core")
IP_SIGNIFICANCE_MAX = 50.0
#: the generator options a tau-candidate sample needs
SAMPLE_OPTIONS = {"fatjet_R": 0.4, "fatjet_ptmin": 15.0, "fatjet_constituents": 1,
                  "jet_trees": 1}


@dataclass(frozen=True)
class Candidates:
    """Tau candidates, flat arrays of length N (one row per candidate).

    ``objects`` (N, T, F) holds :data:`OBJECT_FEATURES` of each candidate's particle-flow
    objects sorted by decreasing pT and zero-padded to T (``mask`` True for real ones);
    ``vectors`` (N, T, 4) their (px, py, pz, E) [GeV]. Truth: ``is_tau`` (a matched hadronic
    τ), ``mode`` (index in :data:`~.truth.DECAY_MODES`, -1 for fakes and other modes),
    ``vis_pt`` (GeV, NaN for fakes).
    """

    event: np.ndarray
    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    n_core: np.ndarray
    objects: np.ndarray
    vectors: np.ndarray
    mask: np.ndarray
    is_tau: np.ndarray
    mode: np.ndarray
    vis_pt: np.ndarray

    def __len__(self) -> int:
        return len(self.pt)

    def take(self, idx: np.ndarray) -> Candidates:
        """The candidates ``idx`` (indices or a boolean mask)."""
        return Candidates(**{k: getattr(self, k)[idx] for k in self.__dataclass_fields__})

    @staticmethod
    def concat(parts: list[Candidates]) -> Candidates:
        """The candidates of ``parts`` one after the other (``event`` kept per part)."""
        return Candidates(**{k: np.concatenate([getattr(p, k) for p in parts])
                             for k in Candidates.__dataclass_fields__})


def _require_fields(events: ak.Array) -> None:
    fat = events.fatjets.fields if "fatjets" in events.fields else []
    jets = events.jets.fields if "jets" in events.fields else []
    if "constituents" not in fat or "truth_tree" not in jets:
        raise DataError("Tau candidates need the particle-flow constituents of R = 0.4 jets and "
                        "the jets' truth trees; generate the sample with options "
                        f"{SAMPLE_OPTIONS}.")


def core_track_mask(o: dict[str, np.ndarray]) -> np.ndarray:
    """True for the core tracks among padded objects ``o`` (see the module docstring)."""
    return (o["mask"] & (o["charge"] != 0) & (o["pt"] > CORE_PT_MIN) & (o["dr"] < CORE_DR)
            & (np.abs(o["d0"]) < CORE_D0_MAX) & (np.abs(o["z0sintheta"]) < CORE_Z0ST_MAX))


def padded_objects(jets: ak.Array, max_objects: int) -> dict[str, np.ndarray]:
    """The jets' particle-flow objects as (N, T) arrays sorted by decreasing pT, at most
    ``max_objects`` per jet, zero-padded (``mask`` True for real objects): the stored fields
    and ``pt, eta, phi, dr, z0sintheta``."""
    c = jets.constituents
    pt = np.hypot(c.px, c.py)
    c = c[ak.argsort(pt, axis=1, ascending=False)]
    o = {k: _pad(c[k], max_objects) for k in ("px", "py", "pz", "e", "charge", "d0", "d0err",
                                             "dz", "dzerr", "deta", "dphi")}
    o["mask"] = _pad(ak.ones_like(c.px), max_objects) > 0
    o["pt"] = np.hypot(o["px"], o["py"])
    o["eta"] = np.arcsinh(o["pz"] / np.maximum(o["pt"], 1e-12))
    o["phi"] = np.arctan2(o["py"], o["px"])
    o["dr"] = np.hypot(o["deta"], o["dphi"])
    o["z0sintheta"] = o["dz"] / np.cosh(o["eta"])
    return o


def object_features(o: dict[str, np.ndarray], jet_pt: np.ndarray,
                    jet_phi: np.ndarray) -> np.ndarray:
    """:data:`OBJECT_FEATURES` (N, T, F) of padded objects ``o`` (zero where padded)."""
    m = o["mask"]
    is_track = m & (o["charge"] != 0)
    # lifetime sign of d0 (GN1 convention): positive when the track passes in front of the PV
    sign = np.where(np.sin(o["phi"] - jet_phi[:, None]) * o["d0"] >= 0, 1.0, -1.0)
    sig_d0 = np.where(is_track, sign * np.abs(o["d0"]) / np.maximum(o["d0err"], 1e-9), 0.0)
    sig_z0 = np.where(is_track, o["dz"] / np.maximum(o["dzerr"], 1e-9), 0.0)
    with np.errstate(divide="ignore"):
        cols = [np.log(o["pt"] / jet_pt[:, None]), o["dr"], o["deta"], o["dphi"], o["charge"],
                np.clip(sig_d0, -IP_SIGNIFICANCE_MAX, IP_SIGNIFICANCE_MAX),
                np.clip(sig_z0, -IP_SIGNIFICANCE_MAX, IP_SIGNIFICANCE_MAX), np.log(o["e"]),
                is_track, core_track_mask(o)]
    return np.where(m[..., None], np.stack(cols, axis=-1), 0.0).astype(np.float32)


def _pad(x: ak.Array, size: int) -> np.ndarray:
    return ak.to_numpy(ak.fill_none(ak.pad_none(ak.values_astype(x, np.float64), size,
                                                clip=True), 0.0))


def match_truth(events: ak.Array, event: np.ndarray, eta: np.ndarray, phi: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(is_tau, mode, vis_pt) of each candidate from the truth tree of the R = 0.4 jet of its
    event within ΔR < 0.1 (no match: not a τ)."""
    n = len(event)
    is_tau, mode, vis_pt = np.zeros(n, bool), np.full(n, OTHER_MODE), np.full(n, np.nan)
    jets = events.jets[event]
    dphi = np.angle(np.exp(1j * (jets.phi - phi)))
    dr = np.hypot(jets.eta - eta, dphi)
    best = ak.to_numpy(ak.fill_none(ak.argmin(dr, axis=1), -1))
    ok = (best >= 0) & (ak.to_numpy(ak.fill_none(ak.min(dr, axis=1), np.inf)) < MATCH_DR)
    first_jet = np.concatenate([[0], np.cumsum(ak.to_numpy(ak.num(events.jets)))])[event]
    trees = ak.flatten(events.jets.truth_tree)  # one node list per jet of the sample
    start = np.concatenate([[0], np.cumsum(ak.to_numpy(ak.num(trees)))])
    nodes = {k: ak.to_numpy(ak.flatten(trees[k])) for k in ("pid", "parent", "pt", "phi")}
    for i in np.flatnonzero(ok):
        j = first_jet[i] + best[i]
        t = {k: v[start[j]:start[j + 1]] for k, v in nodes.items()}
        truth = tau_of_tree(t["pid"], t["parent"], t["pt"] * np.cos(t["phi"]),
                            t["pt"] * np.sin(t["phi"]))
        is_tau[i], mode[i], vis_pt[i] = truth.hadronic, truth.mode, truth.vis_pt
    return is_tau, mode, vis_pt


def build_candidates(events: ak.Array, pt_min: float, eta_max: float,
                     max_objects: int) -> Candidates:
    """Every tau candidate of ``events`` with its inputs and truth (see the module docstring).
    DataError when the sample lacks the needed fields."""
    _require_fields(events)
    jets = events.fatjets
    event = ak.broadcast_arrays(ak.local_index(events.met, axis=0), jets.pt)[0]
    keep = (jets.pt > pt_min) & (abs(jets.eta) < eta_max)
    jets, event = ak.flatten(jets[keep]), ak.to_numpy(ak.flatten(event[keep]))
    o = padded_objects(jets, max_objects)
    n_core = core_track_mask(o).sum(axis=1)
    seeded = np.isin(n_core, (1, 3))
    o = {k: v[seeded] for k, v in o.items()}
    jets, event, n_core = jets[seeded], event[seeded], n_core[seeded]
    pt, eta, phi = (ak.to_numpy(jets[k]) for k in ("pt", "eta", "phi"))
    vec = np.stack([o[k] for k in ("px", "py", "pz", "e")], axis=-1).astype(np.float32)
    is_tau, mode, vis_pt = match_truth(events, event, eta, phi)
    return Candidates(event, pt, eta, phi, n_core, object_features(o, pt, phi), vec,
                      o["mask"], is_tau, mode, vis_pt)
