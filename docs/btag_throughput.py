"""Time our GN1's training alone, as btag's bench does (wall and process CPU time around
``fit_track_model``, jets = training jets x epochs run, validation passes included), for the
same-run throughput comparison with salt's ``salt fit`` in docs/btag.md ("Training
throughput, one process at a time"). Writes jets per wall and per CPU second to OUT (JSON).

    HEPCHAIN_DATA=<cache> OMP_NUM_THREADS=1 PYTHONPATH=src \\
        python docs/btag_throughput.py paper-mu20 3 0 ours.json   # preset, epochs, seed, OUT
"""

import json
import sys
import time

from hepchain.core.result import Result
from hepchain.core.seeding import derive_seed, seed_everything
from hepchain.reco.btag.gn1 import FULL, btag_config, btag_jets, track_batches
from hepchain.reco.btag.labels import origin_class_weights
from hepchain.reco.btag.models import GN1Tagger
from hepchain.reco.btag.training import fit_track_model

preset, epochs, seed, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
config = btag_config(preset, {"train": {"epochs": epochs, "progress": False}})
jets = btag_jets(config, Result(study="btag", preset=preset), test=False)
prep, batches = track_batches(jets)
tasks = tuple(config["gn1_variants"][FULL])
seed_everything(derive_seed(seed, FULL))
model = GN1Tagger(len(prep.track_features), len(prep.jet_features), len(jets.classes),
                  tasks=tasks, **config["gn1"])
t1, c1 = time.perf_counter(), time.process_time()
_, hist = fit_track_model(model, tasks, batches["train"], batches["val"], config["train"],
                          derive_seed(seed, FULL), dict(config["loss_weights"]),
                          origin_class_weights(jets.tables["train"].origin), config["vertex_loss"])
wall, cpu = time.perf_counter() - t1, time.process_time() - c1
n = len(jets.labels["train"]) * len(hist.epochs)
with open(out, "w") as f:
    json.dump({"preset": preset, "train_jets": len(jets.labels["train"]),
               "epochs": len(hist.epochs), "wall_s": wall, "cpu_s": cpu,
               "jets_per_s": n / wall, "jets_per_cpu_s": n / cpu}, f, indent=1)
