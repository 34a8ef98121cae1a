"""hepchain: machine learning for every link of a particle-physics experiment.

The Python API mirrors the CLI::

    import hepchain
    from rich.console import Console

    hepchain.list_studies()                 # {"ipknob": <IPKnobStudy>, ...}: name -> Study
    result = hepchain.run_study("ipknob", preset="quick", workdir="runs/ipknob")
    Console().print(result.table())         # the metrics table, references beside ours

Names are imported on first use, so ``import hepchain`` (and the ``hepchain`` command) stays
fast; ``hepchain.list_studies()`` imports every study and its dependencies.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "HepchainError": "hepchain.core.errors",
    "Metric": "hepchain.core.result",
    "Reference": "hepchain.core.result",
    "Result": "hepchain.core.result",
    "Study": "hepchain.core.study",
    "get_study": "hepchain.core.study",
    "list_studies": "hepchain.core.study",
    "run_study": "hepchain.core.study",
}
__all__ = [*_LAZY, "__version__"]


def __getattr__(name: str) -> Any:
    """Import the public names lazily (PEP 562)."""
    if name not in _LAZY:
        raise AttributeError(f"module 'hepchain' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
