"""Filtering before hadronisation (``ttbb`` with option ``prefilter=1``).

A Pythia ``UserHooks`` veto at the end of the parton level: events with fewer than
:data:`MIN_B` final-state b quarks of pT > :data:`PT_MIN` GeV are vetoed before hadronisation
and decays (Pythia then generates the next event; ``nextBatch`` returns accepted events only).
The b-hadron ghost filter of :mod:`.events` still runs on the accepted events, so the sample
is the unfiltered one minus the events whose b hadrons pass but whose b quarks do not
(measured in ``docs/decayaware.md``).
"""

from __future__ import annotations

from typing import Any

MIN_B, PT_MIN = 4, 5.0


def b_quark_veto(options: dict[str, Any]) -> Any:
    """A fresh veto hook for one Pythia instance when ``options["prefilter"]`` is 1, else
    None (hooks hold per-instance state, so every generator gets its own)."""
    if not options.get("prefilter"):
        return None
    import pythia8mc

    class BQuarkVeto(pythia8mc.UserHooks):
        """Veto events with < MIN_B final-state b quarks above PT_MIN after the shower."""

        def canVetoPartonLevel(self) -> bool:
            return True

        def doVetoPartonLevel(self, event: Any) -> bool:
            n_b = sum(1 for k in range(event.size()) if event[k].isFinal()
                      and event[k].idAbs() == 5 and event[k].pT() > PT_MIN)
            return n_b < MIN_B

    return BQuarkVeto()
