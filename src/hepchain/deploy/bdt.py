"""The jet-tagging BDT on FPGA: xgboost trained on the 16 features, converted by conifer to
an HLS project (``xilinxhls`` backend, for the vendor tools) and emulated bit-accurately by
conifer's ``cpp`` backend compiled with g++.

The ``cpp`` backend evaluates the same trees in the same ``ap_fixed`` types as the HLS C++ but
reads them from JSON at run time, so its compile takes seconds whatever the ensemble; the HLS
C++ holds every tree as constants and its g++ compile grows with the trees (49 min for the
paper preset's 500 trees on one core). ``tests/test_deploy.py`` checks on a small ensemble
that both give bit-identical outputs.

conifer needs Xilinx's ``ap_types`` headers; it finds them through ``XILINX_AP_INCLUDE``, which
:func:`emulate_bdt` points at the copy hls4ml ships (no vendor tools); the ``cpp`` backend also
needs nlohmann's JSON header, which the ``nlohmann-json`` wheel ships and g++ finds through
``CPLUS_INCLUDE_PATH``. conifer 1.11 takes the
logit of xgboost's ``base_score``, which xgboost ≥ 3 stores for ``multi:softprob`` as per-class
*margins* (a negative one becomes NaN), so :func:`emulate_bdt` passes xgboost's margins through
unchanged (binary models keep conifer's logit, which is right for ``binary:logistic``). Resource
and latency estimates come from conifer's own performance models
(:func:`conifer.utils.performance.performance_estimates`, BDT fits to past HLS syntheses).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hepchain.deploy.hls import PART, children_cpu_s


@dataclass
class EmulatedBDT:
    """A compiled conifer model: ``decision_function`` emulates the HLS; ``compile_s`` wall and
    ``compile_cpu_s`` g++ CPU seconds; ``estimates`` conifer's latency [clock cycles], LUT and
    FF predictions for the HLS project."""

    model: Any  # conifer CPPModel
    compile_s: float
    compile_cpu_s: float
    estimates: dict[str, float]

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        """Emulated margins (N, n_classes) or (N,) of ``x`` (N, n_features)."""
        return np.asarray(self.model.decision_function(np.ascontiguousarray(x, np.float64)))


def margins(booster: Any, x: np.ndarray) -> np.ndarray:
    """xgboost's raw margins (N, n_classes) or (N,) of ``x``."""
    import xgboost as xgb

    return booster.predict(xgb.DMatrix(x), output_margin=True)


def emulate_bdt(booster: Any, output_dir: str | Path, precision: str,
                name: str = "jet_bdt", backend: str = "cpp") -> EmulatedBDT:
    """Convert the xgboost ``booster`` with conifer (inputs, thresholds and scores all
    ``precision``), write the HLS project ``name`` into ``output_dir`` and compile the
    emulation: conifer's ``cpp`` backend in ``output_dir/emulation`` (``backend="xilinxhls"``
    compiles the HLS C++ itself, slow for large ensembles)."""
    import conifer
    import hls4ml
    import nlohmann_json
    from conifer.converters import xgboost as conifer_xgb
    from conifer.utils.performance import performance_estimates

    os.environ.setdefault("XILINX_AP_INCLUDE", str(Path(hls4ml.__file__).parent / "templates"
                                                   / "vivado" / "ap_types"))
    include = os.environ.get("CPLUS_INCLUDE_PATH", "")
    if str(nlohmann_json.get_include()) not in include.split(os.pathsep):
        os.environ["CPLUS_INCLUDE_PATH"] = os.pathsep.join(
            filter(None, (str(nlohmann_json.get_include()), include)))
    common = {"ProjectName": name, "Precision": precision}
    hls_config = {**common, "Backend": "xilinxhls", "OutputDir": str(output_dir),
                  "XilinxPart": PART, "ClockPeriod": "5", "Unroll": True}
    quiet = logging.getLogger("conifer")
    level, quiet.level = quiet.level, logging.ERROR
    try:
        ensemble = conifer_xgb.convert(booster)
        meta = json.loads(booster.save_config())["learner"]
        if meta["objective"]["name"] == "multi:softprob":
            raw = meta["learner_model_param"]["base_score"].strip("[]").split(",")
            ensemble["init_predict"] = [float(v) for v in raw]
        project = conifer.model.make_model(copy.deepcopy(ensemble), hls_config)
        if backend == "xilinxhls":
            model = project
        else:
            project.write()
            model = conifer.model.make_model(
                ensemble, {**common, "Backend": backend,
                           "OutputDir": str(Path(output_dir) / "emulation")})
        cpu0, t0 = children_cpu_s(), time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            model.compile()
        wall, cpu = time.perf_counter() - t0, children_cpu_s() - cpu0
        estimates = {k: float(v) for k, v in performance_estimates(project).items()}
    finally:
        quiet.setLevel(level)
    return EmulatedBDT(model, wall, cpu, estimates)
