"""Dataset producers behind ``hepchain generate``: modules that expose

- ``PROCESSES: dict[str, str]`` — producible names and one-line descriptions, and
- ``produce(name, out, *, n_events, seed, executor, shard_size=None, options=None) -> Manifest``
  (``options`` are the ``--set key=value`` pairs, strings to be validated by the producer).

A new data producer adds its module path here.
"""

PROVIDERS: list[str] = [
    "hepchain.collider.produce",
    "hepchain.calo.produce",
]


def find_producer(process: str):  # -> module with PROCESSES and produce()
    """The provider module that knows ``process`` (UsageError listing the known ones)."""
    import importlib

    from hepchain.core.errors import UsageError

    known: list[str] = []
    for path in PROVIDERS:
        module = importlib.import_module(path)
        if process in module.PROCESSES:
            return module
        known.extend(module.PROCESSES)
    listing = ", ".join(sorted(known)) or "none registered yet"
    raise UsageError(f"Unknown process {process!r}; known processes: {listing}.")
