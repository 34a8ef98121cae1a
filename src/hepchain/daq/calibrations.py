"""The sparse study's energy calibrations: on the full readout, and retrained on the pixels
each sampling pattern keeps.

- :class:`CalibrationData`: the calibration inputs of the three splits;
- :func:`full_readout`: the weighted layer sum with a linear fit, the MLP and (optionally) the
  CNN on all pixels, as resolution points per test energy;
- :func:`choose_slope`: the LOUPE slope with the lowest validation loss;
- :func:`pattern_scan`: every pattern kind at every reduction rate, evaluated as a fixed
  binary pattern with a freshly trained calibration;
- :func:`autoencoder_sigmas`: the autoencoder-code calibration (a compression reference).

Resolutions are ``{energy [GeV]: (σ/E, its test-set error)}`` in percent (:data:`Sigmas`)::

    data = CalibrationData.from_showers(showers)
    curves, pictures = pattern_scan(cfg, geometry.shape, data, seed, none, workdir)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from hepchain.calo.geometry import ECalGeometry
from hepchain.calo.validation import weighted_layer_sum
from hepchain.core.result import Result
from hepchain.core.seeding import derive_seed
from hepchain.core.trainer import Trainer
from hepchain.daq.autoencoder import autoencoder_calibration
from hepchain.daq.learned import learn_pattern
from hepchain.daq.patterns import n_keep, random_pattern, regular_pattern
from hepchain.reco.calibration.baseline import LinearCalibration
from hepchain.reco.calibration.evaluate import EnergyPoint, resolution_points
from hepchain.reco.calibration.models import CNNRegressor, MLPRegressor
from hepchain.reco.calibration.train import fit_regressor, predict, to_inputs

Showers = tuple[np.ndarray, np.ndarray]
"""(energies [GeV], showers [MeV] (N, layers, ny, nx)) of one split."""
Sigmas = dict[float, tuple[float, float]]
"""energy [GeV] -> (σ/E, its statistical error on the test showers) [%]."""


@dataclass
class CalibrationData:
    """Pixel inputs and true energies [GeV] of the training and validation showers (as the
    trainer takes them) and of the test showers."""

    train: tuple[Tensor, Tensor]
    val: tuple[Tensor, Tensor]
    x_test: Tensor
    e_test: np.ndarray

    @classmethod
    def from_showers(cls, train: Showers, val: Showers, test: Showers) -> CalibrationData:
        def energies(e: np.ndarray) -> Tensor:
            return torch.as_tensor(e, dtype=torch.float32)

        return cls((to_inputs(train[1]), energies(train[0])),
                   (to_inputs(val[1]), energies(val[0])), to_inputs(test[1]), test[0])

    def sigmas(self, trainer: Trainer) -> Sigmas:
        """The test resolution of a calibration trained on these inputs."""
        return percent(resolution_points(self.e_test, predict(trainer, self.x_test)))

    def masked(self, pattern: np.ndarray) -> CalibrationData:
        """The same showers read out only at the pixels ``pattern`` keeps."""
        keep = torch.as_tensor(pattern, dtype=torch.float32)
        return CalibrationData((self.train[0] * keep, self.train[1]),
                               (self.val[0] * keep, self.val[1]), self.x_test * keep,
                               self.e_test)


def percent(points: list[EnergyPoint]) -> Sigmas:
    """Resolution points as :data:`Sigmas` [%]."""
    return {p.energy: (100 * p.resolution, 100 * p.resolution_error) for p in points}


def fit_mlp(data: CalibrationData, hidden: list[int], train_cfg: dict[str, Any],
            seed: int) -> Trainer:
    """The calibration MLP (relative MSE) trained on ``data``'s pixels."""
    n_pixels = int(np.prod(data.train[0].shape[1:]))
    return fit_regressor(lambda: MLPRegressor(n_pixels, hidden), data.train, data.val,
                         train_cfg, seed)


def layer_sum(geometry: ECalGeometry, train: Showers, test: Showers) -> list[EnergyPoint]:
    """The baseline: sampling-weighted layer sum, linear fit on the training showers."""
    weights = geometry.sampling_weights()
    lin = LinearCalibration().fit(weighted_layer_sum(train[1], weights), train[0])
    return resolution_points(test[0], lin(weighted_layer_sum(test[1], weights)))


def full_readout(cfg: dict[str, Any], geometry: ECalGeometry, data: CalibrationData,
                 seed: int) -> dict[str, list[EnergyPoint]]:
    """The MLP and, with ``cfg['cnn']``, the CNN on all pixels (seed ``derive_seed(seed,
    'train')``), as resolution points per test energy."""
    s = derive_seed(seed, "train")
    points = {"MLP (all pixels)": resolution_points(
        data.e_test, predict(fit_mlp(data, list(cfg["model"]["hidden"]), cfg["train"], s),
                             data.x_test))}
    if cfg["cnn"]:
        cnn = fit_regressor(lambda: CNNRegressor(geometry.n_layers), data.train, data.val,
                            cfg["train"], s)
        points["CNN (all pixels)"] = resolution_points(data.e_test, predict(cnn, data.x_test))
    return points


def choose_slope(cfg: dict[str, Any], data: CalibrationData, seed: int,
                 result: Result) -> float:
    """The LOUPE slope with the lowest *validation* loss of the calibration retrained on the
    exported pattern at the table rate (one tuning seed, separate from the training seeds);
    every candidate's loss is a row of ``result``."""
    slopes = cfg["mask"]["slope"]
    if not isinstance(slopes, list):
        return float(slopes)
    s, hidden = derive_seed(seed, "slope"), list(cfg["model"]["hidden"])
    losses = {}
    for slope in slopes:
        pattern, _ = learn_pattern("loupe", data.train, data.val, cfg["table_rate"], hidden,
                                   cfg["mask_train"], s, {**cfg["mask"], "slope": slope})
        trainer = fit_mlp(data.masked(pattern), hidden, cfg["train"], s)
        losses[float(slope)] = trainer.history.best_value
        result.add("LOUPE slope scan: validation relative MSE", f"slope {slope:g}",
                   losses[float(slope)], higher_is_better=False)
    best = min(losses, key=losses.get)
    result.notes.append(f"LOUPE slope chosen on validation data (not test): {best:g} "
                        f"(candidates {', '.join(f'{k:g}' for k in losses)}).")
    return best


def make_pattern(kind: str, rate: float, shape: tuple[int, int, int],
                 rng: np.random.Generator, data: CalibrationData, cfg: dict[str, Any],
                 seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(binary pattern, per-pixel score) of one ``kind`` dropping ``rate`` of the pixels:
    random (from ``rng``), regular, or learned (LOUPE / Gumbel top-k) on the training data."""
    if kind == "random":
        p = random_pattern(shape, rate, rng)
        return p, p.astype(float)
    if kind == "regular":
        p = regular_pattern(shape, rate)
        return p, p.astype(float)
    return learn_pattern(kind, data.train, data.val, rate, list(cfg["model"]["hidden"]),
                         cfg["mask_train"], seed, cfg["mask"])


def pattern_scan(cfg: dict[str, Any], shape: tuple[int, int, int], data: CalibrationData,
                 seed: int, none: Sigmas, workdir: Path
                 ) -> tuple[dict[str, dict[float, Sigmas]],
                            dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Every ``cfg['patterns']`` kind at every ``cfg['rates']`` (rate 0: the full-readout MLP,
    ``none``), each calibrated afresh on the pixels it keeps. Returns the resolutions by
    kind and rate, and the learned patterns at the table rate as (score, pattern), also
    saved as ``pattern_<kind>_<rate %>.npy`` in ``workdir``."""
    s, hidden = derive_seed(seed, "train"), list(cfg["model"]["hidden"])
    rng = np.random.default_rng(derive_seed(seed, "random patterns"))
    curves: dict[str, dict[float, Sigmas]] = {}
    pictures: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for rate in cfg["rates"]:
        for kind in cfg["patterns"]:
            if rate == 0.0:
                curves.setdefault(kind, {})[rate] = none
                continue
            pattern, scores = make_pattern(kind, rate, shape, rng, data, cfg, s)
            masked = data.masked(pattern)
            curves.setdefault(kind, {})[rate] = masked.sigmas(
                fit_mlp(masked, hidden, cfg["train"], s))
            if kind in ("loupe", "gumbel") and rate == cfg["table_rate"]:
                pictures[kind] = (scores, pattern)
                np.save(workdir / f"pattern_{kind}_{round(100 * rate)}.npy", pattern)
    return curves, pictures


def autoencoder_sigmas(cfg: dict[str, Any], data: CalibrationData, seed: int,
                       result: Result) -> Sigmas:
    """The calibration of an autoencoder's code of as many numbers as the table-rate pattern
    reads out pixels (at most ``cfg['ae_latent_max']``); a note states the code size."""
    n_pixels = int(np.prod(data.train[0].shape[1:]))
    kept = n_keep(n_pixels, cfg["table_rate"])
    latent = kept if cfg["ae_latent_max"] is None else min(kept, int(cfg["ae_latent_max"]))
    result.notes.append(f"Autoencoder code: {latent} numbers (the "
                        f"{100 * cfg['table_rate']:.0f}% pattern reads out {kept} pixels).")
    pred = autoencoder_calibration(data.train, data.val, data.x_test, latent,
                                   list(cfg["model"]["hidden"]), cfg["train"],
                                   derive_seed(seed, "train"))
    return percent(resolution_points(data.e_test, pred))
