"""Flat draws of spread resonance masses (``wprime_xy`` with option ``flat=1``).

A spread mass (``wprime_xy`` with ``mwprime_max`` ...) follows the Breit–Wigner times the
parton luminosities and the phase space: over 2.8–4.2 TeV the drawn W' masses fall by a
factor ≈ 30 from the lowest to the highest tenth of the window. A model of p(x | masses)
does not depend on how the masses are drawn, so a flat draw spends the events evenly over
the window instead of piling them up at its low edge.

A pilot run at the process level only (no shower, no hadronisation; its own seed, derived
from the settings, so every shard of a dataset uses the same acceptance) histograms each
spread mass in :data:`BINS` bins of its window; a process-level ``UserHooks`` veto then keeps
an event with probability ``prod_j min_k h_jk / h_j(m_j)``, which makes each mass flat within
the pilot's statistics (of :data:`PILOT_EVENTS`, the W' window's sparsest tenth holds ≈ 200:
≈ 7 %). A vetoed event costs only its hard process and resonance decays (≈ 40 µs against
≈ 8 ms for a full event); Pythia draws the next one.

>>> hook = flat_mass_veto(settings, {34: (2800.0, 4200.0)}, seed=7)  # doctest: +SKIP
>>> pythia = make_pythia(settings, 7, hook)                           # doctest: +SKIP
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from hepchain.collider.processes import WPRIME_XY_IDS
from hepchain.collider.pythia import make_pythia
from hepchain.core.errors import UsageError
from hepchain.core.seeding import derive_seed

PILOT_EVENTS, BINS = 20_000, 10


def spread_windows(options: dict[str, Any]) -> dict[int, tuple[float, float]]:
    """PDG id -> (low, high) [GeV] of every mass that ``wprime_xy`` ``options`` spread."""
    return {pid: (options[key], options[f"{key}_max"]) for key, pid in WPRIME_XY_IDS.items()
            if f"{key}_max" in options}


def first_masses(process: Any, pids: tuple[int, ...]) -> np.ndarray:
    """The mass [GeV] of the first particle of each ``pids`` (either charge) in a Pythia
    ``Event`` (NaN if absent)."""
    out = np.full(len(pids), np.nan)
    for p in process.particles():
        if p.idAbs() in pids and np.isnan(out[k := pids.index(p.idAbs())]):
            out[k] = p.m()
    return out


def process_level_only(settings: list[str] | tuple[str, ...]) -> list[str]:
    """``settings`` with the shower, multiparton interactions and hadronisation off: each
    ``next()`` draws a hard process and its resonance decays only (in ``pythia.process``)."""
    return [*settings, "PartonLevel:all = off", "HadronLevel:all = off"]


@lru_cache(maxsize=4)
def pilot_histograms(settings: tuple[str, ...],
                     windows: tuple[tuple[int, float, float], ...]) -> np.ndarray:
    """Counts [len(windows), BINS] of each spread mass (pid, low, high [GeV]) over its window
    in :data:`PILOT_EVENTS` process-level events of ``settings``; cached per process, so the
    shards of one dataset run the pilot once."""
    pids = tuple(pid for pid, _, _ in windows)
    pythia = make_pythia(process_level_only(settings),
                         derive_seed(0, "flat-mass pilot", *settings) % 900_000_000)
    masses = []
    while len(masses) < PILOT_EVENTS:
        if pythia.next():
            masses.append(first_masses(pythia.process, pids))
    m = np.array(masses)
    return np.stack([np.histogram(m[:, j], BINS, (lo, hi))[0]
                     for j, (_, lo, hi) in enumerate(windows)])


def acceptance(masses: np.ndarray, counts: np.ndarray,
               windows: tuple[tuple[int, float, float], ...]) -> float:
    """The probability of keeping an event with spread ``masses`` [GeV] (one per window):
    ``prod_j min_k counts_jk / counts_j(bin of m_j)``."""
    out = 1.0
    for m, h, (_, lo, hi) in zip(masses, counts, windows, strict=True):
        k = min(max(int((m - lo) / (hi - lo) * BINS), 0), BINS - 1)
        out *= h.min() / max(h[k], 1)
    return out


def flat_mass_veto(settings: list[str], windows: dict[int, tuple[float, float]],
                   seed: int) -> Any:
    """A fresh process-level veto hook (one per Pythia instance) that flattens the draw of
    the masses of ``windows`` (pid -> (low, high) [GeV]); ``seed`` seeds its accept/reject."""
    import pythia8mc

    spec = tuple((pid, float(lo), float(hi)) for pid, (lo, hi) in windows.items())
    counts = pilot_histograms(tuple(settings), spec)
    if counts.min() == 0:
        raise UsageError("A flat mass draw needs every pilot bin filled; a window is outside "
                         "the process's reach.")
    pids = tuple(pid for pid, _, _ in spec)
    rng = np.random.default_rng(seed)

    class FlatMassVeto(pythia8mc.UserHooks):
        """Veto a hard process with probability 1 - :func:`acceptance` of its masses."""

        def canVetoProcessLevel(self) -> bool:
            return True

        def doVetoProcessLevel(self, process: Any) -> bool:
            return rng.random() >= acceptance(first_masses(process, pids), counts, spec)

    return FlatMassVeto()
