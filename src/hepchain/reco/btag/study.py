"""Study ``btag``: flavour tagging of ttbar jets (seed 002, ATLAS GN1).

Taggers compared on the same jets and splits: IP3D-like LLR, DL1-like MLP and xgboost on
high-level (IP + secondary-vertex + soft-lepton) features, Deep Sets over tracks, and the
GN1-style network with its auxiliary track-origin and same-vertex tasks plus ablations.
Working points are set on the validation jets and applied to the test jets; GN1 is compared
with both DL1-like baselines and with the stronger of the two on validation. With
``data.h5.dir`` set, the track taggers run on jets from salt-layout HDF5 files instead
(:mod:`.h5run`). See ``docs/btag.md``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from hepchain.core.errors import UsageError
from hepchain.core.result import Result
from hepchain.core.seeding import seed_everything
from hepchain.core.study import Study
from hepchain.core.threads import set_torch_threads
from hepchain.reco.btag import performance
from hepchain.reco.btag.export import export_gn1
from hepchain.reco.btag.gn1 import FULL, btag_jets, check_gn1
from hepchain.reco.btag.h5run import run_h5
from hepchain.reco.btag.plots import study_figures
from hepchain.reco.btag.taggers import fit_high_level_taggers, fit_track_taggers


class BTagStudy(Study):
    """Flavour tagging with a GN1-style network and its baselines on ttbar jets."""

    name = "btag"
    description = ("Flavour tagging of ttbar jets: IP3D-like, SV + DL1-like MLP/xgboost, "
                   "DeepSets, GN1-style with auxiliary vertex and track-origin tasks")
    seed_doc = "002"

    def run(self, config: dict[str, Any], workdir: Path, seed: int) -> Result:
        classes = list(config["classes"])
        if not {"b", "c", "light"} <= set(classes):
            raise UsageError(f"classes must include b, c and light (optionally tau), got "
                             f"{classes}.")
        check_gn1(config)
        set_torch_threads(int(config["train"].get("threads") or 1))
        seed_everything(seed)
        if config["data"]["h5"]["dir"] is not None:  # jets from salt-layout HDF5 files
            return run_h5(config, workdir, seed)
        result = Result(study=self.name, preset="")
        t0 = time.perf_counter()
        jets = btag_jets(config, result)
        performance.describe_jets(result, jets, time.perf_counter() - t0)

        taggers = fit_high_level_taggers(config, jets, seed)
        performance.feature_rows(result, taggers.features["test"], jets.labels["test"], classes)
        taggers |= fit_track_taggers(config, jets, seed, result)

        scores = taggers.scores(classes, float(config["fc"]))
        effs, labels = list(config["efficiencies"]), jets.labels
        baseline = performance.choose_baseline(result, scores, labels["val"], classes, effs[0])
        performance.rejection_rows(result, scores, labels, classes, effs, baseline)
        per_pt = performance.pt_rejections(result, scores, jets, (baseline, "IP3D-like", FULL),
                                           list(config["pt_bins"]), effs[0])
        confusions = performance.aux_rows(result, taggers.outputs, jets.tables["test"],
                                          labels["test"], classes)
        result.figures += study_figures({k: s["test"] for k, s in scores.items()},
                                        labels["test"], classes, baseline, per_pt,
                                        list(config["pt_bins"]), effs[0], confusions,
                                        taggers.histories, FULL, workdir)
        if FULL in taggers.models:
            export_gn1(result, taggers.models[FULL], dict(config["gn1"]), classes,
                       taggers.preprocessing, taggers.batches["test"], workdir,
                       bool(config.get("onnx", True)))
        result.notes.append(f"D_b = ln(p_b / (f_c p_c + (1 - f_c) p_light)) with f_c = "
                            f"{config['fc']}; IP3D-like uses its b/light LLR.")
        return result

    def add_commands(self, app: Any) -> None:
        """``hepchain btag compare BENCH_DIR`` (paired rejection ratios over the seeds),
        ``tag`` (a saved GN1 on any dataset) and ``salt-eval``
        (:mod:`hepchain.reco.btag.verbs`)."""
        from hepchain.reco.btag.verbs import add_verbs

        add_verbs(app)
