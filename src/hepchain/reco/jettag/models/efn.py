"""Energy Flow Network (Komiske, Metodiev, Thaler, JHEP 01 (2019) 121):
``F(Σ_i z_i Φ(Δη_i, Δφ_i))`` with z_i = pT_i / Σ_j pT_j, IRC safe by construction — a
zero-pT particle adds nothing, a collinear split (same angles, pT shared) leaves the sum as is."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from hepchain.nn.mlp import MLP


class EFN(nn.Module):
    """Φ: (Δη, Δφ) -> ``phi`` widths (last = latent), F: latent -> ``f`` -> ``n_classes``.
    ``angles`` are the columns of Δη and Δφ in the particle features (unscaled, rad)."""

    def __init__(self, n_classes: int, phi: Sequence[int], f: Sequence[int],
                 angles: tuple[int, int]) -> None:
        super().__init__()
        self.angles = list(angles)
        self.phi = nn.Sequential(MLP(2, phi[:-1], phi[-1]), nn.ReLU())
        # the z-weighted mean of Φ varies little between jets at initialisation; normalising it
        # (an affine map per jet in eval mode, so IRC safety holds) lets F learn from the start
        self.norm = nn.BatchNorm1d(phi[-1])
        self.f = MLP(phi[-1], f, n_classes)

    def forward(self, x: Tensor, v: Tensor, mask: Tensor) -> Tensor:
        """``x`` (B, P, F) features, ``v`` (B, P, 4) = (px, py, pz, E) [GeV], ``mask`` (B, P)."""
        pt = (v[..., 0] ** 2 + v[..., 1] ** 2).sqrt() * mask
        z = pt / pt.sum(1, keepdim=True).clamp(min=1e-12)
        return self.f(self.norm((z[..., None] * self.phi(x[..., self.angles])).sum(1)))
