"""Trees as the language model sees them: parent pointers, kinematics and (truth) PDG ids, in a
canonical node order, with shape and label signatures for the match metrics."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hepchain.core.errors import DataError
from hepchain.reco.treelm.vocab import MAX_NODES


class TreeError(DataError):
    """A tree or token sequence that does not parse (one sentence saying where and why)."""


@dataclass(frozen=True)
class Tree:
    """A rooted tree of ``n`` nodes: ``parent`` (n,) with −1 for the root (node 0) and
    ``parent[i] < i`` otherwise; ``kin`` (n, 4) = (pT [GeV], η, φ [rad], m [GeV]); ``pid``
    (n,) PDG ids for a truth tree, None for a clustering tree."""

    parent: np.ndarray
    kin: np.ndarray
    pid: np.ndarray | None = None

    def __post_init__(self) -> None:
        parent = np.asarray(self.parent, np.int64)
        kin = np.asarray(self.kin, np.float64).reshape(-1, 4)
        n = len(parent)
        if n == 0:
            raise TreeError("A tree needs at least one node (its root).")
        if n > MAX_NODES:
            raise TreeError(f"A tree has {n} nodes; the tokeniser allows at most {MAX_NODES}.")
        if len(kin) != n or (self.pid is not None and len(self.pid) != n):
            raise TreeError(f"A tree has {n} parents but {len(kin)} kinematics rows"
                            + ("" if self.pid is None else f" and {len(self.pid)} PDG ids") + ".")
        if parent[0] != -1:
            raise TreeError(f"Node 0 must be the root (parent −1), not a child of {parent[0]}.")
        bad = np.flatnonzero((parent[1:] < 0) | (parent[1:] >= np.arange(1, n)))
        if bad.size:
            i = int(bad[0]) + 1
            raise TreeError(f"Node {i} has parent {parent[i]}; every non-root node needs a "
                            "parent listed before it (0 ≤ parent < node index).")
        object.__setattr__(self, "parent", parent)
        object.__setattr__(self, "kin", kin)
        if self.pid is not None:
            object.__setattr__(self, "pid", np.asarray(self.pid, np.int64))

    def __len__(self) -> int:
        return len(self.parent)

    def children(self) -> list[list[int]]:
        out: list[list[int]] = [[] for _ in range(len(self))]
        for i, p in enumerate(self.parent[1:], start=1):
            out[p].append(i)
        return out

    def leaves(self) -> np.ndarray:
        return np.flatnonzero(np.bincount(self.parent[1:], minlength=len(self)) == 0)


def canonical(tree: Tree) -> Tree:
    """The same tree with nodes renumbered in pre-order, children by descending pT."""
    kids = tree.children()
    order: list[int] = []
    stack = [0]
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(sorted(kids[node], key=lambda c: tree.kin[c, 0]))  # lowest pT popped last
    new = np.empty(len(tree), np.int64)
    new[order] = np.arange(len(tree))
    idx = np.asarray(order)
    parent = np.where(tree.parent[idx] < 0, -1, new[np.maximum(tree.parent[idx], 0)])
    pid = None if tree.pid is None else tree.pid[idx]
    return Tree(parent, tree.kin[idx], pid)


def signature(tree: Tree, labelled: bool = True) -> str:
    """A string equal for two trees iff they are the same rooted unordered tree (with the same
    PDG id on matching nodes when ``labelled``): the AHU encoding with sorted children."""
    kids = tree.children()

    def code(node: int) -> str:
        label = str(int(tree.pid[node])) if labelled and tree.pid is not None else ""
        return label + "(" + ",".join(sorted(code(c) for c in kids[node])) + ")"

    return code(0)


def from_merge(nodes: dict[str, np.ndarray]) -> Tree:
    """A clustering tree from the substrate's ``merge_tree`` record (pre-order, left/right)."""
    n = len(nodes["pt"])
    parent = np.full(n, -1, np.int64)
    for side in ("left", "right"):
        child = np.asarray(nodes[side])
        has = child >= 0
        parent[child[has]] = np.flatnonzero(has)
    kin = np.stack([np.asarray(nodes[k], float) for k in ("pt", "eta", "phi", "mass")], 1)
    return canonical(Tree(parent, kin))


def from_truth(nodes: dict[str, np.ndarray]) -> Tree:
    """A truth decay tree from the substrate's ``truth_tree`` record."""
    kin = np.stack([np.asarray(nodes[k], float) for k in ("pt", "eta", "phi", "mass")], 1)
    return canonical(Tree(np.asarray(nodes["parent"]), kin, np.asarray(nodes["pid"])))
