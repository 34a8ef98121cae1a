"""Particle Transformer (Qu, Li, Qian, ICML 2022, arXiv:2202.03772): particle attention with a
bias from embedded pairwise features (ln ΔR, ln kT, ln z, ln m²), then class-attention blocks —
weaver-core's maintained implementation
(:class:`weaver.nn.model.ParticleTransformer.ParticleTransformer`), wrapped to the zoo's
inputs."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn
from weaver.nn.model.ParticleTransformer import ParticleTransformer


class ParT(nn.Module):
    """ParT with particle embedding ``embed`` widths, pair embedding ``pair_embed`` widths,
    ``heads`` heads, ``layers`` particle blocks and ``cls_layers`` class-attention blocks.
    ONNX export uses the TorchScript tracer: ``torch.export`` fails inside weaver-core's
    ParT (its pair-feature code), and weaver's own exporter uses ``dynamo=False`` too."""

    onnx_legacy = True

    def __init__(self, n_features: int, n_classes: int, embed: Sequence[int],
                 pair_embed: Sequence[int], heads: int, layers: int, cls_layers: int) -> None:
        super().__init__()
        # trim=False: weaver's trimmer assumes padding last; the zoo keeps any order valid
        self.net = ParticleTransformer(n_features, n_classes, embed_dims=tuple(embed),
                                       pair_embed_dims=tuple(pair_embed), num_heads=heads,
                                       num_layers=layers, num_cls_layers=cls_layers, trim=False)

    def forward(self, x: Tensor, v: Tensor, mask: Tensor) -> Tensor:
        """``x`` (B, P, F), ``v`` (B, P, 4) = (px, py, pz, E) [GeV], ``mask`` (B, P) -> (B, C)."""
        return self.net(x.transpose(1, 2), v.transpose(1, 2), mask[:, None, :].to(x.dtype))
