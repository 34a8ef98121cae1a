"""Jet-image CNN (Cogan et al., JHEP 02 (2015) 118; de Oliveira et al., JHEP 07 (2016) 069;
Kasieczka et al., JHEP 05 (2017) 006): the constituents' pT deposited on an (Δη, Δφ) grid
around the jet axis, then convolutions and a dense head. The image is built inside the network
from the zoo's inputs, so the CNN trains, scores and exports like every other model."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from hepchain.nn.mlp import MLP


def jet_images(deta: Tensor, dphi: Tensor, pt: Tensor, mask: Tensor, pixels: int,
               half_width: float) -> Tensor:
    """(B, pixels, pixels) images: pixel (i, j) holds Σ pT_k / Σ pT of the constituents with
    Δη in the i-th and Δφ in the j-th of ``pixels`` equal bins of [−half_width, half_width)
    [rad]; constituents outside the window or masked out add nothing (they still count in the
    normalising Σ pT, so the image sums to the fraction of the jet's pT inside the window).
    ``deta``, ``dphi``, ``pt`` [GeV] and ``mask`` are (B, P)."""
    pt = pt * mask
    scale = pixels / (2.0 * half_width)
    i = torch.floor((deta + half_width) * scale)
    j = torch.floor((dphi + half_width) * scale)
    inside = (i >= 0) & (i < pixels) & (j >= 0) & (j < pixels)
    flat = torch.where(inside, i * pixels + j, torch.zeros_like(i)).long()
    weight = torch.where(inside, pt, torch.zeros_like(pt))
    image = torch.zeros(pt.shape[0], pixels * pixels, dtype=pt.dtype, device=pt.device)
    image = image.scatter_add(1, flat, weight)
    return (image / pt.sum(1, keepdim=True).clamp(min=1e-12)).view(-1, pixels, pixels)


class JetImageCNN(nn.Module):
    """Image of ``pixels``² over ±``half_width`` rad; per entry of ``channels`` a 3×3
    convolution + ReLU + 2×2 max-pooling; then dense ``fc`` widths -> ``n_classes`` logits.
    ``angles`` are the columns of Δη and Δφ in the particle features (unscaled, rad)."""

    def __init__(self, n_classes: int, pixels: int, half_width: float,
                 channels: Sequence[int], fc: Sequence[int], angles: tuple[int, int]) -> None:
        super().__init__()
        self.angles, self.pixels, self.half_width = angles, pixels, half_width
        layers: list[nn.Module] = []
        for c_in, c_out in zip([1, *channels[:-1]], channels, strict=True):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        self.convs = nn.Sequential(*layers)
        side = pixels // 2 ** len(channels)
        self.head = MLP(channels[-1] * side * side, fc, n_classes)

    def forward(self, x: Tensor, v: Tensor, mask: Tensor) -> Tensor:
        """``x`` (B, P, F), ``v`` (B, P, 4) = (px, py, pz, E) [GeV], ``mask`` (B, P) -> (B, C)."""
        pt = (v[..., 0] ** 2 + v[..., 1] ** 2).sqrt()  # not hypot: ONNX has no such operator
        image = jet_images(x[..., self.angles[0]], x[..., self.angles[1]], pt, mask,
                           self.pixels, self.half_width)
        # pixels hold pT fractions (1/pixels² on average): × pixels brings the hard pixels to
        # O(1–10), where the default initialisation lets the convolutions learn from the start
        return self.head(self.convs(self.pixels * image[:, None]).flatten(1))
