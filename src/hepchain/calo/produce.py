"""Calorimeter datasets in the CaloChallenge HDF5 layout, via the shared manifest machinery.

Each shard holds ``incident_energies`` (N, 1) [MeV] and ``showers`` (N, layers·n_pix·n_pix)
[MeV] flattened in (layer, y, x) order, plus ``layer_shape`` (3,) so readers can reshape.
Processes: ``ecal_fixed`` (each energy of ``energies`` in turn) and ``ecal_spectrum``
(uniform in [e_min, e_max] GeV). Options (``--set key=value``): ``particle`` (e-, e+, gamma),
``sim`` (full, fast), ``energies`` (comma-separated GeV), ``e_min``/``e_max`` [GeV],
``spread`` [mm], any :class:`ECalGeometry` field (``pixel`` [mm], ``n_pix``, ``n_thin``,
``n_thick``, ``w_thin``, ``w_thick``, ``si``, ``absorber`` …) and the sensor readout
(:class:`~hepchain.calo.readout.Readout`: ``landau`` true/false, ``noise_mip``,
``threshold_mip`` [MIP]; default Landau on, 0.1 MIP noise, 0.5 MIP threshold). The stored
showers are read-out signals [MeV], not the true deposits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hepchain.calo.fastsim import simulate_fast
from hepchain.calo.fullsim import PARTICLES, simulate, validate_energies
from hepchain.calo.geometry import ECalGeometry
from hepchain.calo.readout import Readout, digitise
from hepchain.core.dataset import Manifest, ShardedDataset, ShardTask, build_dataset
from hepchain.core.errors import DataError, UsageError
from hepchain.core.executors import Executor

PROCESSES: dict[str, str] = {
    "ecal_fixed": "SiD-like Si-W ECAL showers at fixed energies (default 1, 2.5, 5, 10, 20 GeV)",
    "ecal_spectrum": "SiD-like Si-W ECAL showers, energy uniform in [e_min, e_max] GeV",
}
DEFAULTS: dict[str, Any] = {"particle": "e-", "sim": "full", "energies": "1,2.5,5,10,20",
                            "e_min": 1.0, "e_max": 20.0, "spread": 2.0}
GEOMETRY_KEYS = set(ECalGeometry.__dataclass_fields__)
READOUT_KEYS = set(Readout.__dataclass_fields__)
DEFAULT_SHARD_SIZE = 500


def shard_settings(name: str, options: dict[str, str] | None = None) -> dict[str, Any]:
    """Validated generation settings for process ``name`` from ``--set`` strings."""
    if name not in PROCESSES:
        raise UsageError(f"Unknown calorimeter process {name!r}; choose one of {sorted(PROCESSES)}.")
    opts = dict(options or {})
    known = set(DEFAULTS) | GEOMETRY_KEYS | READOUT_KEYS
    unknown = set(opts) - known
    if unknown:
        raise UsageError(f"Unknown option(s) {sorted(unknown)} for {name}; "
                         f"known: {sorted(known)}.")
    s = {**DEFAULTS, **{k: v for k, v in opts.items() if k in DEFAULTS}}
    geometry = ECalGeometry.from_dict({k: v for k, v in opts.items() if k in GEOMETRY_KEYS})
    readout = Readout.from_dict({k: v for k, v in opts.items() if k in READOUT_KEYS})
    try:
        energies = [float(v) for v in str(s["energies"]).split(",") if v.strip()]
        out = {"process": name, "particle": str(s["particle"]), "sim": str(s["sim"]),
               "energies": energies, "e_min": float(s["e_min"]), "e_max": float(s["e_max"]),
               "spread": float(s["spread"]),
               "geometry": geometry.to_dict(), "readout": readout.to_dict()}
    except ValueError as exc:
        raise UsageError(f"Calorimeter options must be numbers where numeric ({exc}).") from exc
    if out["particle"] not in PARTICLES:
        raise UsageError(f"Unknown particle {out['particle']!r}; choose one of {sorted(PARTICLES)}.")
    if out["sim"] not in ("full", "fast"):
        raise UsageError(f"sim={out['sim']!r} is not known; use full or fast.")
    validate_energies(np.array([*energies, out["e_min"], out["e_max"]]))
    if not energies:
        raise UsageError("energies is empty; give comma-separated energies in GeV.")
    if not out["spread"] >= 0:
        raise UsageError(f"spread={out['spread']} mm must be >= 0 (Gaussian beam spot width).")
    if out["e_max"] <= out["e_min"]:
        raise UsageError(f"e_max={out['e_max']} GeV must be above e_min={out['e_min']} GeV.")
    return out


def shard_energies(settings: dict[str, Any], n: int, rng: np.random.Generator) -> np.ndarray:
    """Incident energies [GeV] of one shard."""
    if settings["process"] == "ecal_fixed":
        return np.resize(np.asarray(settings["energies"], dtype=float), n)
    return rng.uniform(settings["e_min"], settings["e_max"], n)


def make_shard(task: ShardTask) -> dict[str, np.ndarray]:
    """Simulate one shard (module level: runs in worker processes)."""
    s = task.settings
    geometry = ECalGeometry.from_dict(s["geometry"])
    rng = np.random.default_rng(task.seed)
    energies = shard_energies(s, task.n_events, rng)
    seed = int(rng.integers(0, 2**31 - 1))
    if s["sim"] == "full":
        showers = simulate(geometry, energies, particle=s["particle"], seed=seed,
                           spread_mm=s["spread"])
    else:
        showers = simulate_fast(geometry, energies, seed=seed, spread_mm=s["spread"])
    showers = digitise(showers, geometry, Readout(**s["readout"]), rng)
    return {"incident_energies": (energies * 1000.0).reshape(-1, 1).astype(np.float32),
            "showers": showers.reshape(task.n_events, -1),
            "layer_shape": np.tile(np.array(geometry.shape, dtype=np.int32), (task.n_events, 1))}


def produce(name: str, out: str | Path, *, n_events: int, seed: int,
            executor: Executor | None = None, shard_size: int | None = None,
            options: dict[str, str] | None = None, progress: bool = True) -> Manifest:
    """Generate (or resume) a calorimeter dataset; see the module docstring for options."""
    settings = shard_settings(name, options)
    return build_dataset(out, generator=f"hepchain.calo/{settings['sim']}", settings=settings,
                         n_events=n_events, shard_size=shard_size or DEFAULT_SHARD_SIZE,
                         seed=seed, make_shard=make_shard, fmt="hdf5", name=name,
                         executor=executor, progress=progress)


def load_showers(directory: str | Path) -> tuple[np.ndarray, np.ndarray, Manifest]:
    """Read a dataset: (energies [GeV] (N,), showers [MeV] (N, layers, n_pix, n_pix), manifest)."""
    ds = ShardedDataset(directory)
    data = ds.read()
    if "showers" not in data or "incident_energies" not in data:
        raise DataError(f"{directory} is not a calorimeter dataset (needs incident_energies "
                        "and showers); generate it with `hepchain generate ecal_fixed`.")
    shape = tuple(int(v) for v in data["layer_shape"][0]) if "layer_shape" in data else None
    showers = data["showers"]
    if shape is not None:
        showers = showers.reshape(-1, *shape)
    return data["incident_energies"][:, 0] / 1000.0, showers, ds.manifest
