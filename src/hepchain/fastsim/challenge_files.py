"""Synthetic showers in a CaloChallenge binning, written as a generated / reference file pair.

The challenge's ``evaluate.py`` accepts only its own dataset shapes (dataset 2: 45 layers ×
16 angular × 9 radial voxels = 6,480), and our ECAL has 30 square-pixel layers: re-binning
our showers into 45 layers would invent layers the detector does not have. The cross-check of
the metrics (:mod:`hepchain.fastsim.crosscheck`) therefore uses showers made directly in the
dataset's binning by a small parametric model (:func:`synthetic_showers`): the physics is
only roughly electromagnetic, but every feature the metrics histogram falls inside the
challenge's ranges, with voxels below the readout threshold, layers without energy and
shower-to-shower fluctuations, so both implementations are exercised on the same numbers.

Model per shower (energies in MeV, lengths in mm, depth in layers):

- E_inc log-uniform in [1 GeV, 1 TeV] (as dataset 2); visible energy E_inc · response ·
  (1 + σ_E N(0, 1)), σ_E = 0.02 + 0.05 / √(E_inc / GeV);
- longitudinal Γ profile p(t) ∝ t^(a−1) e^(−b t), b = 0.35 per layer, at t = i + 1 for layer
  i, peak t_max = 2 depth (ln(E_inc / 8 MeV) − ½) × LogNormal(0, 0.1), a = b t_max + 1;
- transverse: voxel weight ∝ area · exp(−d / R) with d the distance of the voxel centre from
  the shower axis (offset N(0, 1 mm) in x and y), R = width (2.5 + 0.25 i) × LogNormal(0, 0.05);
- every voxel multiplied by Gamma(k, 1/k) noise (relative spread 1/√k).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hepchain.calo.formats.binning import Binning
from hepchain.calo.formats.calochallenge import write_calochallenge
from hepchain.core.errors import UsageError
from hepchain.core.seeding import derive_seed
from hepchain.fastsim.voxels import VoxelGeometry


@dataclass(frozen=True)
class ShowerModel:
    """Knobs of :func:`synthetic_showers`: ``response`` (mean E_vis / E_inc), ``depth`` and
    ``width`` (scales of t_max and R), ``noise_k`` (Gamma shape of the voxel noise)."""

    response: float = 1.0
    depth: float = 1.0
    width: float = 1.0
    noise_k: float = 3.0


REFERENCE = ShowerModel()
"""The "full simulation" of the cross-check files."""
GENERATED = ShowerModel(response=0.99, depth=1.04, width=1.08, noise_k=2.5)
"""A mildly mismodelled "generator": 1 % low response, 4 % deeper, 8 % wider, noisier voxels."""


def synthetic_showers(binning: Binning, n: int, seed: int, model: ShowerModel = REFERENCE
                      ) -> tuple[np.ndarray, np.ndarray]:
    """``n`` showers of ``model`` in ``binning`` (module docstring): incident energies (n,)
    [MeV] and voxel energies (n, n_voxels) [MeV], in the binning's voxel order."""
    if n < 1:
        raise UsageError(f"n={n}: ask for at least one shower.")
    geo = VoxelGeometry.from_binning(binning)
    if geo.n_voxels != binning.n_voxels:
        raise UsageError("synthetic showers need a binning without empty layers.")
    rng = np.random.default_rng(derive_seed(seed, "synthetic showers"))
    e_inc = 10 ** rng.uniform(3.0, 6.0, n)
    sigma = 0.02 + 0.05 / np.sqrt(e_inc / 1e3)
    e_vis = e_inc * model.response * np.clip(1 + sigma * rng.standard_normal(n), 0.05, None)
    t, b = np.arange(geo.n_layers) + 1.0, 0.35
    t_max = 2 * model.depth * (np.log(e_inc / 8.0) - 0.5) * rng.lognormal(0.0, 0.1, n)
    log_p = b * t_max[:, None] * np.log(t)[None, :] - b * t[None, :]
    profile = np.exp(log_p - log_p.max(1, keepdims=True))
    profile /= profile.sum(1, keepdims=True)
    radius = (model.width * (2.5 + 0.25 * np.arange(geo.n_layers))[None, :]
              * rng.lognormal(0.0, 0.05, (n, 1)))
    x0, y0 = rng.normal(0.0, 1.0, (2, n, 1, 1))
    dist = np.hypot(geo.x[None] - x0, geo.y[None] - y0)
    weight = _areas(binning)[None] * np.exp(-dist / radius[:, :, None])
    weight /= weight.sum(-1, keepdims=True)
    noise = rng.gamma(model.noise_k, 1.0 / model.noise_k, weight.shape)
    showers = (e_vis[:, None, None] * profile[:, :, None]) * weight * noise
    return e_inc, showers.reshape(n, -1)


def _areas(binning: Binning) -> np.ndarray:  # (layers, voxels per layer) voxel areas [mm²]
    out = []
    for spec in binning.layers:
        edges = np.asarray(spec.r_edges)
        ring = np.pi * np.diff(edges**2) / spec.n_alpha
        out.append(np.tile(ring, spec.n_alpha))
    return np.stack(out)


def write_pair(directory: str | Path, binning: Binning, n: int, seed: int,
               generated: ShowerModel = GENERATED, reference: ShowerModel = REFERENCE
               ) -> tuple[Path, Path]:
    """Write ``gen.h5`` and ``ref.h5`` (``n`` showers each, independent random streams) with
    their binning XML into ``directory``; returns the two HDF5 paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, model in (("gen", generated), ("ref", reference)):
        e_inc, showers = synthetic_showers(binning, n, derive_seed(seed, name), model)
        paths.append(write_calochallenge(directory / f"{name}.h5", e_inc, showers, binning)[0])
    return paths[0], paths[1]
