"""Model files of the deploy study and ``hepchain deploy export``.

A model file (``torch.save`` of plain tensors, lists and strings, loaded with
``weights_only=True``) holds a Linear/ReLU network: ``format``, ``dims`` (layer widths),
``state_dict``, ``classes``, ``features``, the input standardisation ``mean``/``scale`` (the
network expects ``(x − mean) / scale``) and, for a QAT model, ``hls_layers`` (hls4ml types per
layer, :func:`hepchain.deploy.qat.plain_twin`). :func:`export` writes it as an hls4ml project
(HLS C++, ``build_prj.tcl`` for Vitis HLS; the C++ emulation is compiled only on request) or
as ONNX.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hepchain.core.errors import DataError, UsageError
from hepchain.core.io import atomic_torch_save
from hepchain.core.standardise import Standardiser
from hepchain.deploy import hls
from hepchain.deploy.latency import export_onnx
from hepchain.deploy.mlp import l1_mlp

FORMAT = "hepchain.deploy.mlp/1"
TARGETS = ("hls4ml", "onnx")


def save_model(path: str | Path, model: nn.Sequential, classes: Sequence[str],
               features: Sequence[str], scale: Standardiser,
               hls_layers: dict[str, dict[str, str]] | None = None) -> Path:
    """Write ``model`` (Linear/ReLU only) and its metadata to ``path`` atomically."""
    dims = [m.in_features for m in model if isinstance(m, nn.Linear)]
    dims.append(model[-1].out_features)
    payload = {"format": FORMAT, "dims": dims, "state_dict": model.state_dict(),
               "classes": list(classes), "features": list(features),
               "mean": scale.mean.tolist(), "scale": scale.scale.tolist(),
               "hls_layers": hls_layers or {}}
    return atomic_torch_save(payload, path)


def load_model(path: str | Path) -> tuple[nn.Sequential, dict[str, Any]]:
    """(network, metadata) of a model file; DataError if it is missing or not one."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"Model file {path} does not exist; pass a .pt written by "
                        "`hepchain deploy run` (e.g. <workdir>/l1_mlp.pt).")
    try:
        payload = torch.load(path, weights_only=True)
    except Exception as exc:
        raise DataError(f"{path} is not a readable model file ({type(exc).__name__}).") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise DataError(f"{path} is not a deploy model file (format {FORMAT}); write one with "
                        "`hepchain deploy run`.")
    dims = payload["dims"]
    model = l1_mlp(dims[0], dims[1:-1], dims[-1])
    model.load_state_dict(payload["state_dict"])
    return model.eval(), payload


def export(path: str | Path, to: str, out: str | Path, precision: str = "ap_fixed<16,6>",
           compile_emulation: bool = False) -> Path:
    """Write the model file ``path`` as ``to`` (``hls4ml``: a project directory ``out``; ``onnx``:
    the file ``out``) and return what was written. The hls4ml project uses the file's QAT types
    where it has them, else ``precision`` everywhere."""
    if to not in TARGETS:
        raise UsageError(f"Export target {to!r} is unknown; use one of {', '.join(TARGETS)}.")
    model, meta = load_model(path)
    n_in = meta["dims"][0]
    if to == "onnx":
        return export_onnx(model, n_in, out, {k: meta[k] for k in
                                              ("classes", "features", "mean", "scale")})
    if Path(out).exists() and any(Path(out).iterdir()):
        raise UsageError(f"{out} exists and is not empty; choose a new project directory.")
    layers = meta["hls_layers"] or None
    if compile_emulation:
        hls.emulate(model, n_in, out, precision, layers)
    else:
        hls.convert(model, n_in, out, precision, layers).write()
    return Path(out)
