"""Quantisation-aware training with brevitas, and the exact hand-over to hls4ml.

:func:`qat_mlp` is the L1 MLP with every tensor on a power-of-two (fixed-point) grid, which
``ap_fixed`` represents exactly: inputs ``Int8ActPerTensorFixedPoint`` (signed, b bits),
weights ``Int8WeightPerTensorFixedPoint`` (b bits, narrow range), biases ``Int16Bias`` (16 bits
on the input × weight scale), ReLU outputs ``Uint8ActPerTensorFixedPoint`` (unsigned, b bits);
brevitas learns each scale (rounded to a power of two) with straight-through gradients, and
rounds half to even (``torch.round``).

hls4ml 1.3's PyTorch front end rejects brevitas layers ("Unsupported layer QuantIdentity") and
its QONNX route needs ``qonnx``, which is not installed, so :func:`plain_twin` hands the trained
model over itself: a float ``nn.Sequential`` carrying brevitas' quantised weights and biases,
plus per-layer hls4ml types that reproduce brevitas' grids — input
``ap_fixed<b, b−f, AP_RND_CONV, AP_SAT>``, weights/biases exact, accumulators wide enough
never to round or overflow, ReLU outputs ``ap_ufixed<b, b−f, AP_RND_CONV, AP_SAT>`` — so the
C++ emulation computes the same integers as brevitas.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise

import numpy as np
import torch
from torch import nn

from hepchain.core.errors import DataError
from hepchain.deploy.fixedpoint import FixedType

ACC_INTEGER_BITS = 24  # accumulator integer bits: sums up to 2^23, far above any logit here
CALIBRATION_STEPS = 8  # batches of activation statistics that initialise brevitas' scales


def qat_mlp(n_in: int, hidden: Sequence[int], n_out: int, bits: int) -> nn.Sequential:
    """The L1 MLP with ``bits``-bit fixed-point inputs, weights and activations (module
    docstring); outputs float logits (the last layer's exact accumulator)."""
    import brevitas.nn as qnn
    from brevitas.quant import (
        Int8ActPerTensorFixedPoint,
        Int8WeightPerTensorFixedPoint,
        Int16Bias,
        Uint8ActPerTensorFixedPoint,
    )

    layers: list[nn.Module] = [qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint,
                                                 bit_width=bits, return_quant_tensor=True,
                                                 collect_stats_steps=CALIBRATION_STEPS)]
    dims = [n_in, *hidden, n_out]
    for k, (a, b) in enumerate(pairwise(dims)):
        last = k == len(dims) - 2
        layers.append(qnn.QuantLinear(a, b, bias=True, weight_quant=Int8WeightPerTensorFixedPoint,
                                      weight_bit_width=bits, bias_quant=Int16Bias,
                                      return_quant_tensor=not last))
        if not last:
            layers.append(qnn.QuantReLU(act_quant=Uint8ActPerTensorFixedPoint, bit_width=bits,
                                        return_quant_tensor=True,
                                        collect_stats_steps=CALIBRATION_STEPS))
    return nn.Sequential(*layers)


def calibrate(model: nn.Module, x: np.ndarray, batch: int) -> nn.Module:
    """Initialise the activation scales of a :func:`qat_mlp` from the statistics of
    :data:`CALIBRATION_STEPS` batches of ``x`` (no weight update), as brevitas does during its
    first training steps; afterwards the state dict is complete, so a checkpointed training
    resumes onto the same parameters."""
    model.train()
    with torch.no_grad():
        for k in range(CALIBRATION_STEPS):
            model(torch.from_numpy(np.asarray(x[np.arange(k * batch, (k + 1) * batch) % len(x)],
                                              np.float32)))
    return model


def plain_twin(model: nn.Sequential, example: np.ndarray
               ) -> tuple[nn.Sequential, dict[str, dict[str, str]]]:
    """(float ``nn.Sequential`` of Linear/ReLU with the quantised parameters, hls4ml per-layer
    types by layer name) of a trained :func:`qat_mlp`; ``example`` inputs fix nothing but
    let brevitas report its runtime scales."""
    import brevitas.nn as qnn

    model = model.eval()
    twin: list[nn.Module] = []
    types: dict[str, dict[str, str]] = {}
    with torch.no_grad():
        h = model[0](torch.from_numpy(np.asarray(example[:8], np.float32)))
        types["input_1"] = {"result": _grid(h, signed=True).hls()}
        for module in list(model)[1:]:
            name = f"_{len(twin)}"
            if isinstance(module, qnn.QuantLinear):
                w = module.quant_weight()
                b = module.bias_quant(module.bias, h, w)
                linear = nn.Linear(module.in_features, module.out_features)
                linear.weight.copy_(w.value)
                linear.bias.copy_(b.value)
                f_acc = _fraction_bits(b.scale)
                acc = FixedType(ACC_INTEGER_BITS + f_acc, ACC_INTEGER_BITS).hls()
                types[name] = {"weight": _grid(w, signed=True).hls(),
                               "bias": _grid(b, signed=True).hls(), "accum": acc, "result": acc}
                twin.append(linear)
            elif isinstance(module, qnn.QuantReLU):
                types[name] = {"result": _grid(module(h), signed=False).hls()}
                twin.append(nn.ReLU())
            else:
                raise DataError(f"plain_twin handles QuantLinear and QuantReLU, got "
                                f"{type(module).__name__}.")
            h = module(h)
    return nn.Sequential(*twin).eval(), types


def _fraction_bits(scale: torch.Tensor) -> int:
    """f with scale = 2^-f; DataError if the scale is not a single power of two."""
    s = float(scale.reshape(-1)[0])
    f = -math.log2(s)
    if scale.numel() != 1 or abs(f - round(f)) > 1e-9:
        raise DataError(f"A brevitas scale {s} is not one power of two; use fixed-point "
                        "(power-of-two, per-tensor) quantisers.")
    return round(f)


def _grid(q: object, signed: bool) -> FixedType:
    """The ``ap_(u)fixed`` type holding brevitas' quantised tensor ``q`` exactly
    (round half to even, saturate)."""
    bits = round(float(q.bit_width))  # type: ignore[attr-defined]
    f = _fraction_bits(q.scale)  # type: ignore[attr-defined]
    return FixedType(bits, bits - f, signed, "RND_CONV", "SAT")
