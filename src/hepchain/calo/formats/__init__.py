"""Calorimeter community formats: the CaloChallenge HDF5 layout and its binning XML."""
