"""Where the voxels of a shower lie: one description for hepchain's square-pixel ECAL and for
the cylindrical (r, α) voxels of a CaloChallenge binning.

Showers are (N, n_voxels) arrays [MeV], layers consecutive, every layer with the same number
of voxels (our ECAL, CaloChallenge datasets 2 and 3). Voxel centres are in mm in the plane
transverse to the incident particle: for a CaloChallenge binning x = r cos α, y = r sin α at
the bin centres, exactly as the challenge's ``XMLHandler`` (its "eta" and "phi").
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from hepchain.calo.formats.binning import Binning
from hepchain.calo.geometry import ECalGeometry
from hepchain.core.errors import DataError, UsageError


@dataclass(frozen=True, eq=False)
class VoxelGeometry:
    """Voxel centres ``x``, ``y``, ``r`` [mm], each (n_layers, voxels per layer); ``label``
    names the geometry (it is part of :meth:`fingerprint`)."""

    x: np.ndarray
    y: np.ndarray
    r: np.ndarray
    label: str

    @property
    def n_layers(self) -> int:
        return self.x.shape[0]

    @property
    def per_layer(self) -> int:
        return self.x.shape[1]

    @property
    def n_voxels(self) -> int:
        return self.x.size

    @classmethod
    def from_ecal(cls, geometry: ECalGeometry) -> VoxelGeometry:
        """The pixel centres of a :class:`ECalGeometry`, (y, x) order within a layer."""
        centres = (np.arange(geometry.n_pix) + 0.5) * geometry.pixel - geometry.half_width
        y, x = np.meshgrid(centres, centres, indexing="ij")
        x = np.tile(x.ravel(), (geometry.n_layers, 1))
        y = np.tile(y.ravel(), (geometry.n_layers, 1))
        return cls(x, y, np.hypot(x, y), f"ecal {geometry.shape} pixel {geometry.pixel:g} mm")

    @classmethod
    def from_binning(cls, binning: Binning) -> VoxelGeometry:
        """The (r, α) bin centres of a CaloChallenge binning; layers without voxels are
        dropped (as the challenge's ``relevantLayers``)."""
        layers = [spec for spec in binning.layers if spec.n_voxels > 0]
        if not layers or len({spec.n_voxels for spec in layers}) != 1:
            raise UsageError(f"The binning of {binning.particle!r} has layers of different "
                             "voxel counts; fastcalo models need equal layers (CaloChallenge "
                             "datasets 2 and 3).")
        r, alpha = zip(*(spec.centres() for spec in layers), strict=True)
        r = np.stack([v.ravel() for v in r])
        alpha = np.stack([v.ravel() for v in alpha])
        return cls(r * np.cos(alpha), r * np.sin(alpha), r,
                   f"calochallenge {binning.particle} {len(layers)}x{layers[0].n_voxels}")

    def layers(self, showers: np.ndarray) -> np.ndarray:
        """``showers`` (N, n_voxels) as (N, n_layers, per_layer); one sentence if they do not
        have this geometry's voxel count."""
        showers = np.asarray(showers)
        if showers.ndim != 2 or showers.shape[1] != self.n_voxels:
            raise DataError(f"Showers of shape {showers.shape} do not fit the geometry "
                            f"{self.label} ({self.n_voxels} voxels per shower).")
        return showers.reshape(len(showers), self.n_layers, self.per_layer)

    def fingerprint(self) -> str:
        """A short hash of the voxel positions: models trained on one geometry refuse another."""
        digest = hashlib.sha256(np.round(np.stack([self.x, self.y]), 4).tobytes())
        return f"{self.n_layers}x{self.per_layer}-{digest.hexdigest()[:12]}"
