"""JetClass-style ROOT files (weaver branch names), one entry per jet, via uproot.

Branches written and read (tree ``tree``; GeV, mm, rad)::

    part_px part_py part_pz part_energy part_deta part_dphi part_d0val part_d0err
    part_dzval part_dzerr part_charge part_isChargedHadron part_isNeutralHadron part_isPhoton
    part_isElectron part_isMuon                                  (jagged, one list per jet)
    jet_pt jet_eta jet_phi jet_energy jet_nparticles jet_sdmass jet_tau1 jet_tau2 jet_tau3
    label_QCD label_Hbb label_Hcc label_Hgg label_H4q label_Hqql label_Zqq label_Wqq
    label_Tbqq label_Tbl                                          (one-hot, per jet)

The reader returns an ``ak.Array`` of jets with hepchain names (``pt, eta, phi, energy,
msd, tau1..3, label`` (index into :data:`LABELS`) and ``constituents`` with ``px, py, pz, e,
deta, dphi, d0, d0err, dz, dzerr, charge, pid``).
"""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np

from hepchain.core.errors import DataError, UsageError
from hepchain.core.io import atomic_path

LABELS = ("QCD", "Hbb", "Hcc", "Hgg", "H4q", "Hqql", "Zqq", "Wqq", "Tbqq", "Tbl")
TREE = "tree"
_PART = {"px": "part_px", "py": "part_py", "pz": "part_pz", "e": "part_energy",
         "deta": "part_deta", "dphi": "part_dphi", "d0": "part_d0val", "d0err": "part_d0err",
         "dz": "part_dzval", "dzerr": "part_dzerr", "charge": "part_charge"}
_FLAGS = {"part_isChargedHadron": 211, "part_isNeutralHadron": 130, "part_isPhoton": 22,
          "part_isElectron": 11, "part_isMuon": 13}
_JET = {"pt": "jet_pt", "eta": "jet_eta", "phi": "jet_phi", "msd": "jet_sdmass",
        "tau1": "jet_tau1", "tau2": "jet_tau2", "tau3": "jet_tau3"}


def write_jetclass(jets: ak.Array, path: str | Path, label: str) -> Path:
    """Write large-R jets (hepchain ``fatjets`` records with ``constituents``, flattened over
    events) as a JetClass-style ROOT file, all with class ``label``."""
    import uproot

    if label not in LABELS:
        raise UsageError(f"JetClass label {label!r} is unknown; use one of {', '.join(LABELS)}.")
    if "constituents" not in ak.fields(jets):
        raise UsageError("These jets have no constituents; generate with "
                         "--set fatjet_constituents=1.")
    c = jets["constituents"]
    branches: dict[str, object] = {b: c[f] for f, b in _PART.items()}
    pid = np.abs(c["pid"])
    for name, code in _FLAGS.items():
        branches[name] = ak.values_astype(pid == code, np.float32)
    branches.update({b: ak.to_numpy(jets[f]) for f, b in _JET.items()})
    branches["jet_energy"] = ak.to_numpy(ak.sum(c["e"], axis=1))
    branches["jet_nparticles"] = ak.to_numpy(ak.num(c)).astype(np.float32)
    for name in LABELS:
        branches[f"label_{name}"] = np.full(len(jets), name == label)
    path = Path(path)
    with atomic_path(path) as tmp, uproot.recreate(tmp) as fh:
        fh[TREE] = {k: v for k, v in branches.items()}
    return path


def read_jetclass(path: str | Path) -> ak.Array:
    """Read a JetClass-style ROOT file (public JetClass or :func:`write_jetclass` output)."""
    import uproot

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist; pass a JetClass ROOT file.")
    try:
        with uproot.open(path) as fh:
            if TREE not in fh:
                raise DataError(f"{path} has no '{TREE}' tree; it is not a JetClass file.")
            tree = fh[TREE]
            need = [*_PART.values(), *_FLAGS, *_JET.values(), "jet_energy",
                    *(f"label_{n}" for n in LABELS)]
            names = set(tree.keys())
            missing = [b for b in need if b not in names]
            if missing:
                raise DataError(f"{path} lacks JetClass branches {missing[:3]}; "
                                "it is not in the weaver layout.")
            arrays = tree.arrays(need)
    except (OSError, ValueError) as exc:
        raise DataError(f"Cannot read {path} as ROOT ({exc}).") from exc
    pid = ak.zeros_like(arrays["part_px"], dtype=np.int64)
    for name, code in _FLAGS.items():
        pid = ak.where(arrays[name] > 0.5, code, pid)
    const = {f: arrays[b] for f, b in _PART.items()}
    const["pid"] = pid
    onehot = np.stack([ak.to_numpy(arrays[f"label_{n}"]).astype(float) for n in LABELS], 1)
    return ak.zip({
        **{f: arrays[b] for f, b in _JET.items()}, "energy": arrays["jet_energy"],
        "label": np.argmax(onehot, axis=1), "constituents": ak.zip(const),
    }, depth_limit=1)
