"""``ap_fixed<W,I,Q,O>`` numbers as hls4ml writes them into HLS, and their exact NumPy
quantisation.

A signed ``ap_fixed<W,I>`` has W bits, I of them (sign included) before the binary point:
step 2^-(W-I), range [-2^(I-1), 2^(I-1) - 2^-(W-I)]; ``ap_ufixed`` has no sign bit. The rounding
mode Q (``AP_TRN`` floor — the HLS default, ``AP_RND`` half up, ``AP_RND_CONV`` half to even,
...) is applied first, then the overflow mode O (``AP_WRAP`` two's-complement wrap — the
default, ``AP_SAT`` clip). Parsing is hls4ml's own (:mod:`hls4ml.model.types`) and the
quantisation the ``quantizers`` package's bit-exact NumPy implementation that hls4ml depends on;
this module only joins them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hepchain.core.errors import UsageError


@dataclass(frozen=True)
class FixedType:
    """An ``ap_(u)fixed<width, integer, rounding, overflow>`` type."""

    width: int
    integer: int
    signed: bool = True
    rounding: str = "TRN"
    overflow: str = "WRAP"

    @property
    def fractional(self) -> int:
        """Bits after the binary point (W − I)."""
        return self.width - self.integer

    def hls(self) -> str:
        """The type as HLS code, e.g. ``ap_fixed<8,3,AP_RND_CONV,AP_SAT>``."""
        modes = "" if (self.rounding, self.overflow) == ("TRN", "WRAP") else \
            f",AP_{self.rounding},AP_{self.overflow}"
        return f"ap_{'' if self.signed else 'u'}fixed<{self.width},{self.integer}{modes}>"

    @classmethod
    def parse(cls, text: str) -> FixedType:
        """From hls4ml's spelling (``ap_fixed<16,6>``, ``fixed<8,3,RND,SAT>``, ``ap_ufixed<..>``);
        UsageError for anything that is not a fixed-point type."""
        from hls4ml.backends.fpga.fpga_backend import FPGABackend
        from hls4ml.model.types import FixedPrecisionType

        try:
            p = FPGABackend.convert_precision_string(text)
        except Exception:
            p = None
        if not isinstance(p, FixedPrecisionType):
            raise UsageError(f"{text!r} is not a fixed-point type; write it as ap_fixed<W,I> "
                             "(optionally ap_fixed<W,I,AP_RND_CONV,AP_SAT>).")
        return cls(p.width, p.integer, p.signed, _mode(p.rounding_mode, "TRN"),
                   _mode(p.saturation_mode, "WRAP"))

    def quantise(self, x: np.ndarray) -> np.ndarray:
        """``x`` as this type would hold it (float64), bit-exact."""
        from quantizers import get_fixed_quantizer_np

        q = get_fixed_quantizer_np(self.rounding, self.overflow)
        # quantizers counts integer bits without the sign bit
        return q(np.asarray(x, np.float64), k=int(self.signed),
                 i=self.integer - int(self.signed), f=self.fractional)


def _mode(mode: object, default: str) -> str:
    """hls4ml's RoundingMode / SaturationMode enum (or None) as the bare name (``RND_CONV``)."""
    return default if mode is None else str(mode).split(".")[-1].removeprefix("AP_")


def uniform(width: int, integer: int) -> str:
    """The PTQ scan's type of every weight, bias, accumulator and result: ``ap_fixed<W,I>``
    (HLS defaults: truncation, wrap), as hls4ml's ``default_precision`` takes it."""
    if not 1 <= integer <= width:
        raise UsageError(f"ap_fixed<{width},{integer}> needs 1 <= I <= W.")
    return f"ap_fixed<{width},{integer}>"
