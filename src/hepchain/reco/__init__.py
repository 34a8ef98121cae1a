"""Reconstruction and identification: energy calibration, flavour tagging, tau ID, jet taggers."""
