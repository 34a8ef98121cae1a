"""Parameter scans with a conditional flow against MC template grids (study ``paramscan``):
:mod:`.parameters` (the scanned masses and grids), :mod:`.data` (samples per point),
:mod:`.templates` (the MC scan), :mod:`.summary` (accuracy vs compute), :mod:`.study`."""

from hepchain.analysis.paramscan.study import ParamScanStudy

__all__ = ["ParamScanStudy"]
