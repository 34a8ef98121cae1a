"""Readers and writers for community jet/event layouts (JetClass ROOT, top-tagging-landscape
HDF5, LHC Olympics R&D HDF5), so public data can replace generated data."""
