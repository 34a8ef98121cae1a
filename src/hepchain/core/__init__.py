"""Shared machinery every study plugs into: studies, trainer, metrics, data I/O, report."""
