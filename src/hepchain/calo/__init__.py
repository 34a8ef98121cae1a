"""Detector link: SiD-like Si-W ECAL geometry, EM-shower Monte Carlo and GFlash-style fast simulation."""
