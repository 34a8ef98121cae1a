"""ECAL/HCAL towers with the Delphes CMS card's resolutions and thresholds.

Granularity (a uniform-grid simplification of the card): ECAL 0.0174 x 1 deg for
|eta| < 3.0, HCAL 0.087 x 5 deg for |eta| < 1.653 and 0.087 x 10 deg up to 3.0, forward
(HF, both) 0.175 x 20 deg up to |eta| = 5. Energies in GeV.

Deposits: e, gamma deposit fully in ECAL; K0L, n and other neutral hadrons fully in HCAL;
charged hadrons without a reconstructed track deposit in HCAL; muons and neutrinos nothing.
Charged particles with a track are represented by their track (particle flow with perfect
subtraction of their calorimeter deposit); only the remaining tower energy becomes neutral
particle-flow candidates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hepchain.collider.tracking import lognormal_smear

#: (|eta| low, |eta| high, delta eta, delta phi [deg]) per calorimeter region
ECAL_GRID = ((0.0, 3.0, 0.0174, 1.0), (3.0, 5.0, 0.175, 20.0))
HCAL_GRID = ((0.0, 1.653, 0.087, 5.0), (1.653, 3.0, 0.087, 10.0), (3.0, 5.0, 0.175, 20.0))
ECAL_EMIN, ECAL_SIGMIN = 0.5, 2.0
HCAL_EMIN, HCAL_SIGMIN = 1.0, 1.0


def ecal_sigma(e: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """sigma(E) [GeV] of the CMS card ECAL."""
    a = np.abs(eta)
    core = np.sqrt(e**2 * 0.008**2 + e * 0.11**2 + 0.40**2)
    return np.where(a <= 1.5, (1 + 0.64 * eta**2) * core,
                    np.where(a <= 2.5, (2.16 + 5.6 * (a - 2) ** 2) * core,
                             np.sqrt(e**2 * 0.107**2 + e * 2.08**2)))


def hcal_sigma(e: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """sigma(E) [GeV] of the CMS card HCAL."""
    return np.where(np.abs(eta) <= 3.0, np.sqrt(e**2 * 0.050**2 + e * 1.50**2),
                    np.sqrt(e**2 * 0.130**2 + e * 2.70**2))


@dataclass
class Towers:
    """Neutral particle-flow candidates from towers (massless, at the tower position)."""

    event: np.ndarray
    e: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    ecal: np.ndarray  # True: photon-like ECAL tower, False: neutral-hadron HCAL tower


def _bin(grid: tuple, eta: np.ndarray, phi: np.ndarray) -> tuple[np.ndarray, ...]:
    """Region, eta-bin and phi-bin of each deposit on ``grid``; region -1 outside."""
    a = np.abs(eta)
    region = np.full(len(eta), -1)
    ieta = np.zeros(len(eta), np.int64)
    iphi = np.zeros(len(eta), np.int64)
    for r, (lo, hi, deta, dphi) in enumerate(grid):
        sel = (a >= lo) & (a < hi)
        region[sel] = r
        ieta[sel] = np.floor((eta[sel] + hi) / deta).astype(np.int64)
        iphi[sel] = np.floor((phi[sel] + np.pi) / np.radians(dphi)).astype(np.int64)
    return region, ieta, iphi


def _towers(rng: np.random.Generator, grid: tuple, event: np.ndarray, e: np.ndarray,
            eta: np.ndarray, phi: np.ndarray, sigma_fn, emin: float, sigmin: float,
            ) -> tuple[np.ndarray, ...]:
    region, ieta, iphi = _bin(grid, eta, phi)
    ok = region >= 0
    key = ((event[ok] * 8 + region[ok]) * 4096 + ieta[ok]) * 4096 + iphi[ok]
    keys, inv = np.unique(key, return_inverse=True)
    energy = np.bincount(inv, weights=e[ok])
    ev = keys // (8 * 4096 * 4096)
    reg = (keys // (4096 * 4096)) % 8
    ie = (keys // 4096) % 4096
    ip = keys % 4096
    lo = np.array([g[0] for g in grid])[reg]
    hi = np.array([g[1] for g in grid])[reg]
    deta = np.array([g[2] for g in grid])[reg]
    dphi = np.radians(np.array([g[3] for g in grid]))[reg]
    # tower centre smeared uniformly inside the tower (SmearTowerCenter); sign of eta
    # follows the deposit's bin: bins below hi/deta are negative eta.
    t_eta = -hi + (ie + rng.random(len(keys))) * deta
    in_gap = np.abs(t_eta) < lo  # bins of the other region's range are never filled
    t_eta = np.where(in_gap, np.sign(t_eta) * lo, t_eta)
    t_phi = -np.pi + (ip + rng.random(len(keys))) * dphi
    sigma = sigma_fn(energy, t_eta)
    smeared = lognormal_smear(rng, energy, sigma)
    keep = (smeared > emin) & (smeared > sigmin * sigma_fn(smeared, t_eta))
    return ev[keep], smeared[keep], t_eta[keep], t_phi[keep]


def towers(rng: np.random.Generator, event: np.ndarray, e: np.ndarray, eta: np.ndarray,
           phi: np.ndarray, em: np.ndarray) -> Towers:
    """Towers from deposits (energy ``e`` [GeV] at (eta, phi)); ``em`` marks ECAL deposits."""
    parts = [_towers(rng, ECAL_GRID, event[em], e[em], eta[em], phi[em], ecal_sigma,
                     ECAL_EMIN, ECAL_SIGMIN),
             _towers(rng, HCAL_GRID, event[~em], e[~em], eta[~em], phi[~em], hcal_sigma,
                     HCAL_EMIN, HCAL_SIGMIN)]
    flags = [np.ones(len(parts[0][0]), bool), np.zeros(len(parts[1][0]), bool)]
    return Towers(*(np.concatenate([p[i] for p in parts]) for i in range(4)),
                  ecal=np.concatenate(flags))
