"""Dataset producers behind ``hepchain generate`` and :mod:`hepchain.core.cache`: modules that
expose

- ``PROCESSES: dict[str, str]`` — producible names and one-line descriptions,
- ``produce(name, out, *, n_events, seed, executor, shard_size=None, options=None,
  progress=True) -> Manifest`` (``options`` are the ``--set key=value`` pairs: strings, or
  mappings/lists for structured settings, validated by the producer), and, so that the cache
  keys and checks datasets by their full generator settings,
- ``shard_settings(name, options=None) -> dict`` (the validated settings written to the
  manifest) and ``DEFAULT_SHARD_SIZE``.

A new data producer adds its module path here.
"""

from typing import Any

PROVIDERS: list[str] = [
    "hepchain.collider.produce",
    "hepchain.calo.produce",
    "hepchain.fastsim.produce",
    "hepchain.accelerator.ipknob.dataset",
    "hepchain.accelerator.linac.oplog",
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


def process_catalogue() -> dict[str, str]:
    """Every producible process and its one-line description, by name. ``PROCESSES`` is read
    from each provider's source where it is a literal, so listing imports only the providers
    that compute it."""
    import importlib

    from hepchain.core.static import static_value

    catalogue: dict[str, str] = {}
    for path in PROVIDERS:
        try:
            catalogue.update(static_value(path, "PROCESSES"))
        except LookupError:
            catalogue.update(importlib.import_module(path).PROCESSES)
    return catalogue


def merge_options(process: str, defaults: dict[str, Any],
                  options: dict[str, Any] | None) -> dict[str, Any]:
    """``defaults`` with each option replacing its whole top-level key; string values are read
    as YAML (as ``--set`` gives them), unknown keys are a UsageError naming the known ones."""
    import yaml

    from hepchain.core.errors import UsageError

    unknown = sorted(set(options or {}) - set(defaults))
    if unknown:
        raise UsageError(f"{process} has no setting(s) {unknown}; known: {sorted(defaults)}.")
    parsed = {k: yaml.safe_load(v) if isinstance(v, str) else v
              for k, v in (options or {}).items()}
    return {**defaults, **parsed}
