"""The tagger zoo: one small module per model; :func:`build_network` makes a particle-level
network from its preset block. Every network maps ``(x, v, mask)`` — particle features
(B, P, F), four-vectors (B, P, 4) [GeV] and mask (B, P) — to (B, n_classes) logits."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from hepchain.core.errors import UsageError
from hepchain.core.seeding import derive_seed
from hepchain.reco.jettag.data import ParticleTensors

NETWORKS = ("PFN", "EFN", "ParticleNet", "ParT", "CNN", "GRU", "LorentzNet", "L-GATr")


def build_network(name: str, spec: dict[str, Any], tensors: ParticleTensors,
                  n_classes: int, seed: int | None = None) -> nn.Module:
    """The network ``name`` (one of :data:`NETWORKS`) with the sizes of ``spec``. With a
    ``seed``, torch is seeded with ``derive_seed(seed, "init", name)`` first, so the initial
    weights depend on the run seed and the name only, not on what was built before."""
    if seed is not None:
        torch.manual_seed(derive_seed(seed, "init", name))
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
        return ParticleNet(n_features, n_classes, spec["convs"], spec["fc"], angles,
                           bool(spec.get("fusion", True)))
    if name == "ParT":
        from hepchain.reco.jettag.models.part import ParT
        return ParT(n_features, n_classes, spec["embed"], spec["pair_embed"], spec["heads"],
                    spec["layers"], spec["cls_layers"])
    if name == "CNN":
        from hepchain.reco.jettag.models.cnn import JetImageCNN
        return JetImageCNN(n_classes, int(spec["pixels"]), float(spec["half_width"]),
                           spec["channels"], spec["fc"], angles)
    if name == "GRU":
        from hepchain.reco.jettag.models.rnn import GRUTagger
        return GRUTagger(n_features, n_classes, int(spec["hidden"]), int(spec["layers"]),
                         spec["fc"])
    if name == "LorentzNet":
        from hepchain.reco.jettag.models.lorentznet import LorentzNet
        return LorentzNet(n_classes, scalar_columns(tensors, spec["scalars"], name),
                          int(spec["hidden"]), int(spec["blocks"]), float(spec["c_weight"]),
                          float(spec["dropout"]), float(spec["p_scale"]), bool(spec["beams"]))
    if name == "L-GATr":
        from hepchain.reco.jettag.models.lgatr_tagger import LGATrTagger
        return LGATrTagger(n_classes, scalar_columns(tensors, spec["scalars"], name),
                           int(spec["blocks"]), int(spec["mv_channels"]),
                           int(spec["s_channels"]), int(spec["heads"]), spec["fc"],
                           float(spec["p_scale"]), bool(spec["spurions"]))
    raise UsageError(f"Model {name!r} is unknown; the particle-level models are "
                     f"{', '.join(NETWORKS)}.")


def scalar_columns(tensors: ParticleTensors, names: list[str], model: str) -> list[int]:
    """Columns of the particle features ``names`` (``["all"]``: every column) that ``model``
    takes as scalars; UsageError naming those the feature set lacks."""
    if list(names) == ["all"]:
        return list(range(tensors.features.shape[-1]))
    missing = [n for n in names if n not in tensors.names]
    if missing:
        raise UsageError(f"{model} takes the scalars {', '.join(missing)}, which the feature "
                         f"set lacks; choose among {', '.join(tensors.names)} or [all].")
    return [tensors.index(n) for n in names]
