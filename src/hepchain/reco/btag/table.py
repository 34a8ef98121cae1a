"""From jagged jets to fixed-size arrays: tracks sorted by lifetime-signed d0 significance
(largest first, as in GN1), truncated/padded to ``max_tracks`` with a mask."""

from __future__ import annotations

from dataclasses import dataclass, field

import awkward as ak
import numpy as np

from hepchain.reco.btag.labels import clean_vertex
from hepchain.reco.btag.schema import (
    JET_INPUTS,
    JET_TRUTH,
    TRACK_INPUTS,
    TRACK_KINEMATICS,
    TRACK_TRUTH,
    require_fields,
)


@dataclass
class JetTable:
    """Padded per-jet arrays (N jets, T track slots).

    ``tracks`` (N, T, F) raw track inputs in :data:`TRACK_INPUTS` order, 0 in padding;
    ``mask`` (N, T) True for real tracks; ``jet`` (N, 2) raw jet pT [GeV], η;
    ``flavour`` (N,) producer code; ``origin`` / ``vertex`` (N, T) truth (−1 in padding);
    ``kin`` extra per-track fields for the vertex finder (see :data:`TRACK_KINEMATICS`);
    ``phi`` (N,) jet φ [rad].
    """

    tracks: np.ndarray
    mask: np.ndarray
    jet: np.ndarray
    phi: np.ndarray
    flavour: np.ndarray
    origin: np.ndarray
    vertex: np.ndarray
    kin: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.jet)

    def select(self, idx: np.ndarray) -> JetTable:
        """The jets at ``idx`` (a boolean mask or integer indices)."""
        return JetTable(self.tracks[idx], self.mask[idx], self.jet[idx], self.phi[idx],
                        self.flavour[idx], self.origin[idx], self.vertex[idx],
                        {k: v[idx] for k, v in self.kin.items()})

    def track(self, name: str) -> np.ndarray:
        """One raw per-track field (N, T) by name, from the inputs or the kinematics."""
        if name in self.kin:
            return self.kin[name]
        return self.tracks[..., TRACK_INPUTS.index(name)]


def _pad(values: ak.Array, t: int, fill: float, dtype: type) -> np.ndarray:
    padded = ak.fill_none(ak.pad_none(values, t, axis=1, clip=True), fill)
    return ak.to_numpy(padded).astype(dtype)


def build_table(jets: ak.Array, max_tracks: int, truth: bool = True) -> JetTable:
    """Padded :class:`JetTable` from a flat array of jets with nested tracks.

    Raises DataError naming the missing fields if the input lacks any required column.
    With ``truth=False`` the truth fields are not needed and are filled with −1.
    """
    track_fields = TRACK_INPUTS + TRACK_KINEMATICS + (TRACK_TRUTH if truth else ())
    require_fields(jets, track_fields, JET_INPUTS + ("phi",) + (JET_TRUTH if truth else ()))
    order = ak.argsort(jets.tracks.sd0, axis=1, ascending=False)
    trk = jets.tracks[order]
    n = len(jets)
    mask = _pad(ak.ones_like(trk.sd0, dtype=bool), max_tracks, False, bool)
    tracks = np.stack([_pad(trk[f], max_tracks, 0.0, np.float32) for f in TRACK_INPUTS], axis=-1)
    kin = {f: _pad(trk[f], max_tracks, 0.0, np.float32) for f in TRACK_KINEMATICS}
    jet = np.stack([ak.to_numpy(jets[f]).astype(np.float32) for f in JET_INPUTS], axis=-1)
    if truth:
        origin = _pad(trk.truth_origin, max_tracks, -1, np.int64)
        vertex = clean_vertex(_pad(trk.truth_vertex, max_tracks, -1, np.int64), origin)
        flavour = ak.to_numpy(jets.flavour).astype(np.int64)
    else:
        origin = np.full((n, max_tracks), -1, dtype=np.int64)
        vertex = origin.copy()
        flavour = np.full(n, -1, dtype=np.int64)
    return JetTable(tracks, mask, jet, ak.to_numpy(jets.phi).astype(np.float32), flavour,
                    origin, vertex, kin)
