"""weaver network config: the Particle Flow Network of
``jet-universe/particle_transformer/networks/example_PFN.py`` (MIT licence, © 2022 H. Qu,
C. Li, S. Qian; weaver-core itself ships no PFN), without batch normalisation as there
(``use_bn=False``), with Φ widths ``phi`` and F widths ``f`` from the options."""

import numpy as np
import torch
from torch import nn


class ParticleFlowNetwork(nn.Module):
    def __init__(self, input_dims, num_classes, Phi_sizes, F_sizes):
        super().__init__()
        self.phi = nn.Sequential(*(
            nn.Sequential(nn.Conv1d(input_dims if i == 0 else Phi_sizes[i - 1], size, 1),
                          nn.ReLU()) for i, size in enumerate(Phi_sizes)))
        f_layers = [nn.Sequential(nn.Linear(Phi_sizes[-1] if i == 0 else F_sizes[i - 1], size),
                                  nn.ReLU()) for i, size in enumerate(F_sizes)]
        self.fc = nn.Sequential(*f_layers, nn.Linear(F_sizes[-1], num_classes))

    def forward(self, points, features, lorentz_vectors, mask):
        x = self.phi(features)
        if mask is not None:
            x = x * mask.bool().float()
        return self.fc(x.sum(-1))


def get_model(data_config, phi, f, seed=None, **kwargs):
    if seed is not None:
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)  # noqa: NPY002 - weaver shuffles with the global RNG
    model = ParticleFlowNetwork(len(data_config.input_dicts["pf_features"]),
                                len(data_config.label_value), list(phi), list(f))
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
