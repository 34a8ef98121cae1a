"""Producer ``ecal_fast``: showers from a trained fastcalo generator, in the same layout as the
full simulation (``calo.produce``: ``incident_energies`` (N, 1) [MeV], ``showers`` (N,
layers·n_pix²) read-out Si signals [MeV], ``layer_shape``)::

    hepchain generate ecal_fast --n-events 10000 --set model=RUN/models/cfm.pt

Options: ``model`` (a ``.pt`` file written by ``hepchain fastcalo run``: gan, caloflow or cfm),
``e_min``/``e_max`` [GeV] (uniform spectrum) and, optionally, ECAL geometry options
(``pixel``, ``n_pix`` …) that must match the geometry the model was trained on.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from hepchain.calo.fullsim import validate_energies
from hepchain.calo.geometry import ECalGeometry
from hepchain.core.dataset import Manifest, ShardTask, build_dataset
from hepchain.core.errors import UsageError
from hepchain.core.executors import Executor
from hepchain.fastsim.models.base import load_model, read_state
from hepchain.fastsim.voxels import VoxelGeometry

PROCESSES: dict[str, str] = {
    "ecal_fast": "ECAL showers from a trained fastcalo generator (model=PATH), uniform in [e_min, e_max] GeV",
}
DEFAULTS: dict[str, Any] = {"model": "", "e_min": 1.0, "e_max": 10.0}
GEOMETRY_KEYS = set(ECalGeometry.__dataclass_fields__)
DEFAULT_SHARD_SIZE = 1000


def shard_settings(name: str, options: dict[str, str] | None = None) -> dict[str, Any]:
    """Validated settings: the model file (with its sha256), energy range and the geometry,
    which must be the model's."""
    if name not in PROCESSES:
        raise UsageError(f"Unknown process {name!r}; choose one of {sorted(PROCESSES)}.")
    opts = dict(options or {})
    unknown = set(opts) - set(DEFAULTS) - GEOMETRY_KEYS
    if unknown:
        raise UsageError(f"Unknown option(s) {sorted(unknown)} for {name}; known: "
                         f"{sorted(set(DEFAULTS) | GEOMETRY_KEYS)}.")
    if not opts.get("model"):
        raise UsageError("ecal_fast needs a trained generator: --set model=PATH/TO/cfm.pt.")
    path = Path(str(opts["model"])).resolve()
    state = read_state(path)
    ecal_dict = state.get("meta", {}).get("ecal") or {}
    if not ecal_dict:
        raise UsageError(f"{path} was trained on an official CaloChallenge file, not on "
                         "hepchain's ECAL; it cannot produce ECAL showers.")
    geometry = ECalGeometry.from_dict({**ecal_dict, **{k: v for k, v in opts.items()
                                                       if k in GEOMETRY_KEYS}})
    try:
        e_min, e_max = float(opts.get("e_min", 1.0)), float(opts.get("e_max", 10.0))
    except ValueError as exc:
        raise UsageError(f"e_min and e_max must be numbers in GeV ({exc}).") from exc
    validate_energies(np.array([e_min, e_max]))
    if e_max <= e_min:
        raise UsageError(f"e_max={e_max} GeV must be above e_min={e_min} GeV.")
    from hepchain.fastsim.train import MODEL_CLASSES

    load_model(path, VoxelGeometry.from_ecal(geometry), MODEL_CLASSES)  # geometry check
    return {"process": name, "model": str(path),
            "model_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "e_min": e_min, "e_max": e_max, "geometry": geometry.to_dict(),
            "scale": float(state["meta"]["scale"])}


def make_shard(task: ShardTask) -> dict[str, np.ndarray]:
    """Generate one shard (module level: runs in worker processes)."""
    from hepchain.fastsim.train import MODEL_CLASSES

    s = task.settings
    geometry = ECalGeometry.from_dict(s["geometry"])
    model = load_model(s["model"], VoxelGeometry.from_ecal(geometry), MODEL_CLASSES)
    rng = np.random.default_rng(task.seed)
    e_gev = rng.uniform(s["e_min"], s["e_max"], task.n_events)
    showers = model.generate(e_gev * 1e3, seed=int(rng.integers(0, 2**31 - 1))) / s["scale"]
    return {"incident_energies": (e_gev * 1e3).reshape(-1, 1).astype(np.float32),
            "showers": showers.astype(np.float32),
            "layer_shape": np.tile(np.array(geometry.shape, dtype=np.int32), (task.n_events, 1))}


def produce(name: str, out: str | Path, *, n_events: int, seed: int,
            executor: Executor | None = None, shard_size: int | None = None,
            options: dict[str, str] | None = None, progress: bool = True) -> Manifest:
    """Generate (or resume) an ``ecal_fast`` dataset; see the module docstring."""
    settings = shard_settings(name, options)
    return build_dataset(out, generator="hepchain.fastsim", settings=settings,
                         n_events=n_events, shard_size=shard_size or DEFAULT_SHARD_SIZE,
                         seed=seed, make_shard=make_shard, fmt="hdf5", name=name,
                         executor=executor, progress=progress)
