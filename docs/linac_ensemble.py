"""linac, exploratory: TD3 trained across an ensemble of learned simulators (issue 24).

Not part of the package: it patches the study in this process so that the control part
trains ``K`` conditional VAEs instead of one (member 0 is the study's own model, same seed,
so runs are paired with the single-simulator run; with ``BOOT=1`` members 1… are trained on
bootstrap resamples of the training rows) and the learned-simulator environment draws one
member per episode. The validation-day MAE it reports is the members' mean prediction's.
Everything else (states, agent, evaluation) is the study's. Usage, one seed::

    K=5 BOOT=1 OMP_NUM_THREADS=1 .venv/bin/python docs/linac_ensemble.py linac run \\
        --preset paper --seed 0 --workdir runs/linac-ensemble/seed0 --set 'parts=[control]' \\
        --set 'rl.algorithms=[td3]' --set rl.sim_timesteps=100000 \\
        --set rl.machine_timesteps=0 --set rl.sim_offset=0.0 --set rl.sim_gain=0.0 \\
        --set 'rl.baselines=[]' --set 'cvae.decoders=[mlp]'
"""

import os
import sys

import numpy as np
import torch

import hepchain.accelerator.linac.study as study
from hepchain.accelerator.linac import envs, surrogates
from hepchain.core.seeding import derive_seed

K = int(os.environ.get("K", "3"))
BOOT = os.environ.get("BOOT") == "1"
_fit_one = surrogates.fit_cvae


class Ensemble(torch.nn.Module):
    """Members of one conditional-VAE learned simulator; called, the members' mean."""

    def __init__(self, members: list[torch.nn.Module]) -> None:
        super().__init__()
        self.members = torch.nn.ModuleList(members)
        self.latent = members[0].latent

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(cond) for m in self.members]).mean(0)


def resample(data: surrogates.ConditionalData, seed: int) -> surrogates.ConditionalData:
    """A bootstrap resample of the rows."""
    i = np.random.default_rng(seed).integers(len(data.y), size=len(data.y))
    return surrogates.ConditionalData(data.u[i], data.context[i], data.y[i])


def fit_ensemble(train, val, cfg, seed, device="cpu", *decoder_args):
    members = []
    for k in range(K):
        s = seed if k == 0 else derive_seed(seed, "member", k)
        data = resample(train, s) if BOOT and k else train
        members.append(_fit_one(data, val, cfg, s, device, *decoder_args)[0])
    return Ensemble(members), None


class EnsembleEnv(envs.LearnedEnv):
    """The learned-simulator task with one ensemble member drawn per episode."""

    def __init__(self, model: Ensemble, *args, **kwargs) -> None:
        super().__init__(model, *args, **kwargs)
        self.pool = list(model.members)

    def _new_state(self):
        self.model = self.pool[int(self.np_random.integers(len(self.pool)))]
        return super()._new_state()


surrogates.fit_cvae = fit_ensemble
study.LearnedEnv = EnsembleEnv

if __name__ == "__main__":
    from hepchain.cli import main

    main(sys.argv[1:])
