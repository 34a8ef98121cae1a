"""Small file helpers: atomic writes, ONNX files and checksums."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import uuid
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from hepchain.core.errors import DataError


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    A crash or kill inside the block leaves at most a ``*.tmp-*`` file, never a truncated
    file under the final name::

        with atomic_path("out/shard-00000.parquet") as tmp:
            write_parquet(tmp)
    """
    final = Path(path)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"Cannot create output directory {final.parent} ({exc.strerror}).") from exc
    if not os.access(final.parent, os.W_OK):
        raise DataError(f"Output directory {final.parent} is not writable; choose another --out.")
    tmp = final.with_name(f"{final.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def atomic_torch_save(obj: object, path: str | Path) -> Path:
    """``torch.save(obj)`` to ``path`` atomically (torch imported here, not at import time);
    returns the path."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


@contextlib.contextmanager
def onnx_export_path(path: str | Path) -> Iterator[Path]:
    """:func:`atomic_path` for an ONNX export, with ``torch.onnx``'s logger at ERROR and
    warnings silenced inside (the exporter logs a line per unavailable torchvision op)::

        with onnx_export_path("model.onnx") as tmp:
            proto = torch.onnx.export(model, example, dynamo=True).model_proto
            save_onnx(proto, tmp, {"classes": ["b", "c", "light"]})
    """
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with atomic_path(path) as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield tmp
    finally:
        logger.setLevel(level)


def save_onnx(proto: Any, path: Path, metadata: Mapping[str, Any]) -> None:
    """Add ``metadata`` to the ONNX ``proto`` (each value as a JSON string), check the model
    with ``onnx.checker`` and write it to ``path``."""
    import onnx

    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)
    onnx.checker.check_model(proto)
    onnx.save(proto, path)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def require_file(path: str | Path, what: str = "file") -> Path:
    """Return ``path`` as a Path, or raise DataError if it is not an existing file."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{what.capitalize()} {p} does not exist; check the path.")
    return p
