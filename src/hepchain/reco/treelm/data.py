"""Reco–truth matched jets for the tree LM: cached substrate samples (option ``jet_trees=1``) →
matched, unambiguous jets → canonical trees → token sequences (uint16 token files with a
manifest).

Matching: a jet is matched when exactly one final hard-process parton (a ``partons`` entry that
is no other entry's parent: the outgoing quarks/gluons of pp → jj, the τ leptons of Z → ττ)
lies within ΔR < 0.4 of its axis and no other jet claims that parton; jets with two or more
such partons, or sharing their parton with another jet, are *ambiguous* and removed (counted),
jets with none are *unmatched* (counted). The jet type is the parton's: τ (|pid| = 15), quark
(1–5) or gluon (21). Soft nodes are pruned before tokenising (``pt_min`` GeV): clustering-tree
leaves below it are removed and their merges contracted; truth nodes below it are removed
unless a kept node descends from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from hepchain.collider.kinematics import delta_r
from hepchain.core.cache import cached_dataset
from hepchain.core.dataset import ShardedDataset, ShardTask, build_dataset
from hepchain.core.errors import DataError
from hepchain.core.result import Result
from hepchain.core.seeding import derive_seed
from hepchain.reco.treelm.grammar import encode
from hepchain.reco.treelm.trees import Tree, canonical

JET_TYPES = ("tau", "quark", "gluon")
R_MATCH = 0.4


@dataclass
class Jets:
    """Matched jets: clustering and truth trees (canonical), type index into
    :data:`JET_TYPES`, and the selection counts."""

    reco: list[Tree]
    truth: list[Tree]
    kind: np.ndarray
    counts: dict[str, int] = field(default_factory=dict)


def load_jets(data: dict[str, Any], result: Result) -> Jets:
    """The matched jets of every sample in ``data.samples`` (process -> events) from the cache."""
    out = Jets([], [], np.zeros(0, np.int64))
    counts: dict[str, int] = {}
    kinds = []
    for process, n_events in data["samples"].items():
        ds = cached_dataset(process, n_events=int(n_events), seed=int(data["seed"]),
                            options={"jet_trees": 1}, progress=False)
        result.provenance.datasets.append(ds.manifest.summary())
        events = ShardedDataset(ds.path).read(columns=["jets", "partons"])
        reco, truth, kind = select(events, data, counts, process)
        out.reco += reco
        out.truth += truth
        kinds.append(kind)
    out.kind = np.concatenate(kinds)
    out.counts = counts
    if not out.reco:
        raise DataError("No matched jets survive the selection; generate more events or "
                        "loosen data.max_len / data.pt_min.")
    return out


def _numpy(records: ak.Array) -> tuple[dict[str, np.ndarray], np.ndarray]:
    flat = {f: ak.to_numpy(ak.flatten(records[f])) for f in records.fields}
    return flat, np.concatenate([[0], np.cumsum(ak.to_numpy(ak.num(records)))])


def select(events: ak.Array, data: dict[str, Any], counts: dict[str, int],
           process: str) -> tuple[list[Tree], list[Tree], np.ndarray]:
    """Matched jets of one sample; ``counts`` gains the number removed per reason."""
    jets = events["jets"]
    partons = events["partons"]
    final = ~ak.Array([[i in set(p) for i in range(len(p))] for p in
                       ak.to_list(partons.parent)])
    merge, m_off = _numpy(ak.flatten(jets.merge_tree, axis=1))
    truth, t_off = _numpy(ak.flatten(jets.truth_tree, axis=1))
    n_jets = ak.to_numpy(ak.num(jets))
    event_of = np.repeat(np.arange(len(jets)), n_jets)
    jeta, jphi = ak.to_numpy(ak.flatten(jets.eta)), ak.to_numpy(ak.flatten(jets.phi))
    pt_min, max_len = float(data["pt_min"]), int(data["max_len"])
    reco_out, truth_out, kind_out = [], [], []

    for reason in ("ambiguous (two partons within ΔR < 0.4)",
                   "ambiguous (parton shared by two jets)"):
        counts.setdefault(f"{process}: {reason}", 0)

    def count(reason: str) -> None:
        counts[f"{process}: {reason}"] = counts.get(f"{process}: {reason}", 0) + 1

    claims: dict[tuple[int, int], int] = {}
    matched: dict[int, tuple[int, int]] = {}
    for j in range(len(jeta)):
        ev = event_of[j]
        p = partons[ev][final[ev]]
        near = np.flatnonzero(delta_r(ak.to_numpy(p.eta), ak.to_numpy(p.phi), jeta[j], jphi[j])
                              < R_MATCH)
        if len(near) == 0:
            count("unmatched")
        elif len(near) > 1:
            count("ambiguous (two partons within ΔR < 0.4)")
        else:
            key = (ev, int(near[0]))
            claims[key] = claims.get(key, 0) + 1
            matched[j] = (key, int(p.pid[near[0]]))
    for j, (key, pid) in matched.items():
        if claims[key] > 1:
            count("ambiguous (parton shared by two jets)")
            continue
        kind = _jet_type(pid)
        if kind is None:
            count(f"parton pid {pid} is no jet type")
            continue
        r = prune_merge({k: v[m_off[j]:m_off[j + 1]] for k, v in merge.items()}, pt_min)
        t = prune_truth({k: v[t_off[j]:t_off[j + 1]] for k, v in truth.items()}, pt_min)
        if r is None:
            count("no clustering-tree leaf above pt_min")
            continue
        t = Tree(t.parent, t.kin, np.where(np.arange(len(t)) == 0, pid, t.pid))
        try:
            n_tokens = len(encode(r, t))
        except DataError:
            count("not tokenisable (tree size, PDG id or value range)")
            continue
        if n_tokens > max_len:
            count(f"longer than max_len = {max_len} tokens")
            continue
        reco_out.append(r)
        truth_out.append(t)
        kind_out.append(kind)
    return reco_out, truth_out, np.asarray(kind_out, np.int64)


def _jet_type(pid: int) -> int | None:
    a = abs(pid)
    return 0 if a == 15 else 1 if 1 <= a <= 5 else 2 if a == 21 else None


def prune_merge(nodes: dict[str, np.ndarray], pt_min: float) -> Tree | None:
    """The clustering tree without leaves below ``pt_min`` [GeV] (their merges contracted);
    None when no leaf survives."""
    parent: list[int] = []
    kin: list[np.ndarray] = []
    cols = np.stack([nodes[k] for k in ("pt", "eta", "phi", "mass")], 1)

    def keep(i: int) -> list[tuple[int, int]]:  # surviving subtree as (old node, new parent)
        left, right = nodes["left"][i], nodes["right"][i]
        if left < 0:
            return [(i, -1)] if nodes["pt"][i] >= pt_min else []
        a, b = keep(left), keep(right)
        if not a or not b:
            return a or b
        return [(i, -1), *[(n, 0 if p < 0 else p + 1) for n, p in a],
                *[(n, 0 if p < 0 else p + 1 + len(a)) for n, p in b]]

    sub = keep(0)
    if not sub:
        return None
    for n, p in sub:
        parent.append(p)
        kin.append(cols[n])
    return canonical(Tree(np.array(parent), np.array(kin)))


def prune_truth(nodes: dict[str, np.ndarray], pt_min: float) -> Tree:
    """The truth tree without nodes below ``pt_min`` [GeV] that have no kept descendant."""
    parent = np.asarray(nodes["parent"], np.int64)
    keep = np.asarray(nodes["pt"]) >= pt_min
    keep[0] = True
    for i in range(len(parent) - 1, 0, -1):  # children come after their parents
        if keep[i]:
            keep[parent[i]] = True
    idx = np.flatnonzero(keep)
    new = np.full(len(parent), -1)
    new[idx] = np.arange(len(idx))
    kin = np.stack([np.asarray(nodes[k], float) for k in ("pt", "eta", "phi", "mass")], 1)
    return canonical(Tree(np.where(parent[idx] < 0, -1, new[np.maximum(parent[idx], 0)]),
                          kin[idx], np.asarray(nodes["pid"])[idx]))


def split(n: int, fractions: dict[str, float], seed: int) -> tuple[np.ndarray, ...]:
    """Train / validation / test indices; the run seed chooses the split."""
    perm = np.random.default_rng(derive_seed(seed, "split")).permutation(n)
    a, b = int(fractions["train"] * n), int((fractions["train"] + fractions["val"]) * n)
    return perm[:a], perm[a:b], perm[b:]


# ---------------------------------------------------------------------------- token files


def _token_shard(task: ShardTask, tokens: np.ndarray, lengths: np.ndarray,
                 kind: np.ndarray) -> dict[str, np.ndarray]:
    return {"tokens": tokens, "length": lengths, "jet_type": kind}


def write_tokens(jets: Jets, out: Path, data: dict[str, Any]) -> ShardedDataset:
    """The translation sequences of ``jets`` as a token dataset in ``out``: ``tokens``
    (n, max_len) uint16 (PAD = 0 after EOE), ``length`` and ``jet_type`` per jet, with a
    manifest (:mod:`hepchain.core.dataset`)."""
    seqs = [encode(r, t) for r, t in zip(jets.reco, jets.truth, strict=True)]
    lengths = np.array([len(s) for s in seqs], np.int32)
    tokens = np.zeros((len(seqs), int(lengths.max())), np.uint16)
    for i, s in enumerate(seqs):
        tokens[i, :len(s)] = s
    make = partial(_token_shard, tokens=tokens, lengths=lengths, kind=jets.kind.astype(np.int8))
    build_dataset(out, generator="hepchain.reco.treelm", fmt="hdf5", n_events=len(seqs),
                  shard_size=len(seqs), seed=int(data["seed"]), make_shard=make,
                  settings={"data": data, "vocabulary": "treelm-v1"}, progress=False)
    return ShardedDataset(out)
