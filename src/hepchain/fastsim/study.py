"""Study ``fastcalo`` (seed 003): generative fast simulation of our ECAL showers, judged by the
CaloChallenge 2022 metrics against held-out full-simulation showers.

Data: full-simulation e⁻ showers over a continuous energy spectrum in the CaloChallenge layout
(or an official CaloChallenge file, ``--set data.path=... data.binning=...``). Models,
conditional on the incident energy: the GFlash-style parametrisation (the baseline), a GAN,
a CaloFlow-like pair of flows and a conditional flow-matching model. Metrics: separation
powers of the high-level features, low- and high-level classifier AUCs with the challenge's
DNN, FPD / KPD, precision / recall / density / coverage (PRDC), generation time per shower
(batch 1 and a large batch) beside the full simulation's at the same energy, parameters and
file size.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.linalg import LinAlgWarning
from threadpoolctl import threadpool_limits

from hepchain.calo.readout import Readout
from hepchain.core import twosample
from hepchain.core.errors import UsageError
from hepchain.core.result import Reference, Result
from hepchain.core.seeding import derive_seed
from hepchain.core.study import Study
from hepchain.core.threads import set_torch_threads
from hepchain.fastsim import metrics, plots
from hepchain.fastsim.closure import closure
from hepchain.fastsim.codec import ShowerCodec
from hepchain.fastsim.crosscheck import MODES
from hepchain.fastsim.data import READOUT_KEYS, ShowerSet, load, split
from hepchain.fastsim.models.base import save_model
from hepchain.fastsim.models.gflash import GFlash
from hepchain.fastsim.timing import full_sim_seconds, seconds_per_shower
from hepchain.fastsim.train import KINDS, fit_model

FULL = "full sim (independent)"
LOW, HIGH = "AUC low-level (voxels)", "AUC high-level (features)"
LABELS = {"gflash": "GFlash (tuned)", "gan": "GAN", "caloflow": "CaloFlow-like flows",
          "cfm": "flow matching (ours)"}
AUC_LOW_REF = Reference(0.531, "CaloChallenge DS2 best low-level AUC (CaloDREAM)")
AUC_HIGH_REF = Reference(0.521, "CaloChallenge DS2 CaloDREAM high-level AUC")


class Generator:
    """A trained model as the study uses it: generate, size and file."""

    def __init__(self, generate: Callable[[np.ndarray, int], np.ndarray], n_parameters: int,
                 path: Path) -> None:
        self.generate, self.n_parameters, self.path = generate, n_parameters, path


class FastCaloStudy(Study):
    name = "fastcalo"
    description = "Fast calorimeter simulation: GAN, flows and flow matching vs GFlash (CaloChallenge metrics)"
    seed_doc = "003"

    def add_commands(self, app: Any) -> None:
        """``hepchain fastcalo crosscheck --evaluate PATH --python PY``."""
        import typer

        @app.command("crosscheck")
        def crosscheck_cmd(
                evaluate: Path = typer.Option(..., help="The challenge's code/evaluate.py "
                                              "(CaloChallenge/homepage 9b41df7); copied "
                                              "and patched in the workdir, never edited."),
                python: str = typer.Option(..., help="Interpreter of the venv with "
                                           "evaluate.py's imports (torch, h5py, jetnet ...)."),
                workdir: Path = typer.Option(Path("runs/fastcalo/crosscheck"),
                                             help="Files, logs, crosscheck.md/json."),
                showers: int = typer.Option(2000, help="Showers per file."),
                seeds: int = typer.Option(3, help="Classifier runs per side."),
                modes: str = typer.Option(",".join(MODES), help="Comma-separated subset "
                                          "of " + ", ".join(MODES) + "."),
                preset: str = typer.Option("quick", help="Preset whose classifier "
                                           "settings both sides use."),
                seed: int = typer.Option(0, help="Seed of the synthetic showers.")) -> None:
            """Our CaloChallenge metrics beside the challenge's evaluate.py on the same files."""
            from hepchain.fastsim.crosscheck import crosscheck

            classifier = self.config(preset)["classifier"]
            typer.echo(crosscheck(evaluate, python, workdir, showers, seed, seeds, classifier,
                                  tuple(m.strip() for m in modes.split(",") if m.strip())))

    def run(self, config: dict[str, Any], workdir: Path, seed: int) -> Result:
        threads = set_torch_threads(int(config["threads"]))
        with threadpool_limits(threads):  # BLAS threads too: oversubscription costs 10x
            return self._run(config, workdir, seed)

    def _run(self, config: dict[str, Any], workdir: Path, seed: int) -> Result:
        result = Result(study=self.name, preset="")
        data = load(config["data"], result)                                         # data
        train, val, test = split(len(data), config["split"], seed)
        generators = fit_generators(data, train, val, config, workdir, seed)       # models
        reference = data.subset(test)
        independent = data.subset(val[:len(test)])
        samples = {FULL: (independent.e_inc, independent.showers)}
        samples |= {name: (reference.e_inc,
                           g.generate(reference.e_inc, derive_seed(seed, "sample", name)))
                    for name, g in generators.items()}
        hls = evaluate(result, reference, samples, config, seed)                   # metrics
        times = speed(result, data, generators, config)
        best(result, list(generators), config["timing"])
        if config["closure"]["enabled"] and data.ecal is not None:                 # downstream
            closure(result, data, train, val, test,
                    {name: g.generate for name, g in generators.items()}, config["closure"], seed)
        binning = metrics.HistogramBinning(**config["binning"])                     # figures
        ref_hl = metrics.high_level_features(reference.showers, reference.e_inc,
                                             reference.geometry, reference.min_energy)
        result.figures.append(plots.feature_histograms(
            ref_hl, hls, binning, reference.min_energy, workdir / "features.png").name)
        result.figures.append(plots.longitudinal_profiles(
            ref_hl, hls, workdir / "longitudinal.png").name)
        front = {name: (times[name], *((result.get(m, name).value, result.get(m, name).std or 0.0)
                                       for m in (LOW, HIGH)))
                 for name in times}
        result.figures.append(plots.accuracy_speed(
            front, workdir / "accuracy_speed.png",
            f"time per shower at {config['timing']['energy']:g} GeV, batch "
            f"{config['timing']['batch']} (full sim: per shower) [ms]").name)
        result.notes.append(
            f"{len(train)} training, {len(val)} validation, {len(test)} held-out full-sim "
            f"showers; generated showers at the held-out incident energies. '{FULL}' compares "
            "the validation showers (never trained on) with the held-out ones, as the "
            "challenge's GEANT4 row. ± is the held-out sample's statistical error (AUC: "
            "Hanley–McNeil; separation power: bootstrap; FPD/KPD: JetNet's; PRDC: spread over "
            f"{config['distances']['prdc_splits']} disjoint parts / √parts). PRDC is the "
            "challenge's: log10 voxel energies (empty voxels 0.1 MeV), k nearest neighbours.")
        return result


def fit_generators(data: ShowerSet, train: np.ndarray, val: np.ndarray, config: dict[str, Any],
                   workdir: Path, seed: int) -> dict[str, Generator]:
    """Every model of ``config["models"]``, trained on ``train`` (validation: ``val``), saved
    under ``workdir/models``."""
    out: dict[str, Generator] = {}
    models_dir = workdir / "models"
    models_dir.mkdir(parents=True, exist_ok=True)
    tr, va = data.subset(train), data.subset(val)
    codec = ShowerCodec.fit(tr.showers, tr.e_inc, data.geometry, data.min_energy,
                            np.random.default_rng(derive_seed(seed, "codec")))
    meta = {"scale": data.scale, "ecal": data.ecal.to_dict() if data.ecal else {}}
    for kind in config["models"]:
        if kind == "gflash":
            opts = config["data"]["options"]
            readout = Readout.from_dict({k: v for k, v in opts.items() if k in READOUT_KEYS})
            model = GFlash.fit(tr.showers, tr.e_inc, data.ecal, readout,
                               float(opts.get("spread", 2.0)), data.scale,
                               int(config["gflash"]["levels"]), int(config["gflash"]["n_fast"]),
                               derive_seed(seed, "gflash"))
            out[LABELS[kind]] = Generator(model.generate, model.n_parameters(),
                                          model.save(models_dir / "gflash.json"))
        elif kind in KINDS:
            net, _ = fit_model(kind, codec, (tr.showers, tr.e_inc), (va.showers, va.e_inc),
                               config[kind], config["train"][kind], derive_seed(seed, kind))
            out[LABELS[kind]] = Generator(net.generate, net.n_parameters(),
                                          save_model(net, models_dir / f"{kind}.pt",
                                                     data.geometry, meta))
        else:
            raise UsageError(f"Unknown model {kind!r} in models; choose from "
                             f"{sorted(LABELS)}.")
    return out


def evaluate(result: Result, reference: ShowerSet,
             samples: dict[str, tuple[np.ndarray, np.ndarray]], config: dict[str, Any],
             seed: int) -> dict[str, metrics.HighLevel]:
    """Separation powers, classifier AUCs and FPD / KPD of every sample, ``samples[name] =
    (E_inc [MeV], showers [MeV])``, against the held-out reference; returns the samples'
    high-level features."""
    geo, low = reference.geometry, reference.min_energy
    binning = metrics.HistogramBinning(**config["binning"])
    ref_hl = metrics.high_level_features(reference.showers, reference.e_inc, geo, low)
    ref_high = metrics.high_level_inputs(ref_hl)
    ref_low = metrics.low_level_inputs(reference.showers, reference.e_inc, low)
    ref_prdc = metrics.prdc_inputs(reference.showers, low)
    fit = metrics.challenge_dnn(**config["classifier"])
    dist = config["distances"]
    hls = {}
    for name, (e_inc, showers) in samples.items():
        hl = metrics.high_level_features(showers, e_inc, geo, low)
        hls[name] = hl
        seps = metrics.mean_separation(ref_hl, hl, binning, low, int(config["separation_bootstrap"]),
                                       derive_seed(seed, "bootstrap", name))
        for feature, (value, err) in seps.items():
            result.add(f"separation power {feature}", name, value, std=err,
                       higher_is_better=False)
        result.add("separation power, mean of all features", name,
                   float(np.mean([v.value for v in seps.values()])),
                   std=float(np.sqrt(np.mean([v.error**2 for v in seps.values()]))),
                   higher_is_better=False)
        s = derive_seed(seed, "classifier", name)
        auc_low = metrics.classifier_auc(
            ref_low, metrics.low_level_inputs(showers, e_inc, low), fit, s)
        result.add(LOW, name, auc_low.value, std=auc_low.error,
                   higher_is_better=False, reference=AUC_LOW_REF)
        high = metrics.high_level_inputs(hl)
        auc_high = metrics.classifier_auc(ref_high, high, fit, s)
        result.add(HIGH, name, auc_high.value, std=auc_high.error,
                   higher_is_better=False, reference=AUC_HIGH_REF)
        with warnings.catch_warnings():  # always-empty layers make the covariances singular
            warnings.simplefilter("ignore", LinAlgWarning)
            fpd = twosample.fpd(ref_high, high, min_samples=int(dist["fpd_min_samples"]),
                                max_samples=int(dist["fpd_max_samples"]),
                                num_batches=int(dist["fpd_batches"]),
                                num_points=int(dist["fpd_points"]))
        kpd = twosample.kpd(ref_high, high, num_batches=int(dist["kpd_batches"]),
                            batch_size=int(dist["kpd_batch_size"]))
        result.add("FPD ×10³", name, 1e3 * fpd.value, std=1e3 * fpd.error,
                   higher_is_better=False)
        result.add("KPD ×10³", name, 1e3 * kpd.value, std=1e3 * kpd.error,
                   higher_is_better=False)
        gen_prdc = metrics.prdc_inputs(showers, low)
        k = int(dist["prdc_k"])
        values = twosample.prdc(ref_prdc, gen_prdc, k)
        errors = twosample.prdc_error(ref_prdc, gen_prdc, k, int(dist["prdc_splits"]),
                                      derive_seed(seed, "prdc", name))
        for field, value in values._asdict().items():
            result.add(f"{field} (PRDC, k = {k})", name, value,
                       std=getattr(errors, field),
                       higher_is_better=None if field == "density" else True)
    return hls


def speed(result: Result, data: ShowerSet, generators: dict[str, Generator],
          config: dict[str, Any]) -> dict[str, float]:
    """Time per shower of each generator (batch 1 and the large batch) and of the full
    simulation at the timing energy, speed-ups, parameters and file sizes; returns the
    large-batch seconds per shower of every method (full sim included)."""
    cfg = config["timing"]
    e_gev, batch = float(cfg["energy"]), int(cfg["batch"])
    times: dict[str, float] = {}
    full = None
    if data.ecal is not None:
        full = full_sim_seconds(data.ecal, e_gev, int(cfg["full_sim_showers"]))
        times[FULL] = full
        result.add(f"time per shower at {e_gev:g} GeV [ms]", FULL, 1e3 * full,
                   higher_is_better=False)
    for name, g in generators.items():
        one = seconds_per_shower(g.generate, 1e3 * e_gev, 1, int(cfg["repeats"]))
        many = seconds_per_shower(g.generate, 1e3 * e_gev, batch, 1)
        times[name] = many
        result.add(f"time per shower at {e_gev:g} GeV, batch 1 [ms]", name, 1e3 * one,
                   higher_is_better=False)
        result.add(f"time per shower at {e_gev:g} GeV, batch {batch} [ms]", name, 1e3 * many,
                   higher_is_better=False)
        if full is not None:
            result.add(f"speed-up vs full sim at {e_gev:g} GeV, batch {batch}", name,
                       full / many)
        result.add("parameters", name, float(g.n_parameters))
        result.add("file size [kB]", name, g.path.stat().st_size / 1e3, higher_is_better=False)
    result.notes.append(f"Times are wall-clock on this CPU with {torch.get_num_threads()} torch "
                        "threads, measured in this run; the full simulation is the numba "
                        "cascade (true deposits, no readout) at the same energy.")
    return times


def best(result: Result, names: list[str], timing: dict[str, Any]) -> None:
    """Rows of the generator with the lowest low-level AUC (the issue's goals): its AUCs and
    its speed-up over the full simulation, under the method name of that generator."""
    if not names:
        return
    name = min(names, key=lambda n: result.get(LOW, n).value)
    for metric in (LOW, HIGH):
        row = result.get(metric, name)
        result.add(f"{metric}, best generator", name, row.value, std=row.std,
                   higher_is_better=False, reference=row.reference)
    speedup = [m for m in result.metrics if m.method == name and m.name.startswith("speed-up")]
    for row in speedup:
        result.add(f"{row.name}, best generator", name, row.value)
