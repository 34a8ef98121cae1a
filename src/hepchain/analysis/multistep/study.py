"""Study ``multistep``: multi-step learning (seed 001; Saito et al., EPJ Web Conf. 251, 03036)
— step (a) tau ID on each of an event's two leading tau candidates, step (b) H→ττ vs Z→ττ
event classification — trained independently (hand-built tau variables), serially (frozen
step (a)), connected end to end with a scan of static loss weights, and connected with
dynamic loss weights, on the same events, splits and training budget.

``run`` runs one seed; ``hepchain multistep bench --seeds 5`` aggregates seeds.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from hepchain.analysis.multistep import plots
from hepchain.analysis.multistep.data import load_events_pair, model_inputs, split
from hepchain.analysis.multistep.evaluate import add_event_metrics, add_tau_metrics
from hepchain.analysis.multistep.models import TwoStep
from hepchain.analysis.multistep.training import (
    Outcome,
    fit_connected,
    fit_hand_built,
    fit_serial,
    pretrain_tau,
)
from hepchain.core.errors import UsageError
from hepchain.core.losses import (
    DynamicWeightAverage,
    GradNorm,
    LossWeighting,
    StaticWeights,
    UncertaintyWeights,
)
from hepchain.core.result import Result
from hepchain.core.study import Study

#: dynamic weightings: name -> weighting of a connected model
DYNAMIC: dict[str, Callable[[TwoStep], LossWeighting]] = {
    "DWA": lambda model: DynamicWeightAverage(["a", "b"]),
    "uncertainty": lambda model: UncertaintyWeights(["a", "b"]),
    "GradNorm": lambda model: GradNorm(["a", "b"], list(model.tau.last_layer().parameters())),
}


class MultiStepStudy(Study):
    name = "multistep"
    description = "Multi-step tau ID -> H→ττ: serial vs connected, static vs dynamic loss weights"
    seed_doc = "001"

    def run(self, config: dict[str, Any], workdir: Path, seed: int) -> Result:
        result = Result(study=self.name, preset="")
        check_settings(config)
        events = load_events_pair(config["data"], config["selection"], result)         # data
        train, val, test = split(len(events), config["split"], seed)
        x = model_inputs(events, train)
        pre = pretrain_tau(x, train, val, config, seed)                                # models
        init = pre if config["connected_init"] == "pretrained" else None
        outcomes: dict[str, Outcome] = {
            "hand-built": fit_hand_built(x, train, val, config, seed),
            "serial": fit_serial(x, train, val, config, seed, pre)}
        scan = [float(w) for w in config["static_weights"]]
        for w in scan:
            outcomes[f"connected, w_a = {w:g}"] = fit_connected(
                x, train, val, config, seed,
                lambda model, w=w: StaticWeights({"a": w, "b": 1.0 - w}), f"static-{w:g}", init)
        for name in config["dynamic"]:
            outcomes[f"connected, {name}"] = fit_connected(
                x, train, val, config, seed, DYNAMIC[name], f"dynamic-{name}", init)
        y, rej, eff = x.is_signal, float(config["background_rejection"]), float(
            config["tau_efficiency"])
        val_auc = {}
        for method, o in outcomes.items():                                             # metrics
            val_auc[method] = add_event_metrics(result, method, o, y, val, test, rej)
            if o.tau_score is not None:
                add_tau_metrics(result, method, o.tau_score, x.is_tau, val, test, eff)
        static = [f"connected, w_a = {w:g}" for w in scan]
        best = max(static, key=val_auc.__getitem__)
        result.add("step (b) AUC of the static weight best on validation", best,
                   result.get("step (b) AUC (H→ττ vs Z→ττ)", best).value,
                   std=result.get("step (b) AUC (H→ττ vs Z→ττ)", best).std,
                   higher_is_better=True)
        result.add("training CPU time", f"static scan ({len(scan)} weights)",
                   sum(outcomes[m].cpu_seconds for m in static), unit="s",
                   higher_is_better=False)
        auc_rows = {m: result.get("step (b) AUC (H→ττ vs Z→ττ)", m) for m in outcomes}
        add_comparisons(result, [m for m in outcomes if m.startswith("connected")],
                        float(config["tau_efficiency"]))
        result.figures.append(plots.roc_figure(                                        # figures
            {m: (y[test], o.event_score[test]) for m, o in outcomes.items()}, workdir))
        result.figures.append(plots.scan_figure(
            scan, [auc_rows[m].value for m in static], [auc_rows[m].std or 0.0 for m in static],
            {m: auc_rows[m].value for m in outcomes if m not in static}, workdir))
        dynamic = {m: outcomes[f"connected, {m}"].history for m in config["dynamic"]}
        if dynamic:
            result.figures.append(plots.weights_figure(dynamic, workdir))
        n_sig = int(y.sum())
        result.notes.append(
            f"{n_sig} H→ττ and {len(y) - n_sig} Z→ττ events with two tau candidates; "
            f"{train.size} / {val.size} / {test.size} for training / validation / test. "
            "Step (a) is judged on both candidates of the test events (real τ vs other "
            "candidates of the same events); its working point and step (b)'s are fixed on the "
            "validation events; ± is the test set's statistical error. Step (a) is trained "
            "alone first; the serial strategy trains step (b) on it frozen, the connected "
            f"ones start step (a) {'from it' if init else 'from scratch'} (connected_init).")
        return result


def add_comparisons(result: Result, connected: list[str], efficiency: float) -> None:
    """Rows for the goals: each connected strategy's step (b) AUC minus the serial and the
    hand-built ones', and its step (a) rejection over the serial (standalone) step (a)'s.
    Errors are propagated as independent (the strategies share the test events, so this
    overestimates them)."""
    auc = "step (b) AUC (H→ττ vs Z→ττ)"
    rej = f"step (a) fake rejection at ε_τ = {efficiency:.0%}"
    for method in connected:
        for other in ("serial", "hand-built"):
            a, b = result.get(auc, method), result.get(auc, other)
            result.add(f"step (b) AUC minus {other}'s", method, a.value - b.value,
                       std=float(np.hypot(a.std or 0.0, b.std or 0.0)), higher_is_better=True)
        a, b = result.get(rej, method), result.get(rej, "serial")
        if a.limit or b.limit:
            continue
        ratio = a.value / b.value
        result.add("step (a) rejection over the standalone (serial) step (a)'s", method, ratio,
                   std=ratio * float(np.hypot((a.std or 0.0) / a.value,
                                              (b.std or 0.0) / b.value)),
                   higher_is_better=True)


def check_settings(config: dict[str, Any]) -> None:
    """UsageError, before any generation, for unknown dynamic weightings or bad weights."""
    for name in config["dynamic"]:
        if name not in DYNAMIC:
            raise UsageError(f"dynamic names {name!r}; use some of {', '.join(DYNAMIC)}.")
    if config["connected_init"] not in ("pretrained", "scratch"):
        raise UsageError(f"connected_init is {config['connected_init']!r}; use pretrained or "
                         "scratch.")
    if not config["static_weights"] or not all(0.0 <= float(w) <= 1.0
                                               for w in config["static_weights"]):
        raise UsageError("static_weights must be a non-empty list of weights in [0, 1].")
