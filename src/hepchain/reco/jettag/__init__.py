"""Jet tagging: the tagger zoo (BDT, PFN, EFN, ParticleNet, ParT) on one data pipeline."""
