"""decayaware: the hop-count matrix (seed 002's example on a hand-built tree), truth matching
and masking on a hand-built ttH event, clear errors for events with too few objects, the
parameterised b-tagger, GN1 scores as b-tags (a tiny GN1 on hand-made jets in the producer's
schema; a model file that does not fit), the greedy assignment, and that the network learns."""

from __future__ import annotations

from typing import Any

import awkward as ak
import numpy as np
import pytest
import torch

from hepchain.analysis.decayaware import evaluate
from hepchain.analysis.decayaware.btagging import (
    GN1WorkingPoint,
    load_gn1,
    tag_efficiencies,
    tag_jets,
)
from hepchain.analysis.decayaware.data import select
from hepchain.analysis.decayaware.hops import MASKED, hop_matrix
from hepchain.analysis.decayaware.objects import (
    B_H,
    B_HAD,
    B_LEP,
    FEATURES,
    OTHER,
    Q_W,
    EventObjects,
    build_objects,
)
from hepchain.core.errors import DataError, UsageError
from hepchain.core.standardise import Standardiser
from hepchain.reco.btag.evaluate import discriminant, working_point
from hepchain.reco.btag.export import save_tagger
from hepchain.reco.btag.labels import jet_labels
from hepchain.reco.btag.models import GN1Tagger
from hepchain.reco.btag.preprocessing import Preprocessor
from hepchain.reco.btag.schema import JET_INPUTS, TRACK_INPUTS
from hepchain.reco.btag.table import build_table
from test_btag import toy_jets

#: seed 002 (002_2bb69c5fd58b88a9.txt, "Decay-aware neural network"): rows/cols l, ν, b1, b2, q1, q2
SEED_MATRIX = np.array([[0, 1, 3, 3, 4, 4],
                        [1, 0, 3, 3, 4, 4],
                        [3, 3, 0, 1, 4, 4],
                        [3, 3, 1, 0, 4, 4],
                        [4, 4, 4, 4, 0, 1],
                        [4, 4, 4, 4, 1, 0]])


def test_seed_matrix_on_hand_built_tree():
    # 0 root -> (1 X, 2 W2); X -> (3 W1, 4 H); W1 -> (5 l, 6 nu); H -> (7 b1, 8 b2); W2 -> (9 q1, 10 q2)
    parents = [-1, 0, 0, 1, 1, 3, 3, 4, 4, 2, 2]
    np.testing.assert_array_equal(hop_matrix(parents, [5, 6, 7, 8, 9, 10]), SEED_MATRIX)


def test_unmatched_objects_are_masked_and_bad_trees_refused():
    hops = hop_matrix([-1, 0, 0], [1, -1, 2])
    assert (hops[1] == MASKED).all() and (hops[:, 1] == MASKED).all()
    assert hops[0, 2] == 1 and hops[0, 0] == 0
    with pytest.raises(DataError, match="cycle"):
        hop_matrix([1, 0], [0, 1])
    with pytest.raises(DataError, match="different trees"):
        hop_matrix([-1, -1], [0, 1])


# hand-built ttH(bb), W- -> mu- nu~: hard partons (pid, parent) and their (eta, phi)
PARTONS = [(25, -1), (6, -1), (-6, -1), (5, 0), (-5, 0), (24, 1), (5, 1), (-24, 2), (-5, 2),
           (13, 7), (-14, 7), (2, 5), (-1, 5)]
LEAF_POS = {3: (-2.0, 0.0), 4: (-1.0, 1.0), 6: (0.0, 2.0), 8: (1.0, -2.0), 9: (2.0, 3.0),
            11: (-2.0, -2.5), 12: (0.5, -1.0)}


def _event(n_jets_extra: bool = True, n_leptons: int = 1) -> dict:
    partons = [{"pid": p, "parent": m, "pt": 50.0, "eta": LEAF_POS.get(k, (0.0, 0.0))[0],
                "phi": LEAF_POS.get(k, (0.0, 0.0))[1], "mass": 0.0}
               for k, (p, m) in enumerate(PARTONS)]
    jets = [{"pt": 100.0 - k, "eta": LEAF_POS[i][0] + 0.05, "phi": LEAF_POS[i][1] - 0.05,
             "mass": 5.0, "flavour": 5 if abs(PARTONS[i][0]) == 5 else 0}
            for k, i in enumerate((3, 4, 6, 8, 11, 12))]
    if n_jets_extra:  # a light jet and a g -> b bbar pair far from every parton
        jets += [{"pt": 30.0, "eta": 2.4, "phi": -0.5, "mass": 5.0, "flavour": 0},
                 {"pt": 25.0, "eta": -0.5, "phi": -3.0, "mass": 5.0, "flavour": 5},
                 {"pt": 22.0, "eta": 1.5, "phi": 1.0, "mass": 5.0, "flavour": 5}]
    lep = {"pt": 40.0, "eta": 2.02, "phi": 3.01, "charge": -1, "pdgid": 13}
    return {"jets": jets, "leptons": [lep] * n_leptons, "met": 35.0, "met_phi": 0.3,
            "partons": partons}


def _objects(events: list[dict], max_jets: int = 9, min_jets: int = 5) -> EventObjects:
    arr = ak.Array(events)
    return build_objects(arr, ak.values_astype(arr.jets.flavour == 5, np.int64), max_jets,
                         min_jets)


def test_truth_matching_roles_and_masking_on_a_tth_event():
    obj = _objects([_event()])
    # objects: l, nu, jets from b_H1, b_H2, b_had, b_lep, q1, q2, light extra, b extra, b extra
    np.testing.assert_array_equal(obj.roles[0], [-1, -1, B_H, B_H, B_HAD, B_LEP, Q_W, Q_W,
                                                 OTHER, OTHER, OTHER])
    h = obj.hops[0]
    lep, nu, bh1, bh2, bhad, blep, q1, q2, light, gb1, gb2 = range(11)
    assert h[lep, nu] == 1 and h[bh1, bh2] == 1 and h[q1, q2] == 1 and h[gb1, gb2] == 1
    assert h[lep, blep] == 2 and h[q1, bhad] == 2           # l-W-t-b, q-W-t-b
    assert h[lep, bhad] == 4 and h[lep, bh1] == 4 and h[lep, q1] == 5 and h[blep, bhad] == 3
    assert h[gb1, lep] == 4                                 # b-g-(root)-t-W-l
    assert (h[light] == MASKED).all() and (h[:, light] == MASKED).all()
    tag, db = FEATURES.index("b-tag"), FEATURES.index("D_b")
    assert obj.mask[0].all() and obj.x[0, light, tag] == 0 and obj.x[0, gb1, tag] == 1
    assert (obj.x[0, :, db] == 0).all()  # no tagger score given
    arr = ak.Array([_event()])
    score = ak.Array([[float(k) for k in range(len(arr.jets[0]))]])
    with_score = build_objects(arr, ak.values_astype(arr.jets.flavour == 5, np.int64), 9, 5,
                               score)
    assert with_score.x[0, 2:, db].tolist() == ak.to_list(score[0])
    assert with_score.x[0, :2, db].tolist() == [0.0, 0.0]  # lepton and neutrino
    np.testing.assert_array_equal(np.delete(with_score.x, db, -1), np.delete(obj.x, db, -1))


def test_bdt_gets_the_continuous_b_tag_variables_with_a_score():
    from hepchain.analysis.decayaware.highlevel import NAMES, SCORE_NAMES, high_level

    arr = ak.Array([_event(), _event()])
    btag = ak.values_astype(arr.jets.flavour == 5, np.int64)
    n = ak.num(arr.jets).tolist()
    score = ak.Array([[float(k) for k in range(n[0])], [-float(k) for k in range(n[1])]])
    plain, scored = high_level(arr, btag), high_level(arr, btag, score)
    assert plain.shape == (2, len(NAMES)) and scored.shape == (2, len(NAMES) + len(SCORE_NAMES))
    np.testing.assert_array_equal(scored[:, :len(NAMES)], plain)
    top = n[0] - 1
    assert scored[0, len(NAMES):].tolist() == [top - 2, top - 3, 4 * top - 6]
    assert scored[1, len(NAMES):].tolist() == [-2.0, -3.0, -6.0]


def test_padding_is_masked():
    obj = _objects([_event(n_jets_extra=False)], max_jets=8)
    assert obj.mask[0].tolist() == [True] * 8 + [False] * 2
    assert (obj.hops[0, 8:] == MASKED).all() and (obj.roles[0, 8:] == -1).all()


def test_too_few_objects_is_a_clear_error():
    few_jets = _event(n_jets_extra=False)
    few_jets["jets"] = few_jets["jets"][:4]
    with pytest.raises(DataError, match=r"Event 1 has 1 leptons and 4 jets.*at least 5 jets"):
        _objects([_event(), few_jets])
    with pytest.raises(DataError, match="Event 0 has 0 leptons"):
        _objects([_event(n_leptons=0)])


def test_parameterised_tagger_rates():
    flavour = ak.Array([[5, 4, 0, 15]] * 20000)
    eff = {"b": 0.7, "c": 0.1, "tau": 0.1, "light": 0.0}
    tags = ak.to_numpy(tag_jets(flavour, eff, np.random.default_rng(0)))
    for col, p in enumerate((0.7, 0.1, 0.0, 0.1)):
        assert abs(tags[:, col].mean() - p) < 4 * np.sqrt(p * (1 - p) / 20000) + 1e-12
    with pytest.raises(UsageError, match="light"):
        tag_jets(flavour, {"b": 0.7, "c": 0.1, "tau": 0.1}, np.random.default_rng(0))


def _tiny_gn1(n_track_features: int = len(TRACK_INPUTS)) -> GN1Tagger:
    torch.manual_seed(0)
    return GN1Tagger(n_track_features, len(JET_INPUTS), 3, dim=8, heads=2, layers=1,
                     tasks=("jet",)).eval()


def test_gn1_scores_are_the_selections_b_tags():
    torch.set_num_threads(1)
    jets = toy_jets(120, seed=3)
    table = build_table(jets, max_tracks=12)
    prep, model = Preprocessor.fit(table), _tiny_gn1()
    events = ak.unflatten(jets, [6] * 20)
    wp = GN1WorkingPoint(model, prep, ["b", "c", "light"], 0.05, 0.0, 0.5, 12, "reco", "test")
    scores = wp.scores(events)
    assert ak.num(scores).tolist() == [6] * 20
    tracks, jet = prep.transform(table)
    with torch.no_grad():
        probs = torch.softmax(model(torch.from_numpy(tracks), torch.from_numpy(table.mask),
                                    torch.from_numpy(jet))["jet"], -1).numpy()
    flat = ak.to_numpy(ak.flatten(scores))
    np.testing.assert_allclose(flat, discriminant(probs, wp.classes, 0.05), rtol=1e-5,
                               atol=1e-6)
    # the working point on known scores keeps its fraction of the b jets
    label = jet_labels(table.flavour, wp.classes)
    wp.threshold = working_point(label, flat, 0, 2, 0.5)
    tags = wp.tag_of(wp.scores(events))
    bits = ak.to_numpy(ak.flatten(tags))
    np.testing.assert_array_equal(bits, flat >= wp.threshold)
    n_b = int((label == 0).sum())
    assert abs(bits[label == 0].sum() - 0.5 * n_b) <= 1
    # the selection counts these bits
    ev = ak.Array({"leptons": [[{"pt": 30.0}]] * 20, "jets": events})
    n_tag = ak.to_numpy(ak.sum(tags, axis=1))
    sel = {"min_jets": 5, "min_btags": 2}
    np.testing.assert_array_equal(select(ev, tags, sel), n_tag >= 2)
    assert 0 < select(ev, tags, sel).sum() < 20
    wp.threshold = float(flat.max()) + 1.0
    assert not select(ev, wp.tag_of(wp.scores(events)), sel).any()


def test_gn1_file_that_does_not_fit_is_a_clear_error(tmp_path):
    rng = np.random.default_rng(0)
    settings = {"dim": 8, "heads": 2, "layers": 1}

    def prep(n: int) -> Preprocessor:
        return Preprocessor(list(TRACK_INPUTS[:n]), list(JET_INPUTS),
                            Standardiser.fit(rng.random((50, n))), Standardiser.fit(
                                rng.random((50, 2))), 12)

    good = save_tagger(_tiny_gn1(), settings, ["b", "c", "light"], prep(len(TRACK_INPUTS)),
                       tmp_path / "good.pt")
    assert load_gn1(good)[1] == ["b", "c", "light"]
    short = save_tagger(_tiny_gn1(len(TRACK_INPUTS) - 1), settings, ["b", "c", "light"],
                        prep(len(TRACK_INPUTS) - 1), tmp_path / "short.pt")
    with pytest.raises(DataError, match=f"trained on {len(TRACK_INPUTS) - 1} track features"):
        load_gn1(short)
    wrong = save_tagger(_tiny_gn1(), {**settings, "dim": 16}, ["b", "c", "light"],
                        prep(len(TRACK_INPUTS)), tmp_path / "wrong.pt")
    with pytest.raises(DataError, match="not a GN1 tagger file"):
        load_gn1(wrong)


def test_tag_efficiencies_per_flavour_with_binomial_errors():
    eff = tag_efficiencies(ak.Array([[5, 5, 4], [0, 0, 5]]), ak.Array([[1, 0, 1], [0, 1, 1]]))
    assert set(eff) == {"b", "c", "light"}
    assert eff["b"][0] == pytest.approx(2 / 3) and eff["b"][2] == 3
    assert eff["b"][1] == pytest.approx(np.sqrt(2 / 9 / 3))
    assert eff["light"][:2] == (0.5, pytest.approx(np.sqrt(0.25 / 2)))
    assert eff["c"][:2] == (1.0, 0.0)


def test_greedy_assignment_fills_each_role_once():
    probs = np.full((7, 5), 0.01)
    truth = [B_H, B_HAD, Q_W, B_H, B_LEP, Q_W, OTHER]
    for jet, role in enumerate(truth):
        probs[jet, role] = 0.9
    probs[6, B_H] = 0.95  # an extra jet that looks most like a Higgs b: it takes one slot
    out = evaluate.assign(probs)
    assert sorted(out.tolist()) == sorted([B_H, B_H, B_HAD, B_LEP, Q_W, Q_W, OTHER])
    assert out[6] == B_H


def test_ttbb_prefilter_vetoes_before_hadronisation():
    from hepchain.collider.prefilter import MIN_B, PT_MIN, b_quark_veto
    from hepchain.collider.produce import shard_settings
    from hepchain.collider.pythia import generate, make_pythia

    assert b_quark_veto({"prefilter": 0}) is None
    gen = make_pythia(shard_settings("ttbb", {"prefilter": "1"})["pythia"], 3,
                      b_quark_veto({"prefilter": 1}))
    hard = generate(gen, 3)
    final = hard.status > 0
    partons = (np.abs(hard.pid) <= 5) | (hard.pid == 21)
    assert not (final & partons).any()                     # accepted events are hadronised
    # the partons that entered hadronisation carry |status| 71-79: >= 4 of them are b quarks
    strings = (np.abs(hard.status) >= 71) & (np.abs(hard.status) <= 79)
    b_quarks = strings & (np.abs(hard.pid) == 5) & (np.hypot(hard.px, hard.py) > PT_MIN)
    assert np.bincount(hard.event[b_quarks], minlength=3).min() >= MIN_B
    with pytest.raises(UsageError, match="prefilter"):
        shard_settings("ttbb", {"prefilter": "2"})


def _parton_record(b_quarks: list[tuple[int, int, float]]) -> Any:
    """A hand-built Pythia event: a gluon, then (id, status, pT [GeV]) b-flavour entries."""
    import pythia8mc

    event = pythia8mc.Event()
    event.append(21, 23, 101, 102, 0.0, 40.0, 10.0, 41.23, 0.0)
    for pid, status, pt in b_quarks:
        event.append(pid, status, 0, 0, pt, 0.0, 10.0, float(np.hypot(pt, 10.0)), 0.0)
    return event


def test_ttbb_prefilter_counts_final_b_quarks_above_threshold():
    from hepchain.collider.prefilter import MIN_B, PT_MIN, passes

    hi, lo = PT_MIN + 1.0, PT_MIN - 0.5
    four = [(5, 51, hi), (-5, 51, hi), (5, 62, hi), (-5, 62, hi)]
    assert passes(_parton_record(four))
    assert not passes(_parton_record(four[:MIN_B - 1]))
    assert not passes(_parton_record([*four[:3], (-5, 51, lo)]))      # soft 4th b quark
    assert not passes(_parton_record([*four[:3], (-5, -51, hi)]))     # not final (branched)
    assert not passes(_parton_record([*four[:3], (4, 51, hi)]))       # a c quark
    assert passes(_parton_record([*four[:3], (-5, -51, hi), (5, 71, hi)]))


def test_ttbb_prefilter_keeps_accepted_events_unchanged():
    """For the same random-number state, an event the veto accepts is the unfiltered event
    (and so is hadronising a parton-level event later with ``forceHadronLevel``); after a
    veto the stream differs (the rejected event was not hadronised), so a run with a seed
    cannot reproduce the unfiltered run's later events."""
    from hepchain.collider.prefilter import b_quark_veto, passes
    from hepchain.collider.produce import shard_settings
    from hepchain.collider.pythia import make_pythia

    settings = shard_settings("ttbb", {})["pythia"]
    partons = make_pythia([*settings, "HadronLevel:all = off"], 1)
    states = {}                                      # random seed -> first event passes?
    for s in range(1, 200):
        partons.rndm.init(s)
        partons.next()
        states.setdefault(passes(partons.event), s)
        if len(states) == 2:
            break
    full = make_pythia(settings, 1)
    vetoed = make_pythia(settings, 1, b_quark_veto({"prefilter": 1}))

    def record(pythia: Any, s: int) -> list[tuple[int, float, float]]:
        pythia.rndm.init(s)
        assert pythia.next()
        return [(q.id(), q.px(), q.pz()) for q in pythia.event.particles()]

    accepted, rejected = states[True], states[False]
    assert record(vetoed, accepted) == record(full, accepted)
    assert record(vetoed, rejected) != record(full, rejected)
    partons.rndm.init(accepted)
    partons.next()
    assert partons.forceHadronLevel(False)
    assert [(q.id(), q.px(), q.pz()) for q in partons.event.particles()] == record(full, accepted)


def test_network_with_both_heads_learns_a_separable_toy():
    from hepchain.analysis.decayaware.training import fit_network
    from hepchain.core.metrics import roc_auc

    rng = np.random.default_rng(1)
    n, t = 240, 6
    y = np.arange(n) % 2
    x = rng.normal(size=(n, t, len(FEATURES))).astype(np.float32)
    x[:, :, 0] += 1.5 * y[:, None]                         # signal objects are harder
    mask = np.ones((n, t), bool)
    mask[:, -1] = False
    hops = np.where(mask[:, :, None] & mask[:, None, :], 1 + y[:, None, None], MASKED)
    roles = np.where(mask, y[:, None] * B_H, -1)
    obj = EventObjects(x, mask, hops, roles)
    config = {"model": {"dim": 16, "heads": 2, "layers": 1, "n_hops": 4},
              "train": {"epochs": 8, "batch_size": 32, "lr": 0.01, "threads": 1,
                        "progress": False}}
    idx = np.arange(n)
    fitted = fit_network(obj, y, idx[:160], idx[160:200], idx[200:], config, 1.0, 1.0, 0)
    assert roc_auc(y[200:], fitted.scores) > 0.9
    acc, _, _ = evaluate.hop_accuracy(fitted.hops, hops[200:], 4)
    assert acc > 0.9                                        # the hop head learned 1 vs 2
