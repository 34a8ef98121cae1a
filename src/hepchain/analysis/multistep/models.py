"""The two steps and their connection.

Step (a), :class:`TauStep`: a Deep Sets tau ID (:class:`hepchain.nn.deepsets.DeepSets`) on a
candidate's particle-flow objects, one logit per candidate. Step (b), :class:`EventStep`: an
MLP on the event kinematics and, per candidate, a tau descriptor — step (a)'s logit in the
serial and connected strategies, the hand-built variables in the baseline. The connection
passes only step (a)'s logit (an interpretable tau score), so (a) stays a tau ID.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hepchain.nn.deepsets import DeepSets
from hepchain.nn.mlp import MLP


class TauStep(nn.Module):
    """Step (a): tau-ID logit of each of the two candidates of an event."""

    def __init__(self, n_features: int, phi: list[int], latent: int, rho: list[int]) -> None:
        super().__init__()
        self.net = DeepSets(n_features, phi, latent, rho, 1)

    def forward(self, objects: Tensor, mask: Tensor) -> Tensor:
        """(B, 2, T, F), (B, 2, T) -> (B, 2) logits."""
        b, k, t, f = objects.shape
        return self.net(objects.reshape(b * k, t, f), mask.reshape(b * k, t)).reshape(b, k)

    def last_layer(self) -> nn.Module:
        """The output layer (the parameters both steps' losses reach, for GradNorm)."""
        return self.net.rho.net[-1]


class EventStep(nn.Module):
    """Step (b): H→ττ-vs-Z→ττ logit from kinematics (B, K) and tau descriptors (B, 2, D)."""

    def __init__(self, n_kinematics: int, n_descriptor: int, hidden: list[int]) -> None:
        super().__init__()
        self.net = MLP(n_kinematics + 2 * n_descriptor, hidden, 1)

    def forward(self, kinematics: Tensor, taus: Tensor) -> Tensor:
        return self.net(torch.cat([kinematics, taus.flatten(1)], dim=-1)).squeeze(-1)


class TwoStep(nn.Module):
    """Steps (a) and (b) connected: (b) sees (a)'s logits; returns both steps' logits."""

    def __init__(self, tau: TauStep, event: EventStep) -> None:
        super().__init__()
        self.tau, self.event = tau, event

    def forward(self, objects: Tensor, mask: Tensor, kinematics: Tensor
                ) -> tuple[Tensor, Tensor]:
        tau_logits = self.tau(objects, mask)
        return tau_logits, self.event(kinematics, tau_logits[..., None])

