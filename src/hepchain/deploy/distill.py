"""Knowledge distillation into the L1 MLP: a constituent-level teacher from the jet-tagging
zoo (:mod:`hepchain.reco.jettag`: its particle features, networks and training) trained on
the same jets and split, whose class scores the MLP students on 16 features learn from
(:func:`hepchain.deploy.mlp.fit_classifier` with ``teacher``)."""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import nn

from hepchain.reco.jettag.data import ParticleTensors, particle_features
from hepchain.reco.jettag.models import build_network
from hepchain.reco.jettag.training import fit_network


def teacher_logits(records: Any, labels: np.ndarray, n_classes: int, train: np.ndarray,
                   val: np.ndarray, spec: dict[str, Any], seed: int
                   ) -> tuple[nn.Module, ParticleTensors, np.ndarray]:
    """The teacher ``spec["model"]`` (a :data:`hepchain.reco.jettag.models.NETWORKS` name,
    sizes ``spec["size"]``) trained on ``spec["features"]`` of the leading
    ``spec["max_particles"]`` constituents (in eval mode), its inputs, and the log class
    probabilities (N, n_classes) of all jets; log probabilities equal the logits up to a
    per-jet constant, which softmax ignores."""
    tensors = particle_features(records, spec["features"], int(spec["max_particles"]))
    net = build_network(spec["model"], spec["size"], tensors, n_classes, seed)
    fitted = fit_network(net, tensors, labels, train, val, spec["train"], seed, "teacher")
    probs = fitted.score(np.arange(labels.size))
    return fitted.model, tensors, np.log(np.clip(probs, 1e-7, None)).astype(np.float32)
