"""Lepton isolation as in the Delphes CMS cards, with the pile-up card's corrections when the
sample has pile-up.

Relative isolation of a lepton of transverse momentum pT, over the other particle-flow
candidates with pT > :data:`CONE_PT_MIN` within ΔR < :data:`CONE_DR`:

- without pile-up (``delphes_card_CMS.tcl``): I = Σ pT / pT;
- with pile-up (``delphes_card_CMS_PileUp.tcl``: ``TrackPileUpSubtractor``, ``Rho``, and the
  ``Isolation`` module's ρ correction)::

      I = [Σ_charged, not pile-up pT + max(Σ_neutral pT − ρ π ΔR², 0)] / pT

  A charged candidate is pile-up when its z0 w.r.t. the reconstructed primary vertex is
  incompatible with it, (dz / σ_dz)² > χ²_cut = 9, the vertex fit's own cut
  (:data:`.vertexing.CHI2_CUT`); Delphes instead flags true pile-up tracks more than 0.1 mm
  from the vertex ("perfect" subtraction). ρ is the event's median pT density over
  1.0 × 1.0 (y, φ) tiles in |y| < 2.5 of the candidates that are not pile-up tracks: FastJet's
  ``GridMedianBackgroundEstimator``, as Delphes's ``Rho`` module for the central range.

A lepton is isolated when I < :data:`ISO_MAX` (0.12 e, 0.25 μ). Unlike the cards, the cone
includes the other leptons (Delphes's ``EFlowFilter`` removes e and μ from the isolation
input). Units: GeV, rad.

>>> pf = {"event": np.array([0, 0]), "px": np.array([5.0, 2.0]), "py": np.zeros(2),
...       "pz": np.zeros(2), "e": np.array([5.0, 2.0]), "charge": np.array([1, 0]),
...       "dz": np.array([4.0, 0.0]), "dzerr": np.array([0.1, 0.0])}
>>> one = (np.array([0]), np.array([0.2]), np.array([0.0]), np.array([20.0]))
>>> relative_isolation(*one, pf, pileup=False).round(3).tolist()   # (5 + 2) / 20
[0.35]
>>> relative_isolation(*one, pf, pileup=True).round(3).tolist()    # 2 − ρ π 0.25, ρ = 0
[0.1]
"""

from __future__ import annotations

import numpy as np

from hepchain.collider.kinematics import delta_phi
from hepchain.collider.vertexing import CHI2_CUT

#: isolation cone ΔR and the smallest candidate pT [GeV] it sums (Delphes CMS cards)
CONE_DR, CONE_PT_MIN = 0.5, 0.5
#: largest relative isolation of an isolated electron (11) and muon (13)
ISO_MAX = {11: 0.12, 13: 0.25}
#: ρ tiles: |y| < RHO_RAP_MAX, requested spacing in y and φ (Delphes CMS pile-up card)
RHO_RAP_MAX, RHO_SPACING = 2.5, 1.0


def pileup_tracks(charge: np.ndarray, dz: np.ndarray, dzerr: np.ndarray) -> np.ndarray:
    """Charged candidates incompatible with the primary vertex: (dz / σ_dz)² > χ²_cut
    (``dz`` w.r.t. the reconstructed primary vertex, mm)."""
    charged = charge != 0
    return charged & (np.square(dz / np.where(charged, dzerr, 1.0)) > CHI2_CUT)


def grid_median_rho(n_events: int, event: np.ndarray, pt: np.ndarray, rap: np.ndarray,
                    phi: np.ndarray, rap_max: float = RHO_RAP_MAX,
                    spacing: float = RHO_SPACING) -> np.ndarray:
    """Per-event pT density ρ [GeV per unit (y, φ) area]: the median over the tiles of a
    rectangular (y, φ) grid in |y| < ``rap_max`` of the tile's Σ pT over its area, empty tiles
    included; FastJet's ``GridMedianBackgroundEstimator(rap_max, spacing)`` (the grid's
    spacings are rounded so that the tiles fill the range)."""
    n_y = max(int(2 * rap_max / spacing + 0.5), 1)
    n_phi = max(int(2 * np.pi / spacing + 0.5), 1)
    d_y, d_phi = 2 * rap_max / n_y, 2 * np.pi / n_phi
    i_y = np.floor((rap + rap_max) / d_y).astype(np.int64)
    i_phi = np.minimum((np.mod(phi, 2 * np.pi) / d_phi).astype(np.int64), n_phi - 1)
    inside = (rap + rap_max >= 0) & (i_y < n_y)
    tiles = np.zeros((n_events, n_y * n_phi))
    np.add.at(tiles, (event[inside], i_y[inside] * n_phi + i_phi[inside]), pt[inside])
    return np.median(tiles, axis=1) / (d_y * d_phi)


def relative_isolation(event: np.ndarray, eta: np.ndarray, phi: np.ndarray, pt: np.ndarray,
                       pf: dict[str, np.ndarray], pileup: bool) -> np.ndarray:
    """Relative isolation of each lepton (``event, eta, phi, pt``) over the particle-flow
    candidates ``pf`` (``event`` sorted; ``px, py, pz, e`` GeV, ``charge``, ``dz, dzerr`` mm);
    ``pileup``: with the pile-up card's corrections. The lepton's own candidate (ΔR < 1e-6)
    is not in its cone."""
    pf_pt = np.hypot(pf["px"], pf["py"])
    pf_eta = np.arcsinh(pf["pz"] / np.maximum(pf_pt, 1e-12))
    pf_phi = np.arctan2(pf["py"], pf["px"])
    charged = pf["charge"] != 0
    from_pu = pileup_tracks(pf["charge"], pf["dz"], pf["dzerr"]) if pileup else np.zeros(
        len(pf_pt), bool)
    rho = np.zeros(int(max(pf["event"].max(initial=-1), event.max(initial=-1))) + 1)
    if pileup:
        keep = ~from_pu
        e, pz = pf["e"][keep], pf["pz"][keep]
        rap = 0.5 * np.log(np.maximum(e + pz, 1e-300) / np.maximum(e - pz, 1e-300))
        rho = grid_median_rho(len(rho), pf["event"][keep], pf_pt[keep], rap, pf_phi[keep])
    out = np.empty(len(pt))
    for k in range(len(pt)):
        lo, hi = np.searchsorted(pf["event"], [event[k], event[k] + 1])
        dr = np.hypot(pf_eta[lo:hi] - eta[k], delta_phi(pf_phi[lo:hi], phi[k]))
        cone = (dr < CONE_DR) & (dr > 1e-6) & (pf_pt[lo:hi] > CONE_PT_MIN) & ~from_pu[lo:hi]
        ch = cone & charged[lo:hi]
        neutral = pf_pt[lo:hi][cone & ~ch].sum() - rho[event[k]] * np.pi * CONE_DR**2
        out[k] = (pf_pt[lo:hi][ch].sum() + max(neutral, 0.0)) / pt[k]
    return out
