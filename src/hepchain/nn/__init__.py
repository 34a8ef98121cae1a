"""Layers and architectures shared by several studies (MLP, DeepSets, attention, ...)."""
