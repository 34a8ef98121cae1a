"""hepchain: machine learning for every link of a particle-physics experiment.

The Python API mirrors the CLI::

    import hepchain
    hepchain.list_studies()                       # {"ipknob": "...", ...}
    result = hepchain.run_study("ipknob", preset="quick", workdir="runs/ipknob")
    print(result.table())
"""

from hepchain.core.errors import HepchainError
from hepchain.core.result import Metric, Reference, Result
from hepchain.core.study import Study, get_study, list_studies, run_study

__version__ = "0.1.0"
__all__ = [
    "HepchainError",
    "Metric",
    "Reference",
    "Result",
    "Study",
    "__version__",
    "get_study",
    "list_studies",
    "run_study",
]
