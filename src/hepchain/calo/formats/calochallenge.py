"""CaloChallenge HDF5 showers (Fast Calorimeter Simulation Challenge 2022, datasets 1–3).

A file holds two datasets::

    incident_energies   (N, 1)          incident particle energy [MeV]
    showers             (N, n_voxels)   deposited energy per voxel [MeV]

and the voxel geometry lives in the dataset's binning XML (:mod:`.binning`). The reader
checks that the two agree and returns both; the writer writes the same layout and the XML
beside it, so a file round-trips. :func:`pixels_to_voxels` turns hepchain's square-pixel
ECAL images (``calo.produce`` datasets) into cylindrical voxels, so our full-sim showers can
be written in this layout and evaluated with the challenge's code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hepchain.calo.formats.binning import Binning, LayerBinning, read_binning, write_binning
from hepchain.calo.geometry import ECalGeometry
from hepchain.core.errors import DataError, UsageError
from hepchain.core.io import atomic_path

KEYS = ("incident_energies", "showers")


@dataclass(frozen=True)
class CaloChallengeData:
    """Showers with their geometry: ``incident_energies`` (N,) [MeV], ``showers``
    (N, n_voxels) [MeV] in the voxel order of ``binning``."""

    incident_energies: np.ndarray
    showers: np.ndarray
    binning: Binning


def count_showers(path: str | Path) -> int:
    """Number of showers in a CaloChallenge HDF5 file (checks its layout)."""
    with _open(path) as fh:
        return int(fh["showers"].shape[0])


def read_calochallenge(path: str | Path, binning_xml: str | Path, particle: str | None = None,
                       start: int | None = None, stop: int | None = None) -> CaloChallengeData:
    """Showers ``start:stop`` of a CaloChallenge HDF5 file and the binning of ``particle``
    from ``binning_xml``; one sentence if the file or the XML is not in that layout or the
    voxel counts disagree."""
    binning = read_binning(binning_xml, particle)
    rows = slice(start, stop)
    with _open(path) as fh:
        energies, showers = fh["incident_energies"], fh["showers"]
        if showers.shape[1] != binning.n_voxels:
            raise DataError(f"{path} has {showers.shape[1]} voxels per shower but {binning_xml} "
                            f"describes {binning.n_voxels}; pass the binning XML of this "
                            "dataset.")
        return CaloChallengeData(np.asarray(energies[rows]).reshape(-1), showers[rows], binning)


def write_calochallenge(path: str | Path, incident_energies: np.ndarray, showers: np.ndarray,
                        binning: Binning, xml_path: str | Path | None = None) -> tuple[Path, Path]:
    """Write ``incident_energies`` (N,) [MeV] and ``showers`` (N, n_voxels) [MeV] as a
    CaloChallenge HDF5 file and ``binning`` as its XML (default: ``path`` with suffix
    ``.xml``); returns both paths.

    Stored as float64: the challenge's ``evaluate.py --mode cls-low`` feeds the file's arrays
    uncast to its float64 DNN and fails on float32 showers (measured, docs/fastcalo.md)."""
    import h5py

    energies = np.asarray(incident_energies, dtype=np.float64).reshape(-1, 1)
    showers = np.asarray(showers, dtype=np.float64)
    if showers.ndim != 2 or showers.shape != (len(energies), binning.n_voxels):
        raise UsageError(f"showers must be (N, {binning.n_voxels}) for this binning and "
                         f"{len(energies)} energies, got {showers.shape}.")
    path = Path(path)
    xml = Path(xml_path) if xml_path is not None else path.with_suffix(".xml")
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as fh:
        fh.create_dataset("incident_energies", data=energies)
        fh.create_dataset("showers", data=showers, compression="gzip", compression_opts=4)
    return path, write_binning(binning, xml)


def pixels_to_voxels(showers: np.ndarray, geometry: ECalGeometry, binning: Binning,
                     oversample: int = 8) -> np.ndarray:
    """Rebin square-pixel images (N, layers, n_pix, n_pix) [MeV], (y, x) centred on the beam
    axis, into the cylindrical voxels of ``binning`` (N, n_voxels) [MeV].

    Each pixel is split into ``oversample``² equal sub-cells that take equal shares of its
    energy and go to the voxel of their centre (α = atan2(y, x)): per-layer and total energy
    are conserved exactly; positions are resolved to pixel/oversample.
    """
    showers = np.asarray(showers)
    if showers.shape[1:] != geometry.shape:
        raise UsageError(f"showers have shape {showers.shape[1:]} per event, not the "
                         f"{geometry.shape} of this geometry.")
    if len(binning.layers) != geometry.n_layers:
        raise UsageError(f"The binning has {len(binning.layers)} layers, the calorimeter "
                         f"{geometry.n_layers}; use one binning layer per readout layer.")
    if oversample < 1:
        raise UsageError(f"oversample={oversample} must be at least 1 sub-cell per pixel side.")
    corner = geometry.half_width * math.sqrt(2)
    n_sub = geometry.n_pix * oversample
    centres = (np.arange(n_sub) + 0.5) * geometry.pixel / oversample - geometry.half_width
    y, x = np.meshgrid(centres, centres, indexing="ij")
    pixel = ((np.arange(n_sub) // oversample)[:, None] * geometry.n_pix
             + (np.arange(n_sub) // oversample)[None, :]).ravel()
    r, alpha = np.hypot(x, y).ravel(), np.arctan2(y, x).ravel()
    flat = showers.reshape(len(showers), geometry.n_layers, -1)
    out = np.zeros((len(showers), binning.n_voxels), dtype=np.float64)
    weights: dict[LayerBinning, np.ndarray] = {}
    for i, spec in enumerate(binning.layers):
        if spec.n_voxels == 0 or spec.r_edges[0] > 0 or spec.r_edges[-1] < corner:
            raise UsageError(f"Binning layer {i} must cover the pixel grid, r from 0 to "
                             f"{corner:.4g} mm (it has r_edges {spec.r_edges[0]:g}–"
                             f"{spec.r_edges[-1]:g} mm).")
        if spec not in weights:
            r_bin = np.clip(np.searchsorted(spec.r_edges, r, side="right") - 1, 0, spec.n_r - 1)
            a_bin = np.minimum(((alpha + math.pi) / (2 * math.pi) * spec.n_alpha).astype(int),
                               spec.n_alpha - 1)
            w = np.zeros((geometry.n_pix**2, spec.n_voxels))
            np.add.at(w, (pixel, a_bin * spec.n_r + r_bin), 1.0 / oversample**2)
            weights[spec] = w
        lo, hi = binning.layer_edges[i:i + 2]
        out[:, lo:hi] = flat[:, i] @ weights[spec]
    return out


def _open(path: str | Path):  # -> an open h5py.File whose layout has been checked
    import h5py

    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p} does not exist; pass a CaloChallenge HDF5 file.")
    try:
        fh = h5py.File(p, "r")
    except OSError as exc:
        raise DataError(f"Cannot read {p} as HDF5 ({exc}).") from exc
    problem = _layout_problem(fh)
    if problem:
        fh.close()
        raise DataError(f"{p} {problem}; it is not a CaloChallenge file (incident_energies "
                        "(N, 1) and showers (N, voxels), numeric).")
    return fh


def _layout_problem(fh) -> str | None:  # fh: h5py.File
    import h5py

    missing = [k for k in KEYS if not isinstance(fh.get(k), h5py.Dataset)]
    if missing:
        return f"lacks the datasets {missing} (it has {list(fh)})"
    energies, showers = fh["incident_energies"], fh["showers"]
    if energies.dtype.kind not in "iuf" or showers.dtype.kind not in "iuf":
        return "has non-numeric datasets"
    if showers.ndim != 2 or energies.ndim not in (1, 2) or energies.size != showers.shape[0]:
        return (f"has incident_energies {energies.shape} and showers {showers.shape}, not "
                "one energy per 2-D shower row")
    return None
