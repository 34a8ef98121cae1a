"""The public jet-tagging datasets in place of generated jets (``--set data.path=...``), read
through :mod:`hepchain.collider.formats`, so the study runs unchanged on them.

* **JetClass ROOT** (``*.root``, :func:`~hepchain.collider.formats.jetclass.read_jetclass`):
  every field the study uses (constituent four-momenta, Δη, Δφ, impact parameters, charge,
  PID flags; jet soft-drop mass and τ1..τ3). The jets of ``data.classes`` are kept, labelled
  by their position in that list (the first, QCD, is the background).
* **Top-tagging landscape HDF5** (:func:`~hepchain.collider.formats.toptagging.read_toptagging`):
  constituent four-momenta only; the jet is their sum and Δη, Δφ are taken to its axis as
  ``particle_transformer/utils/convert_top_datasets.py`` does (Δη flipped with the sign of
  the jet's η). Classes QCD and top. Only the ``kin`` features exist, and the BDT (τ, soft-drop
  mass) cannot run: use ``--set features=kin`` and leave the BDT out of ``models``.

``data.n_events`` caps the jets read per file; ``data.selection``'s pT and |η| window is
applied to the jets (GeV).
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from hepchain.collider.formats.jetclass import LABELS, read_jetclass
from hepchain.collider.formats.toptagging import read_toptagging
from hepchain.convert import detect_layout
from hepchain.core.errors import DataError, UsageError
from hepchain.core.result import Result
from hepchain.reco.jettag.data import TOP_QCD_LABELS, Jets

LAYOUTS = ("jetclass-root", "toptagging-h5")


def public_files(pattern: str) -> tuple[list[Path], str]:
    """The files of ``pattern`` (a path or a glob) and their common layout."""
    paths = sorted(Path(p) for p in glob.glob(str(Path(pattern).expanduser())))
    if not paths:
        raise DataError(f"data.path {pattern!r} matches no file; pass a JetClass ROOT or "
                        "top-tagging HDF5 file, or a glob of them.")
    layouts = {detect_layout(p) for p in paths}
    if len(layouts) > 1 or not layouts <= set(LAYOUTS):
        raise DataError(f"data.path {pattern!r} holds {', '.join(sorted(layouts))} files; the "
                        f"tagger zoo reads one layout at a time, of {', '.join(LAYOUTS)}.")
    return paths, layouts.pop()


def load_public_jets(data: dict[str, Any], result: Result) -> Jets:
    """The jets of the public files ``data.path`` (see the module docstring)."""
    paths, layout = public_files(data["path"])
    stop = int(data["n_events"])
    if layout == "jetclass-root":
        classes = tuple(data["classes"])
        unknown = [c for c in classes if c not in LABELS]
        if unknown or len(classes) < 2 or classes[0] != "QCD":
            raise UsageError(f"data.classes must start with QCD and name at least one more of "
                             f"{', '.join(LABELS)}; got {list(classes)}.")
        parts = [read_jetclass(p, 0, stop) for p in paths]
        jets = ak.concatenate(parts) if len(parts) > 1 else parts[0]
        names = np.asarray(LABELS)[ak.to_numpy(jets["label"])]
        keep = np.isin(names, classes)
        jets, labels = jets[keep], np.array([classes.index(n) for n in names[keep]], np.int64)
    else:
        classes = TOP_QCD_LABELS
        columns = [read_toptagging(p, 0, stop) for p in paths]
        jets = toptagging_jets(np.concatenate([c["four"] for c in columns]))
        labels = np.concatenate([c["is_signal"] for c in columns]).astype(np.int64)
    sel = data["selection"]
    ok = ak.to_numpy((jets["pt"] > float(sel["pt_min"])) & (jets["pt"] < float(sel["pt_max"]))
                     & (abs(jets["eta"]) < float(sel["eta_max"])))
    for p in paths:
        result.provenance.datasets.append({"name": str(p), "layout": layout,
                                           "n_events": stop, "bytes": p.stat().st_size})
    if not ok.any():
        raise DataError(f"No jet of {data['path']} passes data.selection (pT, |η| window) and "
                        "data.classes; widen them.")
    return Jets(jets[ok], labels[ok], classes)


def toptagging_jets(four: np.ndarray) -> ak.Array:
    """Jets with ``pt, eta, phi, mass`` [GeV] and ``constituents`` (``px, py, pz, e, deta,
    dphi``) from landscape constituents ``four`` (n, n_const, 4) = (E, px, py, pz),
    zero-padded (E = 0 marks padding)."""
    mask = four[..., 0] > 0
    counts = mask.sum(1)

    def jagged(x: np.ndarray) -> ak.Array:
        return ak.unflatten(x[mask].astype(np.float64), counts)

    e, px, py, pz = (jagged(four[..., k]) for k in range(4))
    jet = {k: ak.to_numpy(ak.sum(v, axis=1)) for k, v in (("e", e), ("px", px), ("py", py),
                                                         ("pz", pz))}
    jet_pt = np.hypot(jet["px"], jet["py"])
    jet_eta = np.arcsinh(jet["pz"] / np.where(jet_pt > 0, jet_pt, 1.0))
    jet_phi = np.arctan2(jet["py"], jet["px"])
    pt = np.hypot(px, py)
    eta = np.arcsinh(pz / np.where(pt > 0, pt, 1.0))
    sign = np.where(jet_eta < 0, -1.0, 1.0)
    deta = (eta - jet_eta) * sign
    dphi = (np.arctan2(py, px) - jet_phi + np.pi) % (2 * np.pi) - np.pi
    mass = np.sqrt(np.clip(jet["e"] ** 2 - jet_pt**2 - jet["pz"] ** 2, 0.0, None))
    constituents = ak.zip({"px": px, "py": py, "pz": pz, "e": e, "deta": deta, "dphi": dphi})
    return ak.zip({"pt": jet_pt, "eta": jet_eta, "phi": jet_phi, "mass": mass,
                   "constituents": constituents}, depth_limit=1)
