"""Shared fixtures: a tiny registered study for exercising the generic machinery."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # make tests/_helpers importable


@pytest.fixture
def toy_study(monkeypatch):
    """Make ``toy`` (a logistic regression on two Gaussian blobs) the only registered study
    for the duration of a test, so the generic drivers are tested without physics studies."""
    from hepchain import studies

    monkeypatch.setattr(studies, "REGISTRY", {"toy": "_helpers:ToyStudy"})
    return "toy"


@pytest.fixture(autouse=True)
def dataset_cache(tmp_path, monkeypatch):
    """Every test's dataset cache is its own ``tmp_path/data`` (never the repository's
    ``data/``); module-scoped fixtures that generate set ``HEPCHAIN_DATA`` themselves."""
    monkeypatch.setenv("HEPCHAIN_DATA", str(tmp_path / "data"))
    return tmp_path / "data"
