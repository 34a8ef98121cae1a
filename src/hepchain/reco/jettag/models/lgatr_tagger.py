"""L-GATr (Spinner, Bresó, Haag, Plehn, Thaler et al., arXiv:2405.14806, 2411.00446): the
Lorentz-equivariant geometric-algebra transformer of the maintained ``lgatr`` package
(:class:`lgatr.LGATr`), wrapped to the zoo's inputs. Each constituent is one token: its
four-momentum / ``p_scale`` embedded as a vector multivector, optionally with the reference
multivectors ("spurions": the x-y plane as a bivector and the time direction) as extra
channels, and the chosen particle features as scalar channels. The network's output scalars
(the scalar component of its multivector output and its scalar channels) are averaged over
the real particles and a dense head gives the logits.

Without spurions and with Lorentz-invariant scalar features the output is invariant under any
Lorentz transformation of all constituents; with the spurions it stays invariant under
rotations about and boosts along the beam axis, as in the L-GATr tagging papers.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from lgatr import LGATr, embed_vector, extract_scalar, get_spurions
from torch import Tensor, nn

from hepchain.nn.mlp import MLP


class LGATrTagger(nn.Module):
    """``blocks`` L-GATr blocks of ``mv_channels`` multivector and ``s_channels`` scalar
    channels with ``heads`` heads; ``scalars``: columns of the particle features fed as
    scalars; ``spurions``: add the x-y-plane and time references; dense ``fc`` head."""

    def __init__(self, n_classes: int, scalars: list[int], blocks: int, mv_channels: int,
                 s_channels: int, heads: int, fc: Sequence[int], p_scale: float,
                 spurions: bool) -> None:
        super().__init__()
        self.scalars, self.p_scale = scalars, p_scale
        refs = get_spurions("xyplane", add_time_spurion=True) if spurions else torch.empty(0, 16)
        self.register_buffer("spurions", refs)
        self.net = LGATr(num_blocks=blocks, in_mv_channels=1 + len(refs), out_mv_channels=1,
                         hidden_mv_channels=mv_channels, in_s_channels=len(scalars),
                         out_s_channels=s_channels, hidden_s_channels=s_channels,
                         attention={"num_heads": heads}, mlp={})
        self.head = MLP(1 + s_channels, fc, n_classes)

    def forward(self, x: Tensor, v: Tensor, mask: Tensor) -> Tensor:
        """``x`` (B, P, F), ``v`` (B, P, 4) = (px, py, pz, E) [GeV], ``mask`` (B, P) -> (B, C)."""
        momenta = embed_vector(v[..., [3, 0, 1, 2]] / self.p_scale)[..., None, :]  # (t, x, y, z)
        refs = self.spurions.expand(*v.shape[:2], *self.spurions.shape)
        mv = torch.cat([momenta, refs], -2)
        scalars = x[..., self.scalars] if self.scalars else None
        out_mv, out_s = self.net(mv, scalars, attn_mask=mask[:, None, None, :])
        per_particle = torch.cat([extract_scalar(out_mv)[..., 0, :], out_s], -1)
        w = mask[..., None].to(x.dtype)
        return self.head((per_particle * w).sum(1) / w.sum(1).clamp(min=1.0))
