"""The tagger zoo: one small module per model; :func:`build_network` makes a particle-level
network from its preset block. Every network maps ``(x, v, mask)`` — particle features
(B, P, F), four-vectors (B, P, 4) [GeV] and mask (B, P) — to (B, n_classes) logits."""

from __future__ import annotations

from typing import Any

from torch import nn

from hepchain.core.errors import UsageError
from hepchain.reco.jettag.data import ParticleTensors

NETWORKS = ("PFN", "EFN", "ParticleNet", "ParT")


def build_network(name: str, spec: dict[str, Any], tensors: ParticleTensors,
                  n_classes: int) -> nn.Module:
    """The network ``name`` (one of :data:`NETWORKS`) with the sizes of ``spec``."""
    n_features = tensors.features.shape[-1]
    angles = (tensors.index("part_deta"), tensors.index("part_dphi"))
    if name == "PFN":
        from hepchain.reco.jettag.models.pfn import PFN
        return PFN(n_features, n_classes, spec["phi"], spec["f"])
    if name == "EFN":
        from hepchain.reco.jettag.models.efn import EFN
        return EFN(n_classes, spec["phi"], spec["f"], angles)
    if name == "ParticleNet":
        from hepchain.reco.jettag.models.particlenet import ParticleNet
        return ParticleNet(n_features, n_classes, spec["convs"], spec["fc"], angles)
    if name == "ParT":
        from hepchain.reco.jettag.models.part import ParT
        return ParT(n_features, n_classes, spec["embed"], spec["pair_embed"], spec["heads"],
                    spec["layers"], spec["cls_layers"])
    raise UsageError(f"Model {name!r} is unknown; the particle-level models are "
                     f"{', '.join(NETWORKS)}.")
