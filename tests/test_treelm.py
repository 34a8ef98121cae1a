"""Tree LM: tokeniser round trips, the grammar mask, rewards on hand-built trees, clear errors
for trees that do not parse, and one decoding pass of a tiny model."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from hepchain.core.errors import DataError, UsageError
from hepchain.reco.treelm import vocab
from hepchain.reco.treelm.decode import generate
from hepchain.reco.treelm.evaluate import most_frequent_trees, score, template_prediction
from hepchain.reco.treelm.grammar import GrammarState, TreeError, encode, parse, prompt
from hepchain.reco.treelm.lcag import dress, lcag_matrix, project, topology_from_lcag
from hepchain.reco.treelm.model import build_model
from hepchain.reco.treelm.rewards import (
    closeness_reward,
    decay_reward,
    momentum_reward,
    rewards,
)
from hepchain.reco.treelm.trees import Tree, canonical, signature
from hepchain.reco.treelm.vocab import VOCAB, float_tokens, float_value, pdg_tokens, pdg_value


def _p4(pt: float, eta: float, phi: float, m: float) -> np.ndarray:
    px, py, pz = pt * math.cos(phi), pt * math.sin(phi), pt * math.sinh(eta)
    return np.array([px, py, pz, math.sqrt(px * px + py * py + pz * pz + m * m)])


def _kin(p: np.ndarray) -> list[float]:
    pt = math.hypot(p[0], p[1])
    return [pt, math.asinh(p[2] / pt), math.atan2(p[1], p[0]),
            math.sqrt(max(p[3] ** 2 - p[0] ** 2 - p[1] ** 2 - p[2] ** 2, 0.0))]


def _decay(parent: np.ndarray, m1: float, m2: float, theta: float) -> tuple[np.ndarray, ...]:
    """Two-body decay of the four-momentum ``parent``: products at angle ``theta`` to the
    boost axis in the rest frame (φ = 0 there), boosted back to the lab."""
    m = math.sqrt(parent[3] ** 2 - parent[:3] @ parent[:3])
    p = math.sqrt((m * m - (m1 + m2) ** 2) * (m * m - (m1 - m2) ** 2)) / (2 * m)
    beta = parent[:3] / parent[3]
    b2 = beta @ beta
    gamma = 1 / math.sqrt(1 - b2)
    axis = beta / math.sqrt(b2)
    ortho = np.cross(axis, [0.0, 0.0, 1.0])
    ortho /= np.linalg.norm(ortho)
    out = []
    for mass, sign in ((m1, 1), (m2, -1)):
        q = sign * p * (math.cos(theta) * axis + math.sin(theta) * ortho)
        e = math.sqrt(p * p + mass * mass)
        bq = beta @ q
        out.append(np.array([*(q + ((gamma - 1) * bq / b2 + gamma * e) * beta),
                             gamma * (e + bq)]))
    return tuple(out)


def tau_tree(charged: int = 211, pi0_daughters: tuple[int, int] = (22, 22)) -> Tree:
    """Jet (τ+) → τ+ → π+ π0 ν̄ (the ν̄ is not stored), π0 → γγ; four-momenta conserved, the τ
    at its mass: the ν̄ runs 0.1 off the visible system's η with the energy that needs."""
    pi = _p4(12.0, 0.5, 0.30, 0.1396)
    pi0 = _p4(8.0, 0.51, 0.31, 0.13498)
    g1, g2 = _decay(pi0, 0.0, 0.0, 1.0)
    vis = pi + pi0
    n = _p4(1.0, 0.6, 0.31, 0.0)
    n /= n[3]
    e_nu = (1.77686**2 - (vis[3] ** 2 - vis[:3] @ vis[:3])) / (2 * (vis[3] - vis[:3] @ n[:3]))
    tau = vis + e_nu * n
    kin = [_kin(tau), _kin(tau), _kin(pi), _kin(pi0), _kin(g1), _kin(g2)]
    return Tree([-1, 0, 1, 1, 3, 3], kin, [-15, -15, charged, 111, *pi0_daughters])


def gluon_tree() -> Tree:
    """Jet (g) → π0 → γγ and a primary π+; four-momenta conserved."""
    pi0 = _p4(10.0, -0.2, 1.0, 0.13498)
    g1, g2 = _decay(pi0, 0.0, 0.0, 0.8)
    pi = _p4(9.0, -0.18, 0.97, 0.1396)
    return Tree([-1, 0, 1, 1, 0], [_kin(pi0 + pi), _kin(pi0), _kin(g1), _kin(g2), _kin(pi)],
                [21, 111, 22, 22, 211])


def flattened(tree: Tree) -> Tree:
    """The root and the tree's leaves as its children (the decays removed)."""
    leaves = tree.leaves()
    return Tree([-1] + [0] * len(leaves), tree.kin[[0, *leaves]], tree.pid[[0, *leaves]])


def reco_of(tree: Tree) -> Tree:
    """A clustering tree whose leaves are exactly ``tree``'s leaves (a perfect detector)."""
    return Tree([-1] + [0] * len(tree.leaves()), tree.kin[[0, *tree.leaves()]])


def test_floats_round_trip_within_mantissa_precision() -> None:
    rng = np.random.default_rng(1)
    values = np.concatenate([rng.uniform(-np.pi, np.pi, 300), 10 ** rng.uniform(-3.9, 3.9, 300),
                             [0.123, 9.9996, 1.0, 1000.0, -5e-5, 0.0]])
    for x in values:
        toks = float_tokens("Phi", float(x))
        assert len(toks) == 3 and all(t in VOCAB.tokens for t in toks)
        y = float_value(toks)
        if abs(x) < vocab.ZERO_BELOW:
            assert y == 0.0
        else:  # half a unit in the third significant digit
            assert abs(y - x) <= 0.005 * 10 ** math.floor(math.log10(abs(x))) * (1 + 1e-9)
    assert float_tokens("Phi", 0.123) == ["Phi@Sign_P", "Phi@M_123", "Phi@E_01"]  # the seed's


def test_float_out_of_range_is_a_clear_error() -> None:
    with pytest.raises(DataError, match="outside the tokenised range"):
        float_tokens("Pt", 2e4)
    with pytest.raises(DataError, match="not finite"):
        float_tokens("Pt", float("nan"))


def test_pdg_ids_round_trip_exactly() -> None:
    ids = [1, -5, 11, -13, 15, -16, 21, 22, 111, 211, -211, 130, 310, 311, -321, 323, 421,
           -511, 443, 2112, -2212, 3122, -3222, 4122, 5232, 10313, 20213, 100111, 9000221,
           9010221]
    for pid in ids:
        toks = pdg_tokens(pid)
        assert toks[-1] == "PDG@END" and all(t in VOCAB.tokens for t in toks)
        assert pdg_value(toks) == pid
    assert pdg_tokens(-323) == ["PDG@ANTI", "PDG@FLV_SU", "PDG@J_3", "PDG@END"]  # the seed's
    for bad in (0, 7, 1000020040, 1103):  # no id, 4th generation, nucleus, diquark
        with pytest.raises(DataError, match="PDG numbering scheme"):
            pdg_tokens(bad)


def test_sequence_round_trip_and_canonical_order() -> None:
    truth = tau_tree()
    reco = Tree([-1, 0, 0, 1, 1], [[20, 0.5, 0.3, 1.0], [17, 0.5, 0.3, 0.8],
                                   [3, 0.49, 0.26, 0], [12, 0.5, 0.3, 0.14], [5, 0.52, 0.33, 0]])
    back = parse(encode(reco, truth))
    assert signature(back.truth) == signature(canonical(truth))
    assert np.allclose(back.truth.kin, truth.kin, rtol=6e-3, atol=6e-4)
    assert back.reco is not None and signature(back.reco) == signature(reco)
    shuffled = Tree([-1, 0, 0, 2, 2], reco.kin[[0, 2, 1, 4, 3]])  # same tree, other order
    assert encode(canonical(shuffled), None) == encode(canonical(reco), None)


@pytest.mark.parametrize(("parents", "message"), [
    ([0, 0], "Node 0 must be the root"),
    ([-1, 1], "parent listed before it"),
    ([-1, 0, 5], "parent listed before it"),
    ([], "at least one node"),
])
def test_trees_that_do_not_parse_are_clear_errors(parents: list[int], message: str) -> None:
    with pytest.raises(TreeError, match=message):
        Tree(parents, np.ones((len(parents), 4)))


def test_token_sequences_that_do_not_parse_name_the_token() -> None:
    ids = encode(None, tau_tree())
    with pytest.raises(TreeError, match="expected PDG@END"):
        parse(ids[:5] + ids[6:])  # PDG@END of the root dropped
    with pytest.raises(TreeError, match="end of the sequence"):
        parse(ids[:-1])
    bad_parent = VOCAB.ids(["BOS", "TRUTH", "NODE", *pdg_tokens(15)]
                           + [t for f in vocab.FIELDS for t in float_tokens(f, 1.0)]
                           + ["NODE", "P_3"])
    with pytest.raises(TreeError, match="parent token P_0"):
        parse(bad_parent)


def test_grammar_mask_admits_no_invalid_sequence() -> None:
    """Random logits sampled under the mask always parse; without the mask they never do."""
    gen = torch.Generator().manual_seed(0)
    start = prompt(Tree([-1], [[30.0, 0.1, 0.2, 3.0]]))
    n_masked, n_free = 0, 0
    for _ in range(100):
        state = GrammarState.after(start, max_len=120)
        seq, free = list(start), list(start)
        while not state.done:
            logits = torch.randn(len(VOCAB), generator=gen) * 3
            allowed = torch.from_numpy(state.allowed())
            tok = int(torch.multinomial(torch.softmax(logits.masked_fill(~allowed, -torch.inf),
                                                      0), 1, generator=gen))
            seq.append(tok)
            state.advance(tok)
            free.append(int(torch.multinomial(torch.softmax(logits, 0), 1, generator=gen)))
        assert len(seq) <= 120
        assert parse(seq).truth is not None  # raises if not
        n_masked += 1
        try:
            parse(free[:len(seq)])
            n_free += 1
        except TreeError:
            pass
    assert n_masked == 100 and n_free == 0


def test_tiny_model_decodes_parseable_trees_only_with_the_mask() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = build_model({"width": 16, "depth": 1, "heads": 2, "kv_heads": 1, "ffn": 32}, 96)
    prompts = [prompt(Tree([-1], [[30.0, 0.1, 0.2, 3.0]]))] * 3
    out = generate(model, prompts, 96, constrained=True, greedy=False,
                   generator=torch.Generator().manual_seed(1))
    for p, toks, lp in zip(prompts, out.tokens, out.logp, strict=True):
        assert parse(p + toks).truth is not None
        assert lp.shape == (len(toks),) and torch.all(lp <= 0)


def test_true_tree_beats_its_flattening_on_the_combined_reward() -> None:
    """The flat tree (no decays) used to score 1 on decay and momentum by construction."""
    for true in (tau_tree(), gluon_tree()):
        reco = reco_of(true)
        for hard in (False, True):
            r_true = rewards(true, reco, hard=hard)
            r_flat = rewards(flattened(true), reco, hard=hard)
            assert r_true["decay"] == pytest.approx(1.0)
            assert r_true["momentum"] == pytest.approx(1.0)
            assert r_flat["decay"] < 0.7
            assert sum(r_true.values()) > sum(r_flat.values()) + 0.3


def test_decay_reward_on_hand_built_trees() -> None:
    true = tau_tree()
    reco = reco_of(true)
    assert decay_reward(true, reco) == (1.0, 1.0)  # τ+ → π+ π0 (ν̄), π0 → γγ: allowed
    # flat: π+ is a hadron (passes), the γ are not fragmentation products, the τ is missing
    assert decay_reward(flattened(true), reco) == (pytest.approx(1 / 4), pytest.approx(1 / 4))
    root_only = Tree([-1], true.kin[:1], true.pid[:1])
    assert decay_reward(root_only, reco) == (0.0, 0.0)
    assert rewards(root_only, reco) == {"decay": 0.0, "momentum": pytest.approx(np.exp(-5)),
                                        "closeness": 0.0}
    # π0 → γ π+ (given the π+ mass) is no π0 channel: soft 1/2 for that node, hard 0
    bad = Tree(true.parent, np.where(np.arange(6)[:, None] == 5, [*true.kin[5, :3], 0.1396],
                                     true.kin), [-15, -15, 211, 111, 22, 211])
    soft, hard = decay_reward(bad, reco)
    assert soft == pytest.approx(5.5 / 6) and hard == pytest.approx(5 / 6)
    # a τ+ → p π0 decay violates baryon number (and a proton needs the proton mass)
    soft, hard = decay_reward(tau_tree(charged=2212), reco)
    assert soft == pytest.approx((0.5 + 0 + 4) / 6) and hard == pytest.approx(4 / 6)
    # the tree explains three of the jet's four constituents: coverage 3/4
    extra = Tree([-1, 0, 0, 0, 0], np.vstack([reco.kin, [[4.0, -1.0, 2.0, 0.0]]]))
    assert decay_reward(true, extra)[0] == pytest.approx(3 / 4)
    # an undecayed π0 leaf of 5 GeV: its photons can both be below pt_min = 3 GeV, not below 0
    pi0_leaf = Tree([-1, 0, 1, 1], true.kin[:4], true.pid[:4])
    assert decay_reward(pi0_leaf, reco_of(pi0_leaf), pt_min=0.0)[1] == pytest.approx(3 / 4)
    assert decay_reward(pi0_leaf, reco_of(pi0_leaf), pt_min=3.0)[1] == 1.0


def test_momentum_reward_on_hand_built_trees() -> None:
    true = tau_tree()
    reco = reco_of(true)
    # the τ decay misses its ν̄ (the missing four-momentum is light-like: physical), π0 → γγ
    # is a complete channel and balances, the visible part equals the jet's
    assert momentum_reward(true, reco) == (pytest.approx(1.0, abs=1e-6), 1.0)
    kin = true.kin.copy()
    kin[2, 0] *= 3  # the π+ carries more energy than the τ: the missing part is unphysical
    kicked = Tree(true.parent, kin, true.pid)
    soft, hard = momentum_reward(kicked, reco_of(kicked))
    assert hard == pytest.approx(2 / 3) and soft < 0.7
    kin = true.kin.copy()
    kin[4, 0] *= 1.5  # one photon gains 50 %: π0 → γγ (complete) no longer balances
    kicked = Tree(true.parent, kin, true.pid)
    soft, hard = momentum_reward(kicked, reco_of(kicked))
    assert hard == pytest.approx(2 / 3) and soft < 0.8
    # a flat tree is only the jet check; a jet measured 40 % harder than the tree's leaves
    # loses it
    harder = Tree(reco.parent, reco.kin * np.array([1.4, 1, 1, 1]))
    soft, hard = momentum_reward(flattened(true), harder)
    assert hard == 0.0 and soft == pytest.approx(np.exp(-(0.4 / 1.4) / 0.2), rel=1e-6)


def test_closeness_reward_on_hand_built_trees() -> None:
    truth = tau_tree()
    leaves = truth.kin[truth.leaves()]
    reco = Tree([-1, 0, 0, 1], [[20, 0.5, 0.3, 1], [17, 0.5, 0.3, 0.5], *leaves[[0]],
                                *leaves[[1]]])  # two of the three truth leaves seen
    soft, hard = closeness_reward(truth, reco)
    assert hard == pytest.approx(2 / 3) and soft == pytest.approx(2 / 3, abs=1e-6)
    far = Tree(reco.parent, reco.kin + np.array([0, 0.3, 0, 0]))
    assert closeness_reward(truth, far)[1] == 0.0
    # one decoded leaf for a jet of three constituents explains a third of it
    one = Tree([-1, 0], truth.kin[[0, 2]], truth.pid[[0, 2]])
    assert closeness_reward(one, reco_of(truth)) == (pytest.approx(1 / 3), pytest.approx(1 / 3))


def _shape(parent: np.ndarray) -> str:
    return signature(Tree(parent, np.zeros((len(parent), 4))), labelled=False)


def test_lcag_matrix_of_hand_built_trees_and_decoding_back() -> None:
    true = tau_tree()  # jet → τ+ (unary) → π+, π0 → γγ
    m = lcag_matrix(true.parent, true.leaves())
    assert m.tolist() == [[0, 2, 2], [2, 0, 1], [2, 1, 0]]  # the unary τ counts as nothing
    parent, leaf_node = topology_from_lcag(m)
    assert _shape(parent) == _shape(np.array([-1, 0, 0, 2, 2]))  # the τ contracted
    assert np.array_equal(lcag_matrix(parent, leaf_node), m)
    # jet → (A → (B → l0 l1) l2) l3: generations B = 1, A = 2, root = 3
    deep = np.array([-1, 0, 1, 2, 2, 1, 0])
    m = lcag_matrix(deep, np.array([3, 4, 5, 6]))
    assert m[0, 1] == 1 and m[0, 2] == m[1, 2] == 2 and m[3, :3].tolist() == [3, 3, 3]
    parent, leaf_node = topology_from_lcag(m)
    assert _shape(parent) == _shape(deep) and np.array_equal(lcag_matrix(parent, leaf_node), m)
    # random trees without unary nodes come back from their matrices
    rng = np.random.default_rng(3)
    for _ in range(30):
        tops = list(range(int(rng.integers(2, 9))))
        children: list[list[int]] = [[] for _ in tops]
        while len(tops) > 1:
            k = int(rng.integers(2, min(4, len(tops)) + 1))
            picked = sorted(rng.choice(len(tops), size=k, replace=False), reverse=True)
            children.append([tops.pop(i) for i in picked])
            tops.append(len(children) - 1)
        order, stack = [], [tops[0]]
        while stack:
            order.append(stack.pop())
            stack.extend(children[order[-1]])
        parent = np.full(len(order), -1)
        for node in order:
            for c in children[node]:
                parent[order.index(c)] = order.index(node)
        leaves = np.array([order.index(i) for i in range(len(children)) if not children[i]])
        m = lcag_matrix(parent, leaves)
        back, back_leaves = topology_from_lcag(m)
        assert _shape(back) == _shape(parent)
        assert np.array_equal(lcag_matrix(back, back_leaves), m)
    # an invalid (non-ultrametric) prediction still decodes into a tree over every leaf
    parent, leaf_node = topology_from_lcag(np.array([[0, 1, 2], [1, 0, 1], [2, 1, 0]]))
    assert sorted(leaf_node.tolist()) == sorted(Tree(parent, np.zeros((len(parent), 4)))
                                                .leaves().tolist())


def test_lcag_target_and_dressing_give_back_the_true_tree() -> None:
    true = tau_tree()
    reco = reco_of(true)
    tree, node_of = project(true, reco)  # a perfect detector: the projection is the truth
    assert signature(tree) == signature(true)
    parent, leaf_node = topology_from_lcag(lcag_matrix(tree.parent, node_of))
    labels = [(111,)] * len(parent)  # the π0 node, the only internal one below the root
    labels[0] = (-15, -15)
    for leaf, node in enumerate(leaf_node):
        labels[int(node)] = (int(tree.pid[node_of[leaf]]),)
    dressed = dress(parent, leaf_node, labels, reco)
    assert signature(dressed) == signature(true)
    assert np.allclose(dressed.kin[dressed.leaves()], true.kin[true.leaves()])
    # one reco leaf far from every truth leaf hangs from the root (as a γ: it is massless)
    extra = Tree([-1, 0, 0, 0, 0], np.vstack([reco.kin, [[4.0, -1.0, 2.0, 0.0]]]))
    tree, node_of = project(true, extra)
    assert tree.parent[node_of[3]] == 0 and tree.pid[node_of[3]] == 22


def test_metrics_and_template_baseline() -> None:
    a, b = tau_tree(), tau_tree(charged=-211)
    s = score([a, a, a], [a, b, None])
    assert list(s.valid) == [True, True, False]
    assert list(s.exact) == [True, False, False] and list(s.topology) == [True, True, False]
    assert s.pdg_correct[1] == len(a) - 1
    templates = most_frequent_trees([a, a, b], np.array([0, 0, 0]))
    assert signature(templates[0]) == signature(a)
    reco = Tree([-1, 0, 0], [[21, 0.5, 0.3, 1], [12, 0.5, 0.3, 0.14], [8, 0.5, 0.3, 0]])
    pred = template_prediction(templates[0], reco)
    assert signature(pred) == signature(a) and pred.kin[0, 0] == 21


def test_grammar_budget_forces_the_end() -> None:
    """A new node is offered only while it and EOE still fit into max_len."""
    start = prompt(Tree([-1], [[30.0, 0.1, 0.2, 3.0]]))
    for max_len, room in ((45, False), (100, True)):
        state = GrammarState.after(start, max_len)
        state.advance(VOCAB.id("NODE"))
        while state.state[0] != "AFTER_NODE":  # finish the root with the first allowed ids
            state.advance(int(np.flatnonzero(state.allowed())[0]))
        assert state.allowed()[VOCAB.id("NODE")] == room
        assert state.allowed()[VOCAB.id("EOE")]


def test_translate_decodes_a_users_jets(tmp_path) -> None:
    from hepchain.core.cache import cached_dataset
    from hepchain.reco.treelm.study import save_model
    from hepchain.reco.treelm.translate import translate

    ds = cached_dataset("Z_tautau", n_events=20, seed=5, options={"jet_trees": 1},
                        root=tmp_path / "data", progress=False)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    spec = {"width": 16, "depth": 1, "heads": 2, "kv_heads": 1, "ffn": 32}
    config = {"model": spec, "data": {"max_len": 200, "pt_min": 3.0}}
    save_model(build_model(spec, 200), config, tmp_path / "m.pt")
    out = tmp_path / "decoded.jsonl"
    n = translate(tmp_path / "m.pt", ds.path, out)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert n == len(rows) > 0
    decoded = [r for r in rows if "pid" in r]
    assert decoded and all(r["parent"][0] == -1 and len(r["pid"]) == len(r["pt"])
                           for r in decoded)
    with pytest.raises(UsageError, match="is not a file"):
        translate(tmp_path / "missing.pt", ds.path, out)
    with pytest.raises(UsageError, match="not a dataset directory"):
        translate(tmp_path / "m.pt", tmp_path, out)
