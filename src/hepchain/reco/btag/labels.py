"""Training targets: jet flavour, track origin (8 classes) and same-vertex edge labels.

Track origin classes (GN1/Salt convention, ``truth_origin`` of the producer):

====  ==============  ===========================================
  0   pileup          from a pile-up interaction
  1   fake            not matched to a charged particle
  2   primary         from the hard-scatter primary vertex
  3   fromB           from a b-hadron decay
  4   fromBC          from a c-hadron from a b-hadron decay
  5   fromC           from a prompt c-hadron decay
  6   fromTau         from a τ decay
  7   otherSecondary  other secondaries (K⁰_S, Λ, conversions, interactions)
====  ==============  ===========================================

Edge label of a track pair (i, j), i ≠ j: 1 if both tracks come from the same truth vertex
(``truth_vertex`` equal and ≥ 0), else 0. Pile-up and fake tracks are given no vertex, so
they never share one. The labels are symmetric by construction; the diagonal and pairs with a
padded track are excluded from the loss. :func:`edge_weights` weights the pairs of two
heavy-flavour tracks (salt's vertexing loss weights them 2).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from hepchain.core.errors import UsageError

ORIGIN_CLASSES: tuple[str, ...] = ("pileup", "fake", "primary", "fromB", "fromBC", "fromC",
                                   "fromTau", "otherSecondary")
NO_VERTEX_ORIGINS: tuple[int, ...] = (0, 1)
"""Origins that cannot share a truth vertex with another track of the jet."""
HEAVY_FLAVOUR_ORIGINS: tuple[int, ...] = (3, 4, 5)
"""fromB, fromBC, fromC: tracks from the heavy-flavour decay chain."""

FLAVOUR_CODES: dict[str, int] = {"b": 5, "c": 4, "light": 0, "tau": 15}
"""Producer's jet ``flavour`` code for each class name."""


def jet_labels(flavour: np.ndarray, classes: tuple[str, ...] | list[str]) -> np.ndarray:
    """Class index of each jet in ``classes`` (e.g. ``("b", "c", "light")``); −1 for jets of a
    flavour not in ``classes`` (e.g. τ jets when τ is not a class)."""
    unknown = [c for c in classes if c not in FLAVOUR_CODES]
    if unknown:
        raise UsageError(f"Unknown jet flavour class(es) {unknown}; use {sorted(FLAVOUR_CODES)}.")
    out = np.full(len(flavour), -1, dtype=np.int64)
    for i, name in enumerate(classes):
        out[np.asarray(flavour) == FLAVOUR_CODES[name]] = i
    return out


def clean_vertex(vertex: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """``truth_vertex`` with pile-up/fake tracks (and padding, origin −1) set to −1."""
    v = np.asarray(vertex, dtype=np.int64).copy()
    o = np.asarray(origin)
    v[np.isin(o, NO_VERTEX_ORIGINS) | (o < 0)] = -1
    return v


def edge_labels(vertex: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Same-vertex targets for all track pairs.

    ``vertex``: (B, T) truth-vertex index per track (−1: none or padding); ``mask``: (B, T)
    True for real tracks. Returns ``(target, valid)``, both (B, T, T): ``target`` is 1.0 where
    i ≠ j and both tracks share a vertex ≥ 0; ``valid`` is True for pairs of two real,
    distinct tracks (the pairs that enter the loss and the metrics).
    """
    t = vertex.shape[1]
    eye = torch.eye(t, dtype=torch.bool, device=vertex.device)
    valid = mask[:, :, None] & mask[:, None, :] & ~eye
    same = (vertex[:, :, None] == vertex[:, None, :]) & (vertex[:, :, None] >= 0)
    return (same & valid).float(), valid


def edge_weights(origin: Tensor, hf_pair_weight: float) -> Tensor:
    """Loss weight of every track pair (B, T, T): ``hf_pair_weight`` where both tracks come
    from the heavy-flavour chain (``HEAVY_FLAVOUR_ORIGINS``), 1 elsewhere.

    >>> edge_weights(torch.tensor([[3, 5, 2]]), 2.0)[0].tolist()
    [[2.0, 2.0, 1.0], [2.0, 2.0, 1.0], [1.0, 1.0, 1.0]]
    """
    hf = torch.isin(origin, torch.tensor(HEAVY_FLAVOUR_ORIGINS, device=origin.device))
    both = hf[:, :, None] & hf[:, None, :]
    return 1.0 + (hf_pair_weight - 1.0) * both.float()


def origin_class_weights(origin: np.ndarray, n_classes: int = len(ORIGIN_CLASSES),
                         max_weight: float = 20.0) -> np.ndarray:
    """Inverse-frequency class weights ``N / (K n_c)`` over real tracks (origin ≥ 0), capped
    at ``max_weight``; classes absent from the sample get weight 0 (they cannot occur)."""
    o = np.asarray(origin).ravel()
    counts = np.bincount(o[o >= 0], minlength=n_classes).astype(float)
    present = counts > 0
    w = np.zeros(n_classes)
    w[present] = counts.sum() / (present.sum() * counts[present])
    return np.minimum(w, max_weight)
