"""The study registry: name -> "module:Class". A new study adds one line here.

Imports are lazy: :func:`study_infos` (``hepchain list``, the CLI help) reads each study's
``description`` and ``seed_doc`` from its source and its presets from its config file, so
listing imports no study.
Studies outside the package (plugins, test studies run in a subprocess) are added without
editing this file through ``HEPCHAIN_EXTRA_STUDIES="name=module:Class[,name2=module2:Class2]"``,
read once at import; the module must be importable (e.g. on ``PYTHONPATH``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from hepchain.core.errors import UsageError

REGISTRY: dict[str, str] = {
    "ipknob": "hepchain.accelerator.ipknob.study:IPKnobStudy",
    "collider": "hepchain.collider.study:ColliderStudy",
    "linac": "hepchain.accelerator.linac.study:LinacStudy",
    "sparse": "hepchain.daq.study:SparseStudy",
    "btag": "hepchain.reco.btag.study:BTagStudy",
    "jettag": "hepchain.reco.jettag.study:JetTagStudy",
    "anomaly": "hepchain.analysis.anomaly:AnomalyStudy",
    "paramscan": "hepchain.analysis.paramscan.study:ParamScanStudy",
    "tauid": "hepchain.reco.tauid.study:TauIDStudy",
    "multistep": "hepchain.analysis.multistep.study:MultiStepStudy",
    "jetfm": "hepchain.reco.jetfm.study:JetFMStudy",
    "decayaware": "hepchain.analysis.decayaware.study:DecayAwareStudy",
    "fastcalo": "hepchain.fastsim.study:FastCaloStudy",
    "deploy": "hepchain.deploy.study:DeployStudy",
    "treelm": "hepchain.reco.treelm.study:TreeLMStudy",
}


def extra_studies(spec: str) -> dict[str, str]:
    """Parse ``HEPCHAIN_EXTRA_STUDIES``; a malformed entry or a built-in name is a UsageError."""
    out: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, entry = (s.strip() for s in item.partition("="))
        module, _, attr = entry.partition(":")
        if not (name and module and attr):
            raise UsageError(f"HEPCHAIN_EXTRA_STUDIES entries are name=module:Class, got {item!r}.")
        if name in REGISTRY:
            raise UsageError(f"HEPCHAIN_EXTRA_STUDIES names {name!r}, which is a built-in study; "
                             "choose another name.")
        out[name] = entry
    return out


REGISTRY.update(extra_studies(os.environ.get("HEPCHAIN_EXTRA_STUDIES", "")))


@dataclass(frozen=True)
class StudyInfo:
    """What a listing shows of a study: its one-line description, seed document and presets."""

    name: str
    description: str
    seed_doc: str
    presets: tuple[str, ...]


def static_about(name: str) -> tuple[str, str] | None:
    """``(description, seed_doc)`` of the registered study ``name`` read from the source of
    its class without importing it, or None where they are not literals there."""
    from hepchain.core.static import static_value

    module, _, attr = REGISTRY[name].partition(":")
    try:
        return (str(static_value(module, "description", attr)),
                str(static_value(module, "seed_doc", attr)))
    except LookupError:
        return None


def study_info(name: str) -> StudyInfo:
    """The listing of the registered study ``name``, read from its source
    (:func:`static_about`) and its ``configs/<name>.yaml`` without importing it; a study whose
    attributes are not literals of its class, or whose presets are code, is imported."""
    from hepchain.core import config

    if name not in REGISTRY:
        known = ", ".join(sorted(REGISTRY)) or "none registered yet"
        raise UsageError(f"Unknown study {name!r}; known studies: {known}.")
    about = static_about(name)
    if about is None or not config.has_config_file(name):
        from hepchain.core.study import get_study

        study = get_study(name)
        return StudyInfo(name, study.description, study.seed_doc, tuple(study.presets()))
    return StudyInfo(name, *about, tuple(config.load_presets(name)))


def study_infos() -> list[StudyInfo]:
    """:func:`study_info` of every registered study, in registry order."""
    return [study_info(name) for name in REGISTRY]
