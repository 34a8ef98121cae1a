"""ipknob: simulator physics, scans and preprocessing, the real-log loader and its errors,
learning and tuning checks (small and fast)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from hepchain.accelerator.ipknob.dataset import Filters, KnobScalers, prepare, resample
from hepchain.accelerator.ipknob.logs import SCHEMA, load_scan_log
from hepchain.accelerator.ipknob.luminosity import blowup, luminosity
from hepchain.accelerator.ipknob.machine import (
    KNOB_NAMES,
    Machine,
    effective_offsets,
    knob_index,
    knob_scales,
    knob_terms,
)
from hepchain.accelerator.ipknob.operators import Operator, operators_from_config
from hepchain.accelerator.ipknob.scan import ScanPlan, simulate_scan, step_means
from hepchain.accelerator.ipknob.simulator import Collider, Noise
from hepchain.core.errors import DataError

BENCH_N = np.array([4.459e10, 3.579e10])  # reference §6.1 bunch populations (LER, HER)


def geometric_ratio(knob: str, offset: float) -> float:
    m = Machine(bb_kappa=0.0)
    off = np.zeros((2, 12))
    off[1, knob_index(knob)] = offset
    size2, div2 = knob_terms(off, m)
    lumi = luminosity(size2, div2, BENCH_N, m, beam_beam=False)
    return float(lumi[1] / lumi[0])


def test_luminosity_matches_reference_overlap_integral():
    m = Machine(bb_kappa=0.0)
    per_pair = luminosity(np.zeros(2), np.zeros(2), BENCH_N, m, beam_beam=False) / m.n_bunches
    assert per_pair == pytest.approx(3.65e31, rel=0.01)  # reference §6.5
    # reference §6.6: LER perturbations and the resulting L/L0
    for knob, offset, expected in [("LER_R1", 0.004, 0.959), ("LER_R1", 0.008, 0.862),
                                   ("LER_ETAY", 0.1e-3, 0.955), ("LER_ETAY", 0.2e-3, 0.850)]:
        assert geometric_ratio(knob, offset) == pytest.approx(expected, abs=0.002)


def test_luminosity_symmetric_and_maximal_at_optimum():
    rng = np.random.default_rng(3)
    m = Machine()
    optimum = rng.normal(0, 1e-3, 12)
    col = Collider(m, rng, optimum, optimum, np.array([1.2, 1.0]), Noise())
    best = col.true_lsp(optimum)
    for k in range(12):
        step = np.zeros(12)
        step[k] = 0.7 * col.scales[k]
        up, down = col.true_lsp(optimum + step), col.true_lsp(optimum - step)
        assert up == pytest.approx(down, rel=1e-9)
        assert up < best * 0.99, KNOB_NAMES[k]


def test_beam_beam_lowers_specific_luminosity_with_current():
    rng = np.random.default_rng(0)
    col = Collider(Machine(), rng, np.zeros(12), np.zeros(12), np.array([1.2, 1.0]), Noise())
    lsp = col.response(np.zeros((2, 12)), np.array([[0.3, 0.25], [1.2, 1.0]]))["lsp"]
    assert lsp[1] < 0.9 * lsp[0]


def test_beam_beam_blowup_follows_the_opposite_beam():
    """B of one beam grows with the other beam's charge and falls with the other beam's size;
    its own charge and size do not enter."""
    m = Machine()
    nominal = m.bunch_population(np.array([r.current for r in m.rings]))
    her_charge = np.array([0.5, 1.0, 1.5])[:, None] * np.array([0.0, 1.0]) + np.array([1.0, 0.0])
    b = blowup(np.zeros(2), nominal * her_charge, m)
    assert np.all(np.diff(b[:, 0]) > 0) and np.allclose(b[:, 1], b[0, 1])
    her_bigger = blowup(np.array([0.0, m.rings[1].sigma_y0**2]), nominal, m)
    ler_bigger = blowup(np.array([m.rings[0].sigma_y0**2, 0.0]), nominal, m)
    assert her_bigger[0] < b[1, 0] and her_bigger[1] == pytest.approx(b[1, 1])
    assert ler_bigger[1] < b[1, 1] and ler_bigger[0] == pytest.approx(b[1, 0])


def test_crosstalk_moves_the_partner_term_and_the_one_knob_optimum():
    """Changing LER R1 alone also moves LER η_y* (by ``crosstalk`` knob scales), so the η scan's
    best value moves to −2c/(1+c²) times the R1 error instead of staying at the hidden optimum."""
    c = 0.15
    m = Machine(crosstalk=c)
    scales = knob_scales(m)
    r1, eta = knob_index("LER_R1"), knob_index("LER_ETAY")
    z = np.zeros(12)
    z[r1] = 1.0
    moved = effective_offsets(z * scales, m) / scales
    assert moved[eta] == pytest.approx(c) and np.count_nonzero(moved) == 2
    grid = np.linspace(-0.6, 0.6, 241)
    offsets = np.zeros((grid.size, 12))
    offsets[:, r1] = scales[r1]
    offsets[:, eta] = grid * scales[eta]
    for machine, expected in [(m, -2 * c / (1 + c * c)), (Machine(crosstalk=0.0), 0.0)]:
        col = Collider(machine, np.random.default_rng(0), np.zeros(12), np.zeros(12),
                       np.array([1.2, 1.0]), Noise())
        lsp = col.response(offsets, np.array([1.2, 1.0]))["lsp"]
        assert grid[np.argmax(lsp)] == pytest.approx(expected, abs=0.01)


@pytest.mark.parametrize("corr_s", [10.0, 0.0])
def test_readout_noise_autocorrelation_matches_the_setting(corr_s):
    """The correlated L_sp noise has lag-1 autocorrelation exp(−1 s/corr_s), also across
    successive runs; corr_s = 0 is white noise."""
    noise = Noise(lsp=0.0, lsp_corr=0.01, corr_s=corr_s, drift=0.0, abort_per_s=0.0)
    col = Collider(Machine(), np.random.default_rng(5), np.zeros(12), np.zeros(12),
                   np.array([1.2, 1.0]), noise)
    lsp = np.concatenate([col.run(np.zeros((400, 12)))["lsp"] for _ in range(10)])
    x = lsp / lsp.mean() - 1
    lag1 = np.corrcoef(x[:-1], x[1:])[0, 1]
    assert lag1 == pytest.approx(noise.ar_coefficient, abs=0.03)
    assert x.std() == pytest.approx(0.01, rel=0.15)


def test_background_rises_far_from_optimum():
    rng = np.random.default_rng(0)
    col = Collider(Machine(), rng, np.zeros(12), np.zeros(12), np.array([1.2, 1.0]), Noise())
    far = np.zeros(12)
    far[knob_index("LER_R1")] = 2 * col.scales[knob_index("LER_R1")]
    assert col.true_background(far)[0] > 1.2 * col.true_background(np.zeros(12))[0]


def test_scan_is_linear_with_dwell_and_readouts():
    rng = np.random.default_rng(1)
    _, scan, values = simulate_scan(rng, Machine(), Noise(abort_per_s=0.0), ScanPlan(), "HER_R2")
    u, lsp = step_means(scan["knob_value"], scan["lsp"])
    assert len(scan["time"]) % len(values) == 0 and np.allclose(u, values)
    assert np.allclose(np.diff(values), values[1] - values[0])
    assert all(len(scan[c]) == len(scan["time"]) for c in ("ler_size", "her_background"))
    assert np.all(lsp > 0)


def test_resample_means_segments():
    x = np.arange(200.0)
    r = resample(x, 100)
    assert r.shape == (100,) and np.allclose(r, np.arange(0.5, 200, 2))


@pytest.fixture(scope="module")
def config():
    from importlib import resources

    return yaml.safe_load(resources.files("hepchain.configs").joinpath("ipknob.yaml")
                          .read_text())["quick"]


@pytest.fixture(scope="module")
def scans(config):
    """A few simulated scans (with operator choices), no aborts."""
    rng = np.random.default_rng(7)
    ops = operators_from_config(config["simulation"]["operators"])
    out = []
    for i in range(12):
        _, scan, _ = simulate_scan(rng, Machine(), Noise(abort_per_s=0.0),
                                   ScanPlan(low_current_fraction=0.0), KNOB_NAMES[i % 3])
        scan["set_value"] = ops[i % len(ops)].choose(scan, rng)
        scan["scan_id"] = f"s{i}"
        out.append(scan)
    return out


def test_filters_drop_zero_abort_and_edge(scans):
    bad = [dict(scans[0], set_value=0.0), dict(scans[1], aborted=True),
           dict(scans[2], set_value=float(np.min(scans[2]["knob_value"])))]
    data = prepare(bad + scans[3:], 100, Filters())
    expected = prepare(scans[3:], 100, Filters()).dropped  # the operators' own edge choices
    for why in ("set value 0", "beam abort", "set value at scan edge"):
        expected[why] = expected.get(why, 0) + 1
    assert data.dropped == expected
    assert data.x.shape[1:] == (6, 100)


def _log_frame(scans) -> pd.DataFrame:
    names = {"ler_size": "ler_beam_size", "her_size": "her_beam_size"}
    frames = []
    for s in scans:
        cols = {names.get(c, c): s[c]
                for c in ("time", "knob_value", "lsp", "ler_size", "her_size", "ler_background",
                          "her_background", "ler_current", "her_current", "luminosity")}
        frames.append(pd.DataFrame({"scan_id": s["scan_id"], "knob": s["knob"],
                                    "set_value": s["set_value"], **cols}))
    return pd.concat(frames, ignore_index=True)[list(SCHEMA)]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_log_loader_gives_the_same_inputs(scans, tmp_path, suffix):
    df = _log_frame(scans[:4])
    path = tmp_path / f"log{suffix}"
    df.to_csv(path, index=False) if suffix == ".csv" else df.to_parquet(path)
    loaded = load_scan_log(path)
    assert [s["scan_id"] for s in loaded] == ["s0", "s1", "s2", "s3"]
    a, b = prepare(loaded, 100, Filters()), prepare(scans[:4], 100, Filters())
    assert np.allclose(a.x, b.x) and np.allclose(a.set_value, b.set_value)
    scalers = KnobScalers.fit(a, np.arange(len(a)))
    back = scalers.knob_from_norm(scalers.knob_to_norm(a.set_value, a.knob), a.knob)
    assert np.allclose(back, a.set_value)
    z = scalers.transform(a.x, a.knob)
    for knob in np.unique(a.knob):  # each channel standardised over a knob's scans and samples
        zk = z[a.knob == knob]
        assert np.allclose(zk.mean(axis=(0, 2)), 0) and np.allclose(zk.std(axis=(0, 2)), 1)


def test_log_errors_are_clear(scans, tmp_path):
    df = _log_frame(scans[:2])
    cases = {
        "missing": (df.drop(columns=["her_background"]), "lacks column(s) ['her_background']"),
        "nan": (df.assign(lsp=df["lsp"].where(df.index != 5)), "NaN"),
        "short": (df[(df["scan_id"] != "s1") | (df.index % 5 == 0)], "fewer than the 100 segments"),
        "text": (df.assign(ler_current="high"), "not numeric"),
    }
    for name, (frame, text) in cases.items():
        path = tmp_path / f"{name}.csv"
        frame.to_csv(path, index=False)
        with pytest.raises(DataError, match=text.replace("(", r"\(").replace(")", r"\)")
                           .replace("[", r"\[").replace("]", r"\]")):
            load_scan_log(path)
    with pytest.raises(DataError, match="does not exist"):
        load_scan_log(tmp_path / "nope.csv")
    (tmp_path / "log.txt").write_text("x")
    with pytest.raises(DataError, match=r"use \.csv or \.parquet"):
        load_scan_log(tmp_path / "log.txt")


def test_operator_choice_tracks_the_peak(scans):
    """Noise-free operator who only looks at L_sp picks a value near the hidden optimum."""
    op = Operator("plain", size_weight=0.0, bg_weight=0.0, resolution=0.0, noise=0.0)
    rng = np.random.default_rng(0)
    errs = []
    for s in scans:
        u, _ = step_means(s["knob_value"], s["lsp"])
        if u.min() < s["optimum"] < u.max():
            errs.append(abs(op.choose(s, rng) - s["optimum"]) / (np.ptp(u) / (len(u) - 1)))
    assert len(errs) >= 5 and np.median(errs) < 1.0


def _synthetic_scan(n_steps: int = 9, dwell: int = 10) -> dict[str, np.ndarray]:
    """Noise-free scan: L_sp peaked at knob 0, LER background rising for knob > −2 (steps of 1)."""
    u = np.repeat(np.linspace(-4, 4, n_steps), dwell)
    flat = np.ones_like(u)
    return {"knob_value": u, "lsp": 1 / np.sqrt(1 + u**2 / 8), "ler_size": flat,
            "her_size": flat, "ler_background": 1 + 0.05 * np.clip(u + 2, 0, None),
            "her_background": flat}


def test_operator_profiles_choose_differently_on_the_same_scan():
    """An operator who weighs background sets the knob on the low-background side of the L_sp
    peak; one who only follows L_sp sets it at the peak."""
    scan = _synthetic_scan()
    rng = np.random.default_rng(0)
    exact = {"resolution": 0.0, "noise": 0.0, "conservatism": 0.0}
    lumi = Operator("L_sp only", size_weight=0.0, bg_weight=0.0, **exact).choose(scan, rng)
    careful = Operator("background", size_weight=0.0, bg_weight=4.0, bg_tolerance=0.03,
                       **exact).choose(scan, rng)
    assert abs(lumi) < 0.25
    assert careful < lumi - 0.5


def test_models_learn_the_operators_choice(config, tmp_path):
    """On a small simulated set, CNN and WS beat predicting the scan centre."""
    from hepchain.accelerator.ipknob.dataset import generate_scans, read_scans
    from hepchain.accelerator.ipknob.setvalue import run_split

    torch.manual_seed(0)
    generate_scans(tmp_path / "data", n_scans=260, seed=11, settings=config["simulation"],
                   progress=False)
    data = prepare(read_scans(tmp_path / "data"), 100, Filters())
    split = data.split(0, n_val=30, n_test=40)
    cfg = {**config, "train": {**config["train"], "epochs": 40}}
    out = run_split(data, split, cfg, 0, tmp_path, Machine())
    centre = np.array([0.5 * (data.lo[i] + data.hi[i]) for i in split.test])
    l1_centre = float(np.mean(np.abs(centre - data.set_value[split.test]) / data.step[split.test]))
    assert out.l1_step["CNN"] < 0.8 * l1_centre
    assert out.l1_step["WS"] < 0.8 * l1_centre
    assert out.ws_weights.shape == (6,) and out.ws_weights[0] > 0  # more L_sp -> higher score


def test_bo_one_knob_improves_luminosity():
    from hepchain.accelerator.ipknob.tuning import BOSettings, Session, bo_one_knob

    rng = np.random.default_rng(2)
    m = Machine()
    k = knob_index("LER_R1")
    optimum = np.zeros(12)
    setting = optimum.copy()
    col = Collider(m, rng, optimum, setting, np.array([1.2, 1.0]), Noise(drift=0.0))
    col.setting[k] = 1.2 * col.scales[k]
    start = float(col.lsp_fraction(col.setting))
    session = Session(col, "bo", dwell_s=10, bg_limit=1.5)
    trace = bo_one_knob(session, ["LER_R1"], 8, BOSettings(restarts=2, raw_samples=32), rng)
    assert trace.n == 8 and trace.final > start + 0.5 * (1 - start)


def test_stopping_count_uses_only_the_methods_own_estimate(monkeypatch):
    """Nelder–Mead's incumbent estimate and the stopping count are the same when the truth the
    trace is scored with is replaced by nonsense: the count never reads the true L_sp."""
    from hepchain.accelerator.ipknob.tuning import Session, Trace, nelder_mead

    def run() -> tuple[list[float], list[float]]:
        rng = np.random.default_rng(4)
        k = knob_index("HER_R2")
        col = Collider(Machine(), rng, np.zeros(12), np.zeros(12), np.array([1.2, 1.0]),
                       Noise(drift=0.0, abort_per_s=0.0))
        col.setting[k] = col.scales[k]
        trace = nelder_mead(Session(col, "nm", dwell_s=5, bg_limit=2.0), ["HER_R2"], 12)
        return trace.believed, trace.fraction

    believed, fraction = run()
    monkeypatch.setattr(Collider, "lsp_fraction", lambda self, setting: -1.0)
    believed_blind, fraction_blind = run()
    assert believed == believed_blind and fraction != fraction_blind
    assert np.all(np.diff(believed) >= 0)  # the best measured L_sp never decreases
    level = float(np.median(believed))
    trace = Trace("nm", fraction=fraction_blind, believed=believed_blind)
    assert trace.first_believing(level) == 1 + int(np.argmax(np.asarray(believed) >= level))


def test_ipknob_run_is_one_split_reproducible_per_seed(config, tmp_path):
    """The run seed chooses the split: same seed -> identical numbers, other seed -> others."""
    from _helpers import assert_seed_reproducible

    overrides = {"n_scans": 150, "split": {"n_train": 60, "n_val": 15, "n_test": 20},
                 "train.epochs": 3, "tuning": {}}
    assert_seed_reproducible("ipknob", overrides, tmp_path)


def test_ipknob_tuning_comparison_is_reproducible_per_seed(tmp_path):
    """The tuning comparison (BoTorch BO, Nelder-Mead, operators' scans) with a small budget:
    the same seed twice gives the same numbers, BO's included (on one machine: across
    machines BoTorch's rows can differ slightly, docs/linac.md "How to run")."""
    from _helpers import measured_values
    from hepchain.core.study import run_study

    overrides = {"n_scans": 150, "split": {"n_train": 60, "n_val": 15, "n_test": 20},
                 "train.epochs": 3, "tuning.bo_one_knob_budget": 4, "tuning.bo_all_budget": 8,
                 "tuning.nm_budget": 8, "tuning.bo.restarts": 1, "tuning.bo.raw_samples": 16,
                 "tuning.bo.fit_maxiter": 10}
    runs = [measured_values(run_study("ipknob", "quick", tmp_path / f"run{i}", seed=0,
                                      overrides=overrides)) for i in range(2)]
    bo = {k: v for k, v in runs[0].items() if k[1].startswith("BO")}
    assert len(bo) >= 10 and all(np.isfinite(v) for v in bo.values())
    np.testing.assert_equal(runs[0], runs[1])


def test_measurement_after_a_beam_abort_reads_the_refilled_beam():
    """A dwell in which the beam aborted is not a measurement: the session re-injects and
    measures again, so it never returns the empty ring's zero background (which a safe BO
    would take for a safe setting) or zero luminosity."""
    from hepchain.accelerator.ipknob.tuning import Session

    col = Collider(Machine(), np.random.default_rng(5), np.zeros(12), np.zeros(12),
                   np.array([1.2, 1.0]), Noise(drift=0.0, abort_per_s=0.0, recovery_s=120.0))
    session = Session(col, "bo", dwell_s=10, bg_limit=1.1)
    col.aborted, col.currents = True, np.zeros(2)
    lsp, bg, read = session.measure(col.setting)
    assert not col.aborted and not read["aborted"].any()
    truth = col.true_background(col.setting)
    assert np.allclose(bg, truth, rtol=0.1) and lsp > 0.9 * float(col.true_lsp(col.setting))
    assert read["ler_current"].min() > 0.98 * 1.2e3
