"""``hepchain jettag compare``: each network of ``compare.models`` trained twice on the same
jets, split and budget — by our :class:`~hepchain.core.trainer.Trainer` and by weaver-core's
own training (``weaver.train`` in a subprocess) — and both judged by
:mod:`hepchain.reco.jettag.evaluate` on the same test jets.

Rows per model: ``<model>, ours`` and ``<model>, weaver-core`` with the tagger metrics, the
test loss, the trainable parameters and the training jets/s (epochs after the first: weaver's
first epoch reads the ROOT files into memory); then the paired AUC difference ours − weaver
(two classes) and the throughput ratio ours / weaver.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hepchain.core.errors import DataError, UsageError
from hepchain.core.result import Result
from hepchain.core.seeding import derive_seed
from hepchain.reco.jettag.data import load_jets, particle_features, split
from hepchain.reco.jettag.evaluate import add_paired_auc_difference, add_tagger_metrics, test_loss
from hepchain.reco.jettag.models import build_network
from hepchain.reco.jettag.training import fit_network
from hepchain.reco.jettag.weaver.export import export_splits, write_data_config
from hepchain.reco.jettag.weaver.train import (
    NETWORK_FILES,
    NETWORKS,
    WeaverRun,
    count_parameters,
    network_options,
    run_weaver,
)

OURS, WEAVER = "ours", "weaver-core"


def compare(config: dict[str, Any], workdir: Path, seed: int) -> Result:
    """One seed of the comparison (the seed chooses the split and both initialisations)."""
    models = list(config["compare"]["models"])
    bad = [m for m in models if m not in NETWORK_FILES or m not in config["models"]]
    if bad or not models:
        raise UsageError(f"compare.models must name networks of `models` that weaver-core "
                         f"trains here ({', '.join(NETWORK_FILES)}); got {models}.")
    result = Result(study="jettag", preset="")
    jets = load_jets(config["data"], result)                                        # data
    y, classes = jets.labels, jets.classes
    train, val, test = split(y.size, config["split"], seed)
    tensors = particle_features(jets.records, config["features"], int(config["max_particles"]))
    data_dir = workdir / "weaver" / "data"
    export_splits(jets.records, y, classes, {"train": train, "val": val, "test": test},
                  data_dir)
    data_yaml = write_data_config(workdir / "weaver" / "data.yaml", config["features"],
                                  int(config["max_particles"]), classes)
    for name in models:                                                             # models
        spec = config["models"][name]
        net = build_network(name, spec, tensors, len(classes), seed)
        ours = fit_network(net, tensors, y, train, val, config["train"], seed, name)
        theirs = run_weaver(name, spec, data_dir, data_yaml, workdir / "weaver" / name,
                            config["train"], train.size, val.size, classes, seed,
                            float(config["compare"]["timeout_s"]))
        probs = {OURS: {s: ours.score(idx) for s, idx in (("val", val), ("test", test))},
                 WEAVER: _in_our_order(theirs, {"val": val, "test": test})}
        for method, p in probs.items():                                             # metrics
            row = f"{name}, {method}"
            add_tagger_metrics(result, row, classes, y[val], p["val"], y[test], p["test"],
                               config["efficiencies"])
            loss, error = test_loss(p["test"], y[test])
            result.add("test loss (cross-entropy)", row, loss, std=error, unit="nats",
                       higher_is_better=False)
        result.add("trainable parameters", f"{name}, {OURS}", ours.parameters)
        result.add("trainable parameters", f"{name}, {WEAVER}", count_parameters(
            NETWORKS / NETWORK_FILES[name], data_yaml, network_options(name, spec, seed)))
        rates = {OURS: _our_rates(ours.history, train.size),
                 WEAVER: theirs.epoch_rates[1:] or theirs.epoch_rates}
        for method, r in rates.items():
            result.add("training jets/s (epochs after the first)", f"{name}, {method}",
                       float(np.mean(r)), std=_sem(r), unit="jets/s", higher_is_better=True)
        ratio, ratio_error = _ratio(rates[OURS], rates[WEAVER])
        result.add("training throughput ours / weaver-core", name, ratio, std=ratio_error,
                   higher_is_better=True)
        if len(classes) == 2:
            add_paired_auc_difference(result, f"{name}, {OURS}", f"{name}, {WEAVER}", y[test],
                                      probs[OURS]["test"][:, 1], probs[WEAVER]["test"][:, 1],
                                      derive_seed(seed, "compare", name))
    result.notes.append(
        f"{train.size} training, {val.size} validation and {test.size} test jets, the same for "
        "both trainings; the same model classes and sizes; ± is the test set's statistical "
        "error (throughput: the epoch-to-epoch spread). Knobs that differ: see docs/jettag.md "
        f"(weaver drops the last incomplete batch: {train.size // int(config['train']['batch_size'])} "
        "steps per epoch; its AdamW skips biases and norms in the weight decay; no early "
        "stopping, best epoch by validation accuracy).")
    return result


def _in_our_order(run: WeaverRun, splits: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """weaver's probabilities of each split in the row order of ``splits`` (our jet rows)."""
    out = {}
    for split_name, idx in splits.items():
        where = {int(j): k for k, j in enumerate(run.index[split_name])}
        missing = [int(j) for j in idx if int(j) not in where]
        if missing or len(where) != idx.size:
            raise DataError(f"weaver's {split_name} predictions cover {len(where)} jets, not "
                             f"the {idx.size} of the split (e.g. jet {missing[:1]} is absent).")
        out[split_name] = run.probs[split_name][[where[int(j)] for j in idx]]
    return out


def _our_rates(history: list[dict[str, float]], n_train: int) -> list[float]:
    """Our training jets/s of each epoch after the first."""
    return [n_train / e["time_s"] for e in history[1:]] or [n_train / history[0]["time_s"]]


def _sem(values: list[float]) -> float | None:
    """Standard error of the mean, None for one value."""
    return float(np.std(values, ddof=1) / np.sqrt(len(values))) if len(values) > 1 else None


def _ratio(a: list[float], b: list[float]) -> tuple[float, float | None]:
    """mean(a) / mean(b) ± the propagated standard errors of the two means."""
    ratio = float(np.mean(a) / np.mean(b))
    ea, eb = _sem(a), _sem(b)
    if ea is None or eb is None:
        return ratio, None
    return ratio, ratio * float(np.hypot(ea / np.mean(a), eb / np.mean(b)))
