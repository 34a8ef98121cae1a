"""The sequence grammar: trees → tokens, tokens → trees (with errors saying where a sequence
stops parsing), and the grammar's state machine that masks the logits while decoding.

Grammar (EBNF; ``node_r`` a clustering-tree node, ``node_t`` a truth node)::

    sequence := BOS ( RECO node_r+ [ SEP TRUTH node_t+ ] | TRUTH node_t+ ) EOE
    node_r   := NODE [P_k] float(Pt) float(Eta) float(Phi) float(M)
    node_t   := NODE [P_k] pdg float(Pt) float(Eta) float(Phi) float(M)
    float(F) := F@Sign_(P|N) F@M_ddd F@E_e
    pdg      := [PDG@ANTI] ( PDG@ELEM_i | PDG@SPEC_i | [PDG@EXC_x] PDG@FLV_q PDG@J_j ) PDG@END

A tree is an edge list: the i-th ``NODE`` is node i, its ``P_k`` token the edge k → i (absent
for the root, node 0, required with k < i for every other node), so every parsed sequence is
a tree. Nodes come in the canonical order of :func:`~hepchain.reco.treelm.trees.canonical`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from hepchain.reco.treelm.trees import Tree, TreeError
from hepchain.reco.treelm.vocab import (
    FIELDS,
    MAX_NODES,
    VOCAB,
    float_tokens,
    float_value,
    pdg_tokens,
    pdg_value,
)

RECO_NODE_MAX = 2 + 3 * len(FIELDS)  # NODE P_k + floats
TRUTH_NODE_MAX = RECO_NODE_MAX + 5  # + ANTI EXC FLV J END


def node_tokens(tree: Tree, i: int) -> list[str]:
    out = ["NODE"] if i == 0 else ["NODE", f"P_{tree.parent[i]}"]
    if tree.pid is not None:
        out += pdg_tokens(int(tree.pid[i]))
    for f, x in zip(FIELDS, tree.kin[i], strict=True):
        out += float_tokens(f, float(x))
    return out


def tree_tokens(tree: Tree) -> list[str]:
    return [t for i in range(len(tree)) for t in node_tokens(tree, i)]


def encode(reco: Tree | None, truth: Tree | None) -> list[int]:
    """Token ids of a jet: reco only, truth only, or the translation pair (reco, truth)."""
    if reco is None and truth is None:
        raise TreeError("A sequence needs a clustering tree, a truth tree or both.")
    if truth is not None and truth.pid is None:
        raise TreeError("The truth tree has no PDG ids.")
    out = ["BOS"]
    if reco is not None:
        out += ["RECO", *tree_tokens(Tree(reco.parent, reco.kin))]
        if truth is not None:
            out.append("SEP")
    if truth is not None:
        out += ["TRUTH", *tree_tokens(truth)]
    return VOCAB.ids([*out, "EOE"])


def prompt(reco: Tree) -> list[int]:
    """The translation prompt: ``BOS RECO <clustering tree> SEP TRUTH``."""
    return encode(reco, None)[:-1] + VOCAB.ids(["SEP", "TRUTH"])


# ---------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class Parsed:
    reco: Tree | None
    truth: Tree | None


class _Reader:
    def __init__(self, ids: list[int]) -> None:
        self.tokens = [VOCAB.tokens[i] if 0 <= i < len(VOCAB) else f"<id {i}>" for i in ids]
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, what: str, ok: Callable[[str], bool]) -> str:
        tok = self.peek()
        if tok is None or not ok(tok):
            found = "the end of the sequence" if tok is None else repr(tok)
            raise TreeError(f"Token {self.pos}: expected {what}, found {found}.")
        self.pos += 1
        return tok


def _tree(r: _Reader, truth: bool) -> Tree:
    parent, kin, pid = [], [], []
    while r.peek() == "NODE":
        r.take("NODE", lambda t: t == "NODE")
        i = len(parent)
        if i == MAX_NODES:
            raise TreeError(f"Token {r.pos}: a tree may hold at most {MAX_NODES} nodes.")
        if i == 0:
            parent.append(-1)
        else:
            tok = r.take(f"a parent token P_0 … P_{i - 1}",
                         lambda t, i=i: t.startswith("P_") and int(t[2:]) < i)
            parent.append(int(tok[2:]))
        if truth:
            pid.append(_pdg(r))
        kin.append([_float(r, f) for f in FIELDS])
    if not parent:
        r.take("NODE (a tree needs a root)", lambda t: t == "NODE")
    return Tree(np.array(parent), np.array(kin), np.array(pid) if truth else None)


def _pdg(r: _Reader) -> int:
    toks = []
    if r.peek() == "PDG@ANTI":
        toks.append(r.take("PDG@ANTI", lambda t: True))
    head = r.take("a PDG token", lambda t: t.startswith(("PDG@ELEM_", "PDG@SPEC_",
                                                         "PDG@EXC_", "PDG@FLV_")))
    toks.append(head)
    if head.startswith("PDG@EXC_"):
        toks.append(r.take("PDG@FLV_…", lambda t: t.startswith("PDG@FLV_")))
    if toks[-1].startswith("PDG@FLV_"):
        toks.append(r.take("PDG@J_…", lambda t: t.startswith("PDG@J_")))
    toks.append(r.take("PDG@END", lambda t: t == "PDG@END"))
    return pdg_value(toks)


def _float(r: _Reader, f: str) -> float:
    return float_value([r.take(f"{f}@{part}…", lambda t, p=f"{f}@{part}": t.startswith(p))
                        for part in ("Sign_", "M_", "E_")])


def parse(ids: list[int] | np.ndarray) -> Parsed:
    """The trees of a token sequence (PAD after EOE ignored); :class:`TreeError` naming the
    first token that breaks the grammar."""
    ids = [int(i) for i in ids]
    pad = VOCAB.id("PAD")
    while ids and ids[-1] == pad:
        ids.pop()
    r = _Reader(ids)
    r.take("BOS", lambda t: t == "BOS")
    kind = r.take("RECO or TRUTH", lambda t: t in ("RECO", "TRUTH"))
    reco = truth = None
    if kind == "RECO":
        reco = _tree(r, truth=False)
        if r.peek() == "SEP":
            r.pos += 1
            r.take("TRUTH", lambda t: t == "TRUTH")
            kind = "TRUTH"
    if kind == "TRUTH":
        truth = _tree(r, truth=True)
    r.take("NODE or EOE" if truth else "NODE, SEP or EOE", lambda t: t == "EOE")
    if r.peek() is not None:
        raise TreeError(f"Token {r.pos}: {r.peek()!r} follows EOE; a sequence ends at EOE.")
    return Parsed(reco, truth)


# ---------------------------------------------------------------------------- state machine


def _mask(*groups: str, parents: int = 0) -> np.ndarray:
    m = np.zeros(len(VOCAB), bool)
    for g in groups:
        lo, hi = VOCAB.ranges[g]
        m[lo:hi] = True
    lo = VOCAB.ranges["parent"][0]
    m[lo:lo + parents] = True
    return m


class GrammarState:
    """Where a partial sequence stands in the grammar: ``allowed()`` is the boolean mask of
    tokens that keep it parseable (and completable within ``max_len`` tokens), ``advance``
    consumes one token. Masks are cached per state, so decoding costs a dict look-up."""

    _cache: ClassVar[dict[tuple, np.ndarray]] = {}

    def __init__(self, max_len: int) -> None:
        if max_len < 4 + TRUTH_NODE_MAX:
            raise TreeError(f"max_len {max_len} cannot hold a one-node tree.")
        self.max_len = max_len
        self.length = 0
        self.state: tuple = ("BOS",)
        self.section = ""
        self.nodes = 0

    @classmethod
    def after(cls, ids: list[int], max_len: int) -> GrammarState:
        """The state after the tokens ``ids`` (a prompt); TreeError if they break the grammar."""
        s = cls(max_len)
        for i in ids:
            if not s.allowed()[i]:
                raise TreeError(f"Token {s.length}: {VOCAB.tokens[i]!r} is not allowed here.")
            s.advance(i)
        return s

    @property
    def done(self) -> bool:
        return self.state[0] == "DONE"

    def allowed(self) -> np.ndarray:
        key = self._key()
        if key not in self._cache:
            self._cache[key] = self._compute(key)
        return self._cache[key]

    def _key(self) -> tuple:
        if self.state[0] != "AFTER_NODE":
            return (*self.state, self.nodes - 1 if self.state[0] == "PARENT" else 0)
        left = self.max_len - self.length
        room = self.nodes < MAX_NODES and left >= (
            TRUTH_NODE_MAX if self.section == "TRUTH" else RECO_NODE_MAX) + 1
        sep = self.section == "RECO" and left >= 3 + TRUTH_NODE_MAX
        return ("AFTER_NODE", self.section, room, sep)

    @staticmethod
    def _compute(key: tuple) -> np.ndarray:
        kind = key[0]
        if kind == "AFTER_NODE":
            _, _, room, sep = key
            return _mask("EOE", *(["NODE"] if room else []), *(["SEP"] if sep else []))
        simple = {"BOS": ("BOS",), "SECTION": ("RECO", "TRUTH"), "FIRST": ("NODE",),
                  "AFTER_SEP": ("TRUTH",), "DONE": ("PAD",),
                  "PDG0": ("pdg_anti", "pdg_elem", "pdg_spec", "pdg_exc", "pdg_flv"),
                  "PDG1": ("pdg_elem", "pdg_spec", "pdg_exc", "pdg_flv"),
                  "PDG_FLV": ("pdg_flv",), "PDG_J": ("pdg_j",), "PDG_END": ("pdg_end",)}
        if kind in simple:
            return _mask(*simple[kind])
        if kind == "PARENT":
            return _mask(parents=key[-1])
        _, f, part = key[:3]  # FLOAT
        return _mask(f"{FIELDS[f]}.{('sign', 'mantissa', 'exponent')[part]}")

    def advance(self, token: int) -> None:
        tok = VOCAB.tokens[token]
        self.length += 1
        kind = self.state[0]
        first_float = ("FLOAT", 0, 0)
        if kind == "BOS":
            self.state = ("SECTION",)
        elif kind in ("SECTION", "AFTER_SEP"):
            self.section, self.nodes, self.state = tok, 0, ("FIRST",)
        elif tok == "NODE":
            self.nodes += 1
            self.state = ("PARENT",) if self.nodes > 1 else self._node_body()
        elif tok == "SEP":
            self.state = ("AFTER_SEP",)
        elif tok == "EOE":
            self.state = ("DONE",)
        elif kind == "PARENT":
            self.state = self._node_body()
        elif kind in ("PDG0", "PDG1"):
            self.state = {"PDG@ANTI": ("PDG1",)}.get(tok) or (
                ("PDG_FLV",) if tok.startswith("PDG@EXC") else
                ("PDG_J",) if tok.startswith("PDG@FLV") else ("PDG_END",))
        elif kind == "PDG_FLV":
            self.state = ("PDG_J",)
        elif kind == "PDG_J":
            self.state = ("PDG_END",)
        elif kind == "PDG_END":
            self.state = first_float
        elif kind == "FLOAT":
            _, f, part = self.state
            if part < 2:
                self.state = ("FLOAT", f, part + 1)
            else:
                self.state = ("FLOAT", f + 1, 0) if f + 1 < len(FIELDS) else ("AFTER_NODE",)

    def _node_body(self) -> tuple:
        return ("PDG0",) if self.section == "TRUTH" else ("FLOAT", 0, 0)
