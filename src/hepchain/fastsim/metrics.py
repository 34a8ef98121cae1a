"""CaloChallenge 2022 metrics of generated showers against reference (full-simulation) ones.

Definitions copied from the challenge's ``code/HighLevelFeatures.py``, ``code/evaluate.py``
and ``code/evaluate_plotting_helper.py`` (github.com/CaloChallenge/homepage, commit 9b41df7);
the structure is ours. Energies in MeV, positions in mm.

- High-level features (:func:`high_level_features`): per layer the energy E_layer, the centre
  of energy ⟨x⟩, ⟨y⟩, ⟨r⟩ and widths √(⟨x²⟩ − ⟨x⟩²) (…) with the voxel centres as positions and
  1e-16 added to the energy sums, sparsity = 1 − fraction of voxels > 0; E_tot. Voxels below
  ``min_energy`` are set to 0 first (the challenge's readout threshold).
- Separation power (:func:`separation_power`): S = ½ Σ (h1 − h2)² / (h1 + h2 + 1e-16) on
  histograms normalised to unit sum over the bins (the challenge's ``density=True`` times the
  bin widths), with the challenge's binning (:class:`HistogramBinning`): E_tot/E_inc 100 linear
  bins in [0.5, 1.5]; E_layer 39 logarithmic bins from ``min_energy`` to the reference's
  maximum of that layer; centres 100 bins in [−30, 30] mm, widths 100 bins in [0, 30] mm
  (datasets 2/3), sparsity 20 bins in [0, 1], ⟨r⟩ 100 bins in [0, 42] mm, r width 100 bins in
  [0, 20] mm. 0 for identical histograms, 1 for disjoint ones.
- Classifier inputs: low level log10 E_inc and voxels / E_inc (:func:`low_level_inputs`);
  high level log10 E_inc, log10(E_layer + 1e-8), ⟨x⟩, ⟨y⟩, widths x, y (all / 100),
  log10(E_tot + 1e-8), sparsity, ⟨r⟩ / 100, r width / 100 (:func:`high_level_inputs`). The same
  high-level array is the input of FPD / KPD (``core.twosample``).
- Classifier (:func:`challenge_dnn`): the challenge's DNN (input → n_hidden, then ``n_layer``
  more n_hidden layers, LeakyReLU, one logit), Adam, BCE, the epoch with the best accuracy on
  the challenge's "test" split kept, then calibrated by isotonic regression on that split; the
  AUC on the held-out split (:func:`hepchain.core.twosample.c2st`, 60 / 20 / 20 split).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from hepchain.core.errors import DataError
from hepchain.core.seeding import derive_seed
from hepchain.core.trainer import TrainConfig, Trainer
from hepchain.core.twosample import Estimate, Fit, Scorer, c2st
from hepchain.fastsim.voxels import VoxelGeometry
from hepchain.reco.calibration.train import BatchedTensors

_EPS = 1e-16


@dataclass(frozen=True)
class HighLevel:
    """Per-shower high-level features: ``e_inc``, ``e_tot`` (N,) [MeV]; per layer (N, L):
    ``e_layer`` [MeV], centres ``ec_x``, ``ec_y``, ``ec_r`` and widths ``width_x``,
    ``width_y``, ``width_r`` [mm], ``sparsity`` (fraction of voxels at 0)."""

    e_inc: np.ndarray
    e_tot: np.ndarray
    e_layer: np.ndarray
    ec_x: np.ndarray
    ec_y: np.ndarray
    width_x: np.ndarray
    width_y: np.ndarray
    sparsity: np.ndarray
    ec_r: np.ndarray
    width_r: np.ndarray

    def subset(self, index: np.ndarray) -> HighLevel:
        return HighLevel(**{f.name: getattr(self, f.name)[index] for f in fields(self)})


def threshold(showers: np.ndarray, min_energy: float) -> np.ndarray:
    """Voxels below ``min_energy`` [MeV] set to 0 (the challenge's ``np.where(x < min, 0, x)``)."""
    showers = np.asarray(showers, dtype=np.float64)
    return np.where(showers < min_energy, 0.0, showers)


def high_level_features(showers: np.ndarray, e_inc: np.ndarray, geometry: VoxelGeometry,
                        min_energy: float = 0.0) -> HighLevel:
    """The challenge's ``HighLevelFeatures.CalculateFeatures`` of ``showers`` (N, n_voxels)
    [MeV] at incident energies ``e_inc`` (N,) [MeV]."""
    e_inc = np.asarray(e_inc, dtype=np.float64).reshape(-1)
    layers = geometry.layers(threshold(showers, min_energy))
    if len(e_inc) != len(layers):
        raise DataError(f"{len(e_inc)} incident energies for {len(layers)} showers; give one "
                        "energy per shower.")
    e_layer = layers.sum(-1)
    norm = e_layer + _EPS

    def centre(pos: np.ndarray, power: int = 1) -> np.ndarray:
        return (layers * pos**power).sum(-1) / norm

    def width(pos: np.ndarray) -> np.ndarray:
        return np.sqrt(np.clip(centre(pos, 2) - centre(pos) ** 2, 0.0, None))

    x, y, r = geometry.x, geometry.y, geometry.r
    return HighLevel(e_inc=e_inc, e_tot=layers.sum((1, 2)), e_layer=e_layer,
                     ec_x=centre(x), ec_y=centre(y), width_x=width(x), width_y=width(y),
                     sparsity=1.0 - (layers > 0).mean(-1), ec_r=centre(r), width_r=width(r))


def high_level_inputs(hl: HighLevel) -> np.ndarray:
    """The challenge's high-level classifier (and FPD / KPD) input array, (N, 8 L + 2)."""
    return np.concatenate([np.log10(hl.e_inc)[:, None], np.log10(hl.e_layer + 1e-8),
                           hl.ec_x / 1e2, hl.ec_y / 1e2, hl.width_x / 1e2, hl.width_y / 1e2,
                           np.log10(hl.e_tot + 1e-8)[:, None], hl.sparsity, hl.ec_r / 1e2,
                           hl.width_r / 1e2], axis=1)


def low_level_inputs(showers: np.ndarray, e_inc: np.ndarray, min_energy: float = 0.0
                     ) -> np.ndarray:
    """The challenge's low-level classifier input: log10 E_inc and voxels / E_inc."""
    e = np.asarray(e_inc, dtype=np.float64).reshape(-1, 1)
    return np.concatenate([np.log10(e), threshold(showers, min_energy) / e], axis=1)


def prdc_inputs(showers: np.ndarray, min_energy: float = 0.0) -> np.ndarray:
    """The challenge's PRDC features (``evaluate.py --mode prdc``): log10 of every voxel
    energy [MeV] after the readout threshold, empty voxels set to 0.1 MeV first."""
    s = threshold(showers, min_energy)
    return np.log10(np.where(s == 0.0, 0.1, s))


# ------------------------------------------------------------------------ separation power

def separation_power(h1: np.ndarray, h2: np.ndarray) -> float:
    """Triangular discrimination ½ Σ (h1 − h2)² / (h1 + h2) of two histograms, each
    normalised here to unit sum (eq. 15 of arXiv:2009.03796, the challenge's
    ``_separation_power``); NaN if a histogram is empty."""
    h1, h2 = np.asarray(h1, dtype=np.float64), np.asarray(h2, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        h1, h2 = h1 / h1.sum(), h2 / h2.sum()
    return float(0.5 * ((h1 - h2) ** 2 / (h1 + h2 + _EPS)).sum())


def histogram_separation(reference: np.ndarray, generated: np.ndarray, bins: np.ndarray
                         ) -> float:
    """:func:`separation_power` of the histograms of two samples in ``bins`` (entries outside
    the bins are not counted, as ``plt.hist(..., density=True)``)."""
    return separation_power(np.histogram(reference, bins)[0], np.histogram(generated, bins)[0])


@dataclass(frozen=True)
class HistogramBinning:
    """Ranges of the challenge's linear histograms [mm]; defaults: datasets 2 and 3."""

    ec_lim: float = 30.0
    width_lim: float = 30.0
    r_lim: float = 42.0
    width_r_lim: float = 20.0

    def bins(self, feature: str, reference: np.ndarray, min_energy: float) -> np.ndarray:
        """The challenge's bin edges of ``feature`` (a :data:`FEATURES` name); ``reference``
        (one layer's values) sets the top of the logarithmic E_layer bins."""
        if feature == "E_tot/E_inc":
            return np.linspace(0.5, 1.5, 101)
        if feature == "E_layer":
            low = max(min_energy, 1e-6)
            return np.logspace(np.log10(low), np.log10(max(reference.max(), 10 * low)), 40)
        limits = {"EC x": (-self.ec_lim, self.ec_lim), "EC y": (-self.ec_lim, self.ec_lim),
                  "width x": (0.0, self.width_lim), "width y": (0.0, self.width_lim),
                  "EC r": (0.0, self.r_lim), "width r": (0.0, self.width_r_lim)}
        if feature == "sparsity":
            return np.linspace(0.0, 1.0, 21)
        return np.linspace(*limits[feature], 101)


FEATURES = {"E_tot/E_inc": None, "E_layer": "e_layer", "EC x": "ec_x", "EC y": "ec_y",
            "width x": "width_x", "width y": "width_y", "sparsity": "sparsity",
            "EC r": "ec_r", "width r": "width_r"}
"""Histogrammed features: name -> per-layer attribute of :class:`HighLevel` (None: per shower)."""


def separation_powers(ref: HighLevel, gen: HighLevel, binning: HistogramBinning,
                      min_energy: float) -> dict[str, np.ndarray]:
    """Separation power of every histogram: feature name -> (1,) for E_tot/E_inc, (L,) per
    layer otherwise."""
    out = {"E_tot/E_inc": np.array([histogram_separation(
        ref.e_tot / ref.e_inc, gen.e_tot / gen.e_inc,
        binning.bins("E_tot/E_inc", ref.e_tot, min_energy))])}
    for name, attr in FEATURES.items():
        if attr is None:
            continue
        r, g = getattr(ref, attr), getattr(gen, attr)
        out[name] = np.array([histogram_separation(r[:, i], g[:, i],
                                                   binning.bins(name, r[:, i], min_energy))
                              for i in range(r.shape[1])])
    return out


def mean_separation(ref: HighLevel, gen: HighLevel, binning: HistogramBinning,
                    min_energy: float, n_boot: int = 10, seed: int = 0
                    ) -> dict[str, Estimate]:
    """Per feature, the separation power averaged over layers, with the spread of
    ``n_boot`` bootstrap resamplings of both samples as its statistical error."""
    central = {k: float(np.nanmean(v)) for k, v in
               separation_powers(ref, gen, binning, min_energy).items()}
    rng = np.random.default_rng(seed)
    boots: dict[str, list[float]] = {k: [] for k in central}
    for _ in range(n_boot):
        r = ref.subset(rng.integers(0, len(ref.e_inc), len(ref.e_inc)))
        g = gen.subset(rng.integers(0, len(gen.e_inc), len(gen.e_inc)))
        for k, v in separation_powers(r, g, binning, min_energy).items():
            boots[k].append(float(np.nanmean(v)))
    return {k: Estimate(v, float(np.std(boots[k], ddof=1)) if n_boot > 1 else float("nan"))
            for k, v in central.items()}


# ------------------------------------------------------------------------ classifier

class ChallengeDNN(nn.Module):
    """The challenge's ``DNN``: Linear(d, n) LeakyReLU, ``n_layer`` × [Linear(n, n) LeakyReLU],
    Linear(n, 1) (dropout 0)."""

    def __init__(self, n_in: int, n_hidden: int = 2048, n_layer: int = 2) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Linear(n_in, n_hidden), nn.LeakyReLU()]
        for _ in range(n_layer):
            layers += [nn.Linear(n_hidden, n_hidden), nn.LeakyReLU()]
        self.net = nn.Sequential(*layers, nn.Linear(n_hidden, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(-1)


def _bce(model: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
    return nn.functional.binary_cross_entropy_with_logits(model(batch[0]), batch[1])


def _accuracy(model: nn.Module, loader: Any) -> dict[str, float]:
    hits = total = 0
    for x, y in loader:
        hits += int(((model(x) > 0).float() == y).sum())
        total += len(y)
    return {"accuracy": hits / total}


def challenge_dnn(n_hidden: int = 2048, n_layer: int = 2, epochs: int = 50, lr: float = 2e-4,
                  batch_size: int = 1000, val_fraction: float = 0.25) -> Fit:
    """A :data:`~hepchain.core.twosample.Fit` for :func:`~hepchain.core.twosample.c2st`: the
    challenge's classifier set-up (module docstring); ``val_fraction`` of the training rows
    are the challenge's "test" split (20 of 80 %)."""

    def fit(x1: np.ndarray, x0: np.ndarray, seed: int) -> Scorer:
        from sklearn.isotonic import IsotonicRegression

        x = torch.as_tensor(np.concatenate([x1, x0]), dtype=torch.float32)
        y = torch.as_tensor(np.r_[np.ones(len(x1)), np.zeros(len(x0))], dtype=torch.float32)
        perm = torch.as_tensor(np.random.default_rng(derive_seed(seed, "cls split"))
                               .permutation(len(x)))
        n_val = int(val_fraction * len(x))
        val, train = perm[:n_val], perm[n_val:]
        torch.manual_seed(derive_seed(seed, "cls init"))
        model = ChallengeDNN(x.shape[1], n_hidden, n_layer)
        cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, optimizer="adam",
                          monitor="accuracy", mode="max", seed=seed, progress=False)
        trainer = Trainer(model, _bce, cfg, metrics_fn=_accuracy, collate_fn=whole_batch)
        trainer.fit(BatchedTensors(x[train], y[train]), BatchedTensors(x[val], y[val]))
        iso = IsotonicRegression(out_of_bounds="clip", y_min=1e-6, y_max=1 - 1e-6)
        iso.fit(_probabilities(trainer, x[val]), y[val].numpy())
        return lambda rows: iso.predict(_probabilities(
            trainer, torch.as_tensor(rows, dtype=torch.float32)))

    return fit


def _probabilities(trainer: Trainer, x: Tensor) -> np.ndarray:
    return torch.sigmoid(trainer.predict(BatchedTensors(x))).numpy().astype(np.float64)


def whole_batch(batch: Any) -> Any:
    """Collate for :class:`~hepchain.reco.calibration.train.BatchedTensors`: the DataLoader
    already indexed the whole batch."""
    return batch


def classifier_auc(real: np.ndarray, gen: np.ndarray, fit: Fit, seed: int) -> Estimate:
    """Held-out AUC (20 % of each sample) of ``fit`` separating real from generated rows, with
    its Hanley–McNeil error (0.5: indistinguishable)."""
    return c2st(real, gen, fit=fit, test_fraction=0.2, seed=seed)

