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
from hepchain.reco.treelm.model import build_model
from hepchain.reco.treelm.rewards import closeness_reward, decay_reward, momentum_reward
from hepchain.reco.treelm.trees import Tree, canonical, signature
from hepchain.reco.treelm.vocab import VOCAB, float_tokens, float_value, pdg_tokens, pdg_value


def _p4(pt: float, eta: float, phi: float, m: float) -> np.ndarray:
    px, py, pz = pt * math.cos(phi), pt * math.sin(phi), pt * math.sinh(eta)
    return np.array([px, py, pz, math.sqrt(px * px + py * py + pz * pz + m * m)])


def _kin(p: np.ndarray) -> list[float]:
    pt = math.hypot(p[0], p[1])
    return [pt, math.asinh(p[2] / pt), math.atan2(p[1], p[0]),
            math.sqrt(max(p[3] ** 2 - p[0] ** 2 - p[1] ** 2 - p[2] ** 2, 0.0))]


def tau_tree(charged: int = 211, pi0_daughters: tuple[int, int] = (22, 22)) -> Tree:
    """Jet (τ+) → τ+ → π+ π0 (the ν̄ is invisible), π0 → γγ; four-momenta conserved."""
    pi = _p4(12.0, 0.5, 0.30, 0.1396)
    g1, g2 = _p4(5.0, 0.52, 0.33, 0.0), _p4(3.0, 0.49, 0.26, 0.0)
    pi0 = g1 + g2
    tau = pi + pi0
    kin = [_kin(tau), _kin(tau), _kin(pi), _kin(pi0), _kin(g1), _kin(g2)]
    return Tree([-1, 0, 1, 1, 3, 3], kin, [-15, -15, charged, 111, *pi0_daughters])


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


def test_decay_reward_on_hand_built_trees() -> None:
    assert decay_reward(tau_tree()) == (1.0, 1.0)  # τ+ → π+ π0 (ν̄), π0 → γγ: allowed
    soft, hard = decay_reward(tau_tree(pi0_daughters=(22, 211)))  # π0 → γ π+: not allowed
    assert hard == pytest.approx(1 / 2) and soft == pytest.approx((1 + 0.5) / 2)
    soft, hard = decay_reward(tau_tree(charged=2212))  # τ+ → p π0 violates baryon number
    assert hard == pytest.approx(1 / 2) and soft == pytest.approx((0.5 + 1) / 2)


def test_momentum_reward_on_hand_built_trees() -> None:
    good = tau_tree()
    assert momentum_reward(good) == (pytest.approx(1.0, abs=1e-6), 1.0)
    kin = good.kin.copy()
    kin[2, 0] *= 1.5  # the π+ gains 50 % pT: the τ decay no longer balances, π0 → γγ does
    soft, hard = momentum_reward(Tree(good.parent, kin, good.pid))
    assert hard == pytest.approx(1 / 2) and soft < 0.8


def test_closeness_reward_on_hand_built_trees() -> None:
    truth = tau_tree()
    leaves = truth.kin[truth.leaves()]
    reco = Tree([-1, 0, 0, 1], [[20, 0.5, 0.3, 1], [17, 0.5, 0.3, 0.5], *leaves[[0]],
                                *leaves[[1]]])  # two of the three truth leaves seen
    soft, hard = closeness_reward(truth, reco)
    assert hard == pytest.approx(2 / 3) and soft == pytest.approx(2 / 3, abs=1e-6)
    far = Tree(reco.parent, reco.kin + np.array([0, 0.3, 0, 0]))
    assert closeness_reward(truth, far)[1] == 0.0


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
