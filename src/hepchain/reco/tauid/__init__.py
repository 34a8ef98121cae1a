"""Tau identification on variable-length inputs (study ``tauid``, seed 001, issue 19)."""
