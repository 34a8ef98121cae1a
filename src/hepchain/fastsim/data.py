"""Showers in the CaloChallenge layout: incident energies and flat voxel arrays.

Two sources, one :class:`ShowerSet`:

- ours (default): full-simulation e⁻ showers of the SiD-like Si-W ECAL over a uniform energy
  spectrum (``ecal_spectrum`` through :func:`hepchain.core.cache.cached_dataset`). The stored
  Si read-out signals are divided by the sample's median E_vis/E_inc (the sampling fraction),
  as CaloChallenge dataset 2 divides its Si deposits by 0.033, so E_tot/E_inc ≈ 1 and the
  challenge's fixed binnings and classifier inputs apply unchanged. The readout threshold
  (0.5 MIP) in these units is the metrics' ``min_energy``.
- official: a CaloChallenge HDF5 file and its binning XML (``data.path``, ``data.binning``),
  read by :mod:`hepchain.calo.formats.calochallenge`; ``min_energy`` = 0.5 keV / 0.033, the
  challenge's value for datasets 2 and 3.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hepchain.calo.formats.calochallenge import read_calochallenge
from hepchain.calo.geometry import ECalGeometry
from hepchain.calo.produce import load_showers
from hepchain.calo.readout import Readout
from hepchain.core.cache import cached_dataset
from hepchain.core.errors import UsageError
from hepchain.core.result import Result
from hepchain.core.seeding import derive_seed
from hepchain.fastsim.voxels import VoxelGeometry

CHALLENGE_MIN_ENERGY = 0.5e-3 / 0.033
"""Voxel threshold of CaloChallenge datasets 2 and 3 [MeV] (``evaluate.py``)."""


@dataclass(frozen=True, eq=False)
class ShowerSet:
    """``e_inc`` (N,) [MeV], ``showers`` (N, n_voxels) [MeV, sampling-fraction corrected for
    ours], their ``geometry``, the voxel threshold ``min_energy`` [MeV], the factor ``scale``
    applied to read-out signals (1 for official files) and the ECAL ``ecal`` they came from
    (None for official files)."""

    e_inc: np.ndarray
    showers: np.ndarray
    geometry: VoxelGeometry
    min_energy: float
    scale: float
    ecal: ECalGeometry | None = None

    def subset(self, index: np.ndarray) -> ShowerSet:
        return ShowerSet(self.e_inc[index], self.showers[index], self.geometry,
                         self.min_energy, self.scale, self.ecal)

    def __len__(self) -> int:
        return len(self.e_inc)


GEOMETRY_KEYS = set(ECalGeometry.__dataclass_fields__)
READOUT_KEYS = set(Readout.__dataclass_fields__)


def load(data: dict[str, Any], result: Result) -> ShowerSet:
    """The showers the config's ``data`` block names (module docstring)."""
    if data.get("path"):
        return _official(data)
    opts = dict(data["options"])
    ds = cached_dataset("ecal_spectrum", n_events=int(data["n_events"]), seed=int(data["seed"]),
                        options=opts, shard_size=int(data["shard_size"]))
    result.provenance.datasets.append(ds.manifest.summary())
    energies, images, _ = load_showers(ds.path)
    ecal = ECalGeometry.from_dict({k: v for k, v in opts.items() if k in GEOMETRY_KEYS})
    readout = Readout.from_dict({k: v for k, v in opts.items() if k in READOUT_KEYS})
    flat = images.reshape(len(images), -1).astype(np.float64)
    scale = float(f"{1.0 / np.median(flat.sum(1) / (energies * 1e3)):.4g}")
    return ShowerSet(energies * 1e3, flat * scale, VoxelGeometry.from_ecal(ecal),
                     readout.threshold_mip * ecal.mip_mev() * scale, scale, ecal)


def _official(data: dict[str, Any]) -> ShowerSet:
    if not data.get("binning"):
        raise UsageError("data.path is a CaloChallenge file; also give its binning XML with "
                         "--set data.binning=binning_dataset_2.xml.")
    stop = int(data["n_events"]) if data.get("n_events") else None
    cc = read_calochallenge(data["path"], data["binning"], data.get("particle") or None,
                            stop=stop)
    return ShowerSet(cc.incident_energies.astype(np.float64),
                     np.asarray(cc.showers, dtype=np.float64),
                     VoxelGeometry.from_binning(cc.binning), CHALLENGE_MIN_ENERGY, 1.0)


def split(n: int, fractions: dict[str, float], seed: int) -> tuple[np.ndarray, ...]:
    """Train / validation / test indices; the run seed chooses the split. The test showers
    are the held-out reference of every metric; the validation showers, never trained on,
    are the independent full-simulation sample of the "full sim" row."""
    perm = np.random.default_rng(derive_seed(seed, "split")).permutation(n)
    a, b = int(fractions["train"] * n), int((fractions["train"] + fractions["val"]) * n)
    return perm[:a], perm[a:b], perm[b:]
