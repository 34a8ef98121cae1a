"""A constituent-level tagger (the jet-tagging zoo's PFN / Deep Sets, its inputs cut to the
leading few particles) through hls4ml's PyTorch front end.

hls4ml 1.3 converts a network by tracing it with ``torch.fx`` and mapping each node to one of
its layers; a node it has no layer for raises a bare ``Exception("Unsupported function
<op>")``. :func:`attempt` records that as a result — the op, the ``torch.fx`` node and
hls4ml's message — instead of a crash; if the conversion succeeds, the model is compiled and
its emulation compared with torch on the given jets.
"""

from __future__ import annotations

import contextlib
import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from hepchain.deploy import hls


@dataclass(frozen=True)
class Attempt:
    """Outcome of one hls4ml conversion: ``stops_at`` (op and ``torch.fx`` node) and hls4ml's
    ``message`` when it fails; else the emulation's agreement with torch on the jets given
    (fraction of identical top classes, max |Δ output|)."""

    converted: bool
    stops_at: str = ""
    message: str = ""
    identical_top_class: float = float("nan")
    max_abs_diff: float = float("nan")

    def summary(self) -> str:
        """One line: where hls4ml stops, or how well its emulation agrees."""
        if not self.converted:
            return f"hls4ml stops at {self.stops_at}: {self.message}"
        return (f"hls4ml converts it; emulation vs torch: {self.identical_top_class:.3f} "
                f"identical top class, max |Δ| {self.max_abs_diff:.3g}")


def attempt(model: nn.Module, inputs: list[np.ndarray], output_dir: str | Path,
            precision: str = "ap_fixed<16,6>") -> Attempt:
    """Convert ``model`` (called as ``model(*inputs)``, arrays (N, ...) of the jets, N ≥ 1) with
    hls4ml, every type ``precision``; on success compile it with g++ and compare."""
    model = model.eval()
    try:
        graph = hls.convert(model, [tuple(a.shape[1:]) for a in inputs], output_dir, precision)
    except Exception as err:  # hls4ml raises bare Exceptions for what it cannot convert
        return Attempt(False, _failing_node(model, str(err)), str(err))
    arrays = [np.ascontiguousarray(a, np.float32) for a in inputs]
    with contextlib.redirect_stdout(io.StringIO()):
        graph.compile()
        out = graph.predict(arrays if len(arrays) > 1 else arrays[0])
    out = np.asarray(out, np.float64).reshape(len(inputs[0]), -1)
    with torch.no_grad():
        ref = model(*(torch.from_numpy(a) for a in inputs)).numpy()
    return Attempt(True, identical_top_class=float(np.mean(out.argmax(1) == ref.argmax(1))),
                   max_abs_diff=float(np.abs(out - ref).max()))


def _failing_node(model: nn.Module, message: str) -> str:
    """The op of hls4ml's "Unsupported function/layer <op>" message and the first node of
    hls4ml's own ``torch.fx`` trace that is that op (``torch.fx`` format)."""
    from hls4ml.utils.torch import CustomFXTracer

    found = re.search(r"Unsupported (?:function|layer) (\w+)", message)
    if not found:
        return "conversion"
    op = found.group(1)
    for node in CustomFXTracer().trace(model).nodes:
        target = getattr(node.target, "__name__", str(node.target))
        if re.sub(r"_\d+$", "", node.name) == op or target == op:
            return f"`{op}` (torch.fx node {node.format_node().strip()})"
    return f"`{op}`"
