# ruff: noqa: NPY002  (numba's njit RNG is the np.random module API, seeded per batch)
"""Full simulation: an electromagnetic-cascade Monte Carlo through the W/Si stack (numba).

Every e±/γ is tracked in 3D through the slabs of :meth:`ECalGeometry.slabs` (energies in MeV,
lengths in mm):

- **e±**: condensed-history steps limited by the slab boundary, 0.2 X0, a 20 % energy loss and
  the sampled distance to the next bremsstrahlung; continuous ionisation loss dE/dx (absorber
  and Si minimum-ionising values of :mod:`hepchain.calo.materials`) plus the radiative loss below the photon cut;
  Highland multiple scattering per step; bremsstrahlung with the complete-screening spectrum
  dσ/dy ∝ (4/3 − 4/3 y + y²)/y above ``k_cut``; below ``e_cut`` the rest is deposited on the
  spot, and a positron annihilates into two 0.511 MeV photons.
- **γ**: photoelectric absorption (power-law fit to the W/Si attenuation), Compton scattering
  (Klein–Nishina, Butcher–Messel sampling) and pair production (7/9 X0⁻¹ times a tabulated
  threshold factor; Bethe–Heitler energy sharing); below ``g_cut`` deposited on the spot.

Energy lost by e± inside a silicon slab is recorded in the pixel at the step's midpoint. The
result is a ``(layers, n_pix, n_pix)`` image of true deposits in MeV per shower; the sensor
response (Landau fluctuations, noise, threshold) is :mod:`hepchain.calo.readout`.
"""

from __future__ import annotations

import math
import time

import numba as nb
import numpy as np

from hepchain.calo.geometry import AIR, SENSOR, ECalGeometry
from hepchain.core.errors import UsageError

ME = 0.51099895
"""Electron mass [MeV]."""
PARTICLES = {"e-": 1, "gamma": 0, "e+": 2}

# columns of the per-material table (rows: material codes air, absorber, Si)
_X0, _DEDX, _NE, _PHOTO, _PHOTO_POW = range(5)
_RE2 = 7.9407877e-24  # classical electron radius squared [mm^2]
# pair cross-section / its high-energy limit (7/9 X0^-1), vs photon energy [MeV]
_PAIR_E = np.log(np.array([1.022, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0, 100.0, 1e3, 1e5]))
_PAIR_G = np.array([0.0, 0.006, 0.03, 0.09, 0.18, 0.30, 0.43, 0.60, 0.70, 0.91, 1.0])


@nb.njit(cache=True)
def _klein_nishina(k: float) -> float:
    """Klein–Nishina cross-section per electron [mm^2] for a photon of k MeV."""
    x = k / ME
    l2 = math.log1p(2 * x)
    return 2 * math.pi * _RE2 * ((1 + x) / x**2 * (2 * (1 + x) / (1 + 2 * x) - l2 / x)
                                 + l2 / (2 * x) - (1 + 3 * x) / (1 + 2 * x) ** 2)


@nb.njit(cache=True)
def _photon_mus(k: float, mat: int, tab) -> tuple[float, float, float]:
    """(photoelectric, Compton, pair) attenuation [1/mm] of material ``mat`` at k MeV."""
    if mat == AIR:
        return 0.0, 0.0, 0.0
    photo = tab[mat, _PHOTO] * (k / 0.1) ** (-tab[mat, _PHOTO_POW])
    compton = tab[mat, _NE] * _klein_nishina(k)
    pair = 0.0
    if k > 2 * ME:
        pair = 7.0 / 9.0 / tab[mat, _X0] * np.interp(math.log(k), _PAIR_E, _PAIR_G)
    return photo, compton, pair


@nb.njit(cache=True)
def _brems_rate(t: float, k_cut: float, x0: float) -> float:
    """Bremsstrahlung photons above k_cut per mm for an electron of kinetic energy t."""
    if t <= k_cut:
        return 0.0
    y = k_cut / t
    return ((4.0 / 3.0) * (-math.log(y)) - (4.0 / 3.0) * (1 - y) + 0.5 * (1 - y * y)) / x0


@nb.njit(cache=True)
def _sample_brems_y(y_min: float) -> float:
    """Photon energy fraction y in [y_min, 1] from (4/3 − 4/3 y + y²)/y."""
    while True:
        y = y_min ** np.random.random()
        if np.random.random() * (4.0 / 3.0) <= 4.0 / 3.0 - 4.0 / 3.0 * y + y * y:
            return y


@nb.njit(cache=True)
def _rotate(ux: float, uy: float, uz: float, cost: float, phi: float):
    """Turn unit vector u by polar angle acos(cost) at azimuth phi."""
    sint = math.sqrt(max(0.0, 1 - cost * cost))
    cp, sp = math.cos(phi), math.sin(phi)
    if abs(uz) > 0.99999:
        s = 1.0 if uz > 0 else -1.0
        return sint * cp, sint * sp, s * cost
    d = math.sqrt(1 - uz * uz)
    nx = ux * cost + sint * (ux * uz * cp - uy * sp) / d
    ny = uy * cost + sint * (uy * uz * cp + ux * sp) / d
    nz = uz * cost - sint * cp * d
    n = math.sqrt(nx * nx + ny * ny + nz * nz)
    return nx / n, ny / n, nz / n


@nb.njit(cache=True)
def _deposit(img, layer: int, x: float, y: float, de: float, pixel: float, half: float) -> None:
    ix = math.floor((x + half) / pixel)
    iy = math.floor((y + half) / pixel)
    n = img.shape[1]
    if 0 <= ix < n and 0 <= iy < n:
        img[layer, iy, ix] += de


@nb.njit(cache=True)
def _shower(img, e0: float, ptype: int, x0: float, y0: float, zb, mats, lays, tab,
            pixel: float, half: float, k_cut: float, e_cut: float, g_cut: float) -> None:
    """Simulate one shower of a particle with energy e0 [MeV] entering at (x0, y0, 0)."""
    cap = 4096
    st_e = np.empty(cap)
    st_p = np.empty((cap, 6))
    st_t = np.empty(cap, dtype=np.int64)
    n = 1
    st_e[0] = e0 if ptype == 0 else e0 - ME
    st_p[0, 0], st_p[0, 1], st_p[0, 2] = x0, y0, 1e-9
    st_p[0, 3], st_p[0, 4], st_p[0, 5] = 0.0, 0.0, 1.0
    st_t[0] = ptype
    zend = zb[-1]
    nslab = mats.shape[0]
    while n > 0:
        n -= 1
        en, pt = st_e[n], st_t[n]
        x, y, z = st_p[n, 0], st_p[n, 1], st_p[n, 2]
        ux, uy, uz = st_p[n, 3], st_p[n, 4], st_p[n, 5]
        while True:
            if z <= 0.0 or z >= zend:
                break  # left the stack: leakage
            s = np.searchsorted(zb, z, side="right") - 1
            if s < 0 or s >= nslab:
                break
            mat, lay = mats[s], lays[s]
            if uz > 1e-12:
                dbound = (zb[s + 1] - z) / uz
            elif uz < -1e-12:
                dbound = (zb[s] - z) / uz
            else:
                dbound = 1e9
            if pt == 0:  # ------------------------------------------------ photon
                if en < g_cut:
                    if lay >= 0:
                        _deposit(img, lay, x, y, en, pixel, half)
                    break
                mu_ph, mu_c, mu_p = _photon_mus(en, mat, tab)
                mu = mu_ph + mu_c + mu_p
                dist = -math.log(1.0 - np.random.random()) / mu if mu > 0 else 1e30
                if dist >= dbound:
                    if dbound > 1e8:
                        break
                    x += ux * (dbound + 1e-7)
                    y += uy * (dbound + 1e-7)
                    z += uz * (dbound + 1e-7)
                    continue
                x += ux * dist
                y += uy * dist
                z += uz * dist
                r = np.random.random() * mu
                if r < mu_ph:  # photoelectric: local deposit
                    if lay >= 0:
                        _deposit(img, lay, x, y, en, pixel, half)
                    break
                if r < mu_ph + mu_c:  # Compton (Butcher–Messel)
                    kap = en / ME
                    eps0 = 1.0 / (1.0 + 2.0 * kap)
                    a1 = -math.log(eps0)
                    a2 = 0.5 * (1.0 - eps0 * eps0)
                    while True:
                        if a1 / (a1 + a2) > np.random.random():
                            eps = math.exp(-a1 * np.random.random())
                        else:
                            eps = math.sqrt(eps0 * eps0 + (1 - eps0 * eps0) * np.random.random())
                        onecost = (1.0 - eps) / (eps * kap)
                        sint2 = onecost * (2.0 - onecost)
                        if 1.0 - eps * sint2 / (1.0 + eps * eps) >= np.random.random():
                            break
                    k1 = eps * en
                    phi = 2 * math.pi * np.random.random()
                    nx, ny, nz = _rotate(ux, uy, uz, 1.0 - onecost, phi)
                    te = en - k1
                    if te > 0 and n < cap:
                        px, py, pz = en * ux - k1 * nx, en * uy - k1 * ny, en * uz - k1 * nz
                        pn = math.sqrt(px * px + py * py + pz * pz)
                        st_e[n], st_t[n] = te, 1
                        st_p[n, 0], st_p[n, 1], st_p[n, 2] = x, y, z
                        st_p[n, 3], st_p[n, 4], st_p[n, 5] = px / pn, py / pn, pz / pn
                        n += 1
                    en, ux, uy, uz = k1, nx, ny, nz
                    continue
                # pair production: e- gets fraction xe of the photon energy
                lo = ME / en
                while True:
                    xe = lo + (1.0 - 2.0 * lo) * np.random.random()
                    if np.random.random() <= 1.0 - (4.0 / 3.0) * xe * (1.0 - xe):
                        break
                for sign in (1, 2):
                    te = (xe if sign == 1 else 1.0 - xe) * en - ME
                    if n < cap:
                        th = ME / (te + ME) * abs(np.random.normal())
                        nx, ny, nz = _rotate(ux, uy, uz, math.cos(th),
                                             2 * math.pi * np.random.random())
                        st_e[n], st_t[n] = max(te, 0.0), sign
                        st_p[n, 0], st_p[n, 1], st_p[n, 2] = x, y, z
                        st_p[n, 3], st_p[n, 4], st_p[n, 5] = nx, ny, nz
                        n += 1
                break
            # ------------------------------------------------------------ e-/e+
            if en < e_cut:
                if lay >= 0:
                    _deposit(img, lay, x, y, en, pixel, half)
                if pt == 2 and n + 2 <= cap:  # annihilation at rest
                    cost = 2.0 * np.random.random() - 1.0
                    sint = math.sqrt(1.0 - cost * cost)
                    phi = 2 * math.pi * np.random.random()
                    for sgn in (1.0, -1.0):
                        st_e[n], st_t[n] = ME, 0
                        st_p[n, 0], st_p[n, 1], st_p[n, 2] = x, y, z
                        st_p[n, 3] = sgn * sint * math.cos(phi)
                        st_p[n, 4] = sgn * sint * math.sin(phi)
                        st_p[n, 5] = sgn * cost
                        n += 1
                break
            if mat == AIR:
                if dbound > 1e8:
                    break
                x += ux * (dbound + 1e-7)
                y += uy * (dbound + 1e-7)
                z += uz * (dbound + 1e-7)
                continue
            x0m, dedx = tab[mat, _X0], tab[mat, _DEDX]
            dedx_tot = dedx + (4.0 / 3.0) * min(k_cut, en) / x0m
            rate = _brems_rate(en, k_cut, x0m)
            dbrem = -math.log(1.0 - np.random.random()) / rate if rate > 0 else 1e30
            step = min(dbound + 1e-7, 0.2 * x0m, 0.2 * en / dedx_tot + 1e-4, dbrem)
            brem = step == dbrem
            de = min(dedx_tot * step, en)
            if lay >= 0:
                _deposit(img, lay, x + 0.5 * step * ux, y + 0.5 * step * uy, de, pixel, half)
            x += ux * step
            y += uy * step
            z += uz * step
            en -= de
            if en <= 0:
                continue
            p = math.sqrt(en * (en + 2 * ME))
            beta = p / (en + ME)
            ratio = step / x0m
            th0 = 13.6 / (beta * p) * math.sqrt(ratio) * (1 + 0.038 * math.log(ratio))
            if th0 > 0:
                th = th0 * math.sqrt(np.random.normal() ** 2 + np.random.normal() ** 2)
                ux, uy, uz = _rotate(ux, uy, uz, math.cos(min(th, math.pi)),
                                     2 * math.pi * np.random.random())
            if brem and en > k_cut and n < cap:
                k = _sample_brems_y(k_cut / en) * en
                st_e[n], st_t[n] = k, 0
                st_p[n, 0], st_p[n, 1], st_p[n, 2] = x, y, z
                st_p[n, 3], st_p[n, 4], st_p[n, 5] = ux, uy, uz
                n += 1
                en -= k


@nb.njit(cache=True)
def _shower_batch(out, energies, ptype: int, xs, ys, zb, mats, lays, tab, pixel: float,
                  half: float, k_cut: float, e_cut: float, g_cut: float, seed: int) -> None:
    np.random.seed(seed)
    for i in range(energies.shape[0]):
        _shower(out[i], energies[i], ptype, xs[i], ys[i], zb, mats, lays, tab, pixel, half,
                k_cut, e_cut, g_cut)


def material_table(geometry: ECalGeometry) -> np.ndarray:
    """Per material code (air, absorber, Si): X0 [mm], dE/dx [MeV/mm], electrons [1/mm³],
    photoelectric μ at 0.1 MeV [1/mm] and its power-law index."""
    rows = [[1e12, 0.0, 0.0, 0.0, 3.0]]
    for m in (geometry.absorber_material, SENSOR):
        rows.append([m.x0_mm, m.dedx_mev_mm, m.electrons_per_mm3, m.photo_per_mm,
                     m.photo_index])
    return np.array(rows)


def simulate(geometry: ECalGeometry, energies_gev: np.ndarray, *, particle: str = "e-",
             seed: int = 0, spread_mm: float = 2.0, k_cut: float = 0.5, e_cut: float = 0.5,
             g_cut: float = 0.05) -> np.ndarray:
    """Full-simulation showers: ``(N, layers, n_pix, n_pix)`` float32 Si deposits [MeV].

    ``energies_gev`` are incident energies [GeV] at normal incidence; the entry point is
    Gaussian with ``spread_mm`` [mm] around the centre; ``k_cut``, ``e_cut``, ``g_cut`` are the
    bremsstrahlung-photon, e± and photon cut-offs [MeV]. Same seed → same images.
    """
    e = np.asarray(energies_gev, dtype=np.float64)
    validate_energies(e)
    if particle not in PARTICLES:
        raise UsageError(f"Unknown particle {particle!r}; choose one of {sorted(PARTICLES)}.")
    if spread_mm < 0:
        raise UsageError(f"Beam spread {spread_mm} mm must be >= 0.")
    rng = np.random.default_rng(seed)
    xs = rng.normal(0.0, spread_mm, e.size) if spread_mm > 0 else np.zeros(e.size)
    ys = rng.normal(0.0, spread_mm, e.size) if spread_mm > 0 else np.zeros(e.size)
    zb, mats, lays = geometry.slabs()
    out = np.zeros((e.size, *geometry.shape), dtype=np.float64)
    _shower_batch(out, e * 1000.0, PARTICLES[particle], xs, ys, zb, mats, lays,
                  material_table(geometry), geometry.pixel, geometry.half_width, k_cut, e_cut, g_cut,
                  int(rng.integers(0, 2**31 - 1)))
    return out.astype(np.float32)


def validate_energies(e: np.ndarray) -> None:
    """UsageError unless every incident energy is finite and positive [GeV]."""
    if e.size and (not np.all(np.isfinite(e)) or np.any(e <= 0)):
        raise UsageError("Incident energies must be finite and > 0 GeV; "
                         f"got min {np.nanmin(e):.3g} GeV.")


def showers_per_second(geometry: ECalGeometry, energy_gev: float, n: int = 20,
                       particle: str = "e-") -> float:
    """Measured full-simulation throughput [showers/s] at one energy (after JIT warm-up)."""
    simulate(geometry, np.array([energy_gev]), particle=particle, seed=1)
    t0 = time.perf_counter()
    simulate(geometry, np.full(n, energy_gev), particle=particle, seed=2)
    return n / (time.perf_counter() - t0)

