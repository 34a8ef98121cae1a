"""What every learned shower model shares: the codec, sampling in batches, saving and loading.

A model maps the condition c (standardised log10 E_inc) to standardised shower features z
(:mod:`hepchain.fastsim.codec`) in :meth:`ShowerModel.sample_z`; :meth:`ShowerModel.generate`
turns incident energies [MeV] into voxel showers [MeV]. A saved model holds its kind,
hyper-parameters, weights, codec and the fingerprint of the voxel geometry it was trained on;
loading it for another geometry is a one-sentence :class:`UsageError`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from hepchain.core.errors import DataError, UsageError
from hepchain.core.io import atomic_torch_save
from hepchain.fastsim.codec import ShowerCodec
from hepchain.fastsim.voxels import VoxelGeometry


class ShowerModel(nn.Module, ABC):
    """Base class: ``kind`` names the model for saving; ``hparams`` rebuild it."""

    kind: str = ""

    def __init__(self, codec: ShowerCodec, **hparams: Any) -> None:
        super().__init__()
        self.codec = codec
        self.hparams = hparams

    @abstractmethod
    def sample_z(self, c: Tensor) -> Tensor:
        """One standardised feature vector per row of the condition ``c`` (N, 1)."""

    @torch.no_grad()
    def generate(self, e_inc: np.ndarray, seed: int = 0, batch_size: int = 10_000
                 ) -> np.ndarray:
        """Showers (N, n_voxels) [MeV] at incident energies ``e_inc`` (N,) [MeV]."""
        self.eval()
        torch.manual_seed(seed)
        e_inc = np.asarray(e_inc, dtype=np.float64).reshape(-1)
        out = [self.codec.decode(self.sample_z(self.codec.condition(e_inc[i:i + batch_size])),
                                 e_inc[i:i + batch_size])
               for i in range(0, len(e_inc), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, self.codec.dim))

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def save_model(model: ShowerModel, path: str | Path, geometry: VoxelGeometry,
               meta: dict[str, Any] | None = None) -> Path:
    """Write ``model`` with its codec, geometry fingerprint and ``meta`` (plain values, e.g. the
    ECAL settings and the data scale a producer needs) atomically; returns the path."""
    state = {"kind": model.kind, "hparams": model.hparams, "weights": model.state_dict(),
             "codec": model.codec.state_dict(), "geometry": geometry.fingerprint(),
             "geometry_label": geometry.label, "meta": meta or {}}
    return atomic_torch_save(state, path)


def read_state(path: str | Path) -> dict[str, Any]:
    """The saved dictionary of a model file (one sentence if it is not one)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p} does not exist; pass a model file written by `hepchain fastcalo "
                        "run` (models/*.pt in its workdir).")
    try:
        state = torch.load(p, weights_only=True)
    except Exception as exc:  # any unreadable file is one user error
        raise DataError(f"{p} is not a fastcalo model file ({exc.__class__.__name__}).") from None
    if not isinstance(state, dict) or not {"kind", "weights", "codec"} <= set(state):
        raise DataError(f"{p} is not a fastcalo model file (no kind, weights and codec).")
    return state


def load_model(path: str | Path, geometry: VoxelGeometry,
               kinds: dict[str, type[ShowerModel]]) -> ShowerModel:
    """A model saved by :func:`save_model`, checked against ``geometry``."""
    p = Path(path)
    state = read_state(p)
    kind = state["kind"]
    if kind not in kinds:
        raise DataError(f"{p} holds a {kind!r} model; known kinds: {sorted(kinds)}.")
    if state["geometry"] != geometry.fingerprint():
        raise UsageError(f"{p} was trained on {state['geometry_label']} "
                         f"({state['geometry']}) but the requested geometry is "
                         f"{geometry.label} ({geometry.fingerprint()}); generate with the "
                         "geometry the model was trained on.")
    model = kinds[kind](ShowerCodec.from_state_dict(state["codec"]), **state["hparams"])
    model.load_state_dict(state["weights"])
    return model.eval()
