"""Deterministic seeding: one run seed -> every RNG, and stable per-shard seeds."""

from __future__ import annotations

import hashlib
import random

import numpy as np


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global RNGs."""
    import torch  # here, so the CLI and ``import hepchain`` stay light until a run starts

    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - third-party code uses the global RNG
    torch.manual_seed(seed)


def derive_seed(seed: int, *keys: object, bits: int = 31) -> int:
    """A stable seed for a sub-task (e.g. a shard): the same inputs always give the same seed.

    ``derive_seed(42, "ttbar", 3)`` is independent of process, platform and Python hash salt.
    Pythia accepts seeds up to 900_000_000, hence the default of 31 bits folded below that
    by callers that need it.
    """
    text = "/".join(str(k) for k in (seed, *keys)).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little") % (2**bits)
