"""Compression reference: an autoencoder compresses the full readout to d numbers (not
real-time), the seed's "best but not real-time" alternative to reading out d pixels.

Encoder MLP(n → 256 → d) and decoder MLP(d → 256 → n) on z = log(1 + 100·x) of the pixels
(one linear layer each way when d ≥ 256, so the code is never narrower than d), trained by
reconstruction MSE. As in a data-reduction chain (store the code, decode offline), the energy
calibration (the same MLP as for the patterns) is trained on the *decoded* readout.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from hepchain.nn.mlp import MLP
from hepchain.reco.calibration.models import MLPRegressor
from hepchain.reco.calibration.train import (
    BatchedTensors,
    fit_regressor,
    make_trainer,
    predict,
    seeded_model,
)


class AutoEncoder(nn.Module):
    def __init__(self, n: int, latent: int, width: int = 256) -> None:
        super().__init__()
        hidden = [width] if latent < width else []
        self.encoder = MLP(n, hidden, latent)
        self.decoder = MLP(latent, hidden, n)

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.encoder(x))


def _log(x: Tensor) -> Tensor:
    return torch.log1p(100.0 * x.flatten(1))


def _decoded(ae: AutoEncoder, x: Tensor) -> Tensor:
    """Pixels [GeV-equivalent] after encoding to the code and decoding."""
    with torch.no_grad():
        return (torch.expm1(ae(_log(x))) / 100.0).clamp(min=0.0)


def _recon_loss(model: nn.Module, batch: tuple[Tensor, ...]) -> Tensor:
    z = _log(batch[0])
    return ((model(z) - z) ** 2).mean()


def autoencoder_calibration(train: tuple[Tensor, Tensor], val: tuple[Tensor, Tensor],
                            test_x: Tensor, latent: int, hidden: list[int],
                            train_cfg: dict[str, Any], seed: int) -> np.ndarray:
    """Energies [GeV] predicted for ``test_x`` after compression to ``latent`` numbers."""
    n = int(np.prod(train[0].shape[1:]))
    ae = seeded_model(lambda: AutoEncoder(n, latent), seed)
    trainer = make_trainer(ae, _recon_loss, train_cfg, seed)
    trainer.fit(BatchedTensors(train[0]), BatchedTensors(val[0]))
    ae.eval()
    decoded = [_decoded(ae, x) for x in (train[0], val[0], test_x)]
    reg = fit_regressor(lambda: MLPRegressor(n, hidden), (decoded[0], train[1]), (decoded[1], val[1]),
                        train_cfg, seed)
    return predict(reg, decoded[2])
