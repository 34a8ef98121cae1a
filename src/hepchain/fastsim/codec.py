"""The representation every learned shower model works in, and the way back to voxels.

A shower (N, L·V voxels [MeV]) at incident energy E_inc [MeV] becomes (CaloFlow's split):

- layer energies u_l = ln((E_l + δ) / E_inc), δ = the voxel threshold ``min_energy``;
- per-layer voxel fractions f = v / E_l as logits x = logit(α + (1 − 2α) f), α = 1e-6;

both standardised per feature (``core.standardise``), concatenated into z (N, L + L·V); the
condition is c = standardised log10(E_inc / MeV). When encoding, every empty voxel gets
uniform noise in [0, 0.1 δ) before the fractions are taken (dequantisation: zeros become a
continuous density well below the threshold δ that any read-out hit exceeds).

Decoding inverts this and imposes what a read-out shower obeys: fractions clipped to [0, 1]
and renormalised per layer, voxels = fraction × E_l ≥ 0, voxels below δ set to 0, and the
total capped at ``ratio_cap`` × E_inc (1.5 × the largest E_tot/E_inc of the training showers),
so a model that extrapolates cannot create energy.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from hepchain.core.standardise import Standardiser
from hepchain.fastsim.voxels import VoxelGeometry

ALPHA = 1e-6
NOISE = 0.1
"""Dequantisation noise of empty voxels, in units of the threshold δ."""


class ShowerCodec:
    """Fitted on training showers; :meth:`encode` / :meth:`decode` as the module docstring."""

    def __init__(self, n_layers: int, per_layer: int, min_energy: float, ratio_cap: float,
                 z_scale: Standardiser, c_scale: Standardiser) -> None:
        self.n_layers, self.per_layer = n_layers, per_layer
        self.min_energy, self.ratio_cap = float(min_energy), float(ratio_cap)
        self.z_scale, self.c_scale = z_scale, c_scale

    @property
    def dim(self) -> int:
        return self.n_layers * (1 + self.per_layer)

    @classmethod
    def fit(cls, showers: np.ndarray, e_inc: np.ndarray, geometry: VoxelGeometry,
            min_energy: float, rng: np.random.Generator) -> ShowerCodec:
        delta = max(float(min_energy), 1e-6)
        raw = _features(geometry.layers(showers), np.asarray(e_inc, dtype=np.float64), delta, rng)
        ratio = np.asarray(showers).sum(1) / e_inc
        return cls(geometry.n_layers, geometry.per_layer, delta, 1.5 * float(ratio.max()),
                   Standardiser.fit(raw), Standardiser.fit(_cond(e_inc)))

    def encode(self, showers: np.ndarray, e_inc: np.ndarray, rng: np.random.Generator
               ) -> tuple[Tensor, Tensor]:
        """(z, c) float32 tensors of dequantised showers (N, L·V) [MeV] at ``e_inc`` [MeV]."""
        layers = np.asarray(showers, dtype=np.float64).reshape(len(showers), self.n_layers, -1)
        raw = _features(layers, np.asarray(e_inc, dtype=np.float64), self.min_energy, rng)
        return (torch.as_tensor(self.z_scale.transform(raw), dtype=torch.float32),
                self.condition(e_inc))

    def condition(self, e_inc: np.ndarray) -> Tensor:
        return torch.as_tensor(self.c_scale.transform(_cond(np.asarray(e_inc, np.float64))),
                               dtype=torch.float32)

    def decode(self, z: Tensor | np.ndarray, e_inc: np.ndarray) -> np.ndarray:
        """Showers (N, L·V) [MeV] from standardised features ``z`` at ``e_inc`` [MeV]."""
        raw = self.z_scale.inverse_transform(np.asarray(z, dtype=np.float64))
        e_inc = np.asarray(e_inc, dtype=np.float64)
        n, L = len(raw), self.n_layers
        u = np.clip(raw[:, :L], None, np.log(self.ratio_cap + self.min_energy / e_inc.min()))
        e_layer = np.clip(np.exp(u) * e_inc[:, None] - self.min_energy, 0.0, None)
        f = np.clip((_sigmoid(raw[:, L:].reshape(n, L, -1)) - ALPHA) / (1 - 2 * ALPHA), 0, 1)
        f = f / np.clip(f.sum(-1, keepdims=True), 1e-12, None)
        total = e_layer.sum(1)
        over = total > self.ratio_cap * e_inc
        e_layer[over] *= (self.ratio_cap * e_inc[over] / total[over])[:, None]
        voxels = (f * e_layer[:, :, None]).reshape(n, -1)
        voxels[voxels < self.min_energy] = 0.0
        return voxels

    def state_dict(self) -> dict:
        return {"n_layers": self.n_layers, "per_layer": self.per_layer,
                "min_energy": self.min_energy, "ratio_cap": self.ratio_cap,
                "z_scale": self.z_scale.state_dict(), "c_scale": self.c_scale.state_dict()}

    @classmethod
    def from_state_dict(cls, state: dict) -> ShowerCodec:
        return cls(int(state["n_layers"]), int(state["per_layer"]), state["min_energy"],
                   state["ratio_cap"], Standardiser.from_state_dict(state["z_scale"]),
                   Standardiser.from_state_dict(state["c_scale"]))


def _cond(e_inc: np.ndarray) -> np.ndarray:
    return np.log10(e_inc).reshape(-1, 1)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _features(layers: np.ndarray, e_inc: np.ndarray, delta: float,
              rng: np.random.Generator) -> np.ndarray:
    u = np.log((layers.sum(-1) + delta) / e_inc[:, None])
    v = np.where(layers > 0, layers, rng.uniform(0.0, NOISE * delta, layers.shape))
    f = ALPHA + (1 - 2 * ALPHA) * v / v.sum(-1, keepdims=True)
    return np.concatenate([u, np.log(f / (1 - f)).reshape(len(v), -1)], axis=1)
