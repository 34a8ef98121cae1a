"""Magnitude pruning of the L1 MLP: the smallest |w| of all Linear weights together are set
to zero (``torch.nn.utils.prune.global_unstructured``, L1), the rest fine-tuned with the mask
fixed, then the mask is made permanent. hls4ml drops multiplications by constant zeros at
reuse factor 1, so the nonzero weights count the multipliers the FPGA would keep."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from torch import nn
from torch.nn.utils import prune

from hepchain.deploy.mlp import fit_classifier


def prune_and_finetune(model: nn.Sequential, sparsity: float, x: np.ndarray, y: np.ndarray,
                       train: np.ndarray, val: np.ndarray, settings: dict[str, Any], seed: int,
                       name: str) -> nn.Sequential:
    """A copy of ``model`` with the fraction ``sparsity`` of its Linear weights zeroed and the
    rest fine-tuned on ``train`` (early stopping on ``val``)."""
    pruned = copy.deepcopy(model)
    weights = [(m, "weight") for m in pruned if isinstance(m, nn.Linear)]
    prune.global_unstructured(weights, pruning_method=prune.L1Unstructured, amount=sparsity)
    fit_classifier(pruned, x, y, train, val, settings, seed, name)
    for module, param in weights:
        prune.remove(module, param)
    return pruned.eval()


def nonzero_weights(model: nn.Module) -> int:
    """Nonzero Linear weights (the multiplications a fully parallel FPGA layer keeps)."""
    return int(sum((m.weight != 0).sum() for m in model.modules() if isinstance(m, nn.Linear)))
