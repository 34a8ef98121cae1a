"""The vocabulary of the decay-tree language model: special tokens, node/parent tokens, PDG ids
digit-group-wise and floats as sign + mantissa + exponent (seed 003's scheme).

Floats (one token family per field ``Pt`` [GeV], ``Eta``, ``Phi`` [rad], ``M`` [GeV])::

    x = s · d.dd · 10^(−e)   →   <F>@Sign_P|N  <F>@M_ddd  <F>@E_<e>

three significant digits (``M_100`` … ``M_999``; relative rounding ≤ 0.5 %) and the exponent
token ``E_<e>`` = the power of ten the mantissa is divided by, written with two characters
(``E_01`` = 10⁻¹, ``E_-1`` = 10¹), read off the seed's example φ = 0.123 →
``Phi@Sign_P Phi@M_123 Phi@E_01``. |x| < 10⁻⁴ is zero (``Sign_P M_000 E_00``); |x| ≥ 10⁴
does not encode.

PDG ids follow the PDG numbering scheme n nr nL nq1 nq2 nq3 nJ (Review of Particle Physics,
"Monte Carlo particle numbering scheme")::

    [PDG@ANTI] PDG@ELEM_<id> PDG@END                 quarks, leptons, gauge and Higgs bosons
    [PDG@ANTI] PDG@SPEC_130|310 PDG@END               K0L, K0S (outside the quark pattern)
    [PDG@ANTI] [PDG@EXC_<n nr nL>] PDG@FLV_<quarks> PDG@J_<nJ> PDG@END     hadrons

with the quark letters D U S C B T for 1–6 (two letters for mesons, three for baryons), e.g.
−323 → ``PDG@ANTI PDG@FLV_SU PDG@J_3 PDG@END`` (the seed's example).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from hepchain.core.errors import DataError

SPECIALS = ("PAD", "BOS", "RECO", "TRUTH", "SEP", "EOE", "NODE")
MAX_NODES = 64  # nodes per tree: parent tokens P_0 … P_62
FIELDS = ("Pt", "Eta", "Phi", "M")  # node kinematics, in this order
MANTISSA_DIGITS = 3
EXPONENTS = tuple(range(-3, 5))  # e of 10^(−e): |x| in [1e-4, 1e4)
ZERO_BELOW = 1e-4
ELEMENTARY = (1, 2, 3, 4, 5, 6, 11, 12, 13, 14, 15, 16, 21, 22, 23, 24, 25)
SPECIAL_HADRONS = (130, 310)
QUARKS = "DUSCBT"
EXCITATIONS = tuple(f"{n}{r}{ell}" for n in (0, 9) for r in range(10) for ell in range(10)
                    if (n, r, ell) != (0, 0, 0))


def exponent_token(field_name: str, e: int) -> str:
    return f"{field_name}@E_{e:02d}"


def _flavours() -> list[str]:
    two = [a + b for a in QUARKS for b in QUARKS]
    return two + [a + b + c for a in QUARKS for b in QUARKS for c in QUARKS]


@dataclass(frozen=True)
class Vocabulary:
    """Token strings ↔ ids; every token family is a contiguous id range (``ranges``), so a
    grammar mask is a few slices."""

    tokens: tuple[str, ...]
    ranges: dict[str, tuple[int, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_ids", {t: i for i, t in enumerate(self.tokens)})

    def __len__(self) -> int:
        return len(self.tokens)

    def id(self, token: str) -> int:
        try:
            return self._ids[token]  # type: ignore[attr-defined]
        except KeyError:
            raise DataError(f"Token {token!r} is not in the tree-LM vocabulary.") from None

    def ids(self, tokens: list[str]) -> list[int]:
        return [self.id(t) for t in tokens]

    def group(self, name: str) -> range:
        lo, hi = self.ranges[name]
        return range(lo, hi)


def build_vocabulary() -> Vocabulary:
    """The fixed vocabulary (its order is part of a trained model: do not reorder)."""
    tokens: list[str] = []
    ranges: dict[str, tuple[int, int]] = {}

    def add(name: str, items: list[str]) -> None:
        ranges[name] = (len(tokens), len(tokens) + len(items))
        tokens.extend(items)

    for s in SPECIALS:
        add(s, [s])
    add("parent", [f"P_{k}" for k in range(MAX_NODES - 1)])
    add("pdg_anti", ["PDG@ANTI"])
    add("pdg_end", ["PDG@END"])
    add("pdg_elem", [f"PDG@ELEM_{i}" for i in ELEMENTARY])
    add("pdg_spec", [f"PDG@SPEC_{i}" for i in SPECIAL_HADRONS])
    add("pdg_exc", [f"PDG@EXC_{x}" for x in EXCITATIONS])
    add("pdg_flv", [f"PDG@FLV_{x}" for x in _flavours()])
    add("pdg_j", [f"PDG@J_{j}" for j in range(1, 10)])
    for f in FIELDS:
        add(f"{f}.sign", [f"{f}@Sign_P", f"{f}@Sign_N"])
        add(f"{f}.mantissa", [f"{f}@M_000"] + [f"{f}@M_{m}" for m in range(100, 1000)])
        add(f"{f}.exponent", [exponent_token(f, e) for e in EXPONENTS])
    return Vocabulary(tuple(tokens), ranges)


VOCAB = build_vocabulary()


# ---------------------------------------------------------------------------- floats


def float_tokens(field_name: str, x: float) -> list[str]:
    """Sign, mantissa and exponent tokens of ``x`` (see the module docstring)."""
    if not math.isfinite(x):
        raise DataError(f"{field_name} = {x} is not finite and cannot be tokenised.")
    sign = "N" if x < 0 else "P"
    a = abs(x)
    if a < ZERO_BELOW:
        return [f"{field_name}@Sign_P", f"{field_name}@M_000", exponent_token(field_name, 0)]
    power = math.floor(math.log10(a))
    mantissa = round(a / 10.0**power * 100)
    if mantissa >= 1000:  # 9.996 rounds up to 10.0
        mantissa, power = mantissa // 10, power + 1
    elif mantissa < 100:  # log10 rounding at an exact power of ten
        mantissa, power = mantissa * 10, power - 1
    if -power not in EXPONENTS:
        raise DataError(f"{field_name} = {x} is outside the tokenised range "
                        f"(|x| < 1e{-EXPONENTS[0] + 1}).")
    return [f"{field_name}@Sign_{sign}", f"{field_name}@M_{mantissa}",
            exponent_token(field_name, -power)]


def float_value(tokens: list[str]) -> float:
    """Inverse of :func:`float_tokens` (three token strings)."""
    sign, mant, expo = (t.split("@", 1)[1] for t in tokens)
    m = int(mant[2:])
    e = int(expo[2:])
    return (-1.0 if sign == "Sign_N" else 1.0) * m / 100 * 10.0**-e


# ---------------------------------------------------------------------------- PDG ids


def pdg_tokens(pid: int) -> list[str]:
    """Digit-group tokens of the PDG id ``pid`` (see the module docstring)."""
    a = abs(int(pid))
    out = ["PDG@ANTI"] if pid < 0 else []
    if a in ELEMENTARY:
        return [*out, f"PDG@ELEM_{a}", "PDG@END"]
    if a in SPECIAL_HADRONS:
        return [*out, f"PDG@SPEC_{a}", "PDG@END"]
    digits = f"{a:07d}"
    n, nr, nl, q1, q2, q3, j = (int(c) for c in digits) if len(digits) == 7 else (-1,) * 7
    if n not in (0, 9) or q2 == 0 or q3 == 0 or j == 0 or max(q1, q2, q3) > 6:
        raise DataError(f"PDG id {pid} is not a quark, lepton, boson or hadron of the PDG "
                        "numbering scheme and cannot be tokenised.")
    if (n, nr, nl) != (0, 0, 0):
        out.append(f"PDG@EXC_{n}{nr}{nl}")
    quarks = "".join(QUARKS[q - 1] for q in (q1, q2, q3) if q)
    return [*out, f"PDG@FLV_{quarks}", f"PDG@J_{j}", "PDG@END"]


def pdg_value(tokens: list[str]) -> int:
    """Inverse of :func:`pdg_tokens` (the tokens up to and including ``PDG@END``)."""
    sign = -1 if tokens[0] == "PDG@ANTI" else 1
    body = tokens[1:] if sign < 0 else tokens
    kind, _, value = body[0].partition("@")[2].partition("_")
    if kind in ("ELEM", "SPEC"):
        return sign * int(value)
    exc = 0
    if kind == "EXC":
        exc = int(value) * 10_000
        body = body[1:]
    quarks = body[0].split("_", 1)[1]
    q = 0
    for letter in quarks:
        q = q * 10 + QUARKS.index(letter) + 1
    j = int(body[1].split("_", 1)[1])
    return sign * (exc + q * 10 + j)
