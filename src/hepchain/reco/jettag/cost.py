"""Compute cost of a zoo network: forward FLOPs per jet, counted by
:class:`torch.utils.flop_counter.FlopCounterMode` on one batch.

The counter counts matrix products, convolutions and attention (a multiply-add is 2 FLOPs),
not element-wise operations, reductions, sorting or top-k: it is the convention of the
tagging reference table (tagging.md §3.5). Padded particles are computed like real ones, so
the count is for ``max_particles`` slots per jet whatever the multiplicity.
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode


def flops_per_jet(net: nn.Module, inputs: tuple[Tensor, ...]) -> float:
    """Forward FLOPs of ``net`` (in eval mode) on the batch ``inputs`` divided by the number
    of jets in it. Gradients stay enabled: the counter's module tracker hooks into autograd
    and fails under ``torch.no_grad`` inside weaver-core's ParT."""
    counter = FlopCounterMode(display=False)
    training = net.training
    net.eval()
    try:
        with counter:
            net(*inputs)
    finally:
        net.train(training)
    return counter.get_total_flops() / len(inputs[0])
