"""The jet-tagging BDT on FPGA: xgboost trained on the 16 features, converted by conifer to
HLS (``xilinxhls`` backend) and emulated bit-accurately by compiling that C++ with g++.

conifer needs Xilinx's ``ap_types`` headers; it finds them through ``XILINX_AP_INCLUDE``, which
:func:`emulate_bdt` points at the copy hls4ml ships (no vendor tools). conifer 1.11 takes the
logit of xgboost's ``base_score``, which xgboost ≥ 3 stores for ``multi:softprob`` as per-class
*margins* (a negative one becomes NaN), so :func:`emulate_bdt` passes xgboost's margins through
unchanged (binary models keep conifer's logit, which is right for ``binary:logistic``). Resource
and latency estimates come from conifer's own performance models
(:func:`conifer.utils.performance.performance_estimates`, BDT fits to past HLS syntheses).
"""

from __future__ import annotations

import contextlib
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
    FF predictions."""

    model: Any  # conifer ModelBase
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
                name: str = "jet_bdt") -> EmulatedBDT:
    """Convert the xgboost ``booster`` with conifer (inputs, thresholds and scores all
    ``precision``), write the HLS project ``name`` into ``output_dir`` and compile its
    emulation."""
    import conifer
    import hls4ml
    from conifer.converters import xgboost as conifer_xgb
    from conifer.utils.performance import performance_estimates

    os.environ.setdefault("XILINX_AP_INCLUDE", str(Path(hls4ml.__file__).parent / "templates"
                                                   / "vivado" / "ap_types"))
    config = {"Backend": "xilinxhls", "ProjectName": name, "OutputDir": str(output_dir),
              "XilinxPart": PART, "ClockPeriod": "5", "Unroll": True, "Precision": precision}
    quiet = logging.getLogger("conifer")
    level, quiet.level = quiet.level, logging.ERROR
    try:
        ensemble = conifer_xgb.convert(booster)
        meta = json.loads(booster.save_config())["learner"]
        if meta["objective"]["name"] == "multi:softprob":
            raw = meta["learner_model_param"]["base_score"].strip("[]").split(",")
            ensemble["init_predict"] = [float(v) for v in raw]
        model = conifer.model.make_model(ensemble, config)
        cpu0, t0 = children_cpu_s(), time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            model.compile()
        wall, cpu = time.perf_counter() - t0, children_cpu_s() - cpu0
        estimates = {k: float(v) for k, v in performance_estimates(model).items()}
    finally:
        quiet.setLevel(level)
    return EmulatedBDT(model, wall, cpu, estimates)

