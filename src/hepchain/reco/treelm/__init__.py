"""Decay-tree language model: translate a jet's clustering tree into its true decay tree."""
