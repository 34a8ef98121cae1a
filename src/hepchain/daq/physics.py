"""Shower-physics checks of the sparse study's test showers, and the fast simulation beside
the full one: longitudinal shower maximum against the PDG formula, containment in one Molière
radius, simulation speeds, and GFlash-style showers (defaults, and tuned at other energies)
compared at one test energy.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from hepchain.calo.fastsim import GFlashParams, simulate_fast, tune
from hepchain.calo.fullsim import showers_per_second
from hepchain.calo.geometry import ECalGeometry
from hepchain.calo.plots import profile_comparison, radial_profiles
from hepchain.calo.readout import Readout, digitise
from hepchain.calo.validation import containment, expected_tmax, fitted_tmax, visible_response
from hepchain.core.io import atomic_write_text
from hepchain.core.result import Reference, Result
from hepchain.core.seeding import derive_seed


def shower_physics(result: Result, cfg: dict[str, Any], geometry: ECalGeometry,
                   e_te: np.ndarray, s_te: np.ndarray, workdir: Path, seed: int) -> None:
    """Shower-physics checks on the test showers (``e_te`` [GeV], ``s_te`` [MeV]) and a full-vs-fast comparison at one
    energy (5 GeV when tested): the fast simulation with GFlash defaults and, with >= 3 other
    test energies, tuned to the full simulation at those energies only, so the comparison
    energy is not used in the tuning. The stored showers are read out (Landau, noise,
    threshold), so the fast showers get the same readout."""
    energy = 5.0 if np.any(np.isclose(e_te, 5.0)) else float(np.median(e_te))
    at_energy = np.isclose(e_te, energy)
    full = s_te[at_energy]
    readout = Readout.from_dict(cfg["readout"])
    rng = np.random.default_rng(derive_seed(seed, "fast readout"))

    def read_out(showers: np.ndarray) -> np.ndarray:
        return digitise(showers, geometry, readout, rng)

    def fast_sim(energies: np.ndarray, params: GFlashParams | None = None) -> np.ndarray:
        return read_out(simulate_fast(geometry, energies, seed=seed,
                                      spread_mm=cfg["spread_mm"], params=params))

    t0 = time.perf_counter()
    fast = {"fast sim": fast_sim(np.full(len(full), energy))}
    fast_rate = len(full) / (time.perf_counter() - t0)
    if len(np.unique(e_te[~at_energy])) >= 3:
        params = tune(geometry, e_te[~at_energy], s_te[~at_energy], seed=seed,
                      readout=read_out)
        fast["fast sim, tuned"] = fast_sim(np.full(len(full), energy), params)
        atomic_write_text(workdir / "fastsim_tuned.json", json.dumps(params.to_dict(), indent=1))
        tuned_at = ", ".join(f"{e:g}" for e in np.unique(e_te[~at_energy]))
        result.notes.append(f"Fast simulation tuned at {tuned_at} GeV and compared at "
                            f"{energy:g} GeV, an energy not used in the tuning.")
        for label, showers in (("full sim", full), ("fast sim, tuned", fast["fast sim, tuned"])):
            _, _, res, err = visible_response(np.full(len(showers), energy), showers, geometry)
            result.add(f"visible-energy σ/E at {energy:g} GeV (energy not used in tuning)",
                       label, 100 * res[0], std=100 * err[0], unit="%")
    for e in cfg["test_energies"]:
        n = max(2, round(int(cfg["speed_showers"]) * energy / e))  # ~ equal CPU per energy
        result.add(f"full-sim showers/s at {e:g} GeV", "EM cascade MC (numba)",
                   showers_per_second(geometry, e, n=n, particle=cfg["particle"]),
                   higher_is_better=True)
    result.add(f"fast-sim showers/s at {energy:g} GeV", "GFlash-style", fast_rate,
               higher_is_better=True)
    samples = {"full sim": full, **fast}
    tref = Reference(expected_tmax(energy, geometry), "t_max = ln(E/E_c) − 0.5 (PDG)", same_dataset=True)
    rm = geometry.effective_moliere_mm()
    cref = Reference(0.9, "~90% inside one Molière radius", same_dataset=True)
    for label, showers in samples.items():
        result.add(f"t_max at {energy:g} GeV", label, fitted_tmax(showers, geometry),
                   unit="X0", reference=tref)
        result.add(f"containment in R_M = {rm:.1f} mm at {energy:g} GeV", label,
                   containment(showers, geometry, rm), reference=cref)
    result.figures.append(profile_comparison(
        {f"{k} {energy:g} GeV": (energy, v) for k, v in samples.items()},
        geometry, workdir / "profile_full_vs_fast.png").name)
    result.figures.append(radial_profiles(samples, geometry,
                                          workdir / "radial_full_vs_fast.png").name)
