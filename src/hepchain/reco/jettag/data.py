"""Jets for the tagger zoo: cached substrate samples -> selected jets -> padded particle tensors.

Particle features follow JetClass / weaver (``JetClass_full.yaml``): each feature is
``clip((x − centre)·scale, −5, 5)``, padded with zeros to ``max_particles`` (GeV, mm, rad)::

    kin     part_pt_log part_e_log part_logptrel part_logerel part_deltaR part_deta part_dphi
    kinpid  kin + part_charge + part_is{ChargedHadron,NeutralHadron,Photon,Electron,Muon}
    full    kinpid + part_d0 (tanh d0) part_d0err part_dz (tanh dz) part_dzerr

Sources: ``top_qcd`` (the top-tagging-landscape selection, 2 classes: QCD, top) and
``jetclass`` (one cached sample per class, leading large-R jet, 10 classes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import awkward as ak
import numpy as np

from hepchain.collider.formats.jetclass import LABELS as JETCLASS_LABELS
from hepchain.collider.formats.toptagging import landscape_selection
from hepchain.core.cache import cached_dataset
from hepchain.core.dataset import ShardedDataset
from hepchain.core.errors import DataError, UsageError
from hepchain.core.result import Result
from hepchain.core.seeding import derive_seed

#: feature name -> (constituent fields it needs, centre, scale, clip range); weaver's values
_KIN = {"part_pt_log": ((), 1.7, 0.7), "part_e_log": ((), 2.0, 0.7),
        "part_logptrel": ((), -4.7, 0.7), "part_logerel": ((), -4.7, 0.7),
        "part_deltaR": (("deta", "dphi"), 0.2, 4.0), "part_deta": (("deta",), 0.0, 1.0),
        "part_dphi": (("dphi",), 0.0, 1.0)}
_PID_FLAGS = {"part_isChargedHadron": 211, "part_isNeutralHadron": 130, "part_isPhoton": 22,
              "part_isElectron": 11, "part_isMuon": 13}
_PID = {"part_charge": (("charge",), 0.0, 1.0),
        **{name: (("pid",), 0.0, 1.0) for name in _PID_FLAGS}}
_IP = {"part_d0": (("d0",), 0.0, 1.0), "part_d0err": (("d0err",), 0.0, 1.0),
       "part_dz": (("dz",), 0.0, 1.0), "part_dzerr": (("dzerr",), 0.0, 1.0)}
FEATURE_SETS: dict[str, tuple[str, ...]] = {
    "kin": tuple(_KIN), "kinpid": (*_KIN, *_PID), "full": (*_KIN, *_PID, *_IP)}
_SPEC = {**_KIN, **_PID, **_IP}
FOUR = ("px", "py", "pz", "e")
CLIP = 5.0
TOP_QCD_LABELS = ("QCD", "top")


def standardisation(name: str) -> tuple[float, float]:
    """(centre, scale) of particle feature ``name``: x -> clip((x − centre)·scale, ±5)."""
    return _SPEC[name][1], _SPEC[name][2]


@dataclass(frozen=True)
class Jets:
    """Selected jets: the ``fatjets`` records (with ``constituents``), class index per jet and
    the class names."""

    records: ak.Array
    labels: np.ndarray
    classes: tuple[str, ...]


@dataclass(frozen=True)
class ParticleTensors:
    """Padded particle inputs: ``features`` (N, P, F) per :data:`FEATURE_SETS`, ``vectors``
    (N, P, 4) = (px, py, pz, E) [GeV], ``mask`` (N, P) True for real particles."""

    features: np.ndarray
    vectors: np.ndarray
    mask: np.ndarray
    names: tuple[str, ...]

    def index(self, name: str) -> int:
        """Column of feature ``name`` in ``features``."""
        return self.names.index(name)


def load_jets(data: dict[str, Any], result: Result) -> Jets:
    """The jets of ``data.process`` (``top_qcd`` or ``jetclass``) from the dataset cache,
    with the selection of ``data.selection``; manifests go into ``result``'s provenance. With
    ``data.path`` set, the public files there instead (:mod:`hepchain.reco.jettag.public`)."""
    if data.get("path"):  # public files instead of generated jets
        from hepchain.reco.jettag.public import load_public_jets

        return load_public_jets(data, result)
    sel = data["selection"]
    pt_range, eta_max = (float(sel["pt_min"]), float(sel["pt_max"])), float(sel["eta_max"])

    def sample(options: dict[str, Any], seed: int) -> ak.Array:
        ds = cached_dataset(data["process"], n_events=int(data["n_events"]), seed=seed,
                            options=options, workers=int(data["workers"]))
        result.provenance.datasets.append(ds.manifest.summary())
        return ShardedDataset(ds.path).read()

    if data["process"] == "top_qcd":
        jets, labels = landscape_selection(sample(data["options"], int(data["seed"])),
                                           pt_range, eta_max, float(sel["match_dr"]))
        return Jets(ak.drop_none(jets, axis=0), labels, TOP_QCD_LABELS)
    if data["process"] == "jetclass":
        unknown = [name for name in data["classes"] if name not in JETCLASS_LABELS]
        if unknown or len(data["classes"]) < 2 or data["classes"][0] != "QCD":
            raise UsageError(f"data.classes must start with QCD (the background) and name at "
                             f"least one more of {', '.join(JETCLASS_LABELS)}; got "
                             f"{list(data['classes'])}.")
        parts, labels = [], []
        for k, name in enumerate(data["classes"]):
            lead = ak.firsts(sample({**data["options"], "label": name},
                                    derive_seed(int(data["seed"]), name))["fatjets"])
            lead = ak.drop_none(lead, axis=0)
            lead = lead[(lead["pt"] > pt_range[0]) & (lead["pt"] < pt_range[1])
                        & (abs(lead["eta"]) < eta_max)]
            parts.append(lead)
            labels.append(np.full(len(lead), k, np.int64))
        return Jets(ak.concatenate(parts), np.concatenate(labels), tuple(data["classes"]))
    raise UsageError(f"data.process {data['process']!r} is not a jet-tagging sample; use "
                     "top_qcd or jetclass.")


def require_fields(jets: ak.Array, needed: set[str], what: str) -> None:
    """DataError naming the fields of ``needed`` that the jets' constituents lack."""
    if "constituents" not in ak.fields(jets):
        raise DataError("These jets have no constituents; generate them with "
                        "fatjet_constituents=1.")
    missing = sorted(needed - set(ak.fields(jets["constituents"])))
    if missing:
        raise DataError(f"The jets' constituents lack {', '.join(missing)}, needed by {what}; "
                        "choose a smaller feature set (kin or kinpid) or data that has them.")


def particle_features(jets: ak.Array, feature_set: str, max_particles: int) -> ParticleTensors:
    """JetClass-style particle features of ``jets`` (the leading ``max_particles`` by pT),
    standardised as weaver does and zero-padded; DataError when a needed field is absent."""
    if feature_set not in FEATURE_SETS:
        raise UsageError(f"Feature set {feature_set!r} is unknown; use one of "
                         f"{', '.join(FEATURE_SETS)}.")
    names = FEATURE_SETS[feature_set]
    require_fields(jets, set(FOUR).union(*(_SPEC[n][0] for n in names)),
                   f"feature set {feature_set!r}")
    c = jets["constituents"]
    c = c[ak.argsort(-np.hypot(c["px"], c["py"]), axis=1)][:, :max_particles]

    def pad(x: ak.Array) -> np.ndarray:
        return ak.to_numpy(ak.fill_none(ak.pad_none(x, max_particles, axis=1, clip=True), 0.0)
                           ).astype(np.float64)

    n = ak.to_numpy(ak.num(c))
    mask = np.arange(max_particles)[None, :] < n[:, None]
    vec = np.stack([pad(c[f]) for f in FOUR], -1)
    jet_pt = np.hypot(*_jet_sum(jets, ("px", "py")).T)
    jet_e = _jet_sum(jets, ("e",))[:, 0]
    pt = np.hypot(vec[..., 0], vec[..., 1])
    raw = {"part_pt_log": _log(pt), "part_e_log": _log(vec[..., 3]),
           "part_logptrel": _log(pt / jet_pt[:, None]),
           "part_logerel": _log(vec[..., 3] / jet_e[:, None])}
    if "deta" in ak.fields(c):
        deta, dphi = pad(c["deta"]), pad(c["dphi"])
        raw |= {"part_deta": deta, "part_dphi": dphi, "part_deltaR": np.hypot(deta, dphi)}
    if "charge" in ak.fields(c):
        raw["part_charge"] = pad(c["charge"])
    if "pid" in ak.fields(c):
        pid = np.abs(pad(c["pid"]))
        raw |= {name: (pid == code).astype(float) for name, code in _PID_FLAGS.items()}
    if "d0" in ak.fields(c):
        raw |= {"part_d0": np.tanh(pad(c["d0"])), "part_dz": np.tanh(pad(c["dz"])),
                "part_d0err": np.clip(pad(c["d0err"]), 0.0, 1.0),
                "part_dzerr": np.clip(pad(c["dzerr"]), 0.0, 1.0)}
    cols = [np.clip((raw[n] - _SPEC[n][1]) * _SPEC[n][2], -CLIP, CLIP) for n in names]
    feats = np.where(mask[..., None], np.stack(cols, -1), 0.0)
    return ParticleTensors(feats.astype(np.float32), vec.astype(np.float32), mask, names)


def _jet_sum(jets: ak.Array, fields: tuple[str, ...]) -> np.ndarray:
    """Σ over all constituents of each field, (N, len(fields)) [GeV]."""
    return np.stack([ak.to_numpy(ak.sum(jets["constituents"][f], axis=1)) for f in fields], 1)


def _log(x: np.ndarray) -> np.ndarray:
    """log of a positive quantity; 0 on padded (x <= 0) entries, which the mask removes."""
    return np.log(np.where(x > 0, x, 1.0))


def split(n: int, fractions: dict[str, float], seed: int) -> tuple[np.ndarray, ...]:
    """Train / validation / test indices; the run seed chooses the split."""
    perm = np.random.default_rng(derive_seed(seed, "split")).permutation(n)
    a, b = int(fractions["train"] * n), int((fractions["train"] + fractions["val"]) * n)
    return perm[:a], perm[a:b], perm[b:]
