"""HLT-style CPU inference: ONNX export of a features → logits network and onnxruntime vs
torch eager latency, both on one thread, measured in the same process one after the other.

Latency at batch 1 is the median wall time of one call over ``repeats`` calls (after
``warmup`` calls); throughput at batch B is B / median time of one B-batch call [jets/s].
:func:`time_inference` takes any network whose ONNX graph has the same named inputs (e.g. the
b-tagging GN1's tracks, mask and jet), fed to torch positionally in that order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from hepchain.core.io import onnx_export_path, save_onnx


@dataclass(frozen=True)
class Timing:
    """Median seconds per call at batch 1 and jets/s at the large batch, per runtime."""

    onnx_batch1_s: float
    torch_batch1_s: float
    onnx_jets_per_s: float
    torch_jets_per_s: float
    max_abs_diff: float  # max |logit_onnx − logit_torch| over the timed large batch

    @property
    def speedup_batch1(self) -> float:
        """torch eager time / onnxruntime time at batch 1."""
        return self.torch_batch1_s / self.onnx_batch1_s


def export_onnx(model: nn.Module, n_in: int, path: str | Path,
                metadata: dict[str, object] | None = None) -> Path:
    """Write ``model`` (features ``x`` (B, n_in) float32 → ``logits``, dynamic B) as ONNX,
    ``metadata`` as JSON strings in the model's metadata; checked by ``onnx.checker``."""
    model = model.eval()
    with onnx_export_path(path) as tmp:
        proto = torch.onnx.export(
            model, (torch.zeros(2, n_in),), input_names=["x"], output_names=["logits"],
            dynamic_shapes=({0: torch.export.Dim("batch", min=1)},), dynamo=True,
            verbose=False).model_proto
        save_onnx(proto, tmp, metadata or {})
    return Path(path)


def onnx_session(path: str | Path):
    """A one-thread CPU onnxruntime session of ``path``."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _median_call_s(fn: Callable[[], object], repeats: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def time_inference(model: nn.Module, onnx_path: str | Path,
                   x: np.ndarray | Mapping[str, np.ndarray], batch: int,
                   repeats: Sequence[int] = (300, 20), warmup: int = 20) -> Timing:
    """onnxruntime vs torch eager on one thread: batch-1 latency over ``repeats[0]`` calls and
    throughput at ``batch`` over ``repeats[1]`` calls, inputs drawn from the jets of ``x``
    (the features of input ``x``, or {ONNX input name: array (N, ...)}, all of N jets)."""
    sess = onnx_session(onnx_path)
    inputs = {"x": x} if isinstance(x, np.ndarray) else dict(x)
    rows = np.resize(np.arange(len(next(iter(inputs.values())))), batch)  # cycle the jets
    one = {k: np.ascontiguousarray(v[:1]) for k, v in inputs.items()}
    big = {k: np.ascontiguousarray(v[rows]) for k, v in inputs.items()}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            t_one = [torch.from_numpy(v) for v in one.values()]
            t_big = [torch.from_numpy(v) for v in big.values()]
            torch_1 = _median_call_s(lambda: model(*t_one), repeats[0], warmup)
            torch_b = _median_call_s(lambda: model(*t_big), repeats[1], 2)
            ref = model(*t_big).numpy()
        onnx_1 = _median_call_s(lambda: sess.run(None, one), repeats[0], warmup)
        onnx_b = _median_call_s(lambda: sess.run(None, big), repeats[1], 2)
        diff = float(np.abs(sess.run(None, big)[0] - ref).max())
    finally:
        torch.set_num_threads(threads)
    return Timing(onnx_1, torch_1, batch / onnx_b, batch / torch_b, diff)
