"""The simulated collider in time: drifting hidden optimum, decaying and topped-up currents,
beam aborts, and 1 Hz readouts with noise.

``Collider.run(settings)`` steps the machine one second per row of ``settings`` (12 knob values
each) and returns the readouts an operator sees: specific luminosity, LER/HER beam size at the
X-ray monitors, LER/HER background rates, currents and luminosity. ``Collider.response`` is the
noise-free physics (for truth and tests).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hepchain.accelerator.ipknob.backgrounds import background_rates
from hepchain.accelerator.ipknob.luminosity import blowup, luminosity, specific_luminosity
from hepchain.accelerator.ipknob.machine import Machine, knob_scales, knob_terms


@dataclass(frozen=True)
class Noise:
    """Measurement noise, drift and abort levels (reference §6.7)."""

    lsp: float = 0.023  # relative, per 1 Hz sample (Belle II online luminosity, 2.3 %)
    size: float = 0.015  # relative, X-ray monitor
    background: float = 0.03  # relative
    current: float = 0.001  # relative, DCCT
    drift: float = 0.15  # stationary rms of the optimum's drift, in knob scales
    drift_tau_s: float = 1800.0  # correlation time of the drift
    abort_per_s: float = 5e-5  # beam-abort rate

    @classmethod
    def from_dict(cls, data: dict | None) -> Noise:
        return cls(**(data or {}))


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

    @property
    def optimum(self) -> np.ndarray:
        """The hidden optimum now (knob units)."""
        return self.optimum0 + self.drift

    def response(self, offsets: np.ndarray, currents: np.ndarray) -> dict[str, np.ndarray]:
        """Noise-free machine response to knob ``offsets`` (..., 12) at ``currents`` (..., 2) [A].

        Returns luminosity [cm⁻² s⁻¹], lsp [10³¹ cm⁻² s⁻¹ mA⁻²], size (monitor σ_y [m], (..., 2))
        and background (rates per ring, (..., 2)).
        """
        m = self.machine
        size2, div2 = knob_terms(offsets, m)
        cur = np.asarray(currents, float)
        pops = m.bunch_population(cur)
        lumi = luminosity(size2, div2, pops, m)
        b = blowup(size2, pops, m)
        eps = np.array([r.eps_y for r in m.rings]) * b**2 + m.leak * size2 / np.array(
            [r.beta_y for r in m.rings])
        ring_size = np.sqrt(eps * m.beta_monitor)
        bg = background_rates(cur, ring_size, lumi, size2, div2, m, self.lumi_ref)
        with np.errstate(divide="ignore", invalid="ignore"):
            lsp = specific_luminosity(lumi, cur, m)
        return {"luminosity": lumi, "lsp": np.nan_to_num(lsp), "size": ring_size,
                "background": bg}

    def true_lsp(self, setting: np.ndarray) -> np.ndarray:
        """Noise-free L_sp at ``setting`` (..., 12), now, at the target currents."""
        return self.response(np.asarray(setting) - self.optimum, self.target)["lsp"]

    def lsp_fraction(self, setting: np.ndarray) -> np.ndarray:
        """L_sp at ``setting`` relative to L_sp at the hidden optimum (same currents, now)."""
        return self.true_lsp(setting) / self.true_lsp(self.optimum)

    def true_background(self, setting: np.ndarray) -> np.ndarray:
        """Noise-free background rates (..., 2) at ``setting``, at the target currents."""
        return self.response(np.asarray(setting) - self.optimum, self.target)["background"]

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
        resp = self.response(offsets, currents)
        n, rng = self.noise, self.rng

        def noisy(x: np.ndarray, rel: float) -> np.ndarray:
            return x * (1 + rel * rng.standard_normal(x.shape))

        size = noisy(resp["size"], n.size) * 1e6
        bg = noisy(resp["background"], n.background)
        cur = noisy(currents, n.current) * 1e3
        return {"time": np.arange(t_len, dtype=float), "lsp": noisy(resp["lsp"], n.lsp),
                "ler_size": size[:, 0], "her_size": size[:, 1],
                "ler_background": bg[:, 0], "her_background": bg[:, 1],
                "ler_current": cur[:, 0], "her_current": cur[:, 1],
                "luminosity": noisy(resp["luminosity"], n.lsp) / 1e34, "aborted": aborted}
