"""b-tagging: labels, input validation, preprocessing, layers, baselines, a learning check and
ONNX agreement — on jets built by hand in the producer's schema (no generator needed)."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import torch

from hepchain.core import metrics
from hepchain.core.errors import DataError, UsageError
from hepchain.core.result import Result
from hepchain.nn.attention import AttentionPooling, SetTransformer
from hepchain.reco.btag import compare, evaluate
from hepchain.reco.btag.data import (
    check_selection,
    lepton_overlap,
    select_jets,
    with_lepton_flag,
)
from hepchain.reco.btag.export import export_onnx, load_tagger, onnx_agreement, save_tagger
from hepchain.reco.btag.highlevel import HL_FEATURES, high_level_features, soft_lepton_features
from hepchain.reco.btag.ip3d import IPTemplates, llr_features, out_of_fold_llr
from hepchain.reco.btag.labels import edge_labels, jet_labels, origin_class_weights
from hepchain.reco.btag.models import GN1Tagger, PairHead
from hepchain.reco.btag.preprocessing import Preprocessor
from hepchain.reco.btag.schema import TRACK_INPUTS, TRACK_KINEMATICS
from hepchain.reco.btag.svfinder import find_vertices
from hepchain.reco.btag.table import build_table
from hepchain.reco.btag.training import (
    check_vertex_loss,
    fit_track_model,
    predict_track_model,
    track_batch,
    vertex_loss,
)

CLASSES = ["b", "c", "light"]


def _track(rng: np.random.Generator, jet_eta: float, jet_phi: float, vtx: np.ndarray,
           origin: int, vertex: int) -> dict:
    """One straight-line track from point ``vtx`` [mm] near the jet axis, measured with
    σ(d0) = 20 µm and σ(z0) = 50 µm (producer conventions for d0 sign and lifetime signs)."""
    eta, phi = jet_eta + rng.normal(0, 0.08), jet_phi + rng.normal(0, 0.08)
    pt = 1.0 + rng.exponential(6.0)
    s_d0, s_z0 = 0.02, 0.05
    d0 = vtx[0] * np.sin(phi) - vtx[1] * np.cos(phi) + rng.normal(0, s_d0)
    z0 = vtx[2] - (vtx[0] * np.cos(phi) + vtx[1] * np.sin(phi)) * np.sinh(eta) + rng.normal(
        0, s_z0)
    charge = int(rng.choice([-1, 1]))
    sd0 = np.sign(np.sin(phi - jet_phi) * d0) * abs(d0) / s_d0
    sz0 = np.sign((jet_eta - eta) * z0) * abs(z0) / s_z0
    hits = {k: int(rng.integers(0, 4)) for k in TRACK_INPUTS if k.startswith("n_")}
    return {"qoverp": charge / (pt * np.cosh(eta)), "deta": eta - jet_eta, "dphi": phi - jet_phi,
            "d0": d0, "z0sintheta": z0 / np.cosh(eta), "sigma_qoverp": 0.01 / pt,
            "sigma_theta": 1e-3, "sigma_phi": 1e-3, "sigma_d0": s_d0, "sigma_z0": s_z0,
            "sd0": sd0, "sz0": sz0, **hits, "lepton_id": 0, "pt": pt, "eta": eta, "phi": phi,
            "charge": charge, "truth_origin": origin, "truth_vertex": vertex}


def toy_jets(n: int, seed: int = 0) -> ak.Array:
    """Hand-made jets in the producer's schema: light jets have primary tracks (vertex 0);
    c jets add 2-3 tracks from a vertex ~1 mm away; b jets 3-4 tracks from a b vertex ~3 mm
    away and 1-2 from a b→c vertex further on; plus an occasional pile-up track."""
    rng = np.random.default_rng(seed)
    jets = []
    for _ in range(n):
        flav = int(rng.choice([5, 4, 0], p=[0.4, 0.2, 0.4]))
        eta, phi = rng.uniform(-2, 2), rng.uniform(-np.pi, np.pi)
        axis = np.array([np.cos(phi), np.sin(phi), np.sinh(eta)]) / np.cosh(eta)
        pv = np.zeros(3)
        tracks = [_track(rng, eta, phi, pv, 2, 0) for _ in range(rng.integers(2, 8))]
        if flav == 5:
            vb = axis * rng.exponential(3.0)
            vc = vb + axis * rng.exponential(1.0)
            tracks += [_track(rng, eta, phi, vb, 3, 1) for _ in range(rng.integers(3, 5))]
            tracks += [_track(rng, eta, phi, vc, 4, 2) for _ in range(rng.integers(1, 3))]
        elif flav == 4:
            vc = axis * rng.exponential(1.0)
            tracks += [_track(rng, eta, phi, vc, 5, 1) for _ in range(rng.integers(2, 4))]
        if rng.random() < 0.3:
            tracks.append(_track(rng, eta, phi, np.array([0, 0, rng.normal(0, 40)]), 0, -1))
        rng.shuffle(tracks)
        jets.append({"pt": 20 + rng.exponential(40), "eta": eta, "phi": phi, "mass": 5.0,
                     "flavour": flav, "tracks": tracks})
    return ak.Array(jets)


@pytest.fixture(scope="module")
def toy() -> ak.Array:
    return toy_jets(900, seed=1)


# ---------------------------------------------------------------------- labels
def test_edge_labels_symmetric_and_consistent_with_origin(toy):
    table = build_table(toy[:200], max_tracks=12)
    mask, vertex = torch.from_numpy(table.mask), torch.from_numpy(table.vertex)
    target, valid = edge_labels(vertex, mask)
    assert torch.equal(target, target.transpose(1, 2))
    assert torch.equal(valid, valid.transpose(1, 2))
    assert not valid.diagonal(dim1=1, dim2=2).any()            # no self pairs
    assert not (valid & ~(mask[:, :, None] & mask[:, None, :])).any()  # no padded partner
    origin = table.origin
    linked = target.numpy().astype(bool)
    # pile-up/fake tracks never share a vertex; linked tracks always share origin class
    # (each toy vertex comes from one decay)
    assert not linked[np.isin(origin, (0, 1))].any()
    i, a, b = np.nonzero(linked)
    assert (origin[i, a] == origin[i, b]).all()
    assert linked.sum() > 0


def test_edge_labels_exact_small_case():
    vertex = torch.tensor([[0, 0, 3, 3, -1, -1]])
    mask = torch.tensor([[True, True, True, True, True, False]])
    target, valid = edge_labels(vertex, mask)
    expected = torch.zeros(6, 6)
    expected[0, 1] = expected[1, 0] = expected[2, 3] = expected[3, 2] = 1
    assert torch.equal(target[0], expected)
    assert valid[0].sum() == 5 * 4


def test_two_real_tracks_without_vertex_are_not_same_vertex():
    # pile-up and fake tracks (vertex -1) are common with pile-up and fakes: two of them in
    # one jet must not be linked, while two tracks of one real vertex are
    vertex = torch.tensor([[-1, -1, 2, 2, 0]])
    mask = torch.ones(1, 5, dtype=torch.bool)
    target, valid = edge_labels(vertex, mask)
    assert valid[0, 0, 1] and target[0, 0, 1] == 0 and target[0, 1, 0] == 0
    assert target[0, 2, 3] == 1 and target[0].sum() == 2
    pairs = evaluate.vertex_metrics(vertex.numpy(), np.array([[0, 1, 3, 3, 2]]),
                                    target.numpy(), mask.numpy(), np.array([True]))
    assert pairs["pair_precision"] == 1.0 and pairs["pair_recall"] == 1.0


def test_pileup_tracks_get_no_vertex_and_jet_labels():
    jets = toy_jets(5, seed=3)
    tracks = ak.to_list(jets[0].tracks)
    tracks[0]["truth_origin"], tracks[0]["truth_vertex"] = 1, 0      # fake track on the PV
    jet = ak.to_list(jets[:1])[0] | {"tracks": tracks}
    table = build_table(ak.Array([jet]), max_tracks=20)
    fake = table.origin[0] == 1
    assert (table.vertex[0][fake] == -1).all()
    assert jet_labels(np.array([5, 4, 0, 15]), CLASSES).tolist() == [0, 1, 2, -1]
    assert jet_labels(np.array([15]), ["b", "c", "light", "tau"]).tolist() == [3]
    with pytest.raises(UsageError, match="Unknown jet flavour"):
        jet_labels(np.array([5]), ["b", "top"])


def test_hard_scatter_selection_removes_pileup_jets_and_counts_them(toy):
    jets = toy[:60]
    dr = np.where(np.arange(60) % 3 == 0, 0.9, 0.1)  # every third jet unmatched
    dr[1] = 0.45  # ambiguous (0.3-0.6): not hard-scatter either
    events = ak.Array({"jets": ak.unflatten(ak.with_field(jets, dr, "truth_hs_dr"), [30, 30])})
    pt = ak.to_numpy(jets.pt)
    kept, label, event, removed = select_jets(events, ["b", "c", "light"], 30.0, 2.5, 0.3)
    passing = pt > 30.0
    assert removed == {"pileup": int((passing & (dr >= 0.3)).sum()), "lepton_overlap": 0}
    assert removed["pileup"] > 0
    assert len(kept) == int((passing & (dr < 0.3)).sum())
    assert np.all(ak.to_numpy(kept.truth_hs_dr) < 0.3) and set(event) <= {0, 1}
    np.testing.assert_array_equal(label, jet_labels(ak.to_numpy(kept.flavour),
                                                    ["b", "c", "light"]))
    all_jets, _, _, none = select_jets(events, ["b", "c", "light"], 30.0, 2.5)
    assert none == {"pileup": 0, "lepton_overlap": 0} and len(all_jets) == int(passing.sum())
    for key in ("hard_scatter_dr", "lepton_overlap_dr"):
        for bad in ("abc", -0.3, 0, True):
            with pytest.raises(UsageError, match=key):
                check_selection({key: bad})
    check_selection({"hard_scatter_dr": None, "lepton_overlap_dr": 0.2})
    with pytest.raises(DataError, match="truth_hs_dr"):
        select_jets(ak.Array({"jets": ak.unflatten(jets, [30, 30])}), ["b", "c", "light"],
                    30.0, 2.5, 0.3)


def test_overlap_removal_drops_jets_at_isolated_electrons_and_bare_muons_only():
    """ATLAS's lepton-jet overlap removal: a jet within dR 0.2 of an isolated electron goes; near
    an isolated muon it goes only with < 3 tracks (else the muon is the one ATLAS drops)."""
    lepton = {"pt": 40.0, "eta": 0.5, "charge": -1}
    leptons = [[{**lepton, "phi": 3.1, "pdgid": 11}], [{**lepton, "phi": -1.0, "pdgid": 13}]]
    track = {"pt": 2.0}
    jets = [[{"pt": 45.0, "eta": 0.55, "phi": -3.15, "flavour": 0, "tracks": [track] * 5},
             {"pt": 45.0, "eta": 0.5, "phi": 2.8, "flavour": 0, "tracks": [track]}],
            [{"pt": 45.0, "eta": 0.5, "phi": -1.1, "flavour": 0, "tracks": [track] * 2},
             {"pt": 45.0, "eta": 0.45, "phi": -1.0, "flavour": 5, "tracks": [track] * 3}]]
    events = ak.Array({"jets": jets, "leptons": leptons})
    flat, _, event, _ = select_jets(events, ["b", "c", "light"], 20.0, 2.5)
    # jet 0: dR 0.07 across phi = pi from the electron; jet 1: dR 0.3; jet 2: bare muon;
    # jet 3: muon inside a 3-track jet (kept)
    assert lepton_overlap(events, flat, event, 0.2).tolist() == [True, False, True, False]
    _, label, _, removed = select_jets(events, ["b", "c", "light"], 20.0, 2.5,
                                       lepton_overlap_dr=0.2)
    assert removed == {"pileup": 0, "lepton_overlap": 2} and label.tolist() == [2, 0]
    with pytest.raises(DataError, match="leptons"):
        select_jets(ak.Array({"jets": jets}), ["b", "c", "light"], 20.0, 2.5,
                    lepton_overlap_dr=0.2)


def test_every_preset_with_pileup_keeps_only_hard_scatter_jets():
    """Pile-up jets (no JVT in the substrate) must not enter the light class of a preset."""
    from hepchain.core.study import get_study

    study = get_study("btag")
    with_pileup = [p for p in study.presets() if p != "help"
                   and study.config(p)["data"]["options"].get("mu", 0) > 0]
    assert {"paper", "paper-mu20", "paper-mu40", "paper-gpu", "quick-mu10"} <= set(with_pileup)
    for preset in with_pileup:
        assert study.config(preset)["selection"]["hard_scatter_dr"] == 0.3, preset


def _vertex_toy() -> tuple[torch.Tensor, ...]:
    """Two jets of four track slots: pair logits, truth vertex, mask and origin."""
    vertex = torch.tensor([[0, 0, 1, -1], [2, 2, 2, -1]])
    mask = torch.tensor([[True, True, True, True], [True, True, True, False]])
    origin = torch.tensor([[3, 4, 2, 1], [5, 5, 2, -1]])
    logits = torch.linspace(-2.0, 2.0, 32).reshape(2, 4, 4)
    return logits, vertex, mask, origin


def _pair_terms(logits, vertex, mask, origin) -> list[tuple[float, float, bool]]:
    """(same-vertex target, BCE, both tracks heavy-flavour) of every pair of distinct real
    tracks, one pair at a time."""
    terms = []
    for b, i, j in np.ndindex(*logits.shape):
        if i != j and mask[b, i] and mask[b, j]:
            t = float(vertex[b, i] == vertex[b, j] and vertex[b, i] >= 0)
            p = torch.sigmoid(logits[b, i, j])
            bce = -float(t * torch.log(p) + (1 - t) * torch.log(1 - p))
            terms.append((t, bce, {int(origin[b, i]), int(origin[b, j])} <= {3, 4, 5}))
    return terms


def test_vertex_loss_default_is_the_mean_over_pairs_of_real_tracks():
    toy = _vertex_toy()
    terms = _pair_terms(*toy)
    assert len(terms) == 12 + 6
    mean = sum(bce for _, bce, _ in terms) / len(terms)
    assert float(vertex_loss(*toy)) == pytest.approx(mean, rel=1e-6)


def test_vertex_loss_salt_weighting_matches_salt_formula():
    """salt's VertexingTask: BCE over the pairs, pairs of two fromB/fromBC/fromC tracks
    weighted 2, summed and divided by the number of same-vertex pairs."""
    toy = _vertex_toy()
    terms = _pair_terms(*toy)
    positives = sum(t for t, _, _ in terms)
    assert positives == 2 + 6
    weighted = sum((2.0 if hf else 1.0) * bce for _, bce, hf in terms)
    got = vertex_loss(*toy, hf_pair_weight=2.0, normalise="same_vertex_pairs")
    assert float(got) == pytest.approx(weighted / positives, rel=1e-6)


def test_check_vertex_loss_rejects_unknown_settings():
    check_vertex_loss({"hf_pair_weight": 2.0, "normalise": "same_vertex_pairs"})
    with pytest.raises(UsageError, match="normalise"):
        check_vertex_loss({"hf_pair_weight": 1.0, "normalise": "positives"})
    with pytest.raises(UsageError, match="hf_pair_weight"):
        check_vertex_loss({"hf_pair_weight": 0.0, "normalise": "pairs"})


def test_origin_class_weights_inverse_frequency():
    w = origin_class_weights(np.array([2, 2, 2, 3, -1]))
    assert w[2] * 3 == pytest.approx(w[3] * 1) and w[0] == 0


# ---------------------------------------------------------------------- inputs
def test_missing_features_give_clear_error(toy):
    broken = ak.Array({"pt": toy.pt[:3], "eta": toy.eta[:3], "phi": toy.phi[:3],
                       "flavour": toy.flavour[:3],
                       "tracks": toy.tracks[:3][[f for f in ak.fields(toy.tracks)
                                                 if f not in ("sd0", "n_ibl_hits")]]})
    with pytest.raises(DataError, match=r"jets\.tracks\.sd0.*jets\.tracks\.n_ibl_hits"):
        build_table(broken, max_tracks=10)
    no_tracks = ak.Array({"pt": [30.0], "eta": [0.0], "phi": [0.0], "flavour": [5]})
    with pytest.raises(DataError, match=r"jets\.tracks"):
        build_table(no_tracks, max_tracks=10)
    # truth is only required for training
    without_truth = ak.Array({"pt": toy.pt[:3], "eta": toy.eta[:3], "phi": toy.phi[:3],
                              "tracks": toy.tracks[:3][list(TRACK_INPUTS + TRACK_KINEMATICS)]})
    assert len(build_table(without_truth, max_tracks=10, truth=False)) == 3


def test_table_sorted_padded_and_preprocessing_roundtrip(toy):
    table = build_table(toy[:100], max_tracks=6)
    sd0 = table.track("sd0")
    n = table.mask.sum(1)
    for k in range(len(table)):
        assert (np.diff(sd0[k, :n[k]]) <= 0).all()
    assert (n == np.minimum(ak.to_numpy(ak.num(toy[:100].tracks)), 6)).all()
    prep = Preprocessor.fit(table)
    trk, _ = prep.transform(table)
    assert np.abs(trk).max() <= prep.clip and (trk[~table.mask] == 0).all()
    again = Preprocessor.from_dict(prep.to_dict()).transform(table)[0]
    np.testing.assert_array_equal(trk, again)
    old_format = {k: v for k, v in prep.to_dict().items() if k not in ("track", "jet")}
    with pytest.raises(DataError, match="retrain and save it again"):
        Preprocessor.from_dict(old_format)
    table.tracks[0, 0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        prep.transform(table)


# ---------------------------------------------------------------------- layers
def test_attention_ignores_padding_and_order():
    torch.manual_seed(0)
    enc, pool = SetTransformer(16, heads=4, layers=2).eval(), AttentionPooling(16, 4).eval()
    x = torch.randn(3, 7, 16)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0, 0]],
                        dtype=torch.bool)
    x2 = x.clone()
    x2[~mask] = 100.0                                        # garbage in the padding
    perm = torch.tensor([2, 0, 1, 3, 4, 5, 6])               # reorder real tracks of jet 1
    with torch.no_grad():
        h, h2 = enc(x, mask), enc(x2, mask)
        g, g2 = pool(h, mask), pool(h2, mask)
        g3 = pool(enc(x[:, perm], mask[:, perm]), mask[:, perm])
    torch.testing.assert_close(h[mask], h2[mask])
    torch.testing.assert_close(g, g2)
    torch.testing.assert_close(g[1], g3[1], atol=1e-5, rtol=1e-5)


def test_pair_head_is_symmetric():
    head = PairHead(8)
    e = head(torch.randn(2, 5, 8))
    torch.testing.assert_close(e, e.transpose(1, 2))


# ---------------------------------------------------------------------- baselines
def test_ip3d_and_sv_finder_separate_b_from_light(toy):
    table = build_table(toy, max_tracks=12)
    label = jet_labels(table.flavour, CLASSES)
    tmpl = IPTemplates.fit(table.track("sd0"), table.track("sz0"), table.mask, label, CLASSES)
    llr = tmpl.jet_llr(table.track("sd0"), table.track("sz0"), table.mask)
    bl = label != 1
    assert metrics.roc_auc(label[bl] == 0, llr[bl]) > 0.9
    sv = find_vertices(table)
    b, light = label == 0, label == 2
    assert sv["sv_found"][b].mean() > 0.5 > 5 * sv["sv_found"][light].mean()
    # the fitted b vertex lies in front of the primary vertex along the jet (L > 0), and is
    # significantly displaced for most found b vertices
    found_b = b & (sv["sv_found"] > 0)
    assert (sv["sv_L"][found_b] > 0).mean() > 0.9
    assert np.median(sv["sv_Lsig"][found_b]) > 5
    hl = high_level_features(table, llr_features(tmpl, table.track("sd0"), table.track("sz0"),
                                                 table.mask))
    assert hl.shape == (len(table), len(HL_FEATURES)) and np.isfinite(hl).all()


def test_out_of_fold_ip3d_never_uses_a_jets_own_tracks(toy):
    table = build_table(toy, max_tracks=12)
    label = jet_labels(table.flavour, CLASSES)
    event = np.arange(len(table)) // 2  # two jets per event
    args = (table.track("sd0"), table.track("sz0"), table.mask)
    oof = out_of_fold_llr(*args, label, event, CLASSES, n_folds=4, seed=0)
    # relabelling one jet changes the templates its own tracks fill, so an in-sample LLR
    # of that jet moves; the out-of-fold LLR of that jet (and its event partner) must not
    j = int(np.flatnonzero(label == 0)[0])
    flipped = label.copy()
    flipped[j] = 2
    oof_flipped = out_of_fold_llr(*args, flipped, event, CLASSES, n_folds=4, seed=0)
    for name in oof:
        assert oof_flipped[name][j] == oof[name][j]
    in_sample = [llr_features(IPTemplates.fit(*args, lab, CLASSES), *args)["ip3d_llr_bl"][j]
                 for lab in (label, flipped)]
    assert in_sample[0] != in_sample[1]
    # the out-of-fold LLR still separates b from light jets
    bl = label != 1
    assert metrics.roc_auc(label[bl] == 0, oof["ip3d_llr_bl"][bl]) > 0.85
    with pytest.raises(UsageError, match="folds"):
        out_of_fold_llr(*args, label, event, CLASSES, n_folds=1, seed=0)


def test_soft_lepton_features_use_the_identified_lepton():
    jets = ak.to_list(toy_jets(2, seed=5))
    tracks = jets[0]["tracks"]
    tracks[1]["lepton_id"] = 13
    jet_axis = np.array([np.cos(jets[0]["phi"]), np.sin(jets[0]["phi"]), np.sinh(jets[0]["eta"])])
    t = tracks[1]
    p = t["pt"] * np.array([np.cos(t["phi"]), np.sin(t["phi"]), np.sinh(t["eta"])])
    expected = np.linalg.norm(np.cross(p, jet_axis / np.linalg.norm(jet_axis)))
    table = build_table(ak.Array(jets), max_tracks=20)
    slt = soft_lepton_features(table)
    assert slt["slt_found"].tolist() == [1.0, 0.0]
    assert slt["slt_ptrel"][0] == pytest.approx(expected, rel=1e-4) and slt["slt_ptrel"][1] == 0
    assert 0 < expected < t["pt"] * np.cosh(t["eta"])


def test_lepton_flag_ablation_swaps_the_input_of_every_tagger(toy):
    jets = toy[:3]
    truth = ak.values_astype(ak.ones_like(jets.tracks.lepton_id) * 13, np.int64)
    jets = ak.with_field(jets, ak.with_field(jets.tracks, truth, "truth_lepton"), "tracks")
    assert with_lepton_flag(jets, "reco") is jets
    assert ak.all(with_lepton_flag(jets, "truth").tracks.lepton_id == 13)
    assert ak.all(with_lepton_flag(jets, "none").tracks.lepton_id == 0)
    with pytest.raises(DataError, match="truth_lepton"):
        with_lepton_flag(toy[:3], "truth")
    with pytest.raises(UsageError, match="lepton_flag"):
        with_lepton_flag(jets, "perfect")


def test_working_points_are_set_on_validation_jets():
    # validation b scores uniform in [0, 1): the 70 % cut is 0.3; the test b scores are
    # shifted up by 0.1, so the validation cut keeps 80 % of them (a cut tuned on the test
    # jets would keep exactly 70 %)
    rng = np.random.default_rng(0)
    n = 100_000
    val = (np.r_[np.zeros(n), np.full(n, 2)], np.r_[rng.random(n), rng.random(n) - 0.5])
    test = (val[0], np.r_[rng.random(n) + 0.1, rng.random(n) - 0.5])
    rej = evaluate.rejections(val, test, CLASSES, [0.7], ("light",))[("light", 0.7)]
    assert rej.threshold == pytest.approx(0.3, abs=0.005)
    assert rej.efficiency == pytest.approx(0.8, abs=0.006)
    # light scores uniform in [-0.5, 0.5): the fraction above 0.3 is 0.2
    assert rej.rejection == pytest.approx(5.0, rel=0.05)
    assert rej.error == pytest.approx(np.sqrt(0.2 * 0.8 / n) / 0.2**2, rel=0.05)


def test_paired_ratio_uses_the_pairing_and_the_common_statistical_error():
    rng = np.random.default_rng(1)
    base = rng.lognormal(np.log(300), 0.4, 5)           # large seed-to-seed swings ...
    better = base * 1.3 * rng.lognormal(0, 0.02, 5)     # ... shared by both methods
    res = metrics.paired_ratio(better, base)
    assert res.estimate == pytest.approx(1.3, rel=0.03) and res.n == 5
    assert res.p_value < 1e-3
    # unpaired, the swings would hide the gain: the spread of each method is ~40 %
    assert np.std(np.log(base), ddof=1) / np.sqrt(5) > 5 * res.error / res.estimate
    # a common statistical error of 30 % per ratio (same test set for every seed) is not
    # averaged down and makes the gain insignificant
    noisy = metrics.paired_ratio(better, base, rel_stat_error=np.full(5, 0.3))
    assert noisy.error > 10 * res.error and noisy.p_value > 0.3
    same = metrics.paired_difference(base, base + rng.normal(0, 1, 5))
    assert same.p_value > 0.01 and abs(same.estimate) < 2
    with pytest.raises(ValueError, match="two finite pairs"):
        metrics.paired_difference([1.0], [2.0])


def _seed_result(rejections: dict[str, tuple[float, float]]) -> Result:
    res = Result(study="btag", preset="quick")
    for method, (value, err) in rejections.items():
        res.add("light rejection @ 70% b-eff", method, value, std=err)
    return res


def test_compare_needs_the_goal_outside_the_combined_error():
    seeds = [(300.0, 640.0, 460.0), (350.0, 690.0, 560.0), (280.0, 590.0, 430.0)]
    for rel_err, met in ((0.01, True), (0.25, False)):
        results = [_seed_result({"DL1-like MLP": (d, rel_err * d), "GN1": (g, rel_err * g),
                                 "GN1 no-aux": (n, rel_err * n)}) for d, g, n in seeds]
        rows = {(r["numerator"], r["denominator"]): r
                for r in compare.paired_rejection_ratios(results, 0.7)}
        gn1 = rows[("GN1", "DL1-like MLP")]
        assert gn1["ratio"] == pytest.approx(np.exp(np.mean(np.log([g / d for d, g, _ in seeds]))))
        assert gn1["goal"] == 1.8 and gn1["goal_met"] is met and gn1["n_seeds"] == 3
        assert rows[("GN1", "GN1 no-aux")]["goal"] == 1.10
        assert ("GN1", "DeepSets") not in rows                          # no Deep Sets rows


def test_compare_pairs_gn1_with_deep_sets_without_a_goal(tmp_path, capsys):
    import json

    from hepchain.cli import main

    seeds = [(300.0, 640.0, 460.0), (350.0, 690.0, 560.0), (280.0, 590.0, 430.0)]
    for i, (d, g, n) in enumerate(seeds):  # a bench on salt files: no DL1-like rows
        _seed_result({"DeepSets": (d, 3.0), "GN1": (g, 6.0), "GN1 no-aux": (n, 5.0)}).save(
            tmp_path / f"seed{i}")
    with pytest.raises(SystemExit) as exc:
        main(["btag", "compare", str(tmp_path)])
    assert exc.value.code == 0
    rows = {(r["numerator"], r["denominator"]): r
            for r in json.loads((tmp_path / "paired.json").read_text())}
    assert set(rows) == {("GN1", "DeepSets"), ("GN1 no-aux", "DeepSets"), ("GN1", "GN1 no-aux")}
    gn1 = rows[("GN1", "DeepSets")]
    assert gn1["ratio"] == pytest.approx(np.exp(np.mean(np.log([g / d for d, g, _ in seeds]))))
    assert gn1["goal"] is None and gn1["goal_met"] is None and gn1["p_vs_1"] < 0.01


def test_compare_verb_writes_the_paired_ratios_of_a_bench(tmp_path, capsys):
    import json

    from hepchain.cli import main

    seeds = [(300.0, 640.0), (350.0, 690.0), (280.0, 590.0)]
    for i, (d, g) in enumerate(seeds):
        _seed_result({"DL1-like MLP": (d, 3.0), "GN1": (g, 6.0)}).save(tmp_path / f"seed{i}")
    with pytest.raises(SystemExit) as exc:
        main(["btag", "compare", str(tmp_path)])
    assert exc.value.code == 0 and "light rejection ratios" in capsys.readouterr().out
    rows = json.loads((tmp_path / "paired.json").read_text())
    gn1 = next(r for r in rows if (r["numerator"], r["denominator"]) == ("GN1", "DL1-like MLP"))
    assert gn1["ratio"] == pytest.approx(np.exp(np.mean(np.log([g / d for d, g in seeds]))))
    assert gn1["n_seeds"] == 3 and gn1["goal_met"] is True
    with pytest.raises(SystemExit) as exc:  # not a bench directory: one sentence, exit 1
        main(["btag", "compare", str(tmp_path / "nowhere")])
    assert exc.value.code == 1 and "no seeds.json" in capsys.readouterr().err


def test_discriminant_formula():
    p = np.array([[0.6, 0.3, 0.1], [0.1, 0.1, 0.8]])
    d = evaluate.discriminant(p, CLASSES, fc=0.2)
    assert d[0] == pytest.approx(np.log(0.6 / (0.2 * 0.3 + 0.8 * 0.1)))
    assert d[0] > d[1]


def test_vertex_metrics_perfect_prediction(toy):
    table = build_table(toy[:150], max_tracks=12)
    target, _ = edge_labels(torch.from_numpy(table.vertex), torch.from_numpy(table.mask))
    b = table.flavour == 5
    vm = evaluate.vertex_metrics(table.vertex, table.origin, target.numpy(), table.mask, b)
    assert vm["pair_precision"] == 1.0 and vm["pair_recall"] == 1.0
    assert vm["displaced_precision"] == 1.0 and vm["displaced_recall"] == 1.0
    assert vm["b_vertex_efficiency"] == 1.0 and vm["b_vertex_jets"] > 10
    none = evaluate.vertex_metrics(table.vertex, table.origin, 0 * target.numpy(), table.mask, b)
    assert none["b_vertex_efficiency"] == 0.0 and none["pair_recall"] == 0.0


def test_vertex_index_joins_chained_pairs_and_marks_padding():
    mask = np.array([[True, True, True, True, False]])
    pred = np.zeros((1, 5, 5))
    pred[0, 0, 1] = pred[0, 1, 2] = pred[0, 2, 1] = 0.9   # 0-1 and 1-2: one vertex
    pred[0, 3, 4] = 0.9                      # a pair with a padding slot does not count
    pred[0, 0, 3] = 0.5                      # not above the threshold
    index = evaluate.vertex_index(pred, mask)
    assert index.tolist() == [[0, 0, 0, 1, -1]]
    pairs = evaluate.same_vertex_pairs(index, mask)
    assert pairs[0, 0, 2] and not pairs[0, 0, 3] and not pairs[0, 4].any()
    # as predicted pairs, the chain also pairs 0 with 2, which raw pair decisions do not
    vertex = np.array([[1, 1, 2, 0, -1]])
    raw = evaluate.vertex_metrics(vertex, vertex, pred, mask, np.array([False]))
    joined = evaluate.vertex_metrics(vertex, vertex, pairs, mask, np.array([False]))
    assert raw["pair_precision"] == 0.5 and joined["pair_precision"] == 1 / 3


def test_displaced_pair_metrics_are_not_hidden_by_primary_vertex_pairs():
    vertex = np.array([[0, 0, 0, 1, 1]])     # three primary-vertex tracks, one displaced pair
    mask, b = np.ones((1, 5), dtype=bool), np.array([False])
    pred = np.zeros((1, 5, 5))
    pred[0, 0, 1] = pred[0, 0, 2] = pred[0, 1, 2] = 1.0   # every PV pair found
    pred[0, 2, 3] = 1.0                                   # a PV track paired with a displaced one
    vm = evaluate.vertex_metrics(vertex, vertex, pred, mask, b)
    assert vm["pair_recall"] == 0.75 and vm["pair_precision"] == 0.75
    assert vm["displaced_recall"] == 0.0 and vm["displaced_precision"] == 0.0
    pred[0, 3, 4] = 1.0                                   # the displaced pair found as well
    vm = evaluate.vertex_metrics(vertex, vertex, pred, mask, b)
    assert vm["displaced_recall"] == 1.0 and vm["displaced_precision"] == 0.5
    no_displaced = evaluate.vertex_metrics(np.zeros((1, 5), int), vertex, pred, mask, b)
    assert np.isnan(no_displaced["displaced_recall"])


# ---------------------------------------------------------------------- learning + export
@pytest.fixture(scope="module")
def trained(toy):
    torch.set_num_threads(1)
    table = build_table(toy, max_tracks=12)
    label = jet_labels(table.flavour, CLASSES)
    prep = Preprocessor.fit(table.select(np.arange(600)))
    trk, jet = prep.transform(table)
    data = track_batch(trk, table.mask, jet, label, table.origin, table.vertex)
    train = tuple(x[:600] for x in data)
    val = tuple(x[600:750] for x in data)
    test = tuple(x[750:] for x in data)
    model = GN1Tagger(len(TRACK_INPUTS), 2, 3, dim=32, heads=4, layers=2)
    cfg = {"epochs": 8, "batch_size": 64, "lr": 3e-3, "progress": False}
    trainer, hist = fit_track_model(model, ("jet", "track", "vertex"), train, val, cfg, seed=0,
                                    loss_weights={"jet": 1, "vertex": 1.5, "track": 0.5},
                                    origin_weights=origin_class_weights(table.origin[:600]))
    return trainer, hist, test, table.select(np.arange(750, 900)), prep


def test_gn1_learns_all_three_tasks(trained):
    trainer, hist, test, table, _ = trained
    assert hist.epochs[-1]["train_total"] < hist.epochs[0]["train_total"]
    out = predict_track_model(trainer, test)
    label = test[3].numpy()
    d = evaluate.discriminant(out["jet"], CLASSES, 0.05)
    bl = label != 1
    assert metrics.roc_auc(label[bl] == 0, d[bl]) > 0.9
    _, aucs = evaluate.origin_metrics(table.origin, out["track"], table.mask)
    assert aucs["fromB"] > 0.75 and aucs["primary"] > 0.75  # chance: 0.5
    target, valid = edge_labels(test[5], test[1])
    v = valid.numpy()
    assert metrics.roc_auc(target.numpy()[v], out["vertex"][v]) > 0.75


def test_saved_tagger_and_onnx_agree_with_torch(trained, tmp_path):
    trainer, _, test, _, prep = trained
    model = trainer.model.eval()
    path = save_tagger(model, {"dim": 32, "heads": 4, "layers": 2}, CLASSES, prep,
                       tmp_path / "gn1.pt")
    loaded, classes, prep2 = load_tagger(path)
    assert classes == CLASSES and prep2 == prep
    inputs = tuple(x[:40] for x in test[:3])
    with torch.no_grad():
        torch.testing.assert_close(loaded(*inputs)["jet"], model(*inputs)["jet"])
    onnx_path = export_onnx(model, tuple(x[:16] for x in test[:3]), tmp_path / "gn1.onnx",
                            CLASSES, prep)
    assert onnx_agreement(model, onnx_path, inputs) < 1e-5
    # dynamic track axis: fewer track slots than at export time
    short = (inputs[0][:, :5].contiguous(), inputs[1][:, :5].contiguous(), inputs[2])
    assert onnx_agreement(model, onnx_path, short) < 1e-5
    with pytest.raises(DataError, match="No tagger file"):
        load_tagger(tmp_path / "missing.pt")


def test_gn1_register_tokens_are_pooled_not_tracks(toy, tmp_path):
    """Register tokens (salt's num_registers) change the jet output, leave the track heads
    one row per track, ignore padded tracks, and survive save/load."""
    torch.manual_seed(0)
    tracks, jet = torch.randn(3, 5, len(TRACK_INPUTS)), torch.randn(3, 2)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], dtype=torch.bool)
    settings = {"dim": 16, "heads": 2, "layers": 1, "registers": 2}
    model = GN1Tagger(len(TRACK_INPUTS), 2, 3, **settings).eval()
    noisy = tracks.clone()
    noisy[~mask] = 100.0  # padded tracks must not matter
    with torch.no_grad():
        model.registers.normal_()
        out = model(tracks, mask, jet)
        assert out["track"].shape == (3, 5, 8) and out["vertex"].shape == (3, 5, 5)
        torch.testing.assert_close(model(noisy, mask, jet)["jet"], out["jet"])
        prep = Preprocessor.fit(build_table(toy, max_tracks=5))
        loaded, _, _ = load_tagger(save_tagger(model, settings, CLASSES, prep,
                                               tmp_path / "gn1.pt"))
        torch.testing.assert_close(loaded(tracks, mask, jet)["jet"], out["jet"])
        model.registers.zero_()
        assert not torch.allclose(model(tracks, mask, jet)["jet"], out["jet"])


def test_gn1_settings_refused_before_any_data():
    """Bad GN1 sizes are a UsageError from the config, not a torch error after data prep."""
    from hepchain.reco.btag.gn1 import btag_config

    with pytest.raises(UsageError, match="registers must be 0 or more"):
        btag_config("quick", {"gn1": {"registers": -1}})
    with pytest.raises(UsageError, match=r"positive multiple of gn1\.heads"):
        btag_config("quick", {"gn1": {"dim": 30, "heads": 4}})
    assert btag_config("quick", {"gn1": {"registers": 2}})["gn1"]["registers"] == 2
    with pytest.raises(ValueError, match="registers"):
        GN1Tagger(len(TRACK_INPUTS), 2, 3, registers=-1)
