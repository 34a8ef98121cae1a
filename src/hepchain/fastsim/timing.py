"""Generation time per shower on this CPU, as the CaloChallenge reports it (batch 1 and a large
batch), beside the full simulation's, measured in the same run."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from hepchain.calo.fullsim import showers_per_second
from hepchain.calo.geometry import ECalGeometry

Generate = Callable[[np.ndarray, int], np.ndarray]  # (E_inc [MeV], seed) -> showers


def seconds_per_shower(generate: Generate, e_mev: float, batch: int, repeats: int = 1,
                       budget_s: float = 2.0) -> float:
    """Median wall time per shower [s] of ``generate`` at ``batch`` showers of ``e_mev`` MeV
    per call, after one warm-up call; batch 1 repeats up to ``repeats`` calls or
    ``budget_s`` seconds."""
    energies = np.full(batch, float(e_mev))
    generate(energies[:1], 0)
    times = []
    start = time.perf_counter()
    for i in range(max(repeats, 1)):
        t0 = time.perf_counter()
        generate(energies, i + 1)
        times.append((time.perf_counter() - t0) / batch)
        if time.perf_counter() - start > budget_s:
            break
    return float(np.median(times))


def full_sim_seconds(ecal: ECalGeometry, e_gev: float, n: int) -> float:
    """Full-simulation time per shower [s] at ``e_gev`` GeV (``n`` showers, after JIT)."""
    return 1.0 / showers_per_second(ecal, e_gev, n=n)
