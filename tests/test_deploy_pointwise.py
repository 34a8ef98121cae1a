"""deploy: the PFN / Deep Sets re-expressed with layers hls4ml converts (Conv1d(kernel 1) for
Φ, mask spread and multiplied, average pool × P) is the same function, and its hls4ml
emulation agrees with torch within an error bound derived from the fixed-point type (one g++
compile, ~10 CPU-s)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from hepchain.deploy import hls
from hepchain.deploy.fixedpoint import FixedType
from hepchain.deploy.pointwise import (
    PointwiseDeepSets,
    channels_first,
    from_deep_sets,
    pool_types,
)
from hepchain.nn.deepsets import DeepSets
from hepchain.reco.jettag.models.pfn import PFN


def _jets(n: int, p: int, f: int, seed: int, padding: str) -> tuple[np.ndarray, np.ndarray]:
    """Features (n, p, f) and mask (n, p) with 1..p real particles; padded rows zero (as
    ``particle_features`` pads) or noise (which the mask must hide)."""
    rng = np.random.default_rng(seed)
    mask = np.arange(p)[None, :] < rng.integers(1, p + 1, (n, 1))
    x = rng.normal(size=(n, p, f)).astype(np.float32)
    if padding == "zero":
        x[~mask] = 0.0
    return x, mask


@pytest.mark.parametrize(("p", "padding"), [(16, "zero"), (16, "noise"), (12, "zero")])
def test_pointwise_re_expression_is_the_same_function(p, padding):
    torch.manual_seed(1)
    pfn = PFN(7, 5, [32, 32, 32], [32, 32]).eval()
    x, mask = _jets(200, p, 7, 3, padding)
    before = {k: v.clone() for k, v in pfn.state_dict().items()}
    twin = from_deep_sets(pfn.net, p)
    assert isinstance(twin, PointwiseDeepSets)
    with torch.no_grad():
        ref = pfn.net(torch.from_numpy(x), torch.from_numpy(mask)).numpy()
        out = twin(*(torch.from_numpy(a) for a in channels_first(x, mask))).numpy()
        unmasked = twin(*(torch.from_numpy(a) for a in channels_first(x, np.ones_like(mask))))
    assert np.abs(out - ref).max() < 1e-5
    # padded slots do contribute without the mask (Φ(0) ≠ 0): the mask is what makes it equal
    assert np.abs(unmasked.numpy() - ref).max() > 1e-2
    assert all(torch.equal(v, before[k]) for k, v in pfn.state_dict().items())  # untouched


def test_only_sum_pooled_deep_sets_without_context_are_re_expressed():
    with pytest.raises(ValueError, match="sum-pooled"):
        from_deep_sets(DeepSets(4, [8], 8, [8], 3, pool="mean"), 8)
    with pytest.raises(ValueError, match="context"):
        from_deep_sets(DeepSets(4, [8], 8, [8], 3, context_dim=2), 8)


def test_pool_accumulator_is_widened_by_log2_of_the_particle_count():
    assert pool_types(16, "ap_fixed<16,6>") == {"pool": {"accum": "ap_fixed<20,10>"}}
    assert pool_types(12, "ap_fixed<14,5>") == {"pool": {"accum": "ap_fixed<18,9>"}}


def _error_bound(twin: PointwiseDeepSets, x: np.ndarray, mask: np.ndarray,
                 lsb: float) -> np.ndarray:
    """Per-jet, per-output bound on |emulation − float| when every type has step ``lsb``
    (truncation, no overflow): inputs truncated (< lsb); each Linear / pointwise Conv1d output
    gets Σ_j |w_j| E_j (propagated) + lsb Σ_j (|x_j| + E_j) (weights truncated) + lsb (bias)
    + n_in lsb (each product truncated into the accumulator) + lsb (result); ReLU and the 0/1
    mask do not add; the pool adds lsb (its division truncates)."""
    h = torch.from_numpy(x.transpose(0, 2, 1).astype(np.float64))
    err = torch.full_like(h, lsb)

    def linear(layer: nn.Module, h: torch.Tensor, err: torch.Tensor, axis: int):
        w = layer.weight.detach().double().reshape(layer.weight.shape[0], -1)
        move = (lambda t: t.transpose(1, 2)) if axis == 1 else (lambda t: t)
        hh, ee = move(h), move(err)
        out = hh @ w.T + layer.bias.detach().double()
        bound = ee @ w.abs().T + lsb * (hh.abs() + ee).sum(-1, keepdim=True) + lsb * (w.shape[1] + 2)
        return move(out), move(bound)

    with torch.no_grad():
        for layer in twin.phi:
            if isinstance(layer, nn.Conv1d):
                h, err = linear(layer, h, err, axis=1)
            else:
                h = layer(h)
        m = torch.from_numpy(mask.astype(np.float64))[:, None, :]
        assert h.abs().max() < 16  # no overflow of ap_fixed<16,6> (range ±32): the premise
        h, err = (h * m).mean(-1), (err * m).mean(-1) + lsb
        for layer in twin.rho:
            if isinstance(layer, nn.Linear):
                h, err = linear(layer, h, err, axis=0)
            else:
                h = layer(h)
    return err.numpy()


def test_hls4ml_emulation_of_a_tiny_pointwise_pfn_agrees_within_the_fixed_point_bound(tmp_path):
    torch.manual_seed(2)
    p, precision = 8, "ap_fixed<16,6>"
    pfn = PFN(4, 3, [8, 8], [8]).eval()
    x, mask = _jets(300, p, 4, 5, "zero")
    twin = from_deep_sets(pfn.net, p)
    inputs = channels_first(x, mask)
    emu = hls.emulate(twin, [a.shape[1:] for a in inputs], tmp_path / "prj", precision,
                      pool_types(p, precision))  # one g++ compile
    out = emu.predict(inputs)
    with torch.no_grad():
        ref = pfn.net(torch.from_numpy(x), torch.from_numpy(mask)).double().numpy()
        unmasked = pfn.net(torch.from_numpy(x), torch.ones(mask.shape, dtype=torch.bool))
    bound = _error_bound(twin, x, mask, 2.0 ** -FixedType.parse(precision).fractional)
    diff = np.abs(out - ref)
    print(f"max |Δ| {diff.max():.4g}, bound median {np.median(bound):.4g} max {bound.max():.4g}")
    assert np.all(diff <= bound)
    assert diff.max() > 0  # the emulation does quantise
    # the bound is tight enough to tell the masked function from the unmasked one
    assert np.any(np.abs(out - unmasked.double().numpy()) > bound)
    top2 = np.sort(ref, 1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 2 * bound.max(1)
    assert np.all(out[clear].argmax(1) == ref[clear].argmax(1))
