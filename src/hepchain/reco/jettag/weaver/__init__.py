"""Side by side with weaver-core: our jets exported to JetClass ROOT, weaver's data YAML and
network configs for the same models, weaver's own training in a subprocess, and its
predictions read back so both trainings are judged by :mod:`hepchain.reco.jettag.evaluate`
on the same test jets (``hepchain jettag compare``)."""
