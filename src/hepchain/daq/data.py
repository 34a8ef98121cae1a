"""The sparse study's showers: full-simulation e⁻ showers in the Si-W ECAL, read out, from the
dataset cache."""

from __future__ import annotations

from typing import Any

from hepchain.calo.produce import load_showers
from hepchain.core.cache import cached_dataset
from hepchain.core.result import Result
from hepchain.core.seeding import derive_seed
from hepchain.daq.calibrations import Showers


def ecal_showers(cfg: dict[str, Any], seed: int, result: Result) -> list[Showers]:
    """(energies [GeV], showers [MeV]) of the train, validation and test sets, from the
    dataset cache (generated there on first use; manifests into ``result``'s provenance).
    Training and validation showers have a continuous spectrum (``e_min``..``e_max``), the
    test showers the fixed ``test_energies``, each set its own seed stream."""
    common = {"particle": cfg["particle"], "spread": cfg["spread_mm"], **cfg["geometry"],
              **cfg["readout"]}
    spec = {**common, "e_min": cfg["e_min"], "e_max": cfg["e_max"]}
    fixed = {**common, "energies": ",".join(str(e) for e in cfg["test_energies"])}
    plan = [("train", "ecal_spectrum", cfg["n_train"], spec),
            ("val", "ecal_spectrum", cfg["n_val"], spec),
            ("test", "ecal_fixed", cfg["n_test_per_energy"] * len(cfg["test_energies"]), fixed)]
    out = []
    for split, process, n, opts in plan:
        ds = cached_dataset(process, n_events=int(n), seed=derive_seed(seed, split),
                            options=opts, shard_size=int(cfg["shard_size"]))
        result.provenance.datasets.append(ds.manifest.summary())
        energies, showers, _ = load_showers(ds.path)
        out.append((energies, showers))
    return out
