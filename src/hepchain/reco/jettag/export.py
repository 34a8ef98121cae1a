"""ONNX export of a zoo network: inputs ``x`` (B, P, F) float32, ``v`` (B, P, 4) float32,
``mask`` (B, P) bool, output ``probs`` (B, C) softmax; dynamic in B and P; the class names as
JSON in the model's metadata. :func:`onnx_agreement` compares onnxruntime with torch;
:func:`export_and_check` does both.

Networks export through ``torch.export`` (the dynamo exporter) unless they set the class
attribute ``onnx_legacy = True``: then the TorchScript tracer (``dynamo=False``) is used, as
weaver-core does for its ParT (``torch.export`` fails inside weaver-core 0.5.3's ParT).
The example runs once eagerly first: ``lgatr`` builds its geometric-algebra tables lazily
(``lru_cache``), and a first call inside the exporter's trace would cache traced tensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from hepchain.core.io import onnx_export_path, save_onnx

INPUTS = ("x", "v", "mask")


class Probabilities(nn.Module):
    """Softmax of a zoo network's logits: what the exported graph computes."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor, v: Tensor, mask: Tensor) -> Tensor:
        return torch.softmax(self.net(x, v, mask), dim=-1)


def export_onnx(net: nn.Module, example: tuple[Tensor, Tensor, Tensor], path: str | Path,
                classes: Sequence[str]) -> Path:
    """Write ``net`` (in eval mode) as ONNX to ``path`` (see the module docstring)."""
    import onnx

    wrapper = Probabilities(net).eval()
    with torch.no_grad():
        wrapper(*example)  # fills lazily built caches (lgatr's tables) with real tensors
    batch, parts = torch.export.Dim("batch", min=1), torch.export.Dim("particles", min=2)
    shapes = {name: {0: batch, 1: parts} for name in INPUTS}
    with onnx_export_path(path) as tmp:
        if getattr(net, "onnx_legacy", False):
            axes = {name: {0: "batch", 1: "particles"} for name in INPUTS}
            torch.onnx.export(wrapper, example, str(tmp), input_names=list(INPUTS),
                              output_names=["probs"], dynamic_axes=axes | {
                                  "probs": {0: "batch"}}, dynamo=False, opset_version=17)
            proto = onnx.load(tmp)
        else:
            proto = torch.onnx.export(wrapper, example, input_names=list(INPUTS),
                                      output_names=["probs"], dynamic_shapes=shapes,
                                      dynamo=True, verbose=False).model_proto
        save_onnx(proto, tmp, {"classes": list(classes)})
    return Path(path)


def onnx_agreement(net: nn.Module, path: str | Path, inputs: tuple[Tensor, Tensor, Tensor]
                   ) -> float:
    """max |p_onnxruntime − p_torch| over ``inputs`` (x, v, mask)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    probs = sess.run(["probs"], {k: t.numpy() for k, t in zip(INPUTS, inputs, strict=True)})[0]
    with torch.no_grad():
        ref = Probabilities(net).eval()(*inputs).numpy()
    return float(np.abs(probs - ref).max())


def export_and_check(net: nn.Module, inputs: tuple[Tensor, Tensor, Tensor], path: str | Path,
                     classes: Sequence[str]) -> float:
    """Export ``net`` to ``path`` with ``inputs`` as the example and return
    :func:`onnx_agreement` on those inputs."""
    return onnx_agreement(net, export_onnx(net, inputs, path, classes), inputs)
