"""weaver network config: weaver-core's ParticleTransformer with the zoo's settings (as
``particle_transformer/networks/example_ParticleTransformer.py``, sizes from the options)."""

import numpy as np
import torch
from weaver.nn.model.ParticleTransformer import ParticleTransformer


class ParticleTransformerWrapper(torch.nn.Module):
    def __init__(self, **kwargs) -> None:
        super().__init__()
        self.mod = ParticleTransformer(**kwargs)

    @torch.jit.ignore
    def no_weight_decay(self):
        return {"mod.cls_token"}

    def forward(self, points, features, lorentz_vectors, mask):
        return self.mod(features, v=lorentz_vectors, mask=mask)


def get_model(data_config, embed_dims, pair_embed_dims, num_heads, num_layers, num_cls_layers,
              seed=None, **kwargs):
    if seed is not None:
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)  # noqa: NPY002 - weaver shuffles with the global RNG
    model = ParticleTransformerWrapper(
        input_dim=len(data_config.input_dicts["pf_features"]),
        num_classes=len(data_config.label_value), embed_dims=tuple(embed_dims),
        pair_embed_dims=tuple(pair_embed_dims), num_heads=num_heads, num_layers=num_layers,
        num_cls_layers=num_cls_layers, trim=False)
    info = {
        "input_names": list(data_config.input_names),
        "input_shapes": {k: (1, *s[1:]) for k, s in data_config.input_shapes.items()},
        "output_names": ["softmax"],
        "dynamic_axes": {**{k: {0: "N", 2: "n_" + k.split("_")[0]}
                            for k in data_config.input_names}, "softmax": {0: "N"}},
    }
    return model, info


def get_loss(data_config, **kwargs):
    return torch.nn.CrossEntropyLoss()
