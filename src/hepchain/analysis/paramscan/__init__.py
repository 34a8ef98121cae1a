"""Parameter scans with a conditional flow against MC template grids (study ``paramscan``,
:class:`hepchain.analysis.paramscan.study.ParamScanStudy`): :mod:`.parameters` (the scanned
masses and grids), :mod:`.data` (samples per point), :mod:`.templates` (the MC scan),
:mod:`.summary` (accuracy vs compute), :mod:`.study` (the run). Nothing is imported here, so
``hepchain list`` stays light."""
