"""Tau ID: candidate building and truth, permutation invariance of the set/graph models, clear
errors for missing inputs and empty samples, and the seeding on generated Z→ττ events."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import torch

from hepchain.core.errors import DataError
from hepchain.reco.tauid.candidates import OBJECT_FEATURES, build_candidates
from hepchain.reco.tauid.data import require_both_classes
from hepchain.reco.tauid.features import HIGH_LEVEL, high_level_features
from hepchain.reco.tauid.models import MODELS, build_model
from hepchain.reco.tauid.truth import DECAY_MODES, tau_of_tree

SIZES = {"hl_mlp": {"hidden": [8]}, "padded_mlp": {"hidden": [8]},
         "lstm": {"hidden": 8, "head": [8]},
         "deepsets": {"phi": [8], "latent": 8, "rho": [8]},
         "gat": {"dim": 8, "heads": 2, "layers": 2, "head": [8]},
         "transformer": {"dim": 8, "heads": 2, "layers": 1, "head": [8]}}


def obj(pt: float, deta: float, dphi: float, charge: int, d0: float = 0.01) -> dict:
    """A particle-flow object near a jet at η = 0, φ = 0 (GeV, mm)."""
    e = pt * np.cosh(deta)
    return {"px": pt * np.cos(dphi), "py": pt * np.sin(dphi), "pz": pt * np.sinh(deta), "e": e,
            "charge": charge, "d0": d0 if charge else 0.0, "d0err": 0.02 if charge else 0.0,
            "dz": 0.05 if charge else 0.0, "dzerr": 0.1 if charge else 0.0,
            "deta": deta, "dphi": dphi}


def node(pid: int, pt: float, parent: int, phi: float = 0.0) -> dict:
    return {"pid": pid, "pt": pt, "eta": 0.0, "phi": phi, "mass": 0.0, "parent": parent}


def event(objects: list[dict], tree: list[dict]) -> dict:
    """One event with one R = 0.4 jet of ``objects`` at η = φ = 0 whose truth tree is ``tree``."""
    pt = float(np.hypot(sum(o["px"] for o in objects), sum(o["py"] for o in objects)))
    return {"fatjets": [{"pt": pt, "eta": 0.0, "phi": 0.0, "constituents": objects}],
            "jets": [{"pt": pt, "eta": 0.0, "phi": 0.0, "truth_tree": tree}], "met": 1.0}


THREE_PRONG = event([obj(12.0, 0.02, 0.01, 1), obj(9.0, -0.05, 0.03, -1),
                     obj(6.0, 0.04, -0.06, 1), obj(3.0, 0.1, 0.0, 0), obj(2.0, 0.3, 0.1, 1)],
                    [node(15, 30.0, -1), node(15, 40.0, 0), node(211, 12.0, 1),
                     node(-211, 9.0, 1), node(211, 6.0, 1), node(16, 0.0, 1)])
ONE_PRONG_PI0 = event([obj(15.0, 0.01, 0.0, -1), obj(5.0, 0.05, 0.05, 0),
                       obj(4.0, -0.05, 0.02, 0), obj(1.5, 0.25, 0.0, 1)],
                      [node(15, 25.0, -1), node(-15, 30.0, 0), node(-211, 15.0, 1),
                       node(111, 9.0, 1), node(22, 5.0, 3), node(22, 4.0, 3)])
TWO_CORE_TRACKS = event([obj(12.0, 0.02, 0.01, 1), obj(9.0, -0.05, 0.03, -1)],
                        [node(0, 21.0, -1)])


def test_three_prong_tau_yields_three_core_tracks_and_its_truth():
    c = build_candidates(ak.Array([THREE_PRONG, ONE_PRONG_PI0, TWO_CORE_TRACKS]), 10.0, 2.3, 8)
    assert c.n_core.tolist() == [3, 1]  # the 2-track jet seeds no candidate
    assert c.is_tau.tolist() == [True, True]
    assert [DECAY_MODES[m] for m in c.mode] == ["3p0n", "1p1n"]
    assert c.vis_pt[0] == pytest.approx(27.0)  # the neutrino is not visible
    assert c.mask.sum(1).tolist() == [5, 4]
    core = c.objects[..., OBJECT_FEATURES.index("is_core")]
    assert core[0].tolist()[:5] == [1, 1, 1, 0, 0]  # the track at ΔR = 0.32 is not core
    high = high_level_features(c)
    assert high[:, HIGH_LEVEL.index("n_isolation_tracks")].tolist() == [1, 1]


def test_truth_ignores_leptonic_taus_and_kaon_daughters():
    leptonic = tau_of_tree(np.array([15, 15, 11, 12, 16]), np.array([-1, 0, 1, 1, 1]),
                           np.ones(5), np.zeros(5))
    assert not leptonic.hadronic
    # τ → π K0S ν with K0S → π+ π-: one prong, the K0S daughters are not prongs
    kshort = tau_of_tree(np.array([15, 15, 211, 310, 211, -211]), np.array([-1, 0, 1, 1, 3, 3]),
                         np.ones(6), np.zeros(6))
    assert (kshort.hadronic, kshort.n_prongs, DECAY_MODES[kshort.mode]) == (True, 1, "1p0n")


def test_missing_inputs_and_empty_classes_are_clear_errors():
    bare = ak.Array([{"fatjets": [{"pt": 30.0, "eta": 0.0, "phi": 0.0}],
                      "jets": [{"pt": 30.0, "eta": 0.0, "phi": 0.0}], "met": 1.0}])
    with pytest.raises(DataError, match="fatjet_constituents"):
        build_candidates(bare, 20.0, 2.3, 8)
    no_fakes = build_candidates(ak.Array([THREE_PRONG]), 10.0, 2.3, 8)
    with pytest.raises(DataError, match="No fake candidates"):
        require_both_classes(no_fakes)
    empty = build_candidates(ak.Array([TWO_CORE_TRACKS]), 10.0, 2.3, 8)
    assert len(empty) == 0
    with pytest.raises(DataError, match="No real tau candidates"):
        require_both_classes(empty)


@pytest.mark.parametrize("key", ["deepsets", "gat", "transformer"])
def test_set_and_graph_models_are_permutation_invariant(key):
    torch.manual_seed(0)
    model = build_model(key, SIZES[key], len(OBJECT_FEATURES), len(HIGH_LEVEL), 6).eval()
    x = torch.randn(4, 6, len(OBJECT_FEATURES))
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0],
                         [1, 1, 1, 1, 0, 0]], dtype=torch.bool)
    x = x * mask[..., None]
    high = torch.randn(4, len(HIGH_LEVEL))
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    out, permuted = model(x, mask, high), model(x[:, perm], mask[:, perm], high)
    assert out.shape == (4, 1 + len(DECAY_MODES))
    torch.testing.assert_close(out, permuted, rtol=1e-5, atol=1e-5)
    # the order-dependent LSTM is not invariant: the test can tell the difference
    lstm = build_model("lstm", SIZES["lstm"], len(OBJECT_FEATURES), len(HIGH_LEVEL), 6).eval()
    assert not torch.allclose(lstm(x, mask, high), lstm(x[:, perm], mask[:, perm], high))


def test_every_model_builds_and_returns_both_heads():
    x, mask = torch.randn(3, 5, len(OBJECT_FEATURES)), torch.ones(3, 5, dtype=torch.bool)
    for key in MODELS:
        out = build_model(key, SIZES[key], len(OBJECT_FEATURES), len(HIGH_LEVEL), 5)(
            x, mask, torch.randn(3, len(HIGH_LEVEL)))
        assert out.shape == (3, 1 + len(DECAY_MODES))


@pytest.fixture(scope="module")
def ztautau(tmp_path_factory):
    from hepchain.core.cache import cached_dataset
    from hepchain.core.dataset import ShardedDataset
    from hepchain.reco.tauid.candidates import SAMPLE_OPTIONS

    ds = cached_dataset("Z_tautau", n_events=80, seed=5, options=SAMPLE_OPTIONS,
                        root=tmp_path_factory.mktemp("data"), progress=False)
    return ShardedDataset(ds.path).read()


def test_generated_taus_seed_candidates_with_their_prong_count(ztautau):
    c = build_candidates(ztautau, 20.0, 2.3, 16)
    taus = c.take(c.is_tau)
    one = taus.n_core[taus.mode <= 2]
    three = taus.n_core[(taus.mode >= 3)]
    assert one.size >= 10 and three.size >= 3
    assert np.mean(one == 1) > 0.8 and np.mean(three == 3) > 0.6
    assert np.nanmedian(taus.vis_pt / taus.pt) == pytest.approx(1.0, abs=0.15)


def test_a_set_model_learns_a_narrow_core_on_a_tiny_sample():
    """Deep Sets, trained through fit_tagger, separates candidates whose objects are narrower
    (smaller ΔR) from wider ones on held-out candidates."""
    from hepchain.core.metrics import roc_auc
    from hepchain.reco.tauid.candidates import Candidates
    from hepchain.reco.tauid.data import model_inputs
    from hepchain.reco.tauid.training import fit_tagger

    rng = np.random.default_rng(1)
    n, t, f = 400, 6, len(OBJECT_FEATURES)
    is_tau = np.arange(n) % 2 == 0
    objects = rng.normal(size=(n, t, f)).astype(np.float32)
    objects[..., OBJECT_FEATURES.index("dr")] += np.where(is_tau, -0.8, 0.8)[:, None]
    c = Candidates(np.arange(n), rng.uniform(20, 60, n), np.zeros(n), np.zeros(n),
                   np.where(rng.random(n) < 0.7, 1, 3), objects,
                   np.abs(rng.normal(size=(n, t, 4))).astype(np.float32), np.ones((n, t), bool),
                   is_tau, np.where(is_tau, rng.integers(0, 5, n), -1), np.full(n, 30.0))
    train, val, test = np.arange(240), np.arange(240, 320), np.arange(320, n)
    x = model_inputs(c, train, [20.0, 40.0, 60.0])
    model = build_model("deepsets", SIZES["deepsets"], f, len(HIGH_LEVEL), t)
    fitted = fit_tagger(model, x, c, train, val, {"epochs": 8, "batch_size": 32, "lr": 0.01,
                                                  "threads": 1, "progress": False}, 0.5, 0, "toy")
    assert roc_auc(is_tau[test], fitted.score[test]) > 0.85
    assert fitted.mode_probs.shape == (n, len(DECAY_MODES))


def test_a_prong_without_fakes_in_the_test_set_is_a_clear_error():
    from hepchain.reco.tauid.evaluate import require_both

    c = build_candidates(ak.Array([THREE_PRONG, ONE_PRONG_PI0]), 10.0, 2.3, 8)
    with pytest.raises(DataError, match="test set has no 3-prong fakes"):
        require_both(c, np.arange(len(c)), 3, "test")
