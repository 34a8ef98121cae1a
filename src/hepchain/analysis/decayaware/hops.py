"""Hop counts between reconstructed objects along the true decay chain (seed 002).

A decay tree is given by ``parents`` (parent node of each node, -1 for the root). The hop
count of two objects matched to tree nodes a and b is the number of vertices on the path
between them — the internal nodes of the path, i.e. its number of edges minus one — and 0 for
an object with itself (or two objects matched to the same node). The seed's example, l–ν 1,
b₁–b₂ 1, q₁–q₂ 1, l–b 3, q–others 4, is this count on the tree root → (X, W₂), X → (W₁, H),
W₁ → (l, ν), H → (b₁, b₂), W₂ → (q₁, q₂) (``tests/test_decayaware.py``).
Unmatched objects (node -1) get :data:`MASKED` in every pair.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hepchain.core.errors import DataError

MASKED = -1


def depths(parents: Sequence[int]) -> np.ndarray:
    """Depth of every node below its root (root 0); DataError on a cycle or a bad index."""
    par = np.asarray(parents, dtype=np.int64)
    n = par.size
    if ((par < -1) | (par >= n)).any():
        raise DataError(f"A decay tree has a parent index outside [-1, {n - 1}].")
    depth = np.full(n, -1, np.int64)
    for start in range(n):
        chain, node = [], start
        while node >= 0 and depth[node] < 0:
            if len(chain) > n:
                raise DataError("A decay tree contains a cycle.")
            chain.append(node)
            node = par[node]
        base = -1 if node < 0 else depth[node]
        for k, c in enumerate(reversed(chain), start=1):
            depth[c] = base + k
    return depth


def hop_matrix(parents: Sequence[int], nodes: Sequence[int]) -> np.ndarray:
    """(n_obj, n_obj) hop counts of objects matched to tree ``nodes`` (-1: unmatched,
    giving :data:`MASKED` rows and columns) in the tree ``parents``."""
    par = np.asarray(parents, dtype=np.int64)
    node = np.asarray(nodes, dtype=np.int64)
    if (node >= par.size).any():
        raise DataError(f"An object is matched to node {node.max()}, but the tree has "
                        f"{par.size} nodes.")
    depth = depths(par)
    n = node.size
    out = np.full((n, n), MASKED, np.int64)
    for i in range(n):
        for j in range(i, n):
            a, b = node[i], node[j]
            if a < 0 or b < 0:
                continue
            if a == b:
                out[i, j] = out[j, i] = 0
                continue
            da, db, x, y = depth[a], depth[b], a, b
            while da > db:
                x, da = par[x], da - 1
            while db > da:
                y, db = par[y], db - 1
            while x != y:
                if par[x] < 0:
                    raise DataError("Two objects are matched to nodes of different trees.")
                x, y = par[x], par[y]
            out[i, j] = out[j, i] = depth[a] + depth[b] - 2 * depth[x] - 1
    return out
