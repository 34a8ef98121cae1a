"""JetClass-style ROOT files (weaver branch names), one entry per jet, via uproot.

Branches (tree ``tree``; GeV, mm, rad). Required, as a weaver model needs them::

    part_px part_py part_pz part_energy                          (jagged, one list per jet)
    label_QCD label_Hbb label_Hcc label_Hgg label_H4q label_Hqql label_Zqq label_Wqq
    label_Tbqq label_Tbl                                          (one-hot, per jet)

Read when present (written by :func:`write_jetclass` unless noted)::

    part_deta part_dphi part_d0val part_d0err part_dzval part_dzerr part_charge
    part_isChargedHadron part_isNeutralHadron part_isPhoton part_isElectron part_isMuon
    jet_pt jet_eta jet_phi jet_energy jet_nparticles jet_sdmass jet_tau1 jet_tau2 jet_tau3
    jet_tau4                                   (public JetClass only; the writer has no tau4)

The reader returns an ``ak.Array`` of jets with hepchain names: ``label`` (index into
:data:`LABELS`) and ``constituents`` with ``px, py, pz, e``, plus whichever of ``pt, eta, phi,
energy, n_particles, msd, tau1..4`` (jet) and ``deta, dphi, d0, d0err, dz, dzerr, charge, pid``
(constituents; ``pid`` from the ``part_is*`` flags) the file has; absent branches are absent
fields, never filled in.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import awkward as ak
import numpy as np

from hepchain.core.errors import DataError, UsageError
from hepchain.core.io import atomic_path

LABELS = ("QCD", "Hbb", "Hcc", "Hgg", "H4q", "Hqql", "Zqq", "Wqq", "Tbqq", "Tbl")
TREE = "tree"
_FOUR = {"px": "part_px", "py": "part_py", "pz": "part_pz", "e": "part_energy"}
_PART = {**_FOUR, "deta": "part_deta", "dphi": "part_dphi", "d0": "part_d0val",
         "d0err": "part_d0err", "dz": "part_dzval", "dzerr": "part_dzerr",
         "charge": "part_charge"}
_FLAGS = {"part_isChargedHadron": 211, "part_isNeutralHadron": 130, "part_isPhoton": 22,
          "part_isElectron": 11, "part_isMuon": 13}
_JET = {"pt": "jet_pt", "eta": "jet_eta", "phi": "jet_phi", "msd": "jet_sdmass",
        "tau1": "jet_tau1", "tau2": "jet_tau2", "tau3": "jet_tau3"}
_JET_READ = {**_JET, "energy": "jet_energy", "n_particles": "jet_nparticles",
             "tau4": "jet_tau4"}
_LABEL_BRANCHES = tuple(f"label_{n}" for n in LABELS)


def write_jetclass(jets: ak.Array, path: str | Path, label: str,
                   extra: Mapping[str, np.ndarray] | None = None) -> Path:
    """Write large-R jets (hepchain ``fatjets`` records with ``constituents``, flattened over
    events) as a JetClass-style ROOT file, all with class ``label``; ``extra`` adds one
    branch per entry with one value per jet (e.g. an index that a prediction file carries
    back as an observer)."""
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
    for name, values in (extra or {}).items():
        if len(values) != len(jets):
            raise UsageError(f"Branch {name!r} has {len(values)} values for {len(jets)} jets.")
        branches[name] = np.asarray(values)
    path = Path(path)
    with atomic_path(path) as tmp, uproot.recreate(tmp) as fh:
        fh[TREE] = {k: v for k, v in branches.items()}
    return path


def count_jets(path: str | Path) -> int:
    """Number of jets (tree entries) in a JetClass-style ROOT file."""
    import uproot

    if not Path(path).is_file():
        raise DataError(f"{path} does not exist; pass a JetClass ROOT file.")
    try:
        with uproot.open(path) as fh:
            if TREE not in fh:
                raise DataError(f"{path} has no '{TREE}' tree; it is not a JetClass file.")
            return int(fh[TREE].num_entries)
    except (OSError, ValueError) as exc:
        raise DataError(f"Cannot read {path} as ROOT ({exc}).") from exc


def read_jetclass(path: str | Path, start: int | None = None,
                  stop: int | None = None) -> ak.Array:
    """Jets ``start:stop`` of a JetClass-style ROOT file (public JetClass, weaver output or
    :func:`write_jetclass`); see the module docstring for required and optional branches."""
    import uproot

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist; pass a JetClass ROOT file.")
    try:
        with uproot.open(path) as fh:
            if TREE not in fh:
                raise DataError(f"{path} has no '{TREE}' tree; it is not a JetClass file.")
            tree = fh[TREE]
            names = set(tree.keys())
            missing = [b for b in (*_FOUR.values(), *_LABEL_BRANCHES) if b not in names]
            if missing:
                raise DataError(f"{path} lacks the JetClass branches {missing[:4]} (constituent "
                                "four-momenta and one-hot labels); it is not in the weaver "
                                "layout.")
            optional = [b for b in (*_PART.values(), *_FLAGS, *_JET_READ.values())
                        if b in names and b not in _FOUR.values()]
            arrays = tree.arrays([*_FOUR.values(), *_LABEL_BRANCHES, *optional],
                                 entry_start=start, entry_stop=stop)
    except (OSError, ValueError) as exc:
        raise DataError(f"Cannot read {path} as ROOT ({exc}).") from exc
    onehot = np.stack([ak.to_numpy(arrays[b]).astype(np.int64) for b in _LABEL_BRANCHES], 1)
    bad = np.flatnonzero(onehot.sum(axis=1) != 1)
    if len(bad):
        raise DataError(f"{path}: jet {bad[0]} has {onehot[bad[0]].sum()} labels set, not one; "
                        "the label_* branches must be one-hot.")
    const = {f: arrays[b] for f, b in _PART.items() if b in arrays.fields}
    flags = [name for name in _FLAGS if name in arrays.fields]
    if flags:
        pid = ak.zeros_like(arrays["part_px"], dtype=np.int64)
        for name in flags:
            pid = ak.where(arrays[name] > 0.5, _FLAGS[name], pid)
        const["pid"] = pid
    jet = {f: arrays[b] for f, b in _JET_READ.items() if b in arrays.fields}
    return ak.zip({**jet, "label": np.argmax(onehot, axis=1), "constituents": ak.zip(const)},
                  depth_limit=1)
