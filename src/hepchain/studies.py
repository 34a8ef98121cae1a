"""The study registry: name -> "module:Class". A new study adds one line here.

Imports are lazy, so ``hepchain list`` does not load every study's dependencies at once.
"""

REGISTRY: dict[str, str] = {
    "ipknob": "hepchain.accelerator.ipknob.study:IPKnobStudy",
    "collider": "hepchain.collider.study:ColliderStudy",
    "linac": "hepchain.accelerator.linac.study:LinacStudy",
    "sparse": "hepchain.daq.study:SparseStudy",
    "btag": "hepchain.reco.btag.study:BTagStudy",
    "anomaly": "hepchain.analysis.anomaly:AnomalyStudy",
    "paramscan": "hepchain.analysis.paramscan:ParamScanStudy",
}
