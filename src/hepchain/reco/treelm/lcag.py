"""The lowest-common-ancestor-generation (LCAG) matrix of Kahn et al. (arXiv:2208.14924) on
our trees: the tree operations of the non-generative baseline (the network is
:mod:`~hepchain.reco.treelm.lcag_model`).

- Generation: a leaf is generation 0, a node with two or more children one more than its
  highest child, a node with one child (a unary node: a decay with one product kept) the
  same as its child — the matrix cannot see unary nodes, so they are counted as nothing
  (our reading of the paper, whose trees have no unary nodes). LCAG[i, j] is the generation
  of the lowest common ancestor of leaves i and j (0 on the diagonal).
- :func:`topology_from_lcag` turns a (predicted) matrix back into a tree: for g = 1, 2, …
  the leaves joined by entries ≤ g form clusters; every cluster not seen at g − 1 is a node
  whose children are the clusters it merges; the clusters left at the top hang from one
  root. A valid matrix gives back its tree (unary nodes contracted); any matrix gives a tree.
- The target lives on the *reco* leaves (the clustering tree's particle-flow candidates):
  :func:`project` pairs them with the truth leaves (minimum-cost assignment as in the
  closeness reward, pairs with ΔR ≥ 0.1 refused) and keeps the truth nodes above a paired
  leaf; an unpaired reco leaf hangs from the root, labelled γ (mass < 50 MeV) or π+.
- Labels: each maximal unary run of the tree with the node that ends it is a *chain* (its PDG
  ids top to bottom); a decoded topology is dressed with chains (:func:`dress`) and with
  kinematics (leaves from the reco leaves, every other node the four-momentum sum of its
  leaves, the root the jet).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from hepchain.collider.kinematics import delta_r
from hepchain.reco.treelm.evaluate import four_momentum, kinematics
from hepchain.reco.treelm.trees import Tree

R_PAIR = 0.1


def generations(parent: np.ndarray) -> np.ndarray:
    """Generation of every node (module docstring) of a parent array with parent[i] < i."""
    n = len(parent)
    kids = np.bincount(parent[1:], minlength=n)
    gen = np.zeros(n, np.int64)
    highest = np.full(n, -1, np.int64)
    for i in range(n - 1, -1, -1):  # children come after their parents
        if kids[i]:
            gen[i] = highest[i] + (kids[i] > 1)
        if i:
            highest[parent[i]] = max(highest[parent[i]], gen[i])
    return gen


def lcag_matrix(parent: np.ndarray, leaves: np.ndarray) -> np.ndarray:
    """(L, L) LCAG matrix of the nodes ``leaves`` of the tree ``parent``."""
    gen = generations(np.asarray(parent))
    paths = []
    for leaf in leaves:
        path, node = [], int(leaf)
        while node >= 0:
            path.append(node)
            node = int(parent[node])
        paths.append(path)
    m = np.zeros((len(leaves), len(leaves)), np.int64)
    for i in range(len(leaves)):
        above = set(paths[i])
        for j in range(i + 1, len(leaves)):
            m[i, j] = m[j, i] = gen[next(a for a in paths[j] if a in above)]
    return m


def topology_from_lcag(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(parent, leaf_node): a tree (root 0, parent[i] < i) from an (L, L) matrix and the node
    of each leaf i (module docstring)."""
    n_leaves = len(m)
    if n_leaves == 1:  # a single leaf is its own root
        return np.array([-1]), np.array([0])
    children: list[list[int]] = [[] for _ in range(n_leaves)]  # node -> child nodes
    top = list(range(n_leaves))  # leaf -> current top node
    for g in range(1, int(m.max()) + 1):  # at the largest entry every leaf is joined
        label = _components(m <= g)
        for c in np.unique(label):
            members = np.flatnonzero(label == c)
            tops = sorted({top[i] for i in members})
            if len(tops) > 1:
                children.append(tops)
                for i in members:
                    top[i] = len(children) - 1
    order, stack = [], [len(children) - 1]  # pre-order from the root (the last cluster)
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(reversed(children[node]))
    new = {node: k for k, node in enumerate(order)}
    parent = np.full(len(order), -1, np.int64)
    for node in order:
        for c in children[node]:
            parent[new[c]] = new[node]
    return parent, np.array([new[i] for i in range(n_leaves)])


def _components(adjacent: np.ndarray) -> np.ndarray:
    """Connected-component label of every leaf of a boolean adjacency matrix."""
    label = np.arange(len(adjacent))
    for i in range(len(adjacent)):
        for j in np.flatnonzero(adjacent[i]):
            a, b = label[i], label[j]
            if a != b:
                label[label == b] = a
    return label


def project(truth: Tree, reco: Tree) -> tuple[Tree, np.ndarray]:
    """The truth tree seen through the reco leaves (module docstring) and the node of each
    reco leaf (in ``reco.leaves()`` order)."""
    t_leaves, r_leaves = truth.leaves(), reco.leaves()
    t_leaves = t_leaves[t_leaves > 0]
    t, r = truth.kin[t_leaves], reco.kin[r_leaves]
    d_r = delta_r(t[:, None, 1], t[:, None, 2], r[None, :, 1], r[None, :, 2])
    d_pt = np.abs(np.log(np.maximum(t[:, None, 0], 1e-3) / np.maximum(r[None, :, 0], 1e-3)))
    rows, cols = linear_sum_assignment(d_r / 0.05 + d_pt)
    good = d_r[rows, cols] < R_PAIR
    paired = dict(zip(t_leaves[rows[good]].tolist(), cols[good].tolist(), strict=True))
    keep = np.zeros(len(truth), bool)
    keep[0] = True
    for leaf in paired:
        node = leaf
        while node >= 0 and not keep[node]:
            keep[node] = True
            node = truth.parent[node]
    idx = np.flatnonzero(keep)
    new = np.full(len(truth), -1)
    new[idx] = np.arange(len(idx))
    parent = [int(new[truth.parent[i]]) if i else -1 for i in idx]
    kin = truth.kin[idx].copy()
    pid = truth.pid[idx].tolist()
    node_of = np.empty(len(r_leaves), np.int64)
    for leaf, col in paired.items():
        node_of[col] = new[leaf]
        kin[new[leaf]] = r[col]
    taken = set(paired.values())
    extra = [c for c in range(len(r_leaves)) if c not in taken]
    for k, col in enumerate(extra):
        node_of[col] = len(idx) + k
        parent.append(0)
        pid.append(22 if r[col, 3] < 0.05 else 211)
    kin = np.vstack([kin, r[extra]])
    return Tree(np.array(parent), kin, np.array(pid)), node_of


def chains(tree: Tree) -> tuple[list[tuple[int, ...]], np.ndarray, np.ndarray]:
    """The tree's chains (PDG ids top to bottom), the parent chain of each (−1 for the root
    chain) and the chain of every node."""
    kids = tree.children()
    chain_of = np.full(len(tree), -1, np.int64)
    out: list[tuple[int, ...]] = []
    parents: list[int] = []
    for i in range(len(tree)):  # parents first
        p = tree.parent[i]
        if p >= 0 and len(kids[p]) == 1:
            chain_of[i] = chain_of[p]
            out[chain_of[i]] += (int(tree.pid[i]),)
        else:
            chain_of[i] = len(out)
            out.append((int(tree.pid[i]),))
            parents.append(-1 if p < 0 else int(chain_of[p]))
    return out, np.array(parents, np.int64), chain_of


def dress(parent: np.ndarray, leaf_node: np.ndarray, labels: list[tuple[int, ...]],
          reco: Tree) -> Tree:
    """A truth tree from a topology (``parent``, ``leaf_node`` of each reco leaf) and a chain
    of PDG ids per topology node; kinematics as in the module docstring."""
    r_kin = reco.kin[reco.leaves()]
    p4 = np.zeros((len(parent), 4))
    for leaf, node in enumerate(leaf_node):
        node = int(node)
        while node >= 0:
            p4[node] += four_momentum(r_kin[leaf])
            node = int(parent[node])
    new_parent: list[int] = []
    pid: list[int] = []
    kin: list[np.ndarray] = []
    bottom = np.full(len(parent), -1, np.int64)
    for node in range(len(parent)):  # parents first
        up = -1 if parent[node] < 0 else int(bottom[parent[node]])
        for k in labels[node]:
            new_parent.append(up)
            pid.append(k)
            kin.append(kinematics(p4[node]))
            up = len(pid) - 1
        bottom[node] = up
    for leaf, node in enumerate(leaf_node):
        kin[bottom[node]] = r_kin[leaf]
    kin[0] = reco.kin[0]
    return Tree(np.array(new_parent), np.array(kin), np.array(pid))
