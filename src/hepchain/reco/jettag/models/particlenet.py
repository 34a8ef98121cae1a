"""ParticleNet (Qu, Gouskos, PRD 101 (2020) 056019): EdgeConv on k-nearest-neighbour graphs in
(Δη, Δφ), then in feature space — weaver-core's maintained implementation
(:class:`weaver.nn.model.ParticleNet.ParticleNet`), wrapped to the zoo's inputs."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn
from weaver.nn.model.ParticleNet import ParticleNet as WeaverParticleNet


class ParticleNet(nn.Module):
    """``convs``: (k, channels) per EdgeConv block; ``fc``: (width, dropout) per dense layer.
    ``points`` are the columns of Δη and Δφ in the particle features; ``fusion`` adds weaver's
    fusion block (a 1×1 convolution over the concatenated EdgeConv outputs, weaver's default;
    the published JetClass ParticleNet, ``networks/example_ParticleNet.py``, has none)."""

    def __init__(self, n_features: int, n_classes: int,
                 convs: Sequence[tuple[int, Sequence[int]]],
                 fc: Sequence[tuple[int, float]], points: tuple[int, int],
                 fusion: bool = True) -> None:
        super().__init__()
        self.points = list(points)
        # trim=False: weaver's trimmer assumes padding last; the zoo keeps any order valid
        self.net = WeaverParticleNet(n_features, n_classes,
                                     conv_params=[(int(k), tuple(c)) for k, c in convs],
                                     fc_params=[(int(w), float(d)) for w, d in fc],
                                     use_fusion=fusion, trim=False)

    def forward(self, x: Tensor, v: Tensor, mask: Tensor) -> Tensor:
        """``x`` (B, P, F) features, ``v`` unused, ``mask`` (B, P) -> (B, C) logits."""
        return self.net(x[..., self.points].transpose(1, 2), x.transpose(1, 2),
                        mask[:, None, :].to(x.dtype))
