"""Generative shower models conditional on the incident energy; one model per module."""
