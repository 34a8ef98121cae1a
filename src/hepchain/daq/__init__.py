"""Data reduction: readout sampling patterns (random, regular, learned masks) and reduction studies."""
