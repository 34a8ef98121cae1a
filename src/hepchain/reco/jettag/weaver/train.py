"""weaver-core's own training (``python -m weaver.train``) in a subprocess, with the zoo's
epochs, batch size, learning rate, weight decay, gradient clip and schedule, and its
predictions and training throughput read back.

The knobs that cannot be made equal (``docs/jettag.md``, "Side by side with weaver-core"):
weaver drops the last incomplete training batch (``drop_last``), so it takes
⌊N/B⌋ steps per epoch where we take ⌈N/B⌉; its AdamW leaves biases, normalisation weights and
ParT's class token out of the weight decay (we decay every weight); it has no early stopping
and tests the epoch with the best validation *accuracy* (we restore the epoch with the lowest
validation loss); it shuffles with NumPy's global generator (seeded through the network
config) where we use torch's.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hepchain.core.errors import DataError, TrainingError, UsageError
from hepchain.core.malloc import CHILD_ENV
from hepchain.core.threads import thread_count
from hepchain.reco.jettag.weaver.export import INDEX, jetclass_names

NETWORKS = Path(__file__).parent / "networks"
NETWORK_FILES = {"PFN": "pfn.py", "ParticleNet": "particlenet.py", "ParT": "part.py"}
#: our TrainConfig.schedule -> weaver's --lr-scheduler (per optimiser step, no warm-up)
SCHEDULES = {"none": "none", "cosine": "warmup+cos", "onecycle": "one-cycle"}
_RATE = re.compile(r"Processed (\d+) entries in total \(avg\. speed ([0-9.eE+-]+) entries/s\)"
                   r"[^\n]*\n[^\n]*Train AvgLoss")
_EXCEPTION = re.compile(r"^\w*(?:Error|Exception)\b[^\n]*", re.MULTILINE)


@dataclass(frozen=True)
class WeaverRun:
    """A finished weaver training: class probabilities of the validation and test jets
    (rows follow ``index``, our jet rows), training jets/s per epoch, its command and wall
    time [s]."""

    index: dict[str, np.ndarray]
    probs: dict[str, np.ndarray]
    epoch_rates: list[float]
    epoch_jets: list[int]
    command: list[str]
    wall_s: float


def network_options(name: str, spec: dict[str, Any], seed: int) -> dict[str, Any]:
    """weaver network options (``-o key value``) that build model ``name`` with the sizes of
    our preset block ``spec``."""
    if name == "PFN":
        options: dict[str, Any] = {"phi": list(spec["phi"]), "f": list(spec["f"])}
    elif name == "ParticleNet":
        options = {"conv_params": [(int(k), tuple(c)) for k, c in spec["convs"]],
                   "fc_params": [(int(w), float(d)) for w, d in spec["fc"]],
                   "use_fusion": bool(spec.get("fusion", True))}
    elif name == "ParT":
        options = {"embed_dims": list(spec["embed"]), "pair_embed_dims": list(spec["pair_embed"]),
                   "num_heads": int(spec["heads"]), "num_layers": int(spec["layers"]),
                   "num_cls_layers": int(spec["cls_layers"])}
    else:
        raise UsageError(f"weaver-core trains {', '.join(NETWORK_FILES)} here, not {name!r}.")
    return {**options, "seed": int(seed)}


def weaver_command(network: Path, options: dict[str, Any], data_dir: Path, data_yaml: Path,
                   out: Path, train: dict[str, Any], n_train: int, n_val: int) -> list[str]:
    """The ``python -m weaver.train`` command line: training on ``data_dir/train_*.root``,
    validation on ``val_*.root``, predictions for ``val_*`` and ``test_*`` into
    ``out/pred_{val,test}.root``, with our training settings ``train`` (a ``train:`` block)."""
    epochs, batch, lr = int(train["epochs"]), int(train["batch_size"]), float(train["lr"])
    schedule = train.get("schedule", "none")
    if schedule not in SCHEDULES:
        raise UsageError(f"train.schedule {schedule!r} has no weaver equivalent; compare with "
                         f"one of {', '.join(SCHEDULES)}.")
    if train.get("optimizer", "adamw") != "adamw":
        raise UsageError("The comparison with weaver-core uses AdamW; set train.optimizer=adamw.")
    if min(n_train, n_val) < batch:
        raise UsageError(f"{n_train} training or {n_val} validation jets are fewer than one "
                         f"batch ({batch}); weaver drops incomplete batches, so lower "
                         "train.batch_size.")
    cmd = [sys.executable, "-m", "weaver.train",
           "--data-train", str(data_dir / "train_*.root"),
           "--data-val", str(data_dir / "val_*.root"),
           "--data-test", f"val:{data_dir / 'val_*.root'}", f"test:{data_dir / 'test_*.root'}",
           "--data-config", str(data_yaml), "--network-config", str(network),
           "--model-prefix", str(out / "net"), "--predict-output", str(out / "pred.root"),
           "--log-file", str(out / "weaver.log"),
           "--num-epochs", str(epochs), "--batch-size", str(batch), "--start-lr", repr(lr),
           "--optimizer", "adamw", "-p", "betas", "(0.9, 0.999)",
           "-p", "weight_decay", repr(float(train.get("weight_decay", 0.0))),
           "--lr-scheduler", SCHEDULES[schedule], "--warmup-steps", "0",
           # the whole training set in memory, reshuffled every epoch; ⌊N/B⌋ steps per epoch
           "--in-memory", "--fetch-step", "1", "--steps-per-epoch", str(n_train // batch),
           "--no-in-memory-val", "--steps-per-epoch-val", "-1",
           "--num-workers", "0", "--gpus", ""]
    if train.get("grad_clip"):
        cmd += ["-p", "clip_grad_norm", repr(float(train["grad_clip"]))]
    for key, value in options.items():
        cmd += ["-o", key, repr(value)]
    return cmd


def run_weaver(name: str, spec: dict[str, Any], data_dir: Path, data_yaml: Path, out: Path,
               train: dict[str, Any], n_train: int, n_val: int, classes: Sequence[str],
               seed: int, timeout_s: float) -> WeaverRun:
    """Train model ``name`` with weaver-core on the exported jets (see :func:`weaver_command`)
    in ``out`` and read back its predictions; TrainingError with the end of weaver's output
    when it fails."""
    out.mkdir(parents=True, exist_ok=True)
    network = shutil.copy(NETWORKS / NETWORK_FILES[name], out / NETWORK_FILES[name])
    cmd = weaver_command(Path(network), network_options(name, spec, seed), data_dir, data_yaml,
                         out, train, n_train, n_val)
    threads = str(thread_count(train.get("threads")))
    env = {**os.environ, **CHILD_ENV, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    (out / "command.txt").write_text(shlex.join(cmd) + "\n")
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=out, env=env, capture_output=True, text=True,
                              timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise TrainingError(f"weaver-core's {name} training took longer than {timeout_s:g} s "
                            "(compare.timeout_s); raise it or train less.") from None
    wall = time.perf_counter() - t0
    (out / "weaver.out").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        errors = _EXCEPTION.findall(proc.stderr + proc.stdout) or ["no error message"]
        raise TrainingError(f"weaver-core's {name} training failed ({errors[-1]}); its output "
                            f"is in {out / 'weaver.out'}.")
    index, probs = {}, {}
    for split in ("val", "test"):
        index[split], probs[split] = read_predictions(out / f"pred_{split}.root", classes)
    log = (out / "weaver.log").read_text() if (out / "weaver.log").exists() else proc.stdout
    jets, rates = training_rates(log)
    if not rates:
        raise DataError(f"weaver's log {out / 'weaver.log'} has no training-speed lines; this "
                        "weaver-core version logs differently from 0.5.3.")
    return WeaverRun(index, probs, rates, jets, cmd, wall)


def read_predictions(path: Path, classes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(our jet rows, (n, n_classes) probabilities) from a weaver prediction ROOT file."""
    import uproot

    if not path.is_file():
        raise DataError(f"weaver wrote no predictions at {path}; see weaver.out beside it.")
    branches = [f"score_label_{n}" for n in jetclass_names(classes)]
    with uproot.open(path) as fh:
        tree = fh[next(iter(fh.keys()))]
        names = set(tree.keys())
        missing = [b for b in (*branches, INDEX) if b not in names]
        if missing:
            raise DataError(f"{path} lacks the branches {missing}; it is not a prediction "
                            "file of this comparison.")
        arrays = tree.arrays([*branches, INDEX], library="np")
    probs = np.stack([arrays[b] for b in branches], 1).astype(np.float64)
    return arrays[INDEX].astype(np.int64), probs


def training_rates(log: str) -> tuple[list[int], list[float]]:
    """Jets and jets/s of every training epoch, from weaver's log lines ``Processed N entries
    in total (avg. speed R entries/s)`` followed by ``Train AvgLoss``."""
    found = [(int(m.group(1)), float(m.group(2))) for m in _RATE.finditer(log)]
    return [n for n, _ in found], [r for _, r in found]


def count_parameters(network: Path, data_yaml: Path, options: dict[str, Any]) -> int:
    """Trainable parameters of the model that weaver builds from ``network``."""
    from weaver.utils.data.config import DataConfig

    spec = importlib.util.spec_from_file_location("_hepchain_weaver_network", network)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model, _ = module.get_model(DataConfig.load(str(data_yaml)),
                                **{k: v for k, v in options.items() if k != "seed"})
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
