"""What btag's missing lepton–jet overlap removal does to its numbers (docs/btag.md, "Lepton–jet
overlap removal"): the same trained taggers — the DL1-like MLP and xgboost and the IP3D-like
LLR trained here as in ``hepchain btag run`` with SEED, and a saved GN1 of that preset's bench
— scored on the same validation and test jets, with and without the jets that
``selection.lepton_overlap_dr = 0.2`` removes (``data.lepton_overlap``); working points on the
validation jets of each selection, binomial errors. Writes the rows to OUT (JSON).

    HEPCHAIN_DATA=<cache> OMP_NUM_THREADS=1 PYTHONPATH=src \\
        python docs/btag_overlap.py paper 0 runs/btag/paper-hs/seed0/gn1.pt out.json
"""

import json
import sys

import numpy as np

from hepchain.analysis.decayaware.btagging import load_gn1
from hepchain.core.result import Result
from hepchain.core.seeding import seed_everything
from hepchain.reco.btag.data import evaluation_sample, lepton_overlap, load_events, select_jets
from hepchain.reco.btag.evaluate import rejections
from hepchain.reco.btag.gn1 import btag_config, btag_jets, db_scores
from hepchain.reco.btag.taggers import fit_high_level_taggers

DR = 0.2


def overlapping(data: dict, selection: dict, classes: list[str]) -> np.ndarray:
    """The overlap flag of every jet btag selects from the dataset ``data``, in btag's order."""
    events, _ = load_events(data)
    jets, _, event, _ = select_jets(events, classes, selection["pt_min"], selection["eta_max"],
                                    selection.get("hard_scatter_dr"))
    return lepton_overlap(events, jets, event, DR)


if __name__ == "__main__":
    preset, seed, gn1_path, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    config = btag_config(preset, {})
    classes, sel, effs = list(config["classes"]), config["selection"], config["efficiencies"]
    seed_everything(seed)
    jets = btag_jets(config, Result(study="btag", preset=preset))
    flags = {"val": overlapping(config["data"], sel, classes)[jets.split["val"]],
             "test": overlapping(evaluation_sample(config["data"]), sel, classes)}
    assert all(len(flags[k]) == len(jets.labels[k]) for k in flags)
    scores = fit_high_level_taggers(config, jets, seed).scores(classes, float(config["fc"]))
    model, gn1_classes, prep = load_gn1(gn1_path)
    scores["GN1 (saved)"] = {k: db_scores(model, prep, jets.tables[k], gn1_classes,
                                          float(config["fc"])) for k in flags}
    rows = []
    for name, score in scores.items():
        for removal in (False, True):
            keep = {k: ~flags[k] if removal else np.ones(len(flags[k]), bool) for k in flags}
            rej = rejections(*((jets.labels[k][keep[k]], score[k][keep[k]]) for k in flags),
                             classes, effs)
            rows += [{"tagger": name, "overlap_removal": removal, "background": bkg,
                      "b_efficiency": eff, "rejection": r.rejection, "binomial_error": r.error,
                      "background_jets": r.n_background, "lower_limit": r.is_lower_limit}
                     for (bkg, eff), r in rej.items()]
    labels = jets.labels["test"]
    removed = {c: int((flags["test"] & (labels == i)).sum()) for i, c in enumerate(classes)}
    with open(out, "w") as f:
        json.dump({"preset": preset, "seed": seed, "gn1": gn1_path, "dr": DR,
                   "test_jets_removed": removed, "rows": rows}, f, indent=1)
