"""ipknob: BO's background-constraint options on a toy machine whose luminosity optimum lies
beyond the background limit, and their config validation (small and fast)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hepchain.accelerator.ipknob.tuning import BOSettings, Session, bo_optimise, bo_settings
from hepchain.core.errors import UsageError


class ToyCollider:
    """One knob x (knob scale 1): L_sp = 1 - 0.1 (x - 1)², background 1 + 0.3 x in both
    rings, 1 % readout noise, no beam aborts. With the limit at 1.1 × the start's rate (x = 0) only
    x ≤ 1/3 is allowed; the luminosity optimum x = 1 is not."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.scales = np.ones(12)
        self.setting = np.zeros(12)

    def true_background(self, setting: np.ndarray) -> np.ndarray:
        bg = 1.0 + 0.3 * np.asarray(setting, float)[..., 0]
        return np.stack([bg, bg], axis=-1)

    def true_lsp(self, setting: np.ndarray) -> np.ndarray:
        return 1.0 - 0.1 * (np.asarray(setting, float)[..., 0] - 1.0) ** 2

    def lsp_fraction(self, setting: np.ndarray) -> np.ndarray:
        return self.true_lsp(setting)

    def run(self, settings: np.ndarray) -> dict[str, np.ndarray]:
        noise = 1 + 0.01 * self.rng.standard_normal((3, len(settings)))
        bg = self.true_background(settings)
        return {"lsp": self.true_lsp(settings) * noise[0],
                "ler_background": bg[:, 0] * noise[1], "her_background": bg[:, 1] * noise[2],
                "aborted": np.zeros(len(settings), bool)}


@pytest.fixture(autouse=True)
def one_thread():
    """BO on one thread, as the study runs it (GP algebra this small only waits on a second)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _violations(constraint: str, seed: int) -> tuple[int, float]:
    session = Session(ToyCollider(seed), constraint, dwell_s=4, bg_limit=1.1)
    cfg = BOSettings(constraint=constraint, box=1.5, travel=0.2, init=2, restarts=1,
                     raw_samples=16, fit_maxiter=20)
    bo_optimise(session, np.zeros(12), [0], 8, cfg, np.random.default_rng(seed))
    return session.trace.violations, session.trace.final


def test_safe_constraint_keeps_proposals_below_the_background_limit():
    """In 8 measurements unconstrained BO walks to the luminosity optimum beyond the limit and
    the probability-of-feasibility weighting ('logei') still steps over it; the safe-set rule
    stays below it and still gains luminosity over the start (0.9 → ≥ 0.94, x ≳ 0.23)."""
    none = [_violations("none", s)[0] for s in (0, 1)]
    logei = [_violations("logei", s)[0] for s in (0, 1)]
    safe = [_violations("safe", s) for s in (0, 1)]
    assert min(none) >= 4
    assert all(v <= 1 for v, _ in safe) and sum(v for v, _ in safe) < sum(logei)
    assert all(final >= 0.94 for _, final in safe)


def test_unknown_constraint_is_one_sentence():
    with pytest.raises(UsageError, match=r"^Unknown tuning\.bo\.constraint 'saf'; use one "
                                         r"of none, logei, safe\.$"):
        bo_settings({"bo": {"constraint": "saf"}})
    with pytest.raises(UsageError, match=r"^Unknown tuning\.bo settings \[.constrain.\]"):
        BOSettings.from_dict({"constrain": "safe"})
    bo, extra = bo_settings({"bo": {"constraint": "safe"}, "bo_baselines": ["none", "logei"]})
    assert bo.constraint == "safe"
    assert [b.constraint for b in extra.values()] == ["none", "logei"]


def test_random_initial_points_stay_within_their_step_of_the_start():
    from hepchain.accelerator.ipknob.tuning import initial_points

    for step in (1.0, 0.25):
        cfg = BOSettings(travel=0.2, init=4, init_step=step)
        xs = initial_points(cfg, 12, np.random.default_rng(0))
        assert len(xs) == 4 and (xs[0] == 0.5).all()
        offsets = np.abs(np.array(xs[1:]) - 0.5)
        assert offsets.max() <= 0.2 * step and offsets.max() > 0.15 * step  # fills the step
