"""High-level jet features for the BDT (GeV, rad).

The substrate already computes the N-subjettiness τ1..τ3 (β = 1, kT axes) and the soft-drop mass
(:func:`hepchain.collider.jets.large_r_jets`); here we add the constituent mass and the energy
correlation functions (Larkoski, Salam, Thaler, JHEP 06 (2013) 108; β = 1, in (η, φ))::

    z_i = pT_i / Σ pT,   R_ij = ΔR(i, j)
    e2 = Σ_{i<j} z_i z_j R_ij                      = ½ zᵀ R z
    e3 = Σ_{i<j<k} z_i z_j z_k R_ij R_ik R_jk       = ⅙ tr((R Z)³),  Z = diag(z)
    C2 = e3 / e2²,   D2 = e3 / e2³

(the trace form is exact: terms with a repeated index vanish because R_ii = 0).
"""

from __future__ import annotations

import awkward as ak
import numpy as np
import torch

from hepchain.core.errors import DataError
from hepchain.reco.jettag.data import require_fields

HIGH_LEVEL = ("mass", "msd", "tau21", "tau32", "C2", "D2", "multiplicity")
_CHUNK = 256  # jets per batched ECF evaluation (memory ~ _CHUNK · P² · 8 bytes)


def energy_correlations(deta: np.ndarray, dphi: np.ndarray, pt: np.ndarray,
                        mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(e2, e3) with β = 1 of padded jets: ``deta, dphi, pt, mask`` are (N, P)."""
    z = np.where(mask, pt, 0.0)
    z = z / np.clip(z.sum(1, keepdims=True), 1e-12, None)
    e2, e3 = np.empty(len(z)), np.empty(len(z))
    for s in range(0, len(z), _CHUNK):
        sl = slice(s, s + _CHUNK)
        dr = np.hypot(deta[sl, :, None] - deta[sl, None, :],
                      _wrap(dphi[sl, :, None] - dphi[sl, None, :]))
        rz = torch.from_numpy(dr * z[sl, None, :])
        e2[sl] = 0.5 * np.einsum("ni,nij->n", z[sl], rz.numpy())
        e3[sl] = torch.einsum("nij,nji->n", torch.bmm(rz, rz), rz).numpy() / 6.0
    return e2, e3


def padded_constituents(constituents: ak.Array
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(pt [GeV], deta, dphi, mask)`` of each jet's constituents, zero-padded to the longest
    jet: (N, P) arrays, ``mask`` True on real constituents."""
    n = ak.to_numpy(ak.num(constituents))
    width = max(int(n.max(initial=1)), 1)

    def pad(x: ak.Array) -> np.ndarray:
        return ak.to_numpy(ak.fill_none(ak.pad_none(x, width, axis=1, clip=True), 0.0))

    mask = np.arange(width)[None, :] < n[:, None]
    pt = pad(np.hypot(constituents["px"], constituents["py"]))
    return pt, pad(constituents["deta"]), pad(constituents["dphi"]), mask


def high_level_features(jets: ak.Array) -> np.ndarray:
    """(N, len(:data:`HIGH_LEVEL`)) features per jet: constituent mass [GeV], soft-drop mass
    [GeV], τ21, τ32, C2, D2 (β = 1) and the number of constituents."""
    require_fields(jets, {"px", "py", "pz", "e", "deta", "dphi"}, "the high-level features")
    missing = sorted({"tau1", "tau2", "tau3", "msd"} - set(ak.fields(jets)))
    if missing:
        raise DataError(f"The jets lack {', '.join(missing)}, needed by the high-level "
                        "features of the BDT; use data with N-subjettiness and soft-drop mass.")
    c = jets["constituents"]
    n = ak.to_numpy(ak.num(c))
    pt, deta, dphi, mask = padded_constituents(c)
    e2, e3 = energy_correlations(deta, dphi, pt, mask)
    p = {f: ak.to_numpy(ak.sum(c[f], axis=1)) for f in ("px", "py", "pz", "e")}
    mass = np.sqrt(np.clip(p["e"] ** 2 - p["px"] ** 2 - p["py"] ** 2 - p["pz"] ** 2, 0, None))
    tau = [ak.to_numpy(jets[f]) for f in ("tau1", "tau2", "tau3")]
    with np.errstate(divide="ignore", invalid="ignore"):
        cols = [mass, ak.to_numpy(jets["msd"]), _ratio(tau[1], tau[0]), _ratio(tau[2], tau[1]),
                _ratio(e3, e2**2), _ratio(e3, e2**3), n.astype(float)]
    return np.stack(cols, 1)


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a / b, 0 where b is 0 (jets with one constituent)."""
    return np.where(b > 0, a / np.where(b > 0, b, 1.0), 0.0)


def _wrap(dphi: np.ndarray) -> np.ndarray:
    """Δφ folded into [−π, π)."""
    return (dphi + np.pi) % (2 * np.pi) - np.pi
