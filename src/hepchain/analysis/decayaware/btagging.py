"""The parameterised b-tagger: a jet is tagged with a fixed probability per truth (ghost)
flavour, as a Delphes ``BTagging`` module does.

The default efficiencies are our GN1's at its 70 % b-jet working point on our tt̄ jets
(``docs/btag.md``, paper preset, 3 seeds): b 0.70, c 1 / 11.7 = 0.085, light 1 / 1362 =
0.00073; hadronic τ jets were not measured there and take the c value. Wiring the trained
GN1's scores in instead is not done yet (see ``docs/decayaware.md``).
"""

from __future__ import annotations

import awkward as ak
import numpy as np

from hepchain.core.errors import UsageError

#: ghost flavour code of the collider jets (5 b, 4 c, 15 τ, 0 light) -> efficiency key
FLAVOURS = {5: "b", 4: "c", 15: "tau", 0: "light"}


def tag_jets(flavour: ak.Array, efficiency: dict[str, float],
             rng: np.random.Generator) -> ak.Array:
    """0/1 b-tag per jet (same jagged layout as ``flavour``)."""
    missing = set(FLAVOURS.values()) - set(efficiency)
    if missing:
        raise UsageError(f"btag.efficiency needs a value for {', '.join(sorted(missing))}.")
    if not all(0.0 <= float(v) <= 1.0 for v in efficiency.values()):
        raise UsageError("btag.efficiency values must be probabilities in [0, 1].")
    flat = ak.to_numpy(ak.flatten(flavour))
    eff = np.zeros(flat.size)
    for code, key in FLAVOURS.items():
        eff[flat == code] = float(efficiency[key])
    tagged = (rng.random(flat.size) < eff).astype(np.int64)
    return ak.unflatten(tagged, ak.num(flavour))
