"""Multi-step: the loss weightings' update rules on toy problems, the event selection, the
connection of the two steps, and clear errors for bad settings."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hepchain.analysis.multistep.data import leading_pair
from hepchain.analysis.multistep.models import EventStep, TauStep, TwoStep
from hepchain.analysis.multistep.study import check_settings
from hepchain.core.errors import UsageError
from hepchain.core.losses import DynamicWeightAverage, UncertaintyWeights
from hepchain.reco.tauid.candidates import Candidates


def test_dynamic_weight_average_follows_the_rate_of_descent():
    """w_k = K exp(r_k / T) / Σ_j exp(r_j / T), r_k = L_k(t−1) / L_k(t−2) (Liu et al. 2019)."""
    dwa = DynamicWeightAverage(["a", "b"], temperature=2.0)
    dwa.end_epoch({"a": 1.0, "b": 1.0})
    assert dwa.current() == {"a": 1.0, "b": 1.0}  # needs two epochs of history
    dwa.end_epoch({"a": 0.5, "b": 0.9})  # a falls fast (r = 0.5), b slowly (r = 0.9)
    ea, eb = math.exp(0.5 / 2.0), math.exp(0.9 / 2.0)
    assert dwa.current()["a"] == pytest.approx(2 * ea / (ea + eb), rel=1e-6)
    assert dwa.current()["b"] == pytest.approx(2 * eb / (ea + eb), rel=1e-6)
    total = dwa({"a": torch.tensor(2.0), "b": torch.tensor(3.0)})
    assert float(total) == pytest.approx(2.0 * dwa.current()["a"] + 3.0 * dwa.current()["b"])


def test_uncertainty_weights_learn_the_inverse_loss_scale():
    """Minimising Σ exp(−s_k) L_k + s_k over s_k gives exp(−s_k) = 1 / L_k (Kendall et al.)."""
    unc = UncertaintyWeights(["a", "b"])
    opt = torch.optim.SGD(unc.parameters(), lr=0.5)  # curvature at the optimum is 1
    losses = {"a": torch.tensor(4.0), "b": torch.tensor(0.25)}
    for _ in range(60):
        opt.zero_grad()
        unc(losses).backward()
        opt.step()
    assert unc.current()["a"] == pytest.approx(0.25, rel=0.02)
    assert unc.current()["b"] == pytest.approx(4.0, rel=0.02)


def _candidates(event: list[int], pt: list[float]) -> Candidates:
    n = len(event)
    z = np.zeros(n)
    return Candidates(np.array(event), np.array(pt), z, z, np.ones(n, int),
                      np.zeros((n, 2, 3), np.float32), np.zeros((n, 2, 4), np.float32),
                      np.ones((n, 2), bool), np.zeros(n, bool), np.full(n, -1), z)


def test_events_keep_their_two_leading_candidates():
    event, pair = leading_pair(_candidates([0, 0, 0, 1, 2, 2], [30, 50, 40, 60, 25, 35]))
    assert event.tolist() == [0, 2]  # event 1 has one candidate
    assert pair.pt.tolist() == [50, 40, 35, 25]


def test_connected_step_b_sees_step_a_and_gradients_reach_it():
    torch.manual_seed(0)
    model = TwoStep(TauStep(3, [8], 8, [8]), EventStep(4, 1, [8]))
    objects, mask = torch.randn(5, 2, 6, 3), torch.ones(5, 2, 6, dtype=torch.bool)
    tau_logits, event_logit = model(objects, mask, torch.randn(5, 4))
    assert tau_logits.shape == (5, 2) and event_logit.shape == (5,)
    event_logit.sum().backward()  # step (b)'s loss alone trains step (a) when connected
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.tau.parameters())


@pytest.mark.parametrize(("override", "message"), [
    ({"dynamic": ["MGDA"]}, "dynamic names"),
    ({"static_weights": [0.5, 1.5]}, "static_weights"),
    ({"connected_init": "warm"}, "connected_init"),
])
def test_bad_settings_are_one_clear_error(override, message):
    config = {"dynamic": ["DWA"], "static_weights": [0.5], "connected_init": "scratch",
              **override}
    with pytest.raises(UsageError, match=message):
        check_settings(config)


def test_gradnorm_pushes_the_weights_towards_equal_gradient_norms():
    """At the first step r_i = 1, so the target is the mean gradient norm: with norms 2 and 1
    (G = 2, 1; target 1.5) the weights' gradient is (+2, −1) and the network's loss Σ w_i L_i."""
    from hepchain.core.losses import GradNorm

    shared = torch.nn.Parameter(torch.tensor([1.0, 1.0]))
    gn = GradNorm(["a", "b"], [shared])
    def losses() -> dict[str, torch.Tensor]:  # ∇ norms 2 and 1, values 2 and 1
        return {"a": 2.0 * shared[0], "b": 1.0 * shared[1]}

    total = gn(losses())
    assert float(total.detach()) == pytest.approx(2.0 + 1.0 + (0.5 + 0.5))
    total.backward()
    assert gn.w.grad.tolist() == pytest.approx([2.0, -1.0])
    assert shared.grad.tolist() == pytest.approx([2.0, 1.0])  # Σ w_i ∇L_i, weights constant
    opt = torch.optim.SGD([gn.w], lr=0.1)
    opt.step()
    gn(losses())  # renormalised to sum 2 before use
    w = gn.current()
    assert w["a"] < 1.0 < w["b"] and w["a"] + w["b"] == pytest.approx(2.0)
    with torch.no_grad():
        assert float(gn(losses())) == pytest.approx(w["a"] * 2.0 + w["b"] * 1.0)
