"""Input scaling stored with the model: per-feature transform, standardisation, clipping.

``x → clip((f(x) − mean) / std, −clip, clip)`` with ``f`` one of

- ``none``: identity (hit counts, q/p [e/GeV], dη, dφ [rad], lepton flag),
- ``log``: ln(x) for strictly positive quantities (uncertainties, jet pT [GeV]),
- ``signed_log``: sign(x) ln(1 + |x|/s0) for heavy-tailed signed quantities (impact parameters
  [mm] with s0 = 0.01 mm, significances with s0 = 1),

mean/std from real (unpadded) training tracks. :meth:`Preprocessor.to_dict` gives plain
lists/floats, saved inside the model file and the ONNX metadata.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hepchain.core.errors import DataError
from hepchain.core.standardise import Standardiser
from hepchain.reco.btag.schema import JET_INPUTS, TRACK_INPUTS
from hepchain.reco.btag.table import JetTable

TRANSFORMS: dict[str, tuple[str, float]] = {
    "d0": ("signed_log", 0.01), "z0sintheta": ("signed_log", 0.01),
    "sd0": ("signed_log", 1.0), "sz0": ("signed_log", 1.0),
    "sigma_qoverp": ("log", 0.0), "sigma_theta": ("log", 0.0), "sigma_phi": ("log", 0.0),
    "pt": ("log", 0.0),
}
"""Non-identity transforms by feature name (track features and jet features share names
only for ``pt``, which is a jet input)."""


def _apply(x: np.ndarray, kind: str, scale: float) -> np.ndarray:
    if kind == "log":
        return np.log(np.clip(x, 1e-12, None))
    if kind == "signed_log":
        return np.sign(x) * np.log1p(np.abs(x) / scale)
    return x


@dataclass
class Preprocessor:
    """Fitted scaling of track and jet inputs (see module docstring)."""

    track_features: list[str]
    jet_features: list[str]
    track: Standardiser
    jet: Standardiser
    max_tracks: int
    clip: float = 5.0

    @classmethod
    def fit(cls, table: JetTable, clip: float = 5.0) -> Preprocessor:
        """Standardisation constants from the (training) ``table``'s real tracks."""
        if not table.mask.any():
            raise DataError("The training jets have no tracks; check the track selection.")
        return cls(list(TRACK_INPUTS), list(JET_INPUTS),
                   Standardiser.fit(_transform(table.tracks, TRACK_INPUTS)[table.mask]),
                   Standardiser.fit(_transform(table.jet, JET_INPUTS)),
                   table.mask.shape[1], clip)

    def transform(self, table: JetTable) -> tuple[np.ndarray, np.ndarray]:
        """Scaled ``(tracks (N, T, F), jet (N, 2))`` as float32; padding stays 0."""
        if table.tracks.shape[-1] != len(self.track_features):
            raise DataError(f"Expected {len(self.track_features)} track features "
                            f"({self.track_features}), got {table.tracks.shape[-1]}.")
        trk = self.track.transform(_transform(table.tracks, TRACK_INPUTS))
        trk = np.clip(trk, -self.clip, self.clip) * table.mask[..., None]
        jet = np.clip(self.jet.transform(_transform(table.jet, JET_INPUTS)), -self.clip, self.clip)
        if not (np.isfinite(trk).all() and np.isfinite(jet).all()):
            raise DataError("Track or jet inputs contain NaN or inf; check the input file.")
        return trk.astype(np.float32), jet.astype(np.float32)

    def to_dict(self) -> dict:
        return {"track_features": self.track_features, "jet_features": self.jet_features,
                "track": self.track.state_dict(), "jet": self.jet.state_dict(),
                "max_tracks": self.max_tracks, "clip": self.clip}

    @classmethod
    def from_dict(cls, data: dict) -> Preprocessor:
        if not {"track", "jet"} <= set(data):
            raise DataError("The saved preprocessing has no track/jet standardisers (a tagger "
                            "saved before hepchain's core Standardiser); retrain and save it again.")
        return cls(**{**data, "track": Standardiser.from_state_dict(data["track"]),
                      "jet": Standardiser.from_state_dict(data["jet"])})


def _transform(x: np.ndarray, names: tuple[str, ...] | list[str]) -> np.ndarray:
    """Apply each column's fixed transform (log, clip, ...) from TRANSFORMS, by input name."""
    out = x.astype(np.float64).copy()
    for i, name in enumerate(names):
        kind, scale = TRANSFORMS.get(name, ("none", 0.0))
        out[..., i] = _apply(out[..., i], kind, scale)
    return out
