"""Study ``sparse`` (seed 000, theme 2): read out a sparse subset of ECAL pixels and measure
what that costs in energy resolution, for random, regular and learned sampling patterns.

Data: full-simulation e⁻ showers in the SiD-like Si-W ECAL — a continuous spectrum for
training/validation and fixed energies for the held-out test. Calibration: an MLP (linear
pixel sum + non-linear correction) trained with the relative MSE on the pixels a pattern keeps.
Every pattern is evaluated as a fixed binary pattern with a freshly trained calibration.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from hepchain.calo.geometry import ECalGeometry
from hepchain.core.errors import UsageError
from hepchain.core.result import Result
from hepchain.core.study import Study
from hepchain.daq import calibrations as calib
from hepchain.daq import report
from hepchain.daq.data import ecal_showers
from hepchain.daq.patterns import PATTERNS, validate_rate
from hepchain.daq.physics import shower_physics


class SparseStudy(Study):
    name = "sparse"
    description = "Sparse-sensing ECAL readout: learned vs random pixel patterns for calibration"
    seed_doc = "000"

    def run(self, config: dict[str, Any], workdir: Path, seed: int) -> Result:
        cfg = _validated(config)
        torch.set_num_threads(int(cfg["threads"]))
        geometry = ECalGeometry.from_dict(cfg["geometry"])
        result = Result(study=self.name, preset="")
        showers = ecal_showers(cfg, seed, result)
        data = calib.CalibrationData.from_showers(*showers)

        series = {"layer sum + linear": calib.layer_sum(geometry, showers[0], showers[2])}
        result.notes.append(report.SEED_NOTE)
        if "loupe" in cfg["patterns"]:
            cfg["mask"] = {**cfg["mask"], "slope": calib.choose_slope(cfg, data, seed, result)}
        series |= calib.full_readout(cfg, geometry, data, seed)
        sig = {"none": calib.percent(series["MLP (all pixels)"])}
        if "CNN (all pixels)" in series:
            sig["CNN"] = calib.percent(series["CNN (all pixels)"])
        curves, pictures = calib.pattern_scan(cfg, geometry.shape, data, seed, sig["none"],
                                              workdir)
        sig |= {kind: per_rate[cfg["table_rate"]] for kind, per_rate in curves.items()}
        if cfg["autoencoder"]:
            sig["autoencoder"] = calib.autoencoder_sigmas(cfg, data, seed, result)

        report.resolution_table(result, cfg, sig)
        report.calibration_curves(result, series, workdir)
        report.reduction_curves(result, cfg, curves, sig["none"], workdir)
        report.pattern_figures(result, pictures, cfg["table_rate"], workdir)
        if cfg["validate_physics"]:
            shower_physics(result, cfg, geometry, *showers[2], workdir, seed)
        return result


REQUIRED = ("geometry", "particle", "spread_mm", "e_min", "e_max", "test_energies",
            "table_energies", "readout", "n_train", "n_val", "n_test_per_energy", "shard_size", "rates", "table_rate", "patterns", "model", "train", "mask_train",
            "mask", "cnn", "autoencoder", "ae_latent_max", "validate_physics", "speed_showers",
            "threads")


def _validated(config: dict[str, Any]) -> dict[str, Any]:
    missing = [k for k in REQUIRED if k not in config]
    if missing:
        raise UsageError(f"sparse config lacks {missing}; start from configs/sparse.yaml.")
    cfg = dict(config)
    cfg["rates"] = sorted({validate_rate(r) for r in cfg["rates"]} | {0.0})
    cfg["table_rate"] = validate_rate(cfg["table_rate"])
    if cfg["table_rate"] not in cfg["rates"]:
        cfg["rates"] = sorted([*cfg["rates"], cfg["table_rate"]])
    bad = [p for p in cfg["patterns"] if p not in PATTERNS]
    if bad:
        raise UsageError(f"Unknown pattern(s) {bad}; choose from {list(PATTERNS)}.")
    cfg["test_energies"] = [float(e) for e in cfg["test_energies"]]
    cfg["table_energies"] = [float(e) for e in cfg["table_energies"]]
    if any(e <= 0 for e in cfg["test_energies"]) or cfg["e_min"] <= 0:
        raise UsageError("Energies must be > 0 GeV; fix test_energies / e_min.")
    if not set(cfg["table_energies"]) <= set(cfg["test_energies"]):
        raise UsageError("table_energies must be a subset of test_energies.")
    if not math.isfinite(float(cfg["spread_mm"])) or float(cfg["spread_mm"]) < 0:
        raise UsageError("spread_mm must be a finite value >= 0 mm.")
    return cfg
