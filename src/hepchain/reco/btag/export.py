"""Saving and exporting a trained tagger, with its preprocessing.

- :func:`save_tagger` writes ``{"model": state_dict, "extra": {...}}`` (torch.save) with the
  model settings, class names and the fitted :class:`Preprocessor`; :func:`load_tagger` reads
  it back with ``weights_only=True``.
- :func:`export_onnx` writes an ONNX graph (inputs: preprocessed ``tracks`` (B, T, F) float32,
  ``mask`` (B, T) bool, ``jet`` (B, 2) float32; output ``probs`` (B, C)), dynamic in B and T,
  with the preprocessing and class names as JSON in the model's metadata.
- :func:`onnx_agreement` runs onnxruntime and torch on the same inputs and returns the largest
  absolute probability difference;
- :func:`export_gn1`: the study's step, all three for its trained GN1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from hepchain.core.errors import DataError
from hepchain.core.io import atomic_torch_save, onnx_export_path, save_onnx
from hepchain.core.result import Result
from hepchain.reco.btag.gn1 import FULL
from hepchain.reco.btag.models import GN1Tagger, JetProbabilities
from hepchain.reco.btag.preprocessing import Preprocessor


def save_tagger(model: GN1Tagger, settings: dict[str, Any], classes: list[str],
                prep: Preprocessor, path: str | Path) -> Path:
    """Weights + constructor settings + classes + preprocessing in one file."""
    extra = {"settings": settings, "classes": list(classes), "tasks": list(model.tasks),
             "preprocessing": prep.to_dict()}
    return atomic_torch_save({"model": model.state_dict(), "extra": extra}, path)


def load_tagger(path: str | Path) -> tuple[GN1Tagger, list[str], Preprocessor]:
    """Rebuild a tagger written by :func:`save_tagger`."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"No tagger file at {p}; train one with `hepchain btag run` first.")
    state = torch.load(p, weights_only=True)
    extra = state["extra"]
    prep = Preprocessor.from_dict(extra["preprocessing"])
    model = GN1Tagger(len(prep.track_features), len(prep.jet_features), len(extra["classes"]),
                      tasks=tuple(extra["tasks"]), **extra["settings"])
    model.load_state_dict(state["model"])
    return model.eval(), list(extra["classes"]), prep


def export_onnx(model: torch.nn.Module, example: tuple[torch.Tensor, ...], path: str | Path,
                classes: list[str], prep: Preprocessor) -> Path:
    """Export the jet-probability output of ``model`` to ONNX (see module docstring)."""
    wrapper = JetProbabilities(model).eval()
    batch, tracks = torch.export.Dim("batch", min=1), torch.export.Dim("tracks", min=2)
    shapes = {"tracks": {0: batch, 1: tracks}, "mask": {0: batch, 1: tracks}, "jet": {0: batch}}
    with onnx_export_path(path) as tmp:
        prog = torch.onnx.export(wrapper, example, input_names=["tracks", "mask", "jet"],
                                 output_names=["probs"], dynamic_shapes=shapes, dynamo=True,
                                 verbose=False)
        save_onnx(prog.model_proto, tmp, {"classes": classes, "preprocessing": prep.to_dict()})
    return Path(path)


def onnx_agreement(model: torch.nn.Module, path: str | Path,
                   inputs: tuple[torch.Tensor, ...]) -> float:
    """max |p_onnxruntime − p_torch| over ``inputs`` (tracks, mask, jet)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    feeds = {"tracks": inputs[0].numpy(), "mask": inputs[1].numpy(), "jet": inputs[2].numpy()}
    onnx_probs = sess.run(["probs"], feeds)[0]
    with torch.no_grad():
        torch_probs = JetProbabilities(model).eval()(*inputs).numpy()
    return float(np.abs(onnx_probs - torch_probs).max())


def export_gn1(result: Result, model: GN1Tagger, settings: dict[str, Any], classes: list[str],
               prep: Preprocessor, test: tuple[torch.Tensor, ...], workdir: Path,
               onnx: bool = True) -> None:
    """Save the study's GN1 as ``gn1.pt`` in ``workdir`` and, with ``onnx``, export
    ``gn1.onnx`` and add its largest probability difference to torch on the first 1,024 test
    jets (``test``: preprocessed tracks, mask, jet, ...) to ``result``."""
    save_tagger(model, settings, classes, prep, workdir / "gn1.pt")
    if not onnx:
        return
    sample = tuple(x[:256] for x in test[:3])
    path = export_onnx(model.eval(), sample, workdir / "gn1.onnx", classes, prep)
    diff = onnx_agreement(model, path, tuple(x[:1024] for x in test[:3]))
    result.add("ONNX vs torch max |Δp|", FULL, diff, higher_is_better=False)
