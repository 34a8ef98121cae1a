"""``hepchain treelm translate``: decode the truth trees of a user's jets with a saved model.

The jets are a collider dataset directory made with option ``jet_trees=1`` (e.g. ``hepchain
generate Z_tautau --events 100 --set jet_trees=1 --out mydata``); every jet is translated (no
truth is needed), its clustering tree pruned with the model's ``pt_min`` and decoded greedily
under the grammar mask. Output: one JSON object per jet (``event``, ``jet``, and the decoded
tree's ``pid``, ``parent``, ``pt`` [GeV], ``eta``, ``phi`` [rad], ``mass`` [GeV]), or an
``error`` saying why a jet was skipped (tree too long for the model's ``max_len``).
"""

from __future__ import annotations

import json
from pathlib import Path

import awkward as ak
import numpy as np
import torch

from hepchain.core.dataset import ShardedDataset
from hepchain.core.errors import DataError, UsageError
from hepchain.core.io import atomic_write_text
from hepchain.reco.treelm.data import prune_merge
from hepchain.reco.treelm.grammar import TRUTH_NODE_MAX, prompt
from hepchain.reco.treelm.model import build_model
from hepchain.reco.treelm.study import decode_trees
from hepchain.reco.treelm.vocab import VOCAB


def load_model(path: Path) -> tuple[torch.nn.Module, dict]:
    """A model saved by ``treelm run`` (``<workdir>/treelm.pt``) and its data settings."""
    if not path.is_file():
        raise UsageError(f"{path} is not a file; pass the treelm.pt of a 'treelm run' workdir.")
    try:
        saved = torch.load(path, weights_only=True)
    except Exception as err:
        raise DataError(f"{path} is not a tree-LM model file ({err}).") from None
    if not isinstance(saved, dict) or saved.get("vocabulary") != list(VOCAB.tokens):
        raise DataError(f"{path} was not saved by this version of the tree LM (other "
                        "vocabulary); retrain with 'hepchain treelm run'.")
    model = build_model(saved["model"], int(saved["data"]["max_len"]))
    model.load_state_dict(saved["state_dict"])
    return model.eval(), saved["data"]


def translate(model_path: Path, data_path: Path, out: Path) -> int:
    """Decode every jet of ``data_path``; write JSON lines to ``out``; return the jet count."""
    model, settings = load_model(model_path)
    if not (data_path / "manifest.json").is_file():
        raise UsageError(f"{data_path} is not a dataset directory (no manifest.json); make one "
                         "with 'hepchain generate <process> --set jet_trees=1'.")
    events = ShardedDataset(data_path).read()
    if "jets" not in events.fields or "merge_tree" not in events["jets"].fields:
        raise DataError(f"{data_path} has no jet clustering trees; generate it with "
                        "--set jet_trees=1.")
    max_len = int(settings["max_len"])
    rows, keys, reco = [], [], []
    for ev, jets in enumerate(ak.to_list(events["jets"].merge_tree)):
        for j, nodes in enumerate(jets):
            tree = prune_merge({k: _arr(nodes, k) for k in nodes[0]}, float(settings["pt_min"]))
            if tree is None or len(prompt(tree)) + TRUTH_NODE_MAX + 1 > max_len:
                rows.append({"event": ev, "jet": j, "error": "clustering tree too long for "
                             f"max_len = {max_len} (or no leaf above pt_min)"})
                continue
            keys.append(len(rows))
            rows.append({"event": ev, "jet": j})
            reco.append(tree)
    for k, tree in zip(keys, decode_trees(model, reco, max_len, constrained=True), strict=True):
        rows[k] |= {"pid": tree.pid.tolist(), "parent": tree.parent.tolist(),
                    **{name: tree.kin[:, c].tolist() for c, name in
                       enumerate(("pt", "eta", "phi", "mass"))}}
    atomic_write_text(out, "".join(json.dumps(r) + "\n" for r in rows))
    return len(rows)


def _arr(nodes: list[dict], key: str) -> np.ndarray:
    return np.array([n[key] for n in nodes])
