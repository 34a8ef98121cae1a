"""The LCAG baseline's network (Kahn et al., arXiv:2208.14924, a transformer over the leaves
with a pairwise head; non-generative): from the clustering tree's leaves alone it predicts

- the LCAG matrix of :mod:`~hepchain.reco.treelm.lcag` (cross-entropy over generations
  1 … ``max_generation``, larger ones clamped), from the pair features [h_i + h_j, h_i ⊙ h_j]
  (symmetric in i, j) of a :class:`~hepchain.nn.attention.SetTransformer`;
- the chain of PDG ids of each leaf and of the root (cross-entropy over the chains seen in
  training; the root from attention pooling) — Kahn et al. predict the topology only, the
  labels are ours so that the same exact-match and PDG metrics apply.

Leaf features: log pT, η − η_jet, Δφ to the jet, m, pT / pT_jet. The other internal chains
come from a table of the training trees: the most frequent chain above each multiset of child
chain tops (else the most frequent internal chain). Decoding: arg-max generations →
:func:`~hepchain.reco.treelm.lcag.topology_from_lcag` → :func:`~hepchain.reco.treelm.lcag.dress`.
Trained through :class:`~hepchain.core.trainer.Trainer`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from hepchain.collider.kinematics import delta_phi
from hepchain.core.losses import masked_cross_entropy
from hepchain.core.trainer import TrainConfig, Trainer
from hepchain.nn.attention import AttentionPooling, SetTransformer
from hepchain.nn.mlp import MLP
from hepchain.reco.treelm.lcag import chains, dress, lcag_matrix, project, topology_from_lcag
from hepchain.reco.treelm.trees import Tree

IGNORE = -100
N_FEATURES = 5


@dataclass
class Labels:
    """Chain vocabularies (root, leaf) and the internal-chain table of the training trees."""

    root: list[tuple[int, ...]] = field(default_factory=list)
    leaf: list[tuple[int, ...]] = field(default_factory=list)
    internal: dict[tuple[int, ...], tuple[int, ...]] = field(default_factory=dict)
    fallback: tuple[int, ...] = (111,)


@dataclass(frozen=True)
class Target:
    """One jet's training target: LCAG matrix, root chain and leaf chains (reco-leaf order)."""

    lcag: np.ndarray
    root: tuple[int, ...]
    leaves: list[tuple[int, ...]]
    internal: list[tuple[tuple[int, ...], tuple[int, ...]]]  # (child tops, chain)


def target(truth: Tree, reco: Tree) -> Target:
    """The LCAG target of one jet: the truth tree projected onto the reco leaves."""
    tree, node_of = project(truth, reco)
    names, parent_chain, chain_of = chains(tree)
    m = lcag_matrix(tree.parent, node_of)
    if len(node_of) == 1:  # one chain from the root to the leaf
        path = names[0]
        return Target(m, path[:-1], [path[-1:]], [])
    internal = []
    leaf_chains = set(chain_of[node_of].tolist())
    for k in range(1, len(names)):
        if k not in leaf_chains:
            tops = tuple(sorted(names[c][0] for c in np.flatnonzero(parent_chain == k)))
            internal.append((tops, names[k]))
    return Target(m, names[0], [names[c] for c in chain_of[node_of]], internal)


def features(reco: Tree) -> np.ndarray:
    """(L, 5) leaf features (module docstring)."""
    k, jet = reco.kin[reco.leaves()], reco.kin[0]
    return np.stack([np.log(np.maximum(k[:, 0], 1e-3)), k[:, 1] - jet[1],
                     delta_phi(k[:, 2], jet[2]), k[:, 3], k[:, 0] / jet[0]], 1)


def fit_labels(targets: list[Target]) -> Labels:
    """Chain vocabularies and the internal table from the training targets."""
    table: dict[tuple[int, ...], Counter] = {}
    for t in targets:
        for tops, chain in t.internal:
            table.setdefault(tops, Counter())[chain] += 1
    every = sum(table.values(), Counter())
    return Labels(root=sorted({t.root for t in targets}),
                  leaf=sorted({c for t in targets for c in t.leaves}),
                  internal={k: c.most_common(1)[0][0] for k, c in table.items()},
                  fallback=every.most_common(1)[0][0] if every else (111,))


class LCAGNet(nn.Module):
    """Leaf embedding → set transformer → pairwise generation, leaf-chain and root-chain
    logits."""

    def __init__(self, dim: int, heads: int, layers: int, generations: int, n_leaf: int,
                 n_root: int) -> None:
        super().__init__()
        self.embed = MLP(N_FEATURES, [dim], dim)
        self.encoder = SetTransformer(dim, heads, layers)
        self.pair = MLP(2 * dim, [dim], generations)
        self.leaf = nn.Linear(dim, n_leaf)
        self.pool = AttentionPooling(dim, heads)
        self.root = nn.Linear(dim, n_root)

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        h = self.encoder(self.embed(x), mask)
        hi, hj = h[:, :, None], h[:, None, :]
        pair = self.pair(torch.cat([(hi + hj).expand(-1, -1, h.shape[1], -1),
                                    hi * hj], -1))
        return pair, self.leaf(h), self.root(self.pool(h, mask))


def tensors(reco: list[Tree], targets: list[Target], labels: Labels,
            generations: int) -> tuple[Tensor, ...]:
    """Padded (features, mask, generation class, leaf class, root class); unknown chains and
    padding are IGNORE."""
    n = max(len(r.leaves()) for r in reco)
    x = torch.zeros(len(reco), n, N_FEATURES)
    mask = torch.zeros(len(reco), n, dtype=torch.bool)
    gen = torch.full((len(reco), n, n), IGNORE, dtype=torch.long)
    leaf = torch.full((len(reco), n), IGNORE, dtype=torch.long)
    root = torch.full((len(reco),), IGNORE, dtype=torch.long)
    leaf_id = {c: k for k, c in enumerate(labels.leaf)}
    root_id = {c: k for k, c in enumerate(labels.root)}
    for b, (r, t) in enumerate(zip(reco, targets, strict=True)):
        k = len(t.leaves)
        x[b, :k] = torch.from_numpy(features(r)).float()
        mask[b, :k] = True
        g = torch.from_numpy(np.minimum(t.lcag, generations) - 1)
        g.fill_diagonal_(IGNORE)
        gen[b, :k, :k] = g
        leaf[b, :k] = torch.tensor([leaf_id.get(c, IGNORE) for c in t.leaves])
        root[b] = root_id.get(t.root, IGNORE)
    return x, mask, gen, leaf, root


def _loss(model: nn.Module, batch: list[Tensor]) -> dict[str, Tensor]:
    x, mask, gen, leaf, root = batch
    pair, leaf_logits, root_logits = model(x, mask)
    return {"lcag": masked_cross_entropy(pair.flatten(0, 2), gen.flatten(), IGNORE),
            "leaf": masked_cross_entropy(leaf_logits.flatten(0, 1), leaf.flatten(), IGNORE),
            "root": masked_cross_entropy(root_logits, root, IGNORE)}


def fit_lcag(train: tuple[list[Tree], list[Tree]], val: tuple[list[Tree], list[Tree]],
             settings: dict[str, Any], seed: int) -> tuple[LCAGNet, Labels]:
    """Train the LCAG network on (clustering trees, truth trees) of the training and validation
    jets; returns it with its label tables."""
    reco = (train[0], val[0])
    targets = [[target(t, r) for r, t in zip(*split, strict=True)] for split in (train, val)]
    labels = fit_labels(targets[0])
    g = int(settings["max_generation"])
    torch.manual_seed(seed)
    model = LCAGNet(int(settings["dim"]), int(settings["heads"]), int(settings["layers"]), g,
                    len(labels.leaf), len(labels.root))
    trainer = Trainer(model, _loss, TrainConfig.from_dict(settings["train"], seed=seed),
                      name="lcag")
    trainer.fit(tensors(reco[0], targets[0], labels, g), tensors(reco[1], targets[1], labels, g))
    return model.eval(), labels


@torch.no_grad()
def predict(model: LCAGNet, labels: Labels, reco: list[Tree]) -> tuple[list[Tree],
                                                                        list[np.ndarray]]:
    """Decoded truth trees and predicted LCAG matrices of the clustering trees ``reco``."""
    trees, matrices = [], []
    for r in reco:
        x = torch.from_numpy(features(r)).float()[None]
        pair, leaf_logits, root_logits = model(x, torch.ones(x.shape[:2], dtype=torch.bool))
        m = (pair[0].argmax(-1) + 1).numpy()
        np.fill_diagonal(m, 0)
        matrices.append(m)
        parent, leaf_node = topology_from_lcag(m)
        leaf_chains = [labels.leaf[k] for k in leaf_logits[0].argmax(-1).tolist()]
        root_chain = labels.root[int(root_logits[0].argmax())]
        chain = [labels.fallback] * len(parent)
        for node, c in zip(leaf_node, leaf_chains, strict=True):
            chain[int(node)] = c
        if len(parent) == 1:
            chain[0] = root_chain + leaf_chains[0]
        else:
            chain[0] = root_chain
            for node in range(len(parent) - 1, 0, -1):  # children before parents
                if node not in leaf_node:
                    tops = tuple(sorted(chain[c][0] for c in np.flatnonzero(parent == node)))
                    chain[node] = labels.internal.get(tops, labels.fallback)
        trees.append(dress(parent, leaf_node, chain, r))
    return trees, matrices
