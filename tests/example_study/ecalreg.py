"""Example study — the template a new study copies.

ECAL energy regression: electron showers of the full simulation; a least-squares weighting of
the layer energies (the baseline) against that weighting corrected by an MLP that sees the
shower's longitudinal shape (ours), judged on
held-out showers by the stochastic term of the resolution with its fit error.

Every step is a call into a shared piece, none is a copy: the dataset comes from the one cache
(:mod:`hepchain.core.cache`), the settings from ``ecalreg.yaml`` beside this file (``quick``
complete, ``paper`` an overlay, a meaning per setting: ``hepchain ecalreg settings``), the model
from :mod:`hepchain.nn`, training from the one :class:`~hepchain.core.trainer.Trainer`
(checkpointed, so a killed run resumes), metrics from :mod:`hepchain.core.metrics`, figures from
:mod:`hepchain.core.plotting`. ``run`` runs exactly one seed; ``hepchain ecalreg bench --seeds 3``
runs seeds and aggregates them. A built-in study keeps this module in
``hepchain/<link>/<study>/``, its YAML in ``hepchain/configs/`` and one line in
``hepchain/studies.py``; this one is registered at run time::

    HEPCHAIN_EXTRA_STUDIES=ecalreg=example_study.ecalreg:EnergyRegressionStudy \\
        hepchain ecalreg run --preset quick
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hepchain.core import metrics, plotting
from hepchain.core.cache import cached_dataset
from hepchain.core.dataset import ShardedDataset
from hepchain.core.result import Reference, Result
from hepchain.core.seeding import derive_seed
from hepchain.core.standardise import Standardiser
from hepchain.core.study import Study
from hepchain.core.trainer import TrainConfig, Trainer
from hepchain.nn.mlp import MLP

Predictor = Callable[[np.ndarray], np.ndarray]  # layer energies [GeV] -> energy [GeV]
SID_STOCHASTIC = Reference(0.17, "SiD ECAL design stochastic term (another detector)")


class EnergyRegressionStudy(Study):
    name = "ecalreg"
    description = "ECAL energy regression: layer weights vs an MLP (the example study)"
    seed_doc = "000"

    def run(self, config: dict[str, Any], workdir: Path, seed: int) -> Result:
        result = Result(study=self.name, preset="")
        layers, energy = load_showers(config["data"], result)                          # data
        train, val, test = split(len(energy), config["split"], seed)
        baseline = fit_layer_weights(layers[train], energy[train])
        models = {"layer weights (least squares)": baseline,
                  "MLP correction (ours)": fit_mlp(layers, energy, baseline, train, val,
                                                   config, seed)}                      # models
        residuals = {}
        for method, predict in models.items():                                         # metrics
            pred, true = predict(layers[test]), energy[test]
            core = metrics.gaussian_core_fit((pred - true) / np.sqrt(true))
            result.add("stochastic term σ(E_pred − E)/√E", method, core.sigma,
                       std=core.sigma_error, unit="√GeV", higher_is_better=False,
                       reference=SID_STOCHASTIC)
            result.add("mean response E_pred/E − 1", method, float(np.mean(pred / true - 1)),
                       std=float(np.std(pred / true, ddof=1) / np.sqrt(true.size)))
            residuals[method] = (pred - true) / np.sqrt(true)
        result.figures.append(plotting.histograms(                                     # figures
            residuals, workdir / "residuals.png", xlabel="(E_pred − E) / √E [√GeV]").name)
        result.notes.append("The stochastic term assumes σ/E is dominated by a/√E over the "
                            f"spectrum; {test.size} test showers; ± is the core fit's error.")
        return result


def load_showers(data: dict[str, Any], result: Result) -> tuple[np.ndarray, np.ndarray]:
    """(energy per layer [GeV], incident energy [GeV]) of the cached electron showers."""
    ds = cached_dataset("ecal_spectrum", n_events=int(data["n_events"]), seed=int(data["seed"]),
                        options=data["options"])
    result.provenance.datasets.append(ds.manifest.summary())
    arrays = ShardedDataset(ds.path).read()
    n_layers = int(arrays["layer_shape"][0, 0])
    showers = arrays["showers"].reshape(len(arrays["showers"]), n_layers, -1)
    return showers.sum(-1) / 1e3, arrays["incident_energies"][:, 0] / 1e3  # MeV -> GeV


def split(n: int, fractions: dict[str, float], seed: int) -> tuple[np.ndarray, ...]:
    """Train / validation / test indices; the run seed chooses the split."""
    perm = np.random.default_rng(derive_seed(seed, "split")).permutation(n)
    a, b = int(fractions["train"] * n), int((fractions["train"] + fractions["val"]) * n)
    return perm[:a], perm[a:b], perm[b:]


def fit_layer_weights(layers: np.ndarray, energy: np.ndarray) -> Predictor:
    """The baseline: E ≈ Σ_i w_i E_i with weights from a least-squares fit."""
    weights, *_ = np.linalg.lstsq(layers, energy, rcond=None)
    return lambda x: x @ weights


def fit_mlp(layers: np.ndarray, energy: np.ndarray, baseline: Predictor, train: np.ndarray,
            val: np.ndarray, config: dict[str, Any], seed: int) -> Predictor:
    """Ours: the baseline times exp(MLP), the MLP regressing log(E / E_baseline) from the
    standardised layer-energy fractions (the shower shape the linear weights cannot use)."""
    def inputs(x: np.ndarray) -> np.ndarray:
        return x / np.clip(x.sum(1, keepdims=True), 1e-9, None)

    scale = Standardiser.fit(inputs(layers[train]))

    def tensors(idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.as_tensor(scale.transform(inputs(layers[idx])), dtype=torch.float32)
        target = np.log(energy[idx] / np.clip(baseline(layers[idx]), 1e-9, None))
        return x, torch.as_tensor(target, dtype=torch.float32)

    model = MLP(layers.shape[1], config["model"]["hidden"], 1)  # built after seeding: seeded

    def loss(m: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return nn.functional.mse_loss(m(batch[0]).squeeze(-1), batch[1])

    trainer = Trainer(model, loss, TrainConfig.from_dict(config["train"], seed=seed))
    trainer.fit(tensors(train), tensors(val))

    def predict(x: np.ndarray) -> np.ndarray:
        z = torch.as_tensor(scale.transform(inputs(x)), dtype=torch.float32)
        return baseline(x) * np.exp(trainer.predict((z,)).squeeze(-1).numpy())

    return predict
