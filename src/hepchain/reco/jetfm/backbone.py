"""The backbone every objective shares: weaver-core's Particle Transformer encoder
(:class:`weaver.nn.model.ParticleTransformer.ParticleTransformer`: particle embedding, pair
embedding of (ln ΔR, ln kT, ln z, ln m²) as attention bias, particle-attention blocks) run per
particle, with two inputs the objectives need: a *hidden* flag per slot (a masked constituent,
or the start slot of next-token prediction: features and four-vector removed) and, for the
generative objective, a causal attention mask (a slot sees only earlier, higher-pT slots).

Four-vectors come from the features themselves: massless constituents of transverse momentum
pT [GeV] at (Δη, Δφ) [rad] from the jet axis, so generated jets (features decoded from tokens)
get the same pair inputs as real ones; ΔR, kT, z and m² do not depend on the jet's own η, φ.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from weaver.nn.model.ParticleTransformer import ParticleTransformer

from hepchain.core.errors import DataError, UsageError
from hepchain.core.io import atomic_write_bytes
from hepchain.reco.jettag.data import _KIN

KINEMATICS = ("part_pt_log", "part_deta", "part_dphi")


def transverse_momentum(pt_log: Tensor) -> Tensor:
    """pT [GeV] from the standardised ``part_pt_log`` (weaver: (ln pT − 1.7)·0.7)."""
    _, centre, scale = _KIN["part_pt_log"]
    return torch.exp(pt_log / scale + centre)


def massless_vectors(x: Tensor, kin_index: Sequence[int]) -> Tensor:
    """(…, 4) = (px, py, pz, E) [GeV] of massless constituents from features (…, F) whose
    columns ``kin_index`` are :data:`KINEMATICS`."""
    pt = transverse_momentum(x[..., kin_index[0]])
    eta, phi = x[..., kin_index[1]], x[..., kin_index[2]]
    return torch.stack([pt * phi.cos(), pt * phi.sin(), pt * eta.sinh(), pt * eta.cosh()], -1)


class JetBackbone(nn.Module):
    """Per-particle encoder (B, P, F) -> (B, P, embed[-1]) with ``layers`` ParT blocks."""

    def __init__(self, n_features: int, max_particles: int, kin_index: Sequence[int],
                 embed: Sequence[int], pair_embed: Sequence[int], heads: int, layers: int,
                 causal: bool = False) -> None:
        super().__init__()
        self.hparams = {"n_features": n_features, "max_particles": max_particles,
                        "kin_index": list(kin_index), "embed": list(embed),
                        "pair_embed": list(pair_embed), "heads": heads, "layers": layers,
                        "causal": causal}
        self.kin_index, self.max_particles, self.causal = tuple(kin_index), max_particles, causal
        # inputs: features, hidden flag, pT rank / max_particles; no class blocks, no head
        self.net = ParticleTransformer(n_features + 2, None, embed_dims=tuple(embed),
                                       pair_embed_dims=tuple(pair_embed), num_heads=heads,
                                       num_layers=layers, num_cls_layers=0, fc_params=None,
                                       trim=False)

    @property
    def width(self) -> int:
        return self.hparams["embed"][-1]

    def forward(self, x: Tensor, mask: Tensor, hidden: Tensor | None = None) -> Tensor:
        """``x`` (B, P, F) features, ``mask`` (B, P) real slots, ``hidden`` (B, P) slots whose
        features are removed -> (B, P, D) layer-normed particle embeddings."""
        hidden = torch.zeros_like(mask) if hidden is None else hidden
        seen = (mask & ~hidden)[..., None]
        zero = torch.zeros((), dtype=x.dtype, device=x.device)  # +0: atan2 sees -0 as π
        n_slots = x.shape[1]
        rank = (torch.arange(n_slots, device=x.device, dtype=x.dtype) / self.max_particles)
        inputs = torch.cat([torch.where(seen, x, zero), hidden[..., None].to(x.dtype),
                            rank[None, :, None].expand(x.shape[0], -1, 1)], -1)
        vectors = torch.where(seen, massless_vectors(x, self.kin_index), zero)
        m = mask[:, None, :].to(x.dtype)
        h = self.net.embed(inputs.transpose(1, 2)).masked_fill(~mask[..., None], 0.0)
        bias = self.net.pair_embed(vectors.transpose(1, 2), mask=m)
        if self.causal:
            future = torch.ones(n_slots, n_slots, dtype=torch.bool, device=x.device).triu(1)
            bias = bias.masked_fill(future, -1e9)
        for block in self.net.blocks:
            h = block(h, x_cls=None, padding_mask=~mask, attn_mask=bias)
        return self.net.norm(h)


def save_backbone(backbone: JetBackbone, path: Path, feature_names: Sequence[str],
                  objective: str) -> Path:
    """Write ``backbone`` as a ``torch.load(weights_only=True)``-loadable file: its weights,
    sizes, the feature names it was trained on and the pre-training objective."""
    import io

    buf = io.BytesIO()
    torch.save({"state_dict": backbone.state_dict(), "hparams": backbone.hparams,
                "feature_names": list(feature_names), "objective": objective}, buf)
    atomic_write_bytes(path, buf.getvalue())
    return path


def load_backbone(path: Path) -> tuple[JetBackbone, dict[str, Any]]:
    """The backbone saved by :func:`save_backbone` and its metadata (``feature_names``,
    ``objective``); DataError when ``path`` is not such a file."""
    if not Path(path).is_file():
        raise DataError(f"No backbone file at {path}; pass a backbone-*.pt written by "
                        "`hepchain jetfm run`.")
    try:
        saved = torch.load(path, weights_only=True, map_location="cpu")
        backbone = JetBackbone(**saved["hparams"])
        backbone.load_state_dict(saved["state_dict"])
    except (KeyError, TypeError, RuntimeError, ValueError) as exc:
        raise DataError(f"{path} is not a jetfm backbone file ({exc}).") from exc
    return backbone, {"feature_names": saved["feature_names"], "objective": saved["objective"]}


def check_compatible(backbone: JetBackbone, names: Sequence[str], n_features: int,
                     n_particles: int, data_names: Sequence[str] | None = None) -> None:
    """UsageError when jets of (n_particles, n_features) — with feature names ``data_names``
    where known — do not fit ``backbone``, pre-trained on features ``names``."""
    hp = backbone.hparams
    if n_features != hp["n_features"]:
        raise UsageError(f"The backbone was pre-trained on {hp['n_features']} particle "
                         f"features but the data have {n_features}; make the data with the "
                         "backbone's feature set.")
    if n_particles > hp["max_particles"]:
        raise UsageError(f"The data keep {n_particles} particles per jet but the backbone "
                         f"was pre-trained on at most {hp['max_particles']}; keep the leading "
                         f"{hp['max_particles']} (max_particles).")
    if data_names is not None and list(data_names) != list(names):
        raise UsageError(f"The data's particle features {list(data_names)} differ from the "
                         f"backbone's {list(names)}; make the data with the same feature set.")
