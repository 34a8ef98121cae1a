"""The simulated collider in time: drifting hidden optimum, decaying and topped-up currents,
beam aborts, and 1 Hz readouts with noise.

``Collider.run(settings)`` steps the machine one second per row of ``settings`` (12 knob values
each) and returns the readouts an operator sees: specific luminosity, LER/HER beam size at the
X-ray monitors, LER/HER background rates, currents and luminosity. ``Collider.response`` is the
noise-free physics (for truth and tests).

Readout noise is relative and has two parts: white (counting statistics, e.g. the 2.3 % of the
Belle II online luminosity per 1 Hz sample) and correlated, an AR(1) process with correlation
time ``corr_s`` (x_t = a x_{t−1} + sqrt(1 − a²) e_t, a = exp(−1 s / corr_s); e.g. IP-orbit
drifts, which the KEKB orbit feedback held to ≲ 1 % of luminosity, reference §6.7). The AR(1)
state carries over from one ``run`` to the next.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from hepchain.accelerator.ipknob.backgrounds import background_rates
from hepchain.accelerator.ipknob.luminosity import blowup, luminosity, specific_luminosity
from hepchain.accelerator.ipknob.machine import (
    Machine,
    effective_offsets,
    knob_scales,
    knob_terms,
    nonclosure_emittance,
)


@dataclass(frozen=True)
class Noise:
    """Measurement noise, drift and abort levels (reference §6.7)."""

    lsp: float = 0.023  # relative white, per 1 Hz sample (Belle II online luminosity, 2.3 %)
    size: float = 0.015  # relative white, X-ray monitor
    background: float = 0.03  # relative white
    current: float = 0.001  # relative white, DCCT
    lsp_corr: float = 0.01  # relative rms of the correlated part (IP-orbit drift, ≲ 1 %)
    size_corr: float = 0.01  # relative rms of the correlated part of the monitor sizes
    background_corr: float = 0.03  # relative rms of the correlated part of the backgrounds
    corr_s: float = 60.0  # correlation time of the correlated readout noise [s]
    drift: float = 0.15  # stationary rms of the optimum's drift, in knob scales
    drift_tau_s: float = 1800.0  # correlation time of the drift
    abort_per_s: float = 5e-5  # beam-abort rate
    recovery_s: float = 300.0  # beam back after an abort (re-injection), assumed [s]

    @classmethod
    def from_dict(cls, data: dict | None) -> Noise:
        return cls(**(data or {}))

    @property
    def ar_coefficient(self) -> float:
        """Lag-1 (1 s) autocorrelation a = exp(−1/corr_s) of the correlated readout noise."""
        return float(np.exp(-1.0 / self.corr_s)) if self.corr_s > 0 else 0.0


#: readout channels with correlated noise, in the order of ``Collider.corr_state``
CORRELATED = ("lsp", "luminosity", "ler_size", "her_size", "ler_background", "her_background")


class Collider:
    """One machine state: hidden optimum (12 knob values), current setting, beam currents."""

    def __init__(self, machine: Machine, rng: np.random.Generator, optimum: np.ndarray,
                 setting: np.ndarray, target_currents: np.ndarray, noise: Noise) -> None:
        self.machine, self.rng, self.noise = machine, rng, noise
        self.optimum0 = np.asarray(optimum, float).copy()
        self.drift = np.zeros(12)
        self.setting = np.asarray(setting, float).copy()
        self.target = np.asarray(target_currents, float)
        self.currents = self.target * rng.uniform(0.99, 1.0, 2)
        self.scales = knob_scales(machine)
        nominal = machine.bunch_population(np.array([r.current for r in machine.rings]))
        self.lumi_ref = float(luminosity(np.zeros(2), np.zeros(2), nominal, machine))
        self.aborted = False
        self.corr_state = rng.standard_normal(len(CORRELATED))  # stationary start

    @property
    def optimum(self) -> np.ndarray:
        """The hidden optimum now (knob units)."""
        return self.optimum0 + self.drift

    def response(self, offsets: np.ndarray, currents: np.ndarray,
                 settings: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Noise-free machine response to knob ``offsets`` (..., 12) from the hidden optimum at
        ``currents`` (..., 2) [A]; ``settings`` are the absolute knob values (..., 12) that set
        the non-closure term of the monitors (None: the optimum is at knob 0, settings = offsets).

        Returns luminosity [cm⁻² s⁻¹], lsp [10³¹ cm⁻² s⁻¹ mA⁻²], size (monitor σ_y [m], (..., 2))
        and background (rates per ring, (..., 2)).
        """
        m = self.machine
        size2, div2 = knob_terms(effective_offsets(offsets, m), m)
        cur = np.asarray(currents, float)
        pops = m.bunch_population(cur)
        lumi = luminosity(size2, div2, pops, m)
        b = blowup(size2, pops, m)
        eps = np.array([r.eps_y for r in m.rings]) * b**2 + nonclosure_emittance(
            offsets if settings is None else settings, m)
        ring_size = np.sqrt(eps * m.beta_monitor)
        bg = background_rates(cur, ring_size, lumi, size2, div2, m, self.lumi_ref)
        with np.errstate(divide="ignore", invalid="ignore"):
            lsp = specific_luminosity(lumi, cur, m)
        return {"luminosity": lumi, "lsp": np.nan_to_num(lsp), "size": ring_size,
                "background": bg}

    def true_lsp(self, setting: np.ndarray) -> np.ndarray:
        """Noise-free L_sp at ``setting`` (..., 12), now, at the target currents."""
        setting = np.asarray(setting, float)
        return self.response(setting - self.optimum, self.target, setting)["lsp"]

    def lsp_fraction(self, setting: np.ndarray) -> np.ndarray:
        """L_sp at ``setting`` relative to L_sp at the hidden optimum (same currents, now)."""
        return self.true_lsp(setting) / self.true_lsp(self.optimum)

    def true_background(self, setting: np.ndarray) -> np.ndarray:
        """Noise-free background rates (..., 2) at ``setting``, at the target currents."""
        setting = np.asarray(setting, float)
        return self.response(setting - self.optimum, self.target, setting)["background"]

    def _step_state(self) -> None:
        n = self.noise
        a = np.exp(-1.0 / n.drift_tau_s)
        self.drift = a * self.drift + np.sqrt(1 - a * a) * n.drift * self.scales * \
            self.rng.standard_normal(12)
        if self.aborted:
            return
        lifetimes = np.array([r.lifetime_s for r in self.machine.rings])
        self.currents = self.currents * np.exp(-1.0 / lifetimes)
        low = self.currents < 0.99 * self.target
        self.currents[low] = self.target[low]  # top-up injection
        if self.rng.random() < n.abort_per_s:
            self.aborted = True
            self.currents = np.zeros(2)

    def reinject(self) -> None:
        """Bring the beams back after an abort: ``recovery_s`` seconds pass (the optimum keeps
        drifting) and both rings are filled to their target currents."""
        for _ in range(int(self.noise.recovery_s)):
            self._step_state()
        self.aborted = False
        self.currents = self.target * self.rng.uniform(0.99, 1.0, 2)

    def run(self, settings: np.ndarray) -> dict[str, np.ndarray]:
        """Apply ``settings`` (T, 12), one per second, and return the 1 Hz readouts (noisy).

        Keys: time [s], lsp, ler_size / her_size [µm], ler_background / her_background,
        ler_current / her_current [mA], luminosity [10³⁴ cm⁻² s⁻¹], aborted (bool, per sample).
        """
        settings = np.atleast_2d(np.asarray(settings, float))
        t_len = len(settings)
        offsets, currents, aborted = np.empty((t_len, 12)), np.empty((t_len, 2)), np.empty(t_len, bool)
        for t in range(t_len):
            self._step_state()
            offsets[t] = settings[t] - self.optimum
            currents[t] = self.currents
            aborted[t] = self.aborted
        self.setting = settings[-1].copy()
        resp = self.response(offsets, currents, settings)
        n, rng = self.noise, self.rng
        corr = self._correlated(t_len)
        levels = {"lsp": (n.lsp, n.lsp_corr), "luminosity": (n.lsp, n.lsp_corr),
                  "ler_size": (n.size, n.size_corr), "her_size": (n.size, n.size_corr),
                  "ler_background": (n.background, n.background_corr),
                  "her_background": (n.background, n.background_corr)}
        truth = {"lsp": resp["lsp"], "luminosity": resp["luminosity"] / 1e34,
                 "ler_size": resp["size"][:, 0] * 1e6, "her_size": resp["size"][:, 1] * 1e6,
                 "ler_background": resp["background"][:, 0],
                 "her_background": resp["background"][:, 1]}
        out = {"time": np.arange(t_len, dtype=float)}
        for c, name in enumerate(CORRELATED):
            white, red = levels[name]
            out[name] = truth[name] * (1 + white * rng.standard_normal(t_len) + red * corr[:, c])
        cur = currents * (1 + n.current * rng.standard_normal(currents.shape)) * 1e3
        return {**out, "ler_current": cur[:, 0], "her_current": cur[:, 1], "aborted": aborted}

    def _correlated(self, t_len: int) -> np.ndarray:
        """The next ``t_len`` seconds of the unit-variance AR(1) noise, (t_len, channels)."""
        a = self.noise.ar_coefficient
        innovations = self.rng.standard_normal((t_len, len(CORRELATED)))
        out, _ = lfilter([np.sqrt(1 - a * a)], [1.0, -a], innovations, axis=0,
                         zi=a * self.corr_state[None, :])
        self.corr_state = out[-1].copy()
        return out
