"""hls4ml conversion of a PyTorch network and its bit-accurate C++ emulation.

:func:`convert` checks the layers against hls4ml's PyTorch front end first (a clear
UsageError instead of hls4ml's bare ``Exception``), builds the hls4ml config — one precision
for everything (``precision``, the post-training-quantisation scan) or per-layer precisions
(``layers``, the QAT export of :mod:`hepchain.deploy.qat`) — and converts with ``io_parallel``
and the latency strategy, reuse factor 1, as the hls4ml tutorial. :func:`emulate` writes the
HLS project into ``output_dir``, compiles it with the system g++ (no vendor tools) and returns
the compiled model with the compile time; ``Emulated.predict`` runs the C++ emulation
(≈ C simulation) on float inputs.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from hepchain.core.errors import UsageError

BACKEND = "Vitis"
PART = "xcvu13p-flga2577-2-e"  # the hls4ml tutorial's board family; only written into the project
CLOCK_NS = 5.0
SKIPPED = ("Dropout", "Sequential")  # layers hls4ml's PyTorch front end drops (pytorch_to_hls)


@dataclass
class Emulated:
    """A compiled hls4ml model: ``predict`` is its C++ emulation; ``compile_s`` the wall and
    ``compile_cpu_s`` the g++ CPU seconds of :func:`emulate`."""

    graph: Any  # hls4ml.model.graph.ModelGraph
    compile_s: float
    compile_cpu_s: float
    output_dir: Path

    def predict(self, x: np.ndarray | list[np.ndarray]) -> np.ndarray:
        """Emulated outputs (N, n_out) of float inputs ``x`` (N, n_in), or of a list of the
        model's inputs (N, ...), as float64."""
        arrays = [np.ascontiguousarray(a, np.float32) for a in (x if isinstance(x, list) else [x])]
        with contextlib.redirect_stdout(io.StringIO()):
            out = self.graph.predict(arrays if len(arrays) > 1 else arrays[0])
        return np.asarray(out, np.float64).reshape(len(arrays[0]), -1)


def supported_layers() -> list[str]:
    """Module class names hls4ml's PyTorch front end converts (its own registry) or drops."""
    from hls4ml.converters.pytorch_to_hls import get_supported_pytorch_layers

    return sorted({*get_supported_pytorch_layers(), *SKIPPED})


def check_supported(model: nn.Module) -> None:
    """UsageError naming the first layer hls4ml cannot convert, checked on the modules hls4ml's
    tracer treats as layers (torch.nn and brevitas.nn modules other than Sequential, and
    modules without children), before hls4ml raises a bare ``Exception``."""
    known = set(supported_layers())
    for name, module in _layers(model, ""):
        kind = type(module).__name__
        if kind not in known:
            hint = (" (a brevitas layer: export it with hepchain.deploy.qat.plain_twin)"
                    if type(module).__module__.startswith("brevitas") else "")
            raise UsageError(f"hls4ml's PyTorch front end does not support layer {name!r} of "
                             f"type {kind}{hint}; supported types include Linear, ReLU, "
                             "Conv1d/2d, BatchNorm1d, Softmax.")


def _layers(module: nn.Module, prefix: str) -> list[tuple[str, nn.Module]]:
    """(name, module) of the layers hls4ml's tracer would see (``CustomFXTracer``)."""
    origin = type(module).__module__
    leaf = next(module.children(), None) is None or (
        origin.startswith(("torch.nn", "brevitas.nn")) and not isinstance(module, nn.Sequential))
    if leaf and prefix:
        return [(prefix, module)]
    return [layer for name, child in module.named_children()
            for layer in _layers(child, f"{prefix}.{name}" if prefix else name)]


def convert(model: nn.Module, n_in: int | list[tuple[int, ...]], output_dir: str | Path,
            precision: str = "ap_fixed<16,6>",
            layers: dict[str, dict[str, str]] | None = None) -> Any:
    """The hls4ml ``ModelGraph`` of ``model`` (one input of width ``n_in``, or the shapes of
    several inputs without the batch axis): every type ``precision``, or with ``layers`` =
    {hls4ml layer name: {"result"/"weight"/"bias"/"accum": type}} those types per layer (the
    rest ``precision``)."""
    import hls4ml

    check_supported(model)
    with contextlib.redirect_stdout(io.StringIO()):
        config = hls4ml.utils.config_from_pytorch_model(
            model, input_shape=(n_in,) if isinstance(n_in, int) else n_in, granularity="name" if layers else "model",
            default_precision=precision, backend=BACKEND)
        if layers:
            for name, types in layers.items():
                if name not in config["LayerName"]:
                    raise UsageError(f"hls4ml has no layer {name!r}; it has "
                                     f"{', '.join(config['LayerName'])}.")
                config["LayerName"][name]["Precision"].update(types)
            for entry in config["LayerName"].values():  # no "auto" left: all explicit
                for key, value in entry.get("Precision", {}).items():
                    if value == "auto":
                        entry["Precision"][key] = precision
        return hls4ml.converters.convert_from_pytorch_model(
            model, hls_config=config, output_dir=str(output_dir), backend=BACKEND, part=PART,
            clock_period=CLOCK_NS, io_type="io_parallel")


def emulate(model: nn.Module, n_in: int | list[tuple[int, ...]], output_dir: str | Path,
            precision: str = "ap_fixed<16,6>",
            layers: dict[str, dict[str, str]] | None = None) -> Emulated:
    """:func:`convert`, write the HLS project into ``output_dir`` and compile its C++
    emulation with g++ (timed)."""
    graph = convert(model, n_in, output_dir, precision, layers)
    cpu0, t0 = children_cpu_s(), time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        graph.compile()
    return Emulated(graph, time.perf_counter() - t0, children_cpu_s() - cpu0, Path(output_dir))


def children_cpu_s() -> float:
    """User + system CPU seconds of finished child processes (g++)."""
    t = os.times()
    return t.children_user + t.children_system
