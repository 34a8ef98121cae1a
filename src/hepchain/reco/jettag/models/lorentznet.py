"""LorentzNet (Gong, Meng, Qu et al., JHEP 07 (2022) 030, arXiv:2201.08187), compact: a fully
connected graph of the constituents whose messages see only Minkowski invariants,
ψ(⟨x_i − x_j, x_i − x_j⟩) and ψ(⟨x_i, x_j⟩) with ψ(a) = sgn(a) ln(1 + |a|), so the output is
invariant under any Lorentz transformation of all four-momenta when the scalar inputs are.

One Lorentz group equivariant block (LGEB)::

    m_ij  = φ_e(h_i, h_j, ψ(‖x_i − x_j‖²), ψ(⟨x_i, x_j⟩)) · φ_m(…)        (gated message)
    x_i  ← x_i + c · mean_j (x_i − x_j) φ_x(m_ij)                       (not in the last block)
    h_i  ← h_i + φ_h(h_i, Σ_j m_ij, a_i)                                (a_i: input scalars)

Differences from the release code: no batch normalisation inside φ_e, φ_h (padding makes its
statistics ill-defined), dense (B, P, P) pairs with a mask instead of an edge list.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def psi(a: Tensor) -> Tensor:
    """sgn(a) ln(1 + |a|): compresses the invariants' range, keeps their sign."""
    return torch.sign(a) * torch.log1p(a.abs())


def minkowski(a: Tensor, b: Tensor) -> Tensor:
    """⟨a, b⟩ = a_E b_E − a·b for (px, py, pz, E) four-vectors in the last axis."""
    return a[..., 3] * b[..., 3] - (a[..., :3] * b[..., :3]).sum(-1)


class LGEB(nn.Module):
    """One LorentzNet block with ``hidden`` features and ``n_attr`` input scalars."""

    def __init__(self, hidden: int, n_attr: int, c_weight: float, update_x: bool) -> None:
        super().__init__()
        self.c_weight, self.update_x = c_weight, update_x
        self.phi_e = nn.Sequential(nn.Linear(2 * hidden + 2, hidden), nn.ReLU(),
                                   nn.Linear(hidden, hidden), nn.ReLU())
        self.phi_m = nn.Sequential(nn.Linear(hidden, 1), nn.Sigmoid())
        self.phi_h = nn.Sequential(nn.Linear(2 * hidden + n_attr, hidden), nn.ReLU(),
                                   nn.Linear(hidden, hidden))
        self.phi_x = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(),
                                   nn.Linear(hidden, 1, bias=False))
        nn.init.xavier_uniform_(self.phi_x[-1].weight, gain=1e-3)  # as the release code

    def forward(self, h: Tensor, x: Tensor, attr: Tensor, pair: Tensor) -> tuple[Tensor, Tensor]:
        """``h`` (B, P, H), ``x`` (B, P, 4), ``attr`` (B, P, A), ``pair`` (B, P, P) edges."""
        n = h.shape[1]
        diff = x[:, :, None] - x[:, None, :]
        inv = torch.stack([psi(minkowski(diff, diff)),
                           psi(minkowski(x[:, :, None], x[:, None, :]))], -1)
        m = self.phi_e(torch.cat([h[:, :, None].expand(-1, -1, n, -1),
                                  h[:, None].expand(-1, n, -1, -1), inv], -1))
        m = m * self.phi_m(m) * pair[..., None]
        if self.update_x:
            trans = (diff * self.phi_x(m)).clamp(-100.0, 100.0) * pair[..., None]
            x = x + self.c_weight * trans.sum(2) / pair.sum(2, keepdim=True).clamp(min=1.0)
        return h + self.phi_h(torch.cat([h, m.sum(2), attr], -1)), x


class LorentzNet(nn.Module):
    """``blocks`` LGEBs of width ``hidden`` on the four-momenta / ``p_scale`` [GeV] and the
    scalar feature columns ``scalars``; masked mean of h, dense head with ``dropout``.
    ``beams`` adds the two beam directions (0, 0, ±1, 1) as extra nodes, flagged in the
    scalars, as the paper does (this breaks the invariance under boosts and rotations that do
    not keep the beam axis)."""

    def __init__(self, n_classes: int, scalars: list[int], hidden: int, blocks: int,
                 c_weight: float, dropout: float, p_scale: float, beams: bool) -> None:
        super().__init__()
        self.scalars, self.p_scale, self.beams = scalars, p_scale, beams
        n_attr = len(scalars) + int(beams)
        self.embed = nn.Linear(n_attr, hidden)
        self.blocks = nn.ModuleList(LGEB(hidden, n_attr, c_weight, i < blocks - 1)
                                    for i in range(blocks))
        self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(hidden, n_classes))

    def forward(self, x: Tensor, v: Tensor, mask: Tensor) -> Tensor:
        """``x`` (B, P, F), ``v`` (B, P, 4) = (px, py, pz, E) [GeV], ``mask`` (B, P) -> (B, C)."""
        p, attr = v / self.p_scale, x[..., self.scalars]
        if self.beams:
            beam = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, -1.0, 1.0]], dtype=v.dtype,
                                device=v.device)
            p = torch.cat([p, beam.expand(len(v), 2, 4)], 1)
            flag = torch.cat([torch.zeros_like(mask), torch.ones_like(mask[:, :2])], 1)
            attr = torch.cat([torch.cat([attr, torch.zeros_like(attr[:, :2])], 1),
                              flag[..., None].to(x.dtype)], -1)
            mask = torch.cat([mask, torch.ones_like(mask[:, :2])], 1)
        eye = torch.eye(mask.shape[1], dtype=torch.bool, device=mask.device)
        pair = (mask[:, :, None] & mask[:, None, :] & ~eye).to(x.dtype)
        h = self.embed(attr)
        for block in self.blocks:
            h, p = block(h, p, attr, pair)
        w = mask[..., None].to(x.dtype)
        return self.head((h * w).sum(1) / w.sum(1).clamp(min=1.0))
