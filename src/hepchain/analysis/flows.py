"""Conditional normalizing flows p(x | c) with zuko: MAF (affine) and NSF (rational-quadratic
splines), trained by maximum likelihood through the project's Trainer.

Features and context are standardised inside the module (``core.standardise``, statistics
kept as buffers so they are saved with the model; NSF splines live on [−5, 5]);
:meth:`ConditionalFlow.log_prob` returns the density of the *original* variables, including the
Jacobian of the standardisation, so log-likelihoods of different flows are comparable.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import zuko
from torch import Tensor, nn

from hepchain.core.errors import UsageError
from hepchain.core.standardise import Standardiser
from hepchain.core.trainer import History, TrainConfig, Trainer

KINDS = ("maf", "nsf")


class ConditionalFlow(nn.Module):
    """A zuko MAF or NSF over ``features`` variables conditioned on ``context`` variables."""

    def __init__(self, x: np.ndarray, c: np.ndarray, kind: str = "maf", transforms: int = 4,
                 hidden: tuple[int, ...] | list[int] = (64, 64), bins: int = 8) -> None:
        super().__init__()
        if kind not in KINDS:
            raise UsageError(f"Unknown flow {kind!r}; use one of {KINDS}.")
        x, c = np.asarray(x, np.float32), np.asarray(c, np.float32)
        for name, scaler in (("x", Standardiser.fit(x)), ("c", Standardiser.fit(c))):
            self.register_buffer(f"{name}_mean", torch.tensor(scaler.mean, dtype=torch.float32))
            self.register_buffer(f"{name}_std", torch.tensor(scaler.scale, dtype=torch.float32))
        common = {"context": c.shape[1], "transforms": transforms, "hidden_features": list(hidden)}
        if kind == "maf":
            self.flow = zuko.flows.MAF(x.shape[1], randperm=True, **common)
        else:
            self.flow = zuko.flows.NSF(x.shape[1], bins=bins, randperm=True, **common)

    def _dist(self, c: Tensor):
        return self.flow((c - self.c_mean) / self.c_std)

    def log_prob(self, x: Tensor, c: Tensor) -> Tensor:
        """log p(x | c) in the original units of x (per event)."""
        z = (x - self.x_mean) / self.x_std
        return self._dist(c).log_prob(z) - torch.log(self.x_std).sum()

    def sample(self, c: Tensor) -> Tensor:
        """One sample of x for each row of ``c``."""
        return self._dist(c).sample() * self.x_std + self.x_mean


class FlowEnsemble(nn.Module):
    """Equal-weight mixture of conditional flows trained with different seeds,
    p(x | c) = (1/K) Σ_k p_k(x | c): the members' training variance averages out::

        ensemble = FlowEnsemble([fit_flow(x, c, xv, cv, flow_cfg, train_cfg, s)[0]
                                 for s in (1, 2, 3)])
        ensemble.log_prob(x, c)    # per event, as a ConditionalFlow's
    """

    def __init__(self, members: list[ConditionalFlow]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def log_prob(self, x: Tensor, c: Tensor) -> Tensor:
        """log p(x | c) of the mixture (per event)."""
        each = torch.stack([m.log_prob(x, c) for m in self.members])
        return torch.logsumexp(each, 0) - math.log(len(self.members))

    def sample(self, c: Tensor) -> Tensor:
        """One sample per row of ``c``, each from a member drawn uniformly."""
        pick = torch.randint(len(self.members), (len(c),))
        each = torch.stack([m.sample(c) for m in self.members])
        return each[pick, torch.arange(len(c))]


#: a flow or an ensemble of flows: what log_prob, sample and the mass fits take
AnyFlow = ConditionalFlow | FlowEnsemble


def nll_loss(model: ConditionalFlow, batch: tuple[Tensor, Tensor]) -> Tensor:
    x, c = batch
    return -model.log_prob(x, c).mean()


def _tensors(x: np.ndarray, c: np.ndarray) -> tuple[Tensor, Tensor]:
    return (torch.as_tensor(np.asarray(x), dtype=torch.float32),
            torch.as_tensor(np.asarray(c).reshape(len(x), -1), dtype=torch.float32))


def fit_flow(x_train: np.ndarray, c_train: np.ndarray, x_val: np.ndarray, c_val: np.ndarray,
             flow_cfg: dict[str, Any], train_cfg: dict[str, Any], seed: int
             ) -> tuple[ConditionalFlow, History]:
    """Train a :class:`ConditionalFlow` (``flow_cfg``: kind, transforms, hidden, bins)."""
    torch.manual_seed(seed)
    c_train = np.asarray(c_train).reshape(len(x_train), -1)
    model = ConditionalFlow(x_train, c_train, **flow_cfg)
    trainer = Trainer(model, nll_loss, TrainConfig.from_dict(train_cfg, seed=seed))
    history = trainer.fit(_tensors(x_train, c_train), _tensors(x_val, c_val))
    model.eval()
    return model, history


@torch.no_grad()
def log_prob(model: AnyFlow, x: np.ndarray, c: np.ndarray,
             batch: int = 65536) -> np.ndarray:
    """log p(x | c) for NumPy arrays, evaluated in batches."""
    xt, ct = _tensors(x, c)
    out = [model.log_prob(xt[i:i + batch], ct[i:i + batch]) for i in range(0, len(xt), batch)]
    return torch.cat(out).numpy().astype(np.float64) if out else np.zeros(0)


@torch.no_grad()
def sample(model: AnyFlow, c: np.ndarray, seed: int) -> np.ndarray:
    """One sample of x per context row (NumPy in, NumPy out)."""
    torch.manual_seed(seed)
    ct = torch.as_tensor(np.asarray(c).reshape(len(c), -1), dtype=torch.float32)
    return model.sample(ct).numpy().astype(np.float64)
