"""Signal region / side bands in m_jj, signal injection at a chosen S/B, random splits.

Masses are in TeV. The signal region (SR) is ``sr_lo < m_jj < sr_hi`` (LHCO: 3.3–3.7 TeV); the
side bands (SB) are the rest of ``[lo, hi]``. CWoLa hunting uses the neighbouring side bands
``[sr_lo − width, sr_lo]`` and ``[sr_hi, sr_hi + width]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hepchain.core.errors import DataError, UsageError


@dataclass(frozen=True)
class Window:
    """The m_jj window of the resonance search [TeV]."""

    sr_lo: float = 3.3
    sr_hi: float = 3.7
    lo: float = 0.0
    hi: float = float("inf")

    def __post_init__(self) -> None:
        if not self.lo <= self.sr_lo < self.sr_hi <= self.hi:
            raise UsageError(f"Signal region must satisfy lo <= sr_lo < sr_hi <= hi, got "
                             f"{self.lo}, {self.sr_lo}, {self.sr_hi}, {self.hi} TeV.")

    def in_range(self, mjj: np.ndarray) -> np.ndarray:
        return (mjj >= self.lo) & (mjj <= self.hi)

    def in_sr(self, mjj: np.ndarray) -> np.ndarray:
        return (mjj > self.sr_lo) & (mjj < self.sr_hi)

    def in_sb(self, mjj: np.ndarray) -> np.ndarray:
        return self.in_range(mjj) & ~self.in_sr(mjj)

    def in_near_sb(self, mjj: np.ndarray, width: float) -> np.ndarray:
        """The two neighbouring side bands of ``width`` TeV (CWoLa hunting)."""
        return (((mjj > self.sr_lo - width) & (mjj <= self.sr_lo))
                | ((mjj >= self.sr_hi) & (mjj < self.sr_hi + width)))

    def check_sidebands(self, mjj: np.ndarray, min_events: int = 1, what: str = "dataset") -> None:
        """DataError unless both side bands hold at least ``min_events`` events."""
        low = int(((mjj >= self.lo) & (mjj <= self.sr_lo)).sum())
        high = int(((mjj >= self.sr_hi) & (mjj <= self.hi)).sum())
        for name, n in (("lower", low), ("upper", high)):
            if n < min_events:
                raise DataError(
                    f"The {what} has {n} events in the {name} side band of m_jj "
                    f"(need >= {min_events}; SR {self.sr_lo}-{self.sr_hi} TeV, range "
                    f"{self.lo}-{self.hi} TeV); generate more events or widen the m-hat window.")


def split_indices(n: int, fractions: dict[str, float], rng: np.random.Generator
                  ) -> dict[str, np.ndarray]:
    """Randomly partition ``range(n)`` into named parts with the given fractions (sum ≤ 1)."""
    total = sum(fractions.values())
    if total > 1.0 + 1e-9 or min(fractions.values()) < 0:
        raise UsageError(f"Split fractions must be >= 0 and sum to <= 1, got {fractions}.")
    perm = rng.permutation(n)
    bounds = np.cumsum([0, *(round(f * n) for f in fractions.values())])
    return {k: np.sort(perm[a:b]) for k, a, b in zip(fractions, bounds[:-1], bounds[1:],
                                                      strict=True)}


def n_injected(s_over_b: float, n_bkg_sr: int, signal_sr_fraction: float) -> int:
    """Signal events to inject (over all m_jj) so that S/B in the SR equals ``s_over_b``."""
    if s_over_b < 0:
        raise UsageError(f"S/B must be >= 0, got {s_over_b}.")
    if signal_sr_fraction <= 0:
        raise DataError("No signal event falls in the signal region; check the W' mass and "
                        "the SR window.")
    return round(s_over_b * n_bkg_sr / signal_sr_fraction)
