"""The input table of the b-tagging study: which fields a jet and its tracks must carry.

Events (one Parquet row each, as written by ``hepchain generate ttbar``) hold a list of
``jets`` (anti-kt R = 0.4); every jet holds a list of ``tracks``. Units: momenta in GeV,
q/p in e/GeV, impact parameters in mm, angles in rad; significances are lifetime-signed
(positive when the track crosses the jet axis in front of the primary vertex).
"""

from __future__ import annotations

from collections.abc import Iterable

import awkward as ak

from hepchain.core.errors import DataError

JET_INPUTS: tuple[str, ...] = ("pt", "eta")
"""Jet-level network inputs (GN1): pT [GeV] and η."""

TRACK_INPUTS: tuple[str, ...] = (
    "qoverp", "deta", "dphi", "d0", "z0sintheta",
    "sigma_qoverp", "sigma_theta", "sigma_phi", "sd0", "sz0",
    "n_pix_hits", "n_sct_hits", "n_ibl_hits", "n_bl_hits",
    "n_ibl_shared", "n_ibl_split", "n_pix_shared", "n_pix_split", "n_sct_shared",
    "n_pix_holes", "n_sct_holes", "lepton_id",
)
"""Per-track network inputs: the seed's GN1 track table as far as our detector provides it."""

TRACK_KINEMATICS: tuple[str, ...] = ("pt", "eta", "phi", "charge", "sigma_d0", "sigma_z0")
"""Extra track fields used by the secondary-vertex finder (GeV, rad, e, mm)."""

JET_TRUTH: tuple[str, ...] = ("flavour",)
"""Jet truth label: 5 b, 4 c, 15 τ, 0 light (hadron/τ cone labelling of the producer)."""

TRACK_TRUTH: tuple[str, ...] = ("truth_origin", "truth_vertex")
"""Track truth: origin class 0..7 (see :mod:`labels`) and truth-vertex index (−1: none)."""


def _fields(array: ak.Array) -> set[str]:
    return set(ak.fields(array))


def require_fields(jets: ak.Array, track_fields: Iterable[str] = (),
                   jet_fields: Iterable[str] = ()) -> None:
    """Raise a DataError naming every missing jet or track field (and the fix)."""
    have_jet = _fields(jets)
    missing = [f"jets.{f}" for f in jet_fields if f not in have_jet]
    if "tracks" not in have_jet:
        missing.append("jets.tracks")
    else:
        have_trk = _fields(jets.tracks)
        missing += [f"jets.tracks.{f}" for f in track_fields if f not in have_trk]
    if missing:
        raise DataError(
            f"The input jets lack the field(s) {', '.join(missing)}; regenerate them with "
            "`hepchain generate ttbar` (collider provider) or add these columns to your file."
        )


def flatten_jets(events: ak.Array) -> ak.Array:
    """All jets of all events as one array (one entry per jet, tracks nested)."""
    if "jets" not in _fields(events):
        raise DataError("The input events have no 'jets' field; pass a dataset made by "
                        "`hepchain generate ttbar` or a file with events.jets.tracks.")
    return ak.flatten(events.jets, axis=1)
