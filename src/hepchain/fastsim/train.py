"""Build and train the learned shower models through the core Trainer."""

from __future__ import annotations

from typing import Any

import numpy as np

from hepchain.core.errors import UsageError
from hepchain.core.seeding import derive_seed, seed_everything
from hepchain.core.trainer import History, TrainConfig, Trainer
from hepchain.fastsim.codec import ShowerCodec
from hepchain.fastsim.metrics import whole_batch
from hepchain.fastsim.models import caloflow, flowmatching, gan
from hepchain.fastsim.models.base import ShowerModel
from hepchain.reco.calibration.train import BatchedTensors

KINDS: dict[str, tuple[type[ShowerModel], Any]] = {
    "caloflow": (caloflow.CaloFlow, caloflow.loss),
    "gan": (gan.ShowerGAN, gan.loss),
    "cfm": (flowmatching.FlowMatching, flowmatching.loss),
}
MODEL_CLASSES = {kind: cls for kind, (cls, _) in KINDS.items()}


def fit_model(kind: str, codec: ShowerCodec, train: tuple[np.ndarray, np.ndarray],
              val: tuple[np.ndarray, np.ndarray], hparams: dict[str, Any],
              train_cfg: dict[str, Any], seed: int) -> tuple[ShowerModel, History]:
    """Train model ``kind`` on (showers [MeV], E_inc [MeV]) pairs; the weights are built after
    seeding with ``seed`` and the dequantisation noise is drawn from it."""
    if kind not in KINDS:
        raise UsageError(f"Unknown model {kind!r}; choose from {sorted(KINDS)} or gflash.")
    cls, loss = KINDS[kind]
    rng = np.random.default_rng(derive_seed(seed, "dequantise", kind))
    seed_everything(derive_seed(seed, "init", kind))
    model = cls(codec, **hparams)
    trainer = Trainer(model, loss, TrainConfig.from_dict(train_cfg, seed=seed), name=kind,
                      collate_fn=whole_batch)
    history = trainer.fit(BatchedTensors(*codec.encode(*train, rng)),
                          BatchedTensors(*codec.encode(*val, rng)))
    return model.eval(), history
