"""Interactions in the tracker material: photon conversions and inelastic hadronic
interactions in the beam pipe and pixel layers (:data:`.geometry.MATERIAL_LAYERS`), applied to
the final-state particles before tracking and calorimetry.

A particle crossing a layer of thickness x at polar angle theta meets x / sin(theta) of it
(charged ones reach it along their helix in the solenoid field). There

- a photon converts with probability 1 - exp(-7/9 x/X0 / sin theta), the high-energy limit of
  the pair-production cross-section (it overestimates conversions below ~1 GeV, where most
  products fall below the 0.5 GeV jet-track threshold anyway); e- and e+ continue along the
  photon's direction and share its energy with the complete-screening Bethe-Heitler
  distribution dsigma/du ∝ 1 - 4/3 u (1 - u);
- a hadron (pi, K, p, n and antiparticles, K0L) interacts inelastically with probability
  1 - exp(-x/lambda_I / sin theta). Its products are *our toy model*, not a GEANT4 physics list:
  1 + Poisson(:data:`MEAN_EXTRA_CHARGED`) charged pions of random sign sharing
  :data:`CHARGED_FRACTION` of its energy (flat Dirichlet split), each with a transverse
  momentum to the incoming direction drawn from an exponential of mean :data:`MEAN_PT_REL`;
  the rest of the energy (less a nucleon's rest mass) continues as one neutral hadron (a K0L)
  that reaches the calorimeter.
  The incoming charged hadron's stub (at most three pixel hits) is not a reconstructed track.

The interacting particle is removed; its products start at the crossing point with origin
``otherSecondary`` and one new truth vertex per interaction (products of pile-up particles
stay pile-up). Products do not interact again, and the SCT layers' material is not simulated
(their secondaries would not make tracks with the >= 7 silicon hits of a standard track).

Units: GeV, mm, rad.
"""

from __future__ import annotations

import numpy as np

from hepchain.collider import truth
from hepchain.collider.geometry import ETA_MAX, MATERIAL_LAYERS, RHO_PER_GEV

ELECTRON_MASS, PION_MASS, K0L_MASS, NUCLEON_MASS = 0.000511, 0.13957, 0.49761, 0.939  # GeV
CONVERSION_FACTOR = 7 / 9  # pair-production mean free path = 9/7 X0
#: PDG ids of long-lived hadrons that interact in the material (and their antiparticles)
HADRONS = np.array([211, 321, 2212, 2112, 130])
MEAN_EXTRA_CHARGED = 2.0  # charged pions per interaction: 1 + Poisson(this)
CHARGED_FRACTION = 0.5  # of the incoming energy carried by the charged pions
MEAN_PT_REL = 0.3  # GeV, mean transverse momentum of a product to the incoming direction
#: truth-vertex keys of material interactions start here (above any record index)
VERTEX_KEY_OFFSET = 1 << 40


def crossing(x: np.ndarray, y: np.ndarray, z: np.ndarray, px: np.ndarray, py: np.ndarray,
             pz: np.ndarray, q: np.ndarray, radius: float
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """First crossing of the cylinder of ``radius`` [mm] by particles produced inside it at
    (x, y, z) [mm] with momentum (px, py, pz) [GeV] and charge ``q``: straight lines for
    neutral ones, helices in :data:`.geometry.B_FIELD` for charged ones.

    Returns ``reached`` (a charged particle may curl up before) and the crossing point
    (x, y, z) [mm] and azimuth of the momentum there [rad] (meaningless where not reached).

    >>> reached, cx, cy, cz, phi = crossing(*np.zeros((3, 1)), np.ones(1), np.zeros(1),
    ...                                     np.ones(1), np.zeros(1), 10.0)
    >>> float(cx[0]), float(cz[0]), float(phi[0])
    (10.0, 10.0, 0.0)
    """
    pt = np.hypot(px, py)
    phi = np.arctan2(py, px)
    ux, uy = np.cos(phi), np.sin(phi)
    # neutral: |r0 + s u| = R
    b = x * ux + y * uy
    s_line = -b + np.sqrt(np.maximum(b * b - (x * x + y * y - radius**2), 0.0))
    # charged: circle of radius rho around c (as in tracking.perigee) meets the cylinder
    charged = q != 0
    sign = np.where(charged, q, 1.0)
    rho = pt * RHO_PER_GEV
    cx, cy = x + sign * rho * uy, y - sign * rho * ux
    d = np.hypot(cx, cy)
    a = (radius**2 - rho**2 + d**2) / (2 * d)
    h2 = radius**2 - a**2
    reached = ~charged | (h2 >= 0)
    h = np.sqrt(np.maximum(h2, 0.0))
    start = np.arctan2(y - cy, x - cx)
    best_arc = np.full(len(x), np.inf)
    hx, hy = np.zeros(len(x)), np.zeros(len(x))
    for side in (1.0, -1.0):
        px_c = a * cx / d - side * h * cy / d
        py_c = a * cy / d + side * h * cx / d
        # the angle around c decreases for q > 0 (clockwise in +Bz), increases for q < 0
        arc = np.mod(-sign * (np.arctan2(py_c - cy, px_c - cx) - start), 2 * np.pi)
        closer = arc < best_arc
        best_arc = np.where(closer, arc, best_arc)
        hx, hy = np.where(closer, px_c, hx), np.where(closer, py_c, hy)
    s_helix = rho * best_arc
    phi_helix = np.arctan2(-sign * (hx - cx), sign * (hy - cy))
    s = np.where(charged, s_helix, s_line)
    out_x = np.where(charged, hx, x + s_line * ux)
    out_y = np.where(charged, hy, y + s_line * uy)
    out_z = z + s * pz / np.maximum(pt, 1e-12)
    return reached, out_x, out_y, out_z, np.where(charged, phi_helix, phi)


def interact(rng: np.random.Generator, cols: dict[str, np.ndarray], charge: np.ndarray
             ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Final-state particles ``cols`` (``event, pid, px, py, pz, e, x, y, z, origin, vkey``,
    sorted by event) and their ``charge`` after conversions and hadronic interactions in
    :data:`.geometry.MATERIAL_LAYERS`: interacting particles replaced by their products,
    still sorted by event (stable)."""
    n = len(charge)
    apid = np.abs(cols["pid"])
    photon, hadron = apid == 22, np.isin(apid, HADRONS)
    pt = np.hypot(cols["px"], cols["py"])
    p = np.sqrt(pt**2 + cols["pz"] ** 2)
    sin_t = pt / np.maximum(p, 1e-12)
    eta = np.arcsinh(cols["pz"] / np.maximum(pt, 1e-12))
    alive = (photon | hadron) & (np.abs(eta) < ETA_MAX) & (pt > 0)
    r_prod = np.hypot(cols["x"], cols["y"])
    where = np.full((n, 4), np.nan)  # x, y, z, phi of the interaction
    for layer in MATERIAL_LAYERS:
        cand = np.flatnonzero(alive & (r_prod < layer.radius))
        reached, *point = crossing(*(cols[k][cand] for k in ("x", "y", "z", "px", "py", "pz")),
                                   charge[cand].astype(float), layer.radius)
        alive[cand[~reached]] = False  # curled up: never reaches the outer layers either
        depth = np.where(photon[cand], CONVERSION_FACTOR * layer.x_over_x0,
                         layer.x_over_lambda) / sin_t[cand]
        hit = reached & (rng.random(len(cand)) < -np.expm1(-depth))
        where[cand[hit]] = np.stack(point, axis=1)[hit]
        alive[cand[hit]] = False
    done = np.flatnonzero(~np.isnan(where[:, 0]))
    conv = done[photon[done]]
    had = done[hadron[done]]
    products = [_conversions(rng, cols, conv, where[conv]),
                _hadronic(rng, cols, had, where[had])]
    keep = np.ones(n, bool)
    keep[done] = False
    key = np.full(n, -1, np.int64)
    key[done] = VERTEX_KEY_OFFSET + np.arange(len(done))
    parts = [{k: v[keep] for k, v in cols.items()} | {"charge": charge[keep]}]
    for (parent, prod) in products:
        pu = cols["origin"][parent] == truth.PILEUP
        prod["origin"] = np.where(pu, truth.PILEUP, truth.OTHER_SECONDARY).astype(np.int8)
        prod["vkey"] = np.where(pu, -1, key[parent])
        prod["event"] = cols["event"][parent]
        parts.append(prod)
    del where, pt, p, sin_t, eta, r_prod  # one column each per particle: free before merging
    merged = {k: np.concatenate([part.pop(k) for part in parts]) for k in list(parts[0])}
    order = np.argsort(merged["event"], kind="stable")
    merged = {k: merged.pop(k)[order] for k in list(merged)}
    return {k: v for k, v in merged.items() if k != "charge"}, merged["charge"]


def _conversions(rng: np.random.Generator, cols: dict[str, np.ndarray], idx: np.ndarray,
                 at: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """e- and e+ of the photons ``idx`` converting at ``at`` (x, y, z, phi)."""
    e = cols["e"][idx]
    u = np.clip(_bethe_heitler(rng, len(idx)), ELECTRON_MASS / e, 1 - ELECTRON_MASS / e)
    parent = np.concatenate([idx, idx])
    energy = np.concatenate([u * e, (1 - u) * e])
    pid = np.repeat([11, -11], len(idx))
    return parent, _particles(cols, parent, np.concatenate([at, at]), energy, pid,
                              np.repeat([-1.0, 1.0], len(idx)), ELECTRON_MASS,
                              np.zeros(len(parent)), np.zeros(len(parent)))


def _hadronic(rng: np.random.Generator, cols: dict[str, np.ndarray], idx: np.ndarray,
              at: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Charged pions and a neutral remnant of the hadrons ``idx`` interacting at ``at``."""
    n_ch = 1 + rng.poisson(MEAN_EXTRA_CHARGED, len(idx))
    group = np.repeat(np.arange(len(idx)), n_ch)
    parent = idx[group]
    share = rng.exponential(1.0, len(parent))  # flat Dirichlet: normalised exponentials
    share /= np.bincount(group, weights=share, minlength=len(idx))[group]
    # a nucleon's rest mass is not available to the products
    available = cols["e"][idx] - np.where(np.isin(np.abs(cols["pid"][idx]), (2212, 2112)),
                                          NUCLEON_MASS, 0.0)
    energy = CHARGED_FRACTION * available[group] * share
    ok = energy > PION_MASS
    spent = np.bincount(group, weights=np.where(ok, energy, 0), minlength=len(idx))
    parent, energy = parent[ok], energy[ok]
    pions = _particles(cols, parent, np.repeat(at, n_ch, axis=0)[ok], energy,
                       rng.choice([-211, 211], len(parent)), None, PION_MASS,
                       rng.exponential(MEAN_PT_REL, len(parent)),
                       rng.uniform(0, 2 * np.pi, len(parent)))
    rest = available - spent
    remnant = rest > K0L_MASS
    kl = _particles(cols, idx[remnant], at[remnant], rest[remnant],
                    np.full(int(remnant.sum()), 130), np.zeros(int(remnant.sum())), K0L_MASS,
                    np.zeros(int(remnant.sum())), np.zeros(int(remnant.sum())))
    return (np.concatenate([parent, idx[remnant]]),
            {k: np.concatenate([pions[k], kl[k]]) for k in pions})


def _particles(cols: dict[str, np.ndarray], parent: np.ndarray, at: np.ndarray,
               energy: np.ndarray, pid: np.ndarray, charge: np.ndarray | None, mass: float,
               pt_rel: np.ndarray, azimuth: np.ndarray) -> dict[str, np.ndarray]:
    """Products of energy ``energy`` [GeV] starting at ``at`` (x, y, z, phi of the parent's
    momentum there), along the parent's direction turned by the transverse momentum
    ``pt_rel`` [GeV] about it at ``azimuth`` [rad]; charge from ``pid`` (±211) if None."""
    p_par = np.stack([cols["px"][parent], cols["py"][parent], cols["pz"][parent]], axis=1)
    pt_par = np.hypot(p_par[:, 0], p_par[:, 1])
    n = np.stack([pt_par * np.cos(at[:, 3]), pt_par * np.sin(at[:, 3]), p_par[:, 2]], axis=1)
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    e1 = np.stack([-n[:, 1], n[:, 0], np.zeros(len(n))], axis=1)
    e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
    e2 = np.cross(n, e1)
    p = np.sqrt(np.maximum(energy**2 - mass**2, 0.0))
    sin_a = np.minimum(pt_rel / np.maximum(p, 1e-12), 1.0)
    turn = np.cos(azimuth)[:, None] * e1 + np.sin(azimuth)[:, None] * e2
    mom = p[:, None] * (np.sqrt(1 - sin_a**2)[:, None] * n + sin_a[:, None] * turn)
    return {"pid": pid.astype(cols["pid"].dtype), "px": mom[:, 0], "py": mom[:, 1],
            "pz": mom[:, 2], "e": np.sqrt(p**2 + mass**2), "x": at[:, 0], "y": at[:, 1],
            "z": at[:, 2], "charge": np.sign(pid).astype(float) if charge is None else charge}


def _bethe_heitler(rng: np.random.Generator, n: int) -> np.ndarray:
    """Energy fractions u of the electron in pair production with complete screening,
    dsigma/du ∝ 1 - 4/3 u (1 - u) on [0, 1] (rejection sampling; acceptance >= 2/3)."""
    out = np.empty(n)
    todo = np.arange(n)
    while len(todo):
        u = rng.random(len(todo))
        ok = rng.random(len(todo)) < 1 - 4 / 3 * u * (1 - u)
        out[todo[ok]] = u[ok]
        todo = todo[~ok]
    return out
