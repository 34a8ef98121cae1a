"""User-facing errors: one clear sentence, a non-zero exit code, no traceback wall."""

from __future__ import annotations


class HepchainError(Exception):
    """An error caused by the user's input (file, config, option), not by a bug.

    The message is one sentence that names the problem and the fix. The CLI prints it and
    exits with ``exit_code``; a traceback is shown only with ``HEPCHAIN_DEBUG=1``.
    """

    exit_code: int = 1

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(HepchainError):
    """Unknown study, preset or option, or an out-of-range setting (exit code 2)."""

    exit_code = 2


class DataError(HepchainError):
    """Missing, malformed, corrupted or inconsistent input data (exit code 1)."""


class TrainingError(HepchainError):
    """Training cannot go on (e.g. the loss became NaN or infinite)."""


def require(condition: bool, message: str, error: type[HepchainError] = UsageError) -> None:
    """Raise ``error(message)`` unless ``condition`` holds (for validating user input)."""
    if not condition:
        raise error(message)
