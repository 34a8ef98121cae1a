"""weaver network config: weaver-core's ParticleNet with the zoo's settings (as
``particle_transformer/networks/example_ParticleNet.py``, sizes and the fusion block from the
options; weaver's defaults for feature batch norm and counts, as the zoo uses them)."""

import numpy as np
import torch
from weaver.nn.model.ParticleNet import ParticleNet


class ParticleNetWrapper(torch.nn.Module):
    def __init__(self, **kwargs) -> None:
        super().__init__()
        self.mod = ParticleNet(**kwargs)

    def forward(self, points, features, lorentz_vectors, mask):
        return self.mod(points, features, mask)


def get_model(data_config, conv_params, fc_params, use_fusion=True, seed=None, **kwargs):
    if seed is not None:
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)  # noqa: NPY002 - weaver shuffles with the global RNG
    model = ParticleNetWrapper(
        input_dims=len(data_config.input_dicts["pf_features"]),
        num_classes=len(data_config.label_value),
        conv_params=[(int(k), tuple(c)) for k, c in conv_params],
        fc_params=[(int(w), float(d)) for w, d in fc_params], use_fusion=bool(use_fusion),
        trim=False)
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
