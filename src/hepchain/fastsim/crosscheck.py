"""Our CaloChallenge metrics beside the challenge's own ``code/evaluate.py`` on the same files.

``hepchain fastcalo crosscheck --evaluate PATH/code/evaluate.py --python VENV/bin/python``:

1. writes a generated and a reference file of synthetic dataset-2 showers
   (:mod:`hepchain.fastsim.challenge_files`; binning: ``binning_dataset_2.xml`` beside
   ``evaluate.py``, read by our reader);
2. copies the challenge's code directory into the work directory and applies
   :func:`patches` there (each must match exactly as often as stated, else one sentence);
3. runs ``evaluate.py -d 2 --no_cuda`` in the given interpreter (its own venv) for each mode,
   the classifier modes once per seed (``evaluate.py`` does not seed: each run is a fresh
   split and initialisation), and reads back its ``histogram_chi2_2.txt``, the final
   "AUC / JSD" line, ``fpd_kpd_2.txt`` and ``prdc_2.txt``; modes ``fpd`` and ``kpd`` run the
   same block of ``evaluate.py`` (both numbers), so it is run once;
4. computes ours on the same files through :func:`hepchain.fastsim.data.load` and
   :mod:`hepchain.fastsim.metrics` / :mod:`hepchain.core.twosample` with the same settings;
5. writes ``crosscheck.json`` and the side-by-side table ``crosscheck.md``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hepchain.calo.formats.binning import read_binning
from hepchain.core import twosample
from hepchain.core.errors import DataError, UsageError
from hepchain.core.io import atomic_write_text
from hepchain.core.result import Result
from hepchain.fastsim import metrics
from hepchain.fastsim.challenge_files import write_pair
from hepchain.fastsim.data import load

MODES = ("hist-chi", "fpd", "cls-high", "cls-low", "prdc")


@dataclass(frozen=True)
class Distances:
    """FPD bootstrap sizes (JetNet's 20 batches × 10 sizes kept) and the KPD batch size
    (10 batches); ``evaluate.py`` hard-codes 10,000 for both, larger than our files."""

    fpd_min: int = 500
    fpd_max: int = 2000
    kpd_batch: int = 1000


def patches(d: Distances) -> list[tuple[str, str, str, int, str]]:
    """(file, old, new, expected count, why) applied to the copy of the challenge's code."""
    return [
        ("evaluate.py", "plt.rc('text', usetex=True)", "plt.rc('text', usetex=False)", 1,
         "no LaTeX installation: matplotlib's mathtext instead"),
        ("evaluate_plotting_helper.py", r"\text{", r"\mathrm{", 4,
         r"mathtext has no \text (only in the E_tot/E_inc axis labels)"),
        ("evaluate.py", "dataset=args.dataset)\n", "dataset=None)\n", 1,
         "classifier split 60/20/20 % of the file instead of DS2's fixed 60,000/20,000/20,000 "
         "showers (our files are smaller)"),
        ("evaluate.py", "min_samples=10000)", f"min_samples={d.fpd_min}, max_samples={d.fpd_max})",
         1, "FPD bootstrap sizes for files of a few thousand showers"),
        ("evaluate.py", "batch_size=10000)", f"batch_size={d.kpd_batch})", 1,
         "KPD batch size for files of a few thousand showers"),
    ]


def prepare_evaluate(evaluate: Path, workdir: Path, distances: Distances) -> Path:
    """Copy the ``.py`` and ``.xml`` files beside ``evaluate`` into ``workdir/evaluate`` and
    patch them (:func:`patches`); returns the patched ``evaluate.py``."""
    evaluate = Path(evaluate)
    if not evaluate.is_file() or evaluate.name != "evaluate.py":
        raise UsageError(f"--evaluate {evaluate}: pass the challenge's code/evaluate.py.")
    code = workdir / "evaluate"
    if code.exists():
        shutil.rmtree(code)
    code.mkdir(parents=True)
    for f in sorted(evaluate.parent.iterdir()):
        if f.suffix in (".py", ".xml"):
            shutil.copy2(f, code / f.name)
    for name, old, new, count, _ in patches(distances):
        text = (code / name).read_text()
        if text.count(old) != count:
            raise DataError(f"{evaluate.parent / name} has {text.count(old)} × {old!r}, "
                            f"expected {count}: not the evaluate.py this cross-check was "
                            "written for (CaloChallenge/homepage 9b41df7).")
        (code / name).write_text(text.replace(old, new))
    return code / "evaluate.py"


def run_evaluate(python: str, script: Path, gen: Path, ref: Path, mode: str, out: Path,
                 classifier: dict[str, Any]) -> str:
    """Run the patched ``evaluate.py`` once (dataset 2, CPU, one thread); its stdout. The
    log is kept in ``out/<mode>.log``."""
    out.mkdir(parents=True, exist_ok=True)
    cmd = [python, script.name, "-i", str(gen.resolve()), "-r", str(ref.resolve()), "-d", "2",
           "-m", mode, "--no_cuda", "--output_dir", str(out.resolve()),
           "--cls_n_hidden", str(classifier["n_hidden"]),
           "--cls_n_layer", str(classifier["n_layer"]),
           "--cls_n_epochs", str(classifier["epochs"]), "--cls_lr", str(classifier["lr"]),
           "--cls_batch_size", str(classifier["batch_size"])]
    threads = {k: "1" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                "NUMBA_NUM_THREADS")}
    env = {**os.environ, **threads, "MPLBACKEND": "Agg"}
    try:
        proc = subprocess.run(cmd, cwd=script.parent, env=env, capture_output=True, text=True,
                              check=False)
    except OSError as exc:
        raise UsageError(f"--python {python}: cannot run it ({exc.strerror}).") from exc
    atomic_write_text(out / f"{mode}.log", proc.stdout + proc.stderr)
    if proc.returncode:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise DataError(f"evaluate.py -m {mode} failed (exit {proc.returncode}): {tail[0]} "
                        f"(log: {out / f'{mode}.log'}).")
    return proc.stdout


THEIR_FEATURES = {"Etot / Einc": "E_tot/E_inc", "E layer": "E_layer", "EC Eta layer": "EC x",
                  "EC Phi layer": "EC y", "Width Eta layer": "width x",
                  "Width Phi layer": "width y", "Voxel distribution": "voxel energy"}
"""``histogram_chi2_2.txt`` names -> ours (η ≡ x = r cos α, φ ≡ y = r sin α in DS2/3)."""


def parse_separation(text: str) -> dict[str, np.ndarray]:
    """Separation powers of ``histogram_chi2_<dataset>.txt``: our feature name -> values in
    file order (one per layer, or one)."""
    out: dict[str, list[float]] = {}
    for name, value in re.findall(r"^([A-Za-z /]+?)(?: \d+)?: *\n(\S+)\n", text, re.M):
        if name not in THEIR_FEATURES:
            raise DataError(f"Unknown histogram {name!r} in evaluate.py's output.")
        out.setdefault(THEIR_FEATURES[name], []).append(float(value))
    if not out:
        raise DataError("No separation powers in evaluate.py's histogram_chi2 file.")
    return {k: np.array(v) for k, v in out.items()}


def parse_auc(stdout: str) -> float:
    """The AUC of evaluate.py's final "AUC / JSD" line."""
    found = re.findall(r"Final result of classifier test \(AUC / JSD\):\s*\n\s*([0-9.]+) /",
                       stdout)
    if not found:
        raise DataError("evaluate.py printed no final classifier AUC.")
    return float(found[-1])


def parse_distances(text: str) -> dict[str, tuple[float, float]]:
    """FPD and KPD ×10³ (value, error) of ``fpd_kpd_<dataset>.txt``."""
    found = dict((k, (float(v), float(e))) for k, v, e in
                 re.findall(r"(FPD|KPD) \(x10\^3\): (\S+) ± (\S+)", text))
    if set(found) != {"FPD", "KPD"}:
        raise DataError("evaluate.py's fpd_kpd file lacks FPD or KPD.")
    return found


def parse_prdc(text: str) -> dict[str, float]:
    """Precision, recall, density and coverage of ``prdc_<dataset>.txt`` (evaluate.py writes
    ``key: value`` pairs without separators)."""
    found = {k: float(v) for k, v in re.findall(
        r"(precision|recall|density|coverage): (\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)", text)}
    if set(found) != set(twosample.PRDC._fields):
        raise DataError("evaluate.py's prdc file lacks one of precision, recall, density, "
                        "coverage.")
    return found


def theirs(python: str, script: Path, gen: Path, ref: Path, out: Path, modes: tuple[str, ...],
           classifier: dict[str, Any], seeds: int) -> dict[str, Any]:
    """evaluate.py's numbers for ``modes`` (classifier modes ``seeds`` times) and its wall
    time per mode [s]."""
    res: dict[str, Any] = {"seconds": {}}
    for mode in modes:
        t0 = time.perf_counter()
        if mode == "hist-chi":
            run_evaluate(python, script, gen, ref, mode, out / mode, classifier)
            res[mode] = parse_separation((out / mode / "histogram_chi2_2.txt").read_text())
        elif mode in ("cls-low", "cls-high"):
            res[mode] = [parse_auc(run_evaluate(python, script, gen, ref, mode,
                                                out / f"{mode}-{i}", classifier))
                         for i in range(seeds)]
        elif mode == "prdc":
            run_evaluate(python, script, gen, ref, mode, out / mode, classifier)
            res[mode] = parse_prdc((out / mode / "prdc_2.txt").read_text())
        else:
            run_evaluate(python, script, gen, ref, mode, out / mode, classifier)
            res[mode] = parse_distances((out / mode / "fpd_kpd_2.txt").read_text())
        res["seconds"][mode] = time.perf_counter() - t0
    return res


def ours(gen: Path, ref: Path, binning_xml: Path, modes: tuple[str, ...],
         classifier: dict[str, Any], seeds: int, distances: Distances) -> dict[str, Any]:
    """Our numbers on the same files, read through the study's data path."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    block = {"path": "", "binning": str(binning_xml), "particle": "", "n_events": 0}
    g, r = (load({**block, "path": str(p)}, Result(study="fastcalo", preset=""))
            for p in (gen, ref))
    low = r.min_energy
    hl_g, hl_r = (metrics.high_level_features(s.showers, s.e_inc, s.geometry, low)
                  for s in (g, r))
    res: dict[str, Any] = {"seconds": {}}
    with threadpool_limits(1):
        for mode in modes:
            t0 = time.perf_counter()
            if mode == "hist-chi":
                res[mode] = metrics.separation_powers(hl_r, hl_g, metrics.HistogramBinning(),
                                                      low)
            elif mode in ("cls-low", "cls-high"):
                if mode == "cls-low":
                    x_r, x_g = (metrics.low_level_inputs(s.showers, s.e_inc, low)
                                for s in (r, g))
                else:
                    x_r, x_g = metrics.high_level_inputs(hl_r), metrics.high_level_inputs(hl_g)
                fit = metrics.challenge_dnn(**classifier)
                res[mode] = [metrics.classifier_auc(x_r, x_g, fit, s) for s in range(seeds)]
            elif mode == "prdc":  # evaluate.py's default k = 5
                res[mode] = twosample.prdc(metrics.prdc_inputs(r.showers, low),
                                           metrics.prdc_inputs(g.showers, low), k=5)._asdict()
            else:
                x_r, x_g = metrics.high_level_inputs(hl_r), metrics.high_level_inputs(hl_g)
                res[mode] = {
                    "FPD": twosample.fpd(x_r, x_g, min_samples=distances.fpd_min,
                                         max_samples=distances.fpd_max),
                    "KPD": twosample.kpd(x_r, x_g, batch_size=distances.kpd_batch)}
            res["seconds"][mode] = time.perf_counter() - t0
    return res


def crosscheck(evaluate: Path, python: str, workdir: Path, n_showers: int, seed: int,
               seeds: int, classifier: dict[str, Any], modes: tuple[str, ...] = MODES,
               distances: Distances | None = None) -> str:
    """The whole cross-check (module docstring); returns the markdown table, also written to
    ``workdir/crosscheck.md`` beside ``crosscheck.json``."""
    bad = set(modes) - set(MODES)
    if bad:
        raise UsageError(f"Unknown modes {sorted(bad)}; choose from {', '.join(MODES)}.")
    distances = distances or Distances()
    workdir = Path(workdir)
    script = prepare_evaluate(Path(evaluate), workdir, distances)
    binning_xml = script.parent / "binning_dataset_2.xml"
    files = workdir / "files"
    gen, ref = write_pair(files, read_binning(binning_xml, "electron"), n_showers, seed)
    (files / "ref.pkl").unlink(missing_ok=True)  # evaluate.py's cache of the reference
    mine = ours(gen, ref, binning_xml, modes, classifier, seeds, distances)
    other = theirs(python, script, gen, ref, workdir / "evaluate_out", modes, classifier, seeds)
    table = render(mine, other, modes, n_showers, classifier, distances)
    atomic_write_text(workdir / "crosscheck.json", json.dumps(
        {"ours": _plain(mine), "evaluate.py": _plain(other), "n_showers": n_showers,
         "seed": seed, "classifier": classifier, "distances": distances.__dict__,
         "python": sys.version.split()[0]}, indent=1))
    atomic_write_text(workdir / "crosscheck.md", table)
    return table


def render(mine: dict[str, Any], other: dict[str, Any], modes: tuple[str, ...],
           n_showers: int, classifier: dict[str, Any], distances: Distances) -> str:
    """The side-by-side markdown table."""
    lines = [f"{n_showers} generated vs {n_showers} reference synthetic DS2 showers; "
             f"classifier {classifier}; FPD sizes {distances.fpd_min}–{distances.fpd_max}, "
             f"KPD batch {distances.kpd_batch}.", "",
             "| metric | ours | evaluate.py | max per-layer relative difference |",
             "|---|---|---|---|"]
    if "hist-chi" in modes:
        sep_o, sep_t = mine["hist-chi"], other["hist-chi"]
        for name, t in sep_t.items():
            if name not in sep_o:
                lines.append(f"| separation power {name} | (not computed by ours) | "
                             f"{np.mean(t):.5f} | — |")
                continue
            o, pos = sep_o[name], t > 0
            rel = f"{np.max(np.abs(o - t)[pos] / t[pos]):.2%}" if pos.any() else "— (all 0)"
            lines.append(f"| separation power {name} (mean of {len(t)}) | {np.mean(o):.5f} | "
                         f"{np.mean(t):.5f} | {rel} |")
        for name in sorted(sep_o.keys() - sep_t.keys()):
            lines.append(f"| separation power {name} | {np.nanmean(sep_o[name]):.5f} | "
                         "(not histogrammed by evaluate.py) | — |")
    for mode in ("cls-low", "cls-high"):
        if mode in modes:
            o = np.array([e.value for e in mine[mode]])
            err = np.mean([e.error for e in mine[mode]])
            t = np.array(other[mode])
            lines.append(f"| AUC {mode} ({len(o)} seeds: mean ± std) | {o.mean():.4f} ± "
                         f"{o.std(ddof=1) if len(o) > 1 else float('nan'):.4f} (stat. "
                         f"{err:.4f}); {', '.join(f'{v:.4f}' for v in o)} | {t.mean():.4f} ± "
                         f"{t.std(ddof=1) if len(t) > 1 else float('nan'):.4f}; "
                         f"{', '.join(f'{v:.4f}' for v in t)} | — |")
    if "fpd" in modes:
        for key in ("FPD", "KPD"):
            o, (tv, te) = mine["fpd"][key], other["fpd"][key]
            lines.append(f"| {key} ×10³ | {1e3 * o.value:.4f} ± {1e3 * o.error:.4f} | "
                         f"{tv:.4f} ± {te:.4f} | — |")
    if "prdc" in modes:
        for key, t in other["prdc"].items():
            o = mine["prdc"][key]
            rel = f"{abs(o - t) / t:.2%}" if t else "—"
            lines.append(f"| {key} (PRDC, k = 5) | {o:.4f} | {t:.4f} | {rel} |")
    secs = [f"{m}: ours {mine['seconds'][m]:.0f} s, evaluate.py {other['seconds'][m]:.0f} s"
            for m in modes]
    return "\n".join([*lines, "", "Wall time (one thread): " + "; ".join(secs) + "."]) + "\n"


def _plain(obj: Any) -> Any:  # JSON-able copy: arrays -> lists, Estimates -> [value, error]
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.floating):
        return float(obj)
    return obj
