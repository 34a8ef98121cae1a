"""The set-value experiment of seed 004 for one reshuffled split: train CNN and WS with the
core Trainer, evaluate them and the baselines on the held-out test scans.

Metrics per method: L1 in normalised knob units (the seed's number), L1 in units of each scan's
step, L1 per knob (steps), and — for simulated scans — the specific luminosity the machine
would have at the method's set value relative to the best that knob can reach.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hepchain.accelerator.ipknob.baselines import max_lsp, peak_fit
from hepchain.accelerator.ipknob.dataset import KnobScalers, ScanData, Split
from hepchain.accelerator.ipknob.machine import Machine, knob_index
from hepchain.accelerator.ipknob.models import WeightedSum, build_model, l1_loss
from hepchain.accelerator.ipknob.simulator import Collider, Noise
from hepchain.core import metrics
from hepchain.core.trainer import TrainConfig, Trainer

MODELS = {"cnn": "CNN", "ws": "WS"}
BASELINES = ("max L_sp", "max L_sp (step means)", "fit L_sp^-2", "Gaussian fit")


@dataclass
class SeedOutcome:
    """Predictions (knob units) and metrics of every method on one split's test scans."""

    test: np.ndarray
    predictions: dict[str, np.ndarray] = field(default_factory=dict)
    l1_norm: dict[str, float] = field(default_factory=dict)
    l1_step: dict[str, float] = field(default_factory=dict)
    per_knob: dict[str, dict[str, float]] = field(default_factory=dict)
    lumi_ratio: dict[str, float] = field(default_factory=dict)
    step_norm: float = float("nan")
    ws_weights: np.ndarray | None = None
    strongest_baseline: str = ""  # the baseline with the lowest validation L1 (steps)
    histories: dict[str, list[dict[str, float]]] = field(default_factory=dict)


def baseline_predictions(data: ScanData, idx: np.ndarray) -> dict[str, np.ndarray]:
    """Set values (knob units) of the L_sp baselines for the scans ``idx``.

    "max L_sp" takes the maximum over the resampled segments (what the models see, as in the
    seed); the others use the per-step means of L_sp.
    """
    out: dict[str, list[float]] = {name: [] for name in BASELINES}
    for i in idx:
        u, lsp = data.steps[i]
        out["max L_sp"].append(max_lsp(data.x[i, -1], data.x[i, 0]))
        out["max L_sp (step means)"].append(max_lsp(u, lsp))
        out["fit L_sp^-2"].append(peak_fit(u, lsp, "inverse_square"))
        out["Gaussian fit"].append(peak_fit(u, lsp, "gaussian"))
    return {k: np.array(v) for k, v in out.items()}


def strongest_baseline(data: ScanData, idx: np.ndarray) -> str:
    """The baseline with the lowest mean L1 (scan steps) on the scans ``idx`` (validation)."""
    l1 = {name: float(np.mean(np.abs(pred - data.set_value[idx]) / data.step[idx]))
          for name, pred in baseline_predictions(data, idx).items()}
    return min(l1, key=l1.__getitem__)


def lumi_ratio(data: ScanData, idx: np.ndarray, values: np.ndarray,
               machine: Machine) -> np.ndarray:
    """True L_sp at ``values`` of the scanned knob / the best L_sp that knob can reach with the
    other knobs as they were at the end of the scan, for simulated scans ``idx``.

    With knob cross-talk the best value of one knob is not its hidden optimum (it compensates
    the partner knob's error), so the best is searched on a grid of ±1.5 knob scales around the
    hidden optimum (0.005 knob scales apart).
    """
    phys = Collider(machine, np.random.default_rng(0), np.zeros(12), np.zeros(12),
                    np.ones(2), Noise())
    grid = np.linspace(-1.5, 1.5, 601)
    out = []
    for i, v in zip(idx, values, strict=True):
        t = data.truth[i]
        k = knob_index(str(data.knob[i]))
        off = np.repeat(np.asarray(t["offsets"], float)[None, :], grid.size + 1, axis=0)
        off[:-1, k] = grid * phys.scales[k]
        off[-1, k] = v - t["optimum"]
        lsp = phys.response(off, np.asarray(t["target_current"], float))["lsp"]
        out.append(lsp[-1] / lsp.max())
    return np.array(out)


def run_split(data: ScanData, split: Split, cfg: dict[str, Any], seed: int,
              workdir: Path, machine: Machine) -> SeedOutcome:
    """Train both models on ``split`` and evaluate every method on its test scans."""
    torch.set_num_threads(1)
    scalers = KnobScalers.fit(data, split.train)
    scalers.save(workdir / f"scalers_seed{seed}.json")
    x = torch.as_tensor(scalers.transform(data.x, data.knob), dtype=torch.float32)
    y_norm = scalers.knob_to_norm(data.set_value, data.knob)
    y = torch.as_tensor(y_norm, dtype=torch.float32)
    tr, va, te = (torch.as_tensor(i) for i in (split.train, split.val, split.test))
    outcome = SeedOutcome(test=split.test)
    for kind, label in MODELS.items():
        model = build_model(kind, cfg["models"][kind], data.x.shape[-1])
        trainer = Trainer(model, l1_loss, TrainConfig.from_dict(cfg["train"], seed=seed))
        history = trainer.fit((x[tr], y[tr]), (x[va], y[va]))
        outcome.histories[label] = history.epochs
        pred = trainer.predict((x[te],)).numpy()
        outcome.predictions[label] = scalers.knob_from_norm(pred, data.knob[split.test])
        if isinstance(model, WeightedSum):
            outcome.ws_weights = model.channel_weights().numpy()
    outcome.predictions.update(baseline_predictions(data, split.test))
    outcome.strongest_baseline = strongest_baseline(data, split.val)
    truth = data.set_value[split.test]
    knobs, step = data.knob[split.test], data.step[split.test]
    outcome.step_norm = float(np.mean(step / np.array([scalers.by_knob[k].scale[-1] for k in knobs])))
    for name, pred in outcome.predictions.items():
        outcome.l1_norm[name] = metrics.l1(scalers.knob_to_norm(pred, knobs), y_norm[split.test])
        err_steps = np.abs(pred - truth) / step
        outcome.l1_step[name] = float(err_steps.mean())
        outcome.per_knob[name] = {str(k): float(err_steps[knobs == k].mean())
                                  for k in np.unique(knobs)}
        if data.truth is not None:
            outcome.lumi_ratio[name] = float(lumi_ratio(data, split.test, pred, machine).mean())
    if data.truth is not None:
        outcome.lumi_ratio["operators (labels)"] = float(
            lumi_ratio(data, split.test, truth, machine).mean())
    return outcome
