"""Fine-tuning a released backbone on a user's jets (``hepchain jetfm finetune``).

The jets are an ``.npz`` file with ``features`` (N, P, F) float, standardised as
:func:`hepchain.reco.jettag.data.particle_features` makes them, ``mask`` (N, P) bool (True
for real constituents), ``labels`` (N,) int class indices and optionally ``feature_names``
(F,) str; the backbone is a ``backbone-*.pt`` of ``hepchain jetfm run``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from hepchain.core import metrics
from hepchain.core.errors import DataError
from hepchain.core.seeding import derive_seed
from hepchain.reco.jetfm.backbone import check_compatible, load_backbone
from hepchain.reco.jetfm.finetune import JetClassifier, fit_classifier, save_classifier
from hepchain.reco.jettag.data import split

REQUIRED = ("features", "mask", "labels")


def load_labelled_jets(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a labelled-jets ``.npz``; DataError naming what is missing or wrong."""
    if not Path(path).is_file():
        raise DataError(f"No jets file at {path}; pass an .npz with {', '.join(REQUIRED)}.")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} is not a readable .npz file ({exc}).") from exc
    missing = [k for k in REQUIRED if k not in arrays]
    if missing:
        raise DataError(f"{path} lacks {', '.join(missing)}; it needs {', '.join(REQUIRED)}.")
    x, mask, y = arrays["features"], arrays["mask"], arrays["labels"]
    if x.ndim != 3 or mask.shape != x.shape[:2] or y.shape != x.shape[:1]:
        raise DataError(f"{path}: features must be (N, P, F), mask (N, P) and labels (N,); "
                        f"got {x.shape}, {mask.shape}, {y.shape}.")
    if not np.isfinite(x).all():
        raise DataError(f"{path}: features contain NaN or inf.")
    if np.unique(y).size < 2:
        raise DataError(f"{path}: labels must name at least two classes.")
    return {**arrays, "features": x.astype(np.float32), "mask": mask.astype(bool),
            "labels": y.astype(np.int64)}


def finetune_file(backbone_path: Path, data_path: Path, out: Path, settings: dict[str, Any],
                  seed: int) -> dict[str, float]:
    """Fine-tune the backbone end to end on 60 % of the jets (20 % validation), write
    ``out/classifier.pt`` and return the test AUC and 1/ε_B at ε_S = 0.3 (two classes)."""
    backbone, meta = load_backbone(backbone_path)
    jets = load_labelled_jets(data_path)
    x, mask, y = jets["features"], jets["mask"], jets["labels"]
    names = [str(n) for n in jets["feature_names"]] if "feature_names" in jets else None
    check_compatible(backbone, meta["feature_names"], x.shape[2], x.shape[1], names)
    pad = backbone.max_particles - x.shape[1]
    x = np.pad(x, ((0, 0), (0, pad), (0, 0)))
    mask = np.pad(mask, ((0, 0), (0, pad)))
    n_classes = int(y.max()) + 1
    train, val, test = split(y.size, {"train": 0.6, "val": 0.2}, seed)
    torch.manual_seed(derive_seed(seed, "init", "finetune"))  # the head's initialisation
    model = JetClassifier(backbone, n_classes)
    score, _ = fit_classifier(model, x, mask, y, train, val, settings, seed, "finetune")
    out.mkdir(parents=True, exist_ok=True)
    save_classifier(model, out / "classifier.pt", meta["feature_names"],
                    [str(k) for k in range(n_classes)])
    p = score(test)
    if n_classes != 2:
        return {"accuracy": float(np.mean(p.argmax(1) == y[test]))}
    rej = metrics.rejection_at_efficiency(y[test], p[:, 1], 0.3)
    return {"AUC": metrics.roc_auc(y[test], p[:, 1]), "1/eps_B at eps_S = 0.3": rej.rejection}
