"""Jet-tagging zoo: feature construction against hand-computed values, IRC safety of the EFN,
permutation invariance of the set models, learning on a tiny sample, ONNX agreement, and clear
errors for jets that lack a required feature."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import torch

from hepchain.core import metrics
from hepchain.core.errors import DataError
from hepchain.reco.jettag.data import FEATURE_SETS, particle_features, split
from hepchain.reco.jettag.features import HIGH_LEVEL, high_level_features
from hepchain.reco.jettag.models import build_network
from hepchain.reco.jettag.training import fit_network, tensors_of

SIZES = {"PFN": {"phi": [16, 16], "f": [16]}, "EFN": {"phi": [16, 16], "f": [16]},
         "ParticleNet": {"convs": [[3, [8, 8]], [3, [8, 8]]], "fc": [[8, 0.0]]},
         "ParT": {"embed": [16, 16], "pair_embed": [8, 8], "heads": 2, "layers": 1,
                  "cls_layers": 1}}


def jets_of(constituents: list[list[dict[str, float]]], **jet: list[float]) -> ak.Array:
    """Jets (records with ``constituents``) from per-jet lists of constituent dicts."""
    return ak.zip({**{k: np.asarray(v) for k, v in jet.items()},
                   "constituents": ak.Array(constituents)}, depth_limit=1)


def particle(px: float, deta: float, dphi: float, pid: int = 211, charge: int = 1,
             d0: float = 0.0) -> dict[str, float]:
    """A massless constituent along x with transverse momentum ``px`` (GeV)."""
    return {"px": px, "py": 0.0, "pz": 0.0, "e": px, "pid": pid, "charge": charge,
            "d0": d0, "d0err": 0.02, "dz": 0.0, "dzerr": 0.03, "deta": deta, "dphi": dphi}


HAND_JET = jets_of([[particle(50.0, 0.0, 0.0, d0=0.5), particle(30.0, 0.3, 0.0, 22, 0),
                     particle(20.0, 0.0, 0.4, 130, 0)]],
                   tau1=[0.4], tau2=[0.2], tau3=[0.15], msd=[0.0])


def test_particle_features_match_hand_computed_values():
    t = particle_features(HAND_JET, "full", max_particles=4)
    assert t.features.shape == (1, 4, 17) and t.mask.tolist() == [[True, True, True, False]]
    f = {name: t.features[0, :, t.index(name)] for name in FEATURE_SETS["full"]}
    # weaver: clip((x - centre) * scale, -5, 5); jet pT = E = 100 GeV
    np.testing.assert_allclose(f["part_pt_log"][:3], (np.log([50, 30, 20]) - 1.7) * 0.7,
                               rtol=1e-6)
    np.testing.assert_allclose(f["part_logptrel"][:3], (np.log([0.5, 0.3, 0.2]) + 4.7) * 0.7,
                               rtol=1e-6)
    np.testing.assert_allclose(f["part_deltaR"][:3], ([0.0, 0.3, 0.4] - np.float32(0.2)) * 4,
                               rtol=1e-6)
    np.testing.assert_allclose(f["part_d0"][0], np.tanh(0.5), rtol=1e-6)
    assert f["part_isChargedHadron"][:3].tolist() == [1, 0, 0]
    assert f["part_isPhoton"][:3].tolist() == [0, 1, 0]
    assert f["part_isNeutralHadron"][:3].tolist() == [0, 0, 1]
    assert not t.features[0, 3].any()  # padding is zero


def test_high_level_features_match_hand_computed_values():
    hl = dict(zip(HIGH_LEVEL, high_level_features(HAND_JET)[0], strict=True))
    # z = (0.5, 0.3, 0.2); R12 = 0.3, R13 = 0.4, R23 = 0.5
    e2 = 0.5 * 0.3 * 0.3 + 0.5 * 0.2 * 0.4 + 0.3 * 0.2 * 0.5    # 0.115
    e3 = 0.5 * 0.3 * 0.2 * 0.3 * 0.4 * 0.5                      # 0.0018
    np.testing.assert_allclose([hl["C2"], hl["D2"]], [e3 / e2**2, e3 / e2**3], rtol=1e-9)
    assert hl["mass"] == pytest.approx(0.0, abs=1e-6)  # collinear massless particles
    np.testing.assert_allclose([hl["tau21"], hl["tau32"], hl["multiplicity"]], [0.5, 0.75, 3])


def test_missing_features_are_one_clear_error():
    bare = jets_of([[{k: v for k, v in particle(10.0, 0.1, 0.1).items()
                      if not k.startswith("d")} | {"deta": 0.1, "dphi": 0.1}]])
    with pytest.raises(DataError, match=r"d0, d0err, dz, dzerr.*feature set 'full'"):
        particle_features(bare, "full", 8)
    assert particle_features(bare, "kinpid", 8).features.shape == (1, 8, 13)
    with pytest.raises(DataError, match="no constituents"):
        particle_features(ak.zip({"pt": [1.0]}), "kin", 8)
    with pytest.raises(DataError, match="msd, tau1, tau2, tau3"):
        high_level_features(bare)


def random_inputs(rng: np.random.Generator, n: int = 6, p: int = 12, f: int = 17
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random particle inputs with 4..p real particles per jet (padding last), E > |p|."""
    mask = np.arange(p)[None, :] < rng.integers(4, p + 1, n)[:, None]
    x = rng.normal(size=(n, p, f)) * mask[..., None]
    mom = rng.normal(size=(n, p, 3)) * 50
    e = np.linalg.norm(mom, axis=-1, keepdims=True) * 1.01
    v = np.concatenate([mom, e], -1) * mask[..., None]
    return (torch.tensor(x, dtype=torch.float32), torch.tensor(v, dtype=torch.float32),
            torch.from_numpy(mask))


class _Shape:
    """The part of ParticleTensors that build_network reads."""

    def __init__(self, n_features: int) -> None:
        self.features = np.zeros((1, 1, n_features))

    def index(self, name: str) -> int:
        return FEATURE_SETS["full"].index(name)


def network(name: str, n_classes: int = 2) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_network(name, SIZES[name], _Shape(17), n_classes).eval()  # type: ignore[arg-type]


@pytest.mark.parametrize("name", list(SIZES))
def test_set_models_are_permutation_invariant(name):
    x, v, mask = random_inputs(np.random.default_rng(1))
    perm = torch.from_numpy(np.random.default_rng(2).permutation(x.shape[1]))  # mixes padding in
    net = network(name)
    with torch.no_grad():
        out, shuffled = net(x, v, mask), net(x[:, perm], v[:, perm], mask[:, perm])
    torch.testing.assert_close(shuffled, out, atol=1e-5, rtol=1e-5)


def test_efn_is_infrared_and_collinear_safe():
    x, v, mask = random_inputs(np.random.default_rng(3))
    net = network("EFN")
    # collinear split of particle 0 into two halves in the first padded slot of each jet
    slot = mask.sum(1)
    rows = torch.arange(len(x))
    x2, v2, mask2 = x.clone(), v.clone(), mask.clone()
    v2[:, 0] /= 2
    x2[rows, slot], v2[rows, slot], mask2[rows, slot] = x[:, 0], v[:, 0] / 2, True
    # plus a zero-energy particle at random angles in the next slot
    soft = torch.minimum(slot + 1, torch.tensor(x.shape[1] - 1))
    free = soft > slot
    x2[rows[free], soft[free]] = torch.randn(int(free.sum()), x.shape[2])
    mask2[rows[free], soft[free]] = True
    with torch.no_grad():
        torch.testing.assert_close(net(x2, v2, mask2), net(x, v, mask), atol=1e-5, rtol=1e-5)
        pfn = network("PFN")  # not IRC safe: the same splitting changes its output
        assert (pfn(x2, v2, mask2) - pfn(x, v, mask)).abs().max() > 1e-3


def toy_prong_jets(n: int, rng: np.random.Generator) -> tuple[ak.Array, np.ndarray]:
    """Half one-prong jets (label 0), half three-prong jets (label 1): 16 particles each,
    Gaussian around 1 or 3 axes at ΔR ≈ 0.3 from the jet axis, pT shared as in a jet."""
    labels = np.arange(n) % 2
    jets = []
    for y in labels:
        axes = rng.normal(scale=0.3, size=(3, 2)) if y else np.zeros((1, 2))
        which = rng.integers(0, len(axes), 16)
        ang = axes[which] + rng.normal(scale=0.05, size=(16, 2))
        pts = rng.exponential(20.0, 16) + 1.0
        jets.append([particle(float(pt), float(a), float(b)) for pt, (a, b) in zip(pts, ang, strict=True)])
    return jets_of(jets), labels


def test_a_network_learns_prong_structure_on_a_tiny_sample():
    jets, y = toy_prong_jets(600, np.random.default_rng(4))
    t = particle_features(jets, "full", 16)
    train, val, test = split(len(y), {"train": 0.5, "val": 0.2}, seed=0)
    torch.manual_seed(0)
    net = build_network("EFN", SIZES["EFN"], t, 2)
    with torch.no_grad():
        before = net.eval()(*tensors_of(t, test)).softmax(-1)[:, 1].numpy()
    assert metrics.roc_auc(y[test], before) < 0.65  # untrained: near chance, learning must act
    fitted = fit_network(net, t, y, train, val, {"epochs": 8, "batch_size": 32, "lr": 0.01,
                                                 "progress": False}, seed=0, name="efn")
    auc = metrics.roc_auc(y[test], fitted.score(test)[:, 1])
    # 180 test jets (90 + 90): an AUC of 0.5 has a null spread of
    # sqrt((n1 + n0 + 1) / (12 n1 n0)) = 0.043, so 0.75 is > 5 sigma above chance
    assert auc > 0.75


def test_onnx_export_agrees_with_torch(tmp_path):
    from hepchain.reco.jettag.export import export_onnx, onnx_agreement

    x, v, mask = random_inputs(np.random.default_rng(5))
    net = network("PFN")
    path = export_onnx(net, (x, v, mask), tmp_path / "pfn.onnx", ["QCD", "top"])
    x2, v2, mask2 = random_inputs(np.random.default_rng(6), n=3, p=20)  # other B and P
    assert onnx_agreement(net, path, (x2, v2, mask2)) < 1e-5


def test_study_trains_every_model_on_generated_jets(tmp_path):
    """The study end to end on 160 generated top_qcd events with tiny models and one epoch:
    every model gets every metric row, the ONNX export agrees, the figures are written."""
    from hepchain.core.study import run_study

    models = {"BDT": {"n_estimators": 20, "max_depth": 2, "learning_rate": 0.3,
                      "early_stopping_rounds": 5}, **SIZES}
    result = run_study("jettag", "quick", tmp_path / "run", seed=0, overrides={
        "data.n_events": 160, "data.workers": 1, "max_particles": 24, "models": models,
        "train.epochs": 1, "train.threads": 1})
    for name in models:
        for metric in ("accuracy", "AUC", "1/ε_B at ε_S = 0.3", "1/ε_B at ε_S = 0.5"):
            assert np.isfinite(result.get(metric, name).value)
    assert result.get("AUC minus ParticleNet's (paired)", "ParT").std is not None
    assert result.get("ONNX max |p_onnx − p_torch| (test jets)", "ParticleNet").value < 1e-5
    assert {"rejection.png", "loss.png"} <= set(result.figures)
    assert all((tmp_path / "run" / f).is_file() for f in result.figures)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"onnx": ["BDT"]}, "onnx names 'BDT', which is not a trained network"),
    ({"data.process": "jetclass", "data.classes": ["Hbb", "Zqq"]},
     r"data.classes must start with QCD \(the background\)"),
])
def test_bad_settings_are_refused_before_generation(overrides, message, tmp_path):
    from hepchain.core.errors import UsageError
    from hepchain.core.study import run_study

    with pytest.raises(UsageError, match=message):
        run_study("jettag", "quick", tmp_path / "run", overrides=overrides)
    assert not (tmp_path / "data").exists()
