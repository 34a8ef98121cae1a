"""The operators' scan: one knob stepped linearly over a range, with a dwell time per step.

A scan record (``dict``) is the unit of all later processing, whether simulated or loaded from
a real log (:mod:`.logs`); its per-sample arrays hold the 1 Hz readouts::

    knob, time [s], knob_value, lsp, ler_size, her_size, ler_background, her_background,
    ler_current, her_current [mA], luminosity [10³⁴ cm⁻² s⁻¹], aborted, set_value

Simulated scans also carry truth (never model input): ``optimum`` (the scanned knob's hidden
optimum at the end of the scan), ``offsets`` (all 12 knobs' offsets from their optimum at the
end, the scanned one set to 0), ``target_current`` [A] and ``operator``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from hepchain.accelerator.ipknob.machine import Machine, knob_index, knob_scales
from hepchain.accelerator.ipknob.simulator import Collider, Noise

CHANNELS: tuple[str, ...] = ("lsp", "ler_size", "her_size", "ler_background",
                             "her_background", "knob_value")


@dataclass(frozen=True)
class ScanPlan:
    """Ranges from which each scan's settings are drawn (knob scales = doubling offsets)."""

    half_range: tuple[float, float] = (0.9, 1.6)  # knob scales
    steps: tuple[int, int] = (7, 15)  # inclusive
    dwell_s: tuple[int, int] = (15, 40)  # inclusive, seconds per step
    start_offset: float = 0.5  # rms offset of the scanned knob from its optimum, knob scales
    other_offset: float = 0.3  # rms offset of the other knobs, knob scales
    low_current_fraction: float = 0.15  # scans taken while currents are still ramping up

    @classmethod
    def from_dict(cls, data: dict | None) -> ScanPlan:
        data = dict(data or {})
        for key in ("half_range", "steps", "dwell_s"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)


def random_collider(rng: np.random.Generator, machine: Machine, noise: Noise,
                    other_offset: float, low_current_fraction: float = 0.0) -> Collider:
    """A machine state: hidden optimum, knobs off by ``other_offset`` knob scales (rms), and
    target currents near nominal (or ramping up with probability ``low_current_fraction``)."""
    scales = knob_scales(machine)
    optimum = scales * rng.normal(0.0, 1.0, 12)
    setting = optimum + scales * rng.normal(0.0, other_offset, 12)
    nominal = np.array([r.current for r in machine.rings])
    low = rng.random() < low_current_fraction
    target = nominal * (rng.uniform(0.25, 0.6) if low else rng.uniform(0.8, 1.1, 2))
    return Collider(machine, rng, optimum, setting, target, noise)


def linear_scan(collider: Collider, knob: str, values: np.ndarray, dwell_s: int) -> dict[str, Any]:
    """Step ``knob`` through ``values`` (knob units), ``dwell_s`` seconds each; return the record.

    The other knobs stay at the collider's current setting; the knob is left at the last value.
    """
    k = knob_index(knob)
    settings = np.repeat(collider.setting[None, :], len(values) * dwell_s, axis=0)
    settings[:, k] = np.repeat(values, dwell_s)
    read = collider.run(settings)
    offsets = collider.setting - collider.optimum
    offsets[k] = 0.0
    return {"knob": knob, **{key: v for key, v in read.items() if key != "aborted"},
            "knob_value": settings[:, k].copy(), "aborted": bool(read["aborted"].any()),
            "optimum": float(collider.optimum[k]), "offsets": offsets,
            "target_current": collider.target.copy()}


def simulate_scan(rng: np.random.Generator, machine: Machine, noise: Noise, plan: ScanPlan,
                  knob: str) -> tuple[Collider, dict[str, Any], np.ndarray]:
    """Draw a machine state and scan settings for ``knob``, run the scan.

    Returns the collider (after the scan), the scan record and the scanned values.
    """
    k = knob_index(knob)
    collider = random_collider(rng, machine, noise, plan.other_offset, plan.low_current_fraction)
    scale = collider.scales[k]
    collider.setting[k] = collider.optimum[k] + rng.normal(0.0, plan.start_offset) * scale
    half = rng.uniform(*plan.half_range) * scale
    n_steps = int(rng.integers(plan.steps[0], plan.steps[1] + 1))
    values = collider.setting[k] + np.linspace(-half, half, n_steps)
    if rng.random() < 0.5:
        values = values[::-1]
    dwell = int(rng.integers(plan.dwell_s[0], plan.dwell_s[1] + 1))
    return collider, linear_scan(collider, knob, values, dwell), values


def step_means(knob_value: np.ndarray, *series: np.ndarray) -> tuple[np.ndarray, ...]:
    """Group samples into scan steps (runs of equal knob value) and average each series.

    Returns the step knob values followed by one array of step means per ``series``.
    """
    kv = np.asarray(knob_value, float)
    span = float(np.ptp(kv)) or 1.0
    change = np.flatnonzero(np.abs(np.diff(kv)) > 1e-6 * span) + 1
    bounds = np.concatenate([[0], change, [len(kv)]])
    out = [np.array([kv[a:b].mean() for a, b in itertools.pairwise(bounds)])]
    for s in series:
        s = np.asarray(s, float)
        out.append(np.array([s[a:b].mean() for a, b in itertools.pairwise(bounds)]))
    return tuple(out)
