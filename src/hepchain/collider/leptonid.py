"""Reconstructed lepton identification of tracks: electron / muon flags with efficiencies and
fake rates that depend on pT and |η|, and nothing below the muon-system (or electron-ID)
threshold.

Numbers (GeV):

============================  ===================================================================
muon, pT > 10, |η| ≤ 2.4      0.95 (Delphes CMS card, isolated muons)
muon, 3 < pT ≤ 10, |η| ≤ 2.4  0.85 (our choice for non-isolated muons in jets)
muon, pT ≤ 3 or |η| > 2.4     0: a muon needs p ≳ 3 GeV to cross the calorimeters and the
                              solenoid and reach the muon stations (CMS/ATLAS barrel)
electron, pT > 10             0.95 (|η| ≤ 1.5), 0.85 (1.5 < |η| ≤ 2.5) (Delphes CMS card)
electron, 2 < pT ≤ 10         0.60 (|η| ≤ 1.5), 0.50 (1.5 < |η| ≤ 2.5) (our choice: electrons
                              inside jets overlap with hadronic showers)
electron, pT ≤ 2              0 (no calorimeter electron ID)
hadron → muon                 0.003 above the muon threshold (punch-through and π/K decays
                              in flight; our choice, ATLAS/CMS soft-muon fake rates are a few 10⁻³)
hadron → electron             0.01 above the electron threshold (π⁰ overlaps, early showers;
                              our choice)
============================  ===================================================================

The "our choice" values are assumptions, not measurements; they set the scale of what the
taggers can learn from the lepton flag.
"""

from __future__ import annotations

import numpy as np

MUON_PT_MIN, MUON_ETA_MAX = 3.0, 2.4
ELECTRON_PT_MIN, ELECTRON_ETA_MAX = 2.0, 2.5
HADRON_AS_MUON, HADRON_AS_ELECTRON = 0.003, 0.01


def muon_efficiency(pt: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """Probability that a true muon with ``pt`` [GeV] and ``eta`` is identified."""
    inside = (pt > MUON_PT_MIN) & (np.abs(eta) <= MUON_ETA_MAX)
    return np.where(inside, np.where(pt > 10.0, 0.95, 0.85), 0.0)


def electron_efficiency(pt: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """Probability that a true electron with ``pt`` [GeV] and ``eta`` is identified."""
    a_eta = np.abs(eta)
    inside = (pt > ELECTRON_PT_MIN) & (a_eta <= ELECTRON_ETA_MAX)
    central = a_eta <= 1.5
    eff = np.where(pt > 10.0, np.where(central, 0.95, 0.85), np.where(central, 0.60, 0.50))
    return np.where(inside, eff, 0.0)


def identify(rng: np.random.Generator, true_pid: np.ndarray, pt: np.ndarray,
             eta: np.ndarray) -> np.ndarray:
    """Reconstructed lepton flag per track: 13 muon, 11 electron, 0 none.

    ``true_pid`` is |PDG id| of the particle behind the track (0 for a fake track, treated as
    a hadron); ``pt`` [GeV] and ``eta`` are the measured track values. One uniform number per
    track decides, so the muon and electron fake rates of a hadron are exclusive.
    """
    u = rng.random(len(pt))
    mu_zone = (pt > MUON_PT_MIN) & (np.abs(eta) <= MUON_ETA_MAX)
    e_zone = (pt > ELECTRON_PT_MIN) & (np.abs(eta) <= ELECTRON_ETA_MAX)
    p_mu = np.where(true_pid == 13, muon_efficiency(pt, eta),
                    np.where(true_pid == 11, 0.0, HADRON_AS_MUON * mu_zone))
    p_e = np.where(true_pid == 11, electron_efficiency(pt, eta),
                   np.where(true_pid == 13, 0.0, HADRON_AS_ELECTRON * e_zone))
    return np.where(u < p_mu, 13, np.where(u < p_mu + p_e, 11, 0)).astype(np.int64)
