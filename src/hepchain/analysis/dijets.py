"""Dijet events as the analysis sees them: the two leading large-R jets of each event.

:class:`Dijets` holds, per event, the two highest-pT anti-kt R = 1.0 jets (GeV, rad) with their
N-subjettiness values and a truth label (1 = signal). It is built from the collider's Parquet
events (``fatjets`` record, pT-sorted) or from the LHC Olympics R&D feature file, and it computes
the standard LHCO features (:mod:`hepchain.analysis.features`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from hepchain.core.errors import DataError

JET_FIELDS = ("pt", "eta", "phi", "mass", "tau1", "tau2", "tau3")


@dataclass
class Dijets:
    """Leading two jets per event; every jet array has shape (N, 2), pT-ordered.

    pt, mass in GeV; eta dimensionless; phi in rad; tau1..3 N-subjettiness (GeV-weighted
    normalised, dimensionless); ``label`` (N,) is 1 for signal, 0 for background.
    """

    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    mass: np.ndarray
    tau1: np.ndarray
    tau2: np.ndarray
    tau3: np.ndarray
    label: np.ndarray

    def __len__(self) -> int:
        return int(self.label.shape[0])

    def __getitem__(self, index: np.ndarray | slice) -> Dijets:
        return Dijets(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @staticmethod
    def concatenate(parts: list[Dijets]) -> Dijets:
        return Dijets(**{f.name: np.concatenate([getattr(p, f.name) for p in parts])
                         for f in fields(Dijets)})

    def four_momenta(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(E, px, py, pz) of each jet in GeV, each of shape (N, 2)."""
        px = self.pt * np.cos(self.phi)
        py = self.pt * np.sin(self.phi)
        pz = self.pt * np.sinh(self.eta)
        energy = np.sqrt(px**2 + py**2 + pz**2 + self.mass**2)
        return energy, px, py, pz

    def mjj(self) -> np.ndarray:
        """Dijet invariant mass of the two leading jets [GeV]."""
        e, px, py, pz = (a.sum(axis=1) for a in self.four_momenta())
        return np.sqrt(np.clip(e**2 - px**2 - py**2 - pz**2, 0.0, None))

    def delta_r(self) -> np.ndarray:
        """ΔR between the two leading jets."""
        dphi = np.angle(np.exp(1j * (self.phi[:, 0] - self.phi[:, 1])))
        return np.hypot(self.eta[:, 0] - self.eta[:, 1], dphi)


def from_cartesian(px: np.ndarray, py: np.ndarray, pz: np.ndarray, mass: np.ndarray,
                   tau1: np.ndarray, tau2: np.ndarray, tau3: np.ndarray,
                   label: np.ndarray) -> Dijets:
    """Build from Cartesian jet momenta (GeV, arrays of shape (N, 2)), e.g. the LHCO feature file.

    The two jets are re-ordered by pT so that column 0 is the leading jet.
    """
    pt = np.hypot(px, py)
    eta = np.arcsinh(np.divide(pz, pt, out=np.zeros_like(pz), where=pt > 0))
    phi = np.arctan2(py, px)
    order = np.argsort(-pt, axis=1, kind="stable")
    take = lambda a: np.take_along_axis(np.asarray(a, float), order, axis=1)  # noqa: E731
    return Dijets(take(pt), take(eta), take(phi), take(mass), take(tau1), take(tau2),
                  take(tau3), np.asarray(label, dtype=np.int8))


def from_events(events, label: int) -> Dijets:
    """Leading two ``fatjets`` of collider events (awkward array, jets pT-sorted, GeV).

    Events with fewer than two fat jets are dropped (they have no dijet mass).
    """
    import awkward as ak

    if "fatjets" not in ak.fields(events):
        raise DataError("The dataset has no 'fatjets' record; generate it with the collider "
                        "qcd_dijet or wprime_xy process (anti-kt R=1.0 jets).")
    jets = events["fatjets"]
    missing = [f for f in JET_FIELDS if f not in ak.fields(jets)]
    if missing:
        raise DataError(f"The 'fatjets' record lacks {missing}; regenerate the dataset with a "
                        "collider version that stores N-subjettiness.")
    keep = has_dijet(events)
    lead = jets[keep][:, :2]
    arrays = {f: ak.to_numpy(lead[f]).astype(float).reshape(-1, 2) for f in JET_FIELDS}
    order = np.argsort(-arrays["pt"], axis=1, kind="stable")
    arrays = {k: np.take_along_axis(v, order, axis=1) for k, v in arrays.items()}
    return Dijets(**arrays, label=np.full(int(keep.sum()), label, dtype=np.int8))


def has_dijet(events) -> np.ndarray:
    """Which collider events have the two ``fatjets`` a dijet needs (those :func:`from_events`
    keeps, in order)."""
    import awkward as ak

    return ak.to_numpy(ak.num(events["fatjets"]) >= 2)


def lhco_mask(jets: Dijets, pt_min: float = 1200.0, eta_max: float = 2.5) -> np.ndarray:
    """Which dijets pass the LHCO R&D trigger: leading jet pT > ``pt_min`` GeV and
    |η| < ``eta_max``."""
    return (jets.pt[:, 0] > pt_min) & (np.abs(jets.eta[:, 0]) < eta_max)


def lhco_selection(jets: Dijets, pt_min: float = 1200.0, eta_max: float = 2.5) -> Dijets:
    """The dijets that pass the LHCO R&D trigger (:func:`lhco_mask`)."""
    return jets[lhco_mask(jets, pt_min, eta_max)]
