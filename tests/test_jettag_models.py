"""The zoo's newer models and cost metrics: the jet image against a hand-computed image,
permutation invariance of the set models with padding mixed in, Lorentz invariance of
LorentzNet and L-GATr, learning on a tiny sample, and the FLOP counter on an MLP."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hepchain.core.errors import UsageError
from hepchain.reco.jettag.cost import flops_per_jet
from hepchain.reco.jettag.data import FEATURE_SETS, ParticleTensors
from hepchain.reco.jettag.models import build_network
from hepchain.reco.jettag.models.cnn import jet_images
from hepchain.reco.jettag.training import fit_network

PID = ["part_charge", "part_isChargedHadron", "part_isNeutralHadron", "part_isPhoton",
       "part_isElectron", "part_isMuon"]
SIZES = {
    "PFN": {"phi": [16, 16], "f": [16]},
    "EFN": {"phi": [16, 16], "f": [16]},
    "CNN": {"pixels": 16, "half_width": 0.8, "channels": [4, 8], "fc": [16]},
    "GRU": {"hidden": 16, "layers": 1, "fc": [16]},
    "LorentzNet": {"scalars": PID, "hidden": 16, "blocks": 2, "c_weight": 1e-3,
                   "dropout": 0.0, "p_scale": 10.0, "beams": False},
    "L-GATr": {"scalars": PID, "blocks": 1, "mv_channels": 4, "s_channels": 8, "heads": 2,
               "fc": [16], "p_scale": 10.0, "spurions": False},
}
#: the shape and feature names build_network reads (the full JetClass feature set)
SHAPE = ParticleTensors(np.zeros((1, 1, 17), np.float32), np.zeros((1, 1, 4), np.float32),
                        np.ones((1, 1), bool), FEATURE_SETS["full"])


def network(name: str, **changes: object) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_network(name, {**SIZES[name], **changes}, SHAPE, 2).eval()


def random_jets(rng: np.random.Generator, n: int = 6, p: int = 12
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x, v, mask): 4..p real particles per jet (padding last), binary PID-like columns,
    massive four-momenta (E = 1.01 |p|) of tens of GeV."""
    mask = np.arange(p)[None, :] < rng.integers(4, p + 1, n)[:, None]
    x = rng.normal(size=(n, p, 17))
    x[..., 7:13] = rng.integers(0, 2, size=(n, p, 6))
    mom = rng.normal(size=(n, p, 3)) * 50
    v = np.concatenate([mom, np.linalg.norm(mom, axis=-1, keepdims=True) * 1.01], -1)
    return (torch.tensor(x * mask[..., None], dtype=torch.float32),
            torch.tensor(v * mask[..., None], dtype=torch.float32), torch.from_numpy(mask))


def test_jet_image_matches_a_hand_computed_image():
    # 4 pixels over [-0.8, 0.8): bin edges -0.8, -0.4, 0, 0.4, 0.8 in Δη (rows) and Δφ (cols)
    deta = torch.tensor([[0.1, -0.5, 0.1, 0.9, 0.3]])
    dphi = torch.tensor([[0.2, 0.5, 0.3, 0.0, 0.0]])
    pt = torch.tensor([[40.0, 20.0, 10.0, 30.0, 99.0]])
    mask = torch.tensor([[True, True, True, True, False]])
    expected = np.zeros((4, 4))
    expected[2, 2] = (40 + 10) / 100   # both in Δη, Δφ ∈ [0, 0.4): pT summed
    expected[0, 3] = 20 / 100          # Δη ∈ [-0.8, -0.4), Δφ ∈ [0.4, 0.8)
    # Δη = 0.9 is outside the window (its pT still normalises); the masked particle is ignored
    image = jet_images(deta, dphi, pt, mask, pixels=4, half_width=0.8)
    np.testing.assert_allclose(image[0].numpy(), expected, rtol=1e-6)


@pytest.mark.parametrize("name", ["PFN", "EFN", "CNN", "GRU", "LorentzNet", "L-GATr"])
def test_set_models_are_permutation_invariant_with_padding_mixed_in(name):
    x, v, mask = random_jets(np.random.default_rng(1))
    perm = torch.from_numpy(np.random.default_rng(2).permutation(x.shape[1]))
    net = network(name)
    with torch.no_grad():
        out = net(x, v, mask)
        shuffled = net(x[:, perm], v[:, perm], mask[:, perm])
        # garbage in the padded slots must not matter either
        noisy = net(torch.where(mask[..., None], x, torch.randn_like(x)),
                    torch.where(mask[..., None], v, 100 * torch.randn_like(v)), mask)
    torch.testing.assert_close(shuffled, out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(noisy, out, atol=1e-5, rtol=1e-5)


def lorentz(boost: tuple[float, float, float], angle: float, axis: int = 2) -> torch.Tensor:
    """4×4 matrix acting on (px, py, pz, E): a rotation by ``angle`` about ``axis`` after a
    boost with velocity ``boost`` (in units of c)."""
    b = np.asarray(boost)
    beta2 = float(b @ b)
    gamma = 1 / math.sqrt(1 - beta2)
    boost_m = np.eye(4)
    boost_m[3, 3] = gamma
    boost_m[:3, 3] = boost_m[3, :3] = gamma * b
    if beta2:
        boost_m[:3, :3] += (gamma - 1) * np.outer(b, b) / beta2
    c, s = math.cos(angle), math.sin(angle)
    i, j = [k for k in range(3) if k != axis]
    rot = np.eye(4)
    rot[i, i], rot[i, j], rot[j, i], rot[j, j] = c, -s, s, c
    return torch.tensor(rot @ boost_m, dtype=torch.float32)


@pytest.mark.parametrize("name", ["LorentzNet", "L-GATr"])
def test_lorentz_models_are_invariant_under_boosts_and_rotations(name):
    """Four-momenta of tens of GeV (m² ≈ 0.02 |p|²), boosted with γ ≈ 1.5 and rotated; the
    scalars (charge, PID flags) are invariant. In float32 (relative precision 6e-8) the
    Minkowski products lose ~2 digits to the cancellation E² − |p|², so the logits (~0.3) may
    move by ~1e-6; the tolerance 1e-5 sits above that and 100× below the shift that a change
    of the invariants themselves (every energy ×1.1) causes, so the test can fail."""
    x, v, mask = random_jets(np.random.default_rng(3))
    lam = lorentz((0.5, -0.3, 0.4), 0.9, axis=1)
    net = network(name)
    heavier = v.clone()
    heavier[..., 3] *= 1.1
    with torch.no_grad():
        out, moved = net(x, v, mask), net(x, v @ lam.T, mask)
        shifted = (net(x, heavier, mask) - out).abs().max()
    torch.testing.assert_close(moved, out, atol=1e-5, rtol=1e-5)
    assert shifted > 1e-3


@pytest.mark.parametrize(("name", "option"), [("LorentzNet", "beams"), ("L-GATr", "spurions")])
def test_beam_references_keep_only_the_symmetry_about_the_beam(name, option):
    """With the beam nodes / spurions the output stays invariant under rotations about the
    beam (z) axis and changes under a transverse boost."""
    x, v, mask = random_jets(np.random.default_rng(4))
    net = network(name, **{option: True})
    with torch.no_grad():
        out = net(x, v, mask)
        rotated = net(x, v @ lorentz((0.0, 0.0, 0.0), 1.1, axis=2).T, mask)
        boosted = net(x, v @ lorentz((0.6, 0.0, 0.0), 0.0).T, mask)
    torch.testing.assert_close(rotated, out, atol=1e-4, rtol=1e-4)
    assert (boosted - out).abs().max() > 1e-3


def toy_mass_jets(n: int, rng: np.random.Generator) -> tuple[ParticleTensors, np.ndarray]:
    """Label 1: 8 particles spread by 0.6 rad around a random axis, half on each side (wide,
    heavy jet); label 0: spread by 0.05 rad (narrow, light jet); Δη, Δφ from the momenta."""
    labels = np.arange(n) % 2
    p = 10
    vec = np.zeros((n, p, 4))
    for k, y in enumerate(labels):
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        spread = 0.6 if y else 0.05
        d = axis + spread * rng.normal(size=(8, 3)) * np.where(np.arange(8) < 4, 1, -1)[:, None]
        mom = d / np.linalg.norm(d, axis=1, keepdims=True) * rng.uniform(20, 80, (8, 1))
        vec[k, :8] = np.concatenate([mom, np.linalg.norm(mom, axis=1, keepdims=True)], 1)
    mask = np.broadcast_to(np.arange(p) < 8, (n, p)).copy()
    pt = np.hypot(vec[..., 0], vec[..., 1])
    feats = np.zeros((n, p, 17))
    feats[..., 0] = np.log(np.where(mask, pt, 1.0))
    eta, phi = np.arcsinh(vec[..., 2] / np.where(mask, pt, 1.0)), np.arctan2(vec[..., 1], vec[..., 0])
    jet = vec.sum(1)
    jet_eta, jet_phi = np.arcsinh(jet[:, 2] / np.hypot(jet[:, 0], jet[:, 1])), np.arctan2(jet[:, 1], jet[:, 0])
    feats[..., 5] = eta - jet_eta[:, None]
    feats[..., 6] = np.angle(np.exp(1j * (phi - jet_phi[:, None])))
    feats[..., 8] = 1.0  # every particle a charged hadron
    feats *= mask[..., None]
    return (ParticleTensors(feats.astype(np.float32), vec.astype(np.float32), mask,
                            FEATURE_SETS["full"]), labels)


@pytest.mark.parametrize("name", ["CNN", "GRU", "LorentzNet", "L-GATr"])
def test_new_models_learn_on_a_tiny_sample(name):
    """Jet mass separates the toy classes; after a few epochs the validation loss must sit
    well below its starting value ln 2 ≈ 0.693 (untrained logits are near zero)."""
    t, y = toy_mass_jets(192, np.random.default_rng(5))
    train, val = np.arange(128), np.arange(128, 192)
    fitted = fit_network(network(name).train(), t, y, train, val,
                         {"epochs": 10, "batch_size": 32, "lr": 0.01, "progress": False,
                          "threads": 1}, seed=0, name=name)
    losses = [row["val_loss"] for row in fitted.history]
    assert losses[0] < 1.0 and min(losses) < 0.6 * math.log(2), losses


def test_flop_counter_counts_two_flops_per_multiply_add():
    class MLPOnParticles(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(17, 24), torch.nn.ReLU(),
                                           torch.nn.Linear(24, 5))

        def forward(self, x, v, mask):
            return self.net(x[:, 0])

    x, v, mask = random_jets(np.random.default_rng(6), n=7)
    assert flops_per_jet(MLPOnParticles(), (x, v, mask)) == 2 * (17 * 24 + 24 * 5)


def test_lorentz_scalars_must_exist_in_the_feature_set():
    kin = ParticleTensors(np.zeros((1, 1, 7), np.float32), np.zeros((1, 1, 4), np.float32),
                          np.ones((1, 1), bool), FEATURE_SETS["kin"])
    with pytest.raises(UsageError, match="LorentzNet takes the scalars part_charge"):
        build_network("LorentzNet", SIZES["LorentzNet"], kin, 2)


def test_part_exports_to_onnx_and_agrees_with_torch(tmp_path):
    """weaver-core's ParT goes through the TorchScript exporter; onnxruntime matches torch
    on jets of another batch size and particle count than the export example."""
    from hepchain.reco.jettag.export import export_onnx, onnx_agreement

    torch.manual_seed(0)
    net = build_network("ParT", {"embed": [16, 16], "pair_embed": [8, 8], "heads": 2,
                                 "layers": 1, "cls_layers": 1}, SHAPE, 2).eval()
    path = export_onnx(net, random_jets(np.random.default_rng(7)), tmp_path / "part.onnx",
                       ["QCD", "top"])
    assert onnx_agreement(net, path, random_jets(np.random.default_rng(8), n=3, p=20)) < 1e-5


@pytest.mark.parametrize("name", ["PFN", "EFN", "CNN", "GRU", "LorentzNet", "L-GATr"])
def test_zoo_exports_to_onnx_and_agrees_with_torch(name, tmp_path):
    """Every zoo network runs in onnxruntime like in torch, on jets of another batch size and
    particle count than the export example. The networks are fresh (never called): L-GATr's
    lazily built tables must not be cached from inside the exporter's trace."""
    from hepchain.reco.jettag.export import export_onnx, onnx_agreement

    net = network(name)
    path = export_onnx(net, random_jets(np.random.default_rng(7)), tmp_path / f"{name}.onnx",
                       ["QCD", "top"])
    assert onnx_agreement(net, path, random_jets(np.random.default_rng(8), n=3, p=20)) < 1e-5


def test_initial_weights_depend_on_the_seed_and_name_not_on_the_order():
    """`bench` and `compare` train the networks in different orders; seeded by name, the same
    network starts from the same weights in both."""
    def weights(name, seed, before=0):
        torch.manual_seed(123)
        torch.randn(before)  # whatever ran before moves torch's RNG
        net = build_network(name, SIZES[name], SHAPE, 2, seed)
        return torch.cat([p.detach().flatten() for p in net.parameters()])

    assert torch.equal(weights("LorentzNet", 1), weights("LorentzNet", 1, before=1000))
    assert not torch.equal(weights("LorentzNet", 1), weights("LorentzNet", 2))


def test_confusion_rows_figure_and_tight_working_points(tmp_path):
    from hepchain.core.result import Result
    from hepchain.reco.jettag import plots
    from hepchain.reco.jettag.evaluate import add_confusion, add_tagger_metrics

    classes = ("QCD", "Hbb", "Tbl")
    y = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    predicted = np.array([0, 0, 0, 1, 1, 1, 0, 2, 2, 1])
    probs = np.full((10, 3), 0.1)
    probs[np.arange(10), predicted] = 0.8
    result = Result(study="jettag", preset="test")
    cm = add_confusion(result, "net", classes, y, probs)
    np.testing.assert_allclose(cm, [[3 / 4, 1 / 4, 0], [1 / 3, 2 / 3, 0], [0, 1 / 3, 2 / 3]])
    row = result.get("classified as itself (QCD)", "net")
    assert row.value == 0.75 and row.std == pytest.approx(np.sqrt(0.75 * 0.25 / 4))
    assert (tmp_path / plots.confusion_figure({"net": cm, "other": cm}, classes,
                                              tmp_path / "confusion.png")).is_file()
    rng = np.random.default_rng(9)
    y_val = np.repeat([0, 1, 2], 200)
    p_val = rng.dirichlet(np.ones(3), 600)
    add_tagger_metrics(result, "net", classes, y_val, p_val, y_val, p_val, [0.3, 0.5],
                       {"Tbl": 0.99})
    assert np.isfinite(result.get("QCD 1/ε_B at ε_S = 0.5 (Hbb)", "net").value)
    # at ε_S = 0.99 nearly all background passes too: 1/ε_B close to 1
    assert 1.0 <= result.get("QCD 1/ε_B at ε_S = 0.99 (Tbl)", "net").value < 1.1
    assert result.get("accuracy", "net").reference is None


def test_published_jetclass_accuracy_is_printed_beside_part_on_the_ten_classes():
    from hepchain.core.result import Result
    from hepchain.reco.jettag.evaluate import JETCLASS_CLASSES, add_tagger_metrics

    rng = np.random.default_rng(3)
    y = np.repeat(np.arange(10), 30)
    p = rng.dirichlet(np.ones(10), y.size)
    for classes in (JETCLASS_CLASSES, JETCLASS_CLASSES[:9]):
        result = Result(study="jettag", preset="test")
        for method in ("ParT", "PFN"):
            add_tagger_metrics(result, method, classes, y % len(classes), p[:, :len(classes)],
                               y % len(classes), p[:, :len(classes)], [0.5])
        ref = result.get("accuracy", "ParT").reference
        assert (ref is not None and ref.value == 0.861 and not ref.same_dataset) == (
            len(classes) == 10)
        assert result.get("accuracy", "PFN").reference is None


def test_paper_gpu_preset_has_the_published_network_sizes():
    """Trainable parameters of the JetClass networks (17 features, 10 classes) counted from
    jet-universe/particle_transformer's networks/ with weaver-core (reference/tagging.md §3.5)."""
    from hepchain.core import config

    models = config.load_presets("jettag")["paper-gpu"]["models"]
    published = {"ParT": 2_143_486, "ParticleNet": 370_156, "PFN": 86_154}
    for name, count in published.items():
        net = build_network(name, models[name], SHAPE, 10)
        assert sum(p.numel() for p in net.parameters() if p.requires_grad) == count, name


def test_paper_preset_is_paper_gpu_reduced_by_one_rule():
    """``paper`` = ``paper-gpu`` with every width and head count halved and every stack of
    repeated blocks halved (rounded up, first blocks kept), for every model alike."""
    from hepchain.core import config

    presets = config.load_presets("jettag")
    gpu, paper = presets["paper-gpu"], presets["paper"]

    def half(w: int) -> int:
        return w // 2

    def blocks(items: list) -> list:
        return items[:math.ceil(len(items) / 2)]

    widths = ("phi", "f", "embed", "pair_embed", "fc")
    counts = ("layers", "cls_layers", "blocks", "max_depth")
    scalars = ("heads", "hidden", "mv_channels", "s_channels", "n_estimators")
    for name, spec in gpu["models"].items():
        want = dict(spec)
        for key in widths:
            if key in spec:
                want[key] = [[half(v[0]), v[1]] if isinstance(v, list) else half(v)
                             for v in spec[key]]  # ParticleNet's fc: [width, dropout]
        for key in counts:
            if key in spec:
                want[key] = math.ceil(spec[key] / 2)
        for key in scalars:
            if key in spec:
                want[key] = half(spec[key])
        if "convs" in spec:
            want["convs"] = [[k, [half(c) for c in chans]] for k, chans in blocks(spec["convs"])]
        if "channels" in spec:
            want["channels"] = [half(c) for c in blocks(spec["channels"])]
        assert paper["models"][name] == want, name
    assert paper["max_particles"] == half(gpu["max_particles"])
