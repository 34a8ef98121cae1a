"""The study registry: name -> "module:Class". A new study adds one line here.

Imports are lazy, so ``hepchain list`` does not load every study's dependencies at once.
Studies outside the package (plugins, test studies run in a subprocess) are added without
editing this file through ``HEPCHAIN_EXTRA_STUDIES="name=module:Class[,name2=module2:Class2]"``,
read once at import; the module must be importable (e.g. on ``PYTHONPATH``).
"""

import os

from hepchain.core.errors import UsageError

REGISTRY: dict[str, str] = {
    "ipknob": "hepchain.accelerator.ipknob.study:IPKnobStudy",
    "collider": "hepchain.collider.study:ColliderStudy",
    "linac": "hepchain.accelerator.linac.study:LinacStudy",
    "sparse": "hepchain.daq.study:SparseStudy",
    "btag": "hepchain.reco.btag.study:BTagStudy",
    "anomaly": "hepchain.analysis.anomaly:AnomalyStudy",
    "paramscan": "hepchain.analysis.paramscan:ParamScanStudy",
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
