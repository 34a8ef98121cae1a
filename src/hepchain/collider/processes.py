"""The catalogue of named Pythia 8 processes at sqrt(s) = 13 TeV and their ``--set`` options.

Each process is a list of Pythia setting strings built from validated options. Masses and
momentum thresholds are in GeV. Every process also accepts the generic options of
:data:`COMMON_OPTIONS` (pile-up ``mu``, fat-jet radius ``fatjet_R``, fat-jet threshold
``fatjet_ptmin``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hepchain.core.errors import UsageError

BASE_SETTINGS: tuple[str, ...] = (
    "Beams:eCM = 13000.",
    "Next:numberCount = 0",
    "Next:numberShowEvent = 0",
    "Next:numberShowProcess = 0",
    "Next:numberShowInfo = 0",
    "Print:quiet = on",
    "Random:setSeed = on",
)

#: generic options of every process: name -> (default, type, description); an option whose
#: default is None is left out of the settings unless given, so adding one keeps every
#: earlier dataset's settings and cache key
COMMON_OPTIONS: dict[str, tuple[Any, type, str]] = {
    "mu": (0.0, float, "mean number of overlaid minimum-bias pile-up events (Poisson)"),
    "fatjet_R": (1.0, float, "anti-kt radius of the large-R jets"),
    "fatjet_ptmin": (200.0, float, "minimum large-R jet pT [GeV]"),
    "fatjet_constituents": (0, int, "1: store each large-R jet's particle-flow constituents"),
    "jet_trees": (0, int, "1: store each R = 0.4 jet's clustering tree and truth decay tree"),
}

_W_HADRONIC = ("24:onMode = off", "24:onIfAny = 1 2 3 4 5")
_SEMILEPTONIC = ("24:onMode = off", "24:onPosIfAny = 1 2 3 4 5", "24:onNegIfAny = 11 13 15")
#: the charge conjugate of _SEMILEPTONIC: W+ leptonic, W- hadronic
_CONJUGATE = {"24:onPosIfAny = 1 2 3 4 5": "24:onPosIfAny = 11 13 15",
              "24:onNegIfAny = 11 13 15": "24:onNegIfAny = 1 2 3 4 5"}


@dataclass(frozen=True)
class Process:
    """A named process: description, option defaults/types and a settings builder."""

    name: str
    description: str
    build: Callable[[dict[str, Any]], list[str]]
    options: dict[str, tuple[Any, type, str]] = field(default_factory=dict)
    check: Callable[[dict[str, Any]], None] | None = None
    #: for mixed samples: settings of the background half (events get ``is_signal``)
    background: Callable[[dict[str, Any]], list[str]] | None = None


def _ttbar(o: dict[str, Any]) -> list[str]:
    decay = {"inclusive": (), "semileptonic": _SEMILEPTONIC, "hadronic": _W_HADRONIC}[o["decay"]]
    return ["Top:gg2ttbar = on", "Top:qqbar2ttbar = on", *decay,
            f"PhaseSpace:pTHatMin = {o['pthat_min']}"]


def _check_ttbar(o: dict[str, Any]) -> None:
    if o["decay"] not in ("inclusive", "semileptonic", "hadronic"):
        raise UsageError(f"ttbar decay={o['decay']!r} is not known; use inclusive, "
                         "semileptonic or hadronic.")


def _dijet(o: dict[str, Any]) -> list[str]:
    out = ["HardQCD:all = on", f"PhaseSpace:pTHatMin = {o['pthat_min']}",
           f"PhaseSpace:mHatMin = {o['mhat_min']}"]
    if o["mhat_max"] > 0:
        out.append(f"PhaseSpace:mHatMax = {o['mhat_max']}")
    return out


def _check_dijet(o: dict[str, Any]) -> None:
    if 0 < o["mhat_max"] <= o["mhat_min"]:
        raise UsageError(f"qcd_dijet needs mhat_max ({o['mhat_max']}) above mhat_min "
                         f"({o['mhat_min']}) GeV, or mhat_max=0 for no upper limit.")


def _narrow(pid: int, mass: float, width: float | None = None) -> list[str]:
    """A resonance of ``mass`` [GeV] and ``width`` [GeV] (None: 1 % of the mass), its line shape
    cut at half and one and a half times the mass, every decay channel off."""
    return [f"{pid}:m0 = {mass}", f"{pid}:doForceWidth = on",
            f"{pid}:mWidth = {0.01 * mass if width is None else width}",
            f"{pid}:mMin = {0.5 * mass}", f"{pid}:mMax = {1.5 * mass}", f"{pid}:onMode = off"]


def _spread(pid: int, low: float, high: float) -> list[str]:
    """A resonance whose mass varies from event to event over [``low``, ``high``] GeV: a
    Breit-Wigner ten times wider than the window, cut to it (nearly flat across it; the
    parton luminosities and phase space still shape the masses drawn), every decay channel
    off. Each event's mass is in its hard-process record."""
    return [f"{pid}:m0 = {0.5 * (low + high)}", f"{pid}:doForceWidth = on",
            f"{pid}:mWidth = {10 * (high - low)}", f"{pid}:mMin = {low}",
            f"{pid}:mMax = {high}", f"{pid}:onMode = off"]


def _mass(pid: int, o: dict[str, Any], key: str, width: float | None = None) -> list[str]:
    """The resonance of option ``key``: fixed (:func:`_narrow`), or spread up to option
    ``<key>_max`` when given (:func:`_spread`)."""
    high = o.get(f"{key}_max")
    return _narrow(pid, o[key], width) if high is None else _spread(pid, o[key], high)


def _to_quarks(pid: int, pairs: tuple[tuple[int, int], ...]) -> list[str]:
    return [f"{pid}:addChannel = 1 {1 / len(pairs)} 100 {a} {b}" for a, b in pairs]


#: the PDG id of each resonance of ``wprime_xy``, by its mass option
WPRIME_XY_IDS = {"mwprime": 34, "mx": 37, "my": 35}


def _wprime_xy(o: dict[str, Any]) -> list[str]:
    # W' (id 34, s-channel 2 -> 1) -> X Y with X = Pythia's charged H+ (37) -> u dbar, c sbar
    # and Y = H0 (35) -> q qbar (q = d, u, s, c), so that charge is conserved.
    return ["NewGaugeBoson:ffbar2Wprime = on", *_mass(WPRIME_XY_IDS["mwprime"], o, "mwprime"),
            "34:addChannel = 1 1.0 100 37 35",
            *_mass(WPRIME_XY_IDS["mx"], o, "mx", o.get("gx")),
            *_to_quarks(37, ((2, -1), (4, -3))), *_mass(WPRIME_XY_IDS["my"], o, "my"),
            *_to_quarks(35, ((1, -1), (2, -2), (3, -3), (4, -4))),
            f"PhaseSpace:mHatMin = {0.5 * o['mwprime']}"]


def _check_wprime(o: dict[str, Any]) -> None:
    for key in WPRIME_XY_IDS:
        if f"{key}_max" in o and not o[f"{key}_max"] > o[key]:
            raise UsageError(f"wprime_xy needs {key}_max above {key} ({o[key]} GeV), got "
                             f"{o[f'{key}_max']} GeV.")
    heaviest = o.get("mx_max", o["mx"]) + o.get("my_max", o["my"])
    if heaviest >= o["mwprime"]:
        raise UsageError(f"wprime_xy needs mx + my ({heaviest}, at their largest) below "
                         f"mwprime ({o['mwprime']}, at its smallest) GeV.")
    if o.get("flat") and not any(f"{key}_max" in o for key in WPRIME_XY_IDS):
        raise UsageError("wprime_xy flat=1 flattens spread masses; spread one with mwprime_max, "
                         "mx_max or my_max.")
    if "gx" in o and "mx_max" in o:
        raise UsageError("wprime_xy takes the X width gx only at a fixed X mass (no mx_max).")
    if "gx" in o and not 0 < o["gx"] <= 0.5 * o["mx"]:
        raise UsageError(f"wprime_xy needs the X width gx above 0 and at most half of mx "
                         f"({0.5 * o['mx']} GeV), got {o['gx']} GeV.")


def _z_tautau(o: dict[str, Any]) -> list[str]:
    return ["WeakSingleBoson:ffbar2gmZ = on", "WeakZ0:gmZmode = 2", "23:onMode = off",
            "23:onIfAny = 15", "PhaseSpace:mHatMin = 60."]


def _h_tautau(o: dict[str, Any]) -> list[str]:
    return ["HiggsSM:gg2H = on", "25:onMode = off", "25:onIfAny = 15"]


def _tth_bb(o: dict[str, Any]) -> list[str]:
    return ["HiggsSM:gg2Httbar = on", "HiggsSM:qqbar2Httbar = on", "25:onMode = off",
            "25:onIfAny = 5", *_SEMILEPTONIC]


def _ttbb(o: dict[str, Any]) -> list[str]:
    # t tbar + g -> b bbar from the parton shower; events are kept by the b-hadron filter in
    # hepchain.collider.events (at least 4 b hadrons with pT > 5 GeV); with prefilter=1 a
    # parton-level b-quark veto runs before hadronisation (hepchain.collider.prefilter).
    return ["Top:gg2ttbar = on", "Top:qqbar2ttbar = on", *_SEMILEPTONIC]


def _zjets(o: dict[str, Any]) -> list[str]:
    return ["WeakBosonAndParton:qqbar2gmZg = on", "WeakBosonAndParton:qg2gmZq = on",
            "WeakZ0:gmZmode = 2", "23:onMode = off", "23:onIfAny = 11 13",
            f"PhaseSpace:pTHatMin = {o['pthat_min']}"]


def _top_boosted(o: dict[str, Any]) -> list[str]:
    return ["Top:gg2ttbar = on", "Top:qqbar2ttbar = on", *_W_HADRONIC,
            f"PhaseSpace:pTHatMin = {o['pthat_min']}"]


def _qcd_boosted(o: dict[str, Any]) -> list[str]:
    return ["HardQCD:all = on", f"PhaseSpace:pTHatMin = {o['pthat_min']}"]


#: JetClass classes -> Pythia settings of a boosted source (pT-hat > pthat_min)
_BOOSTED_H = ("HiggsSM:ffbar2HZ = on", "23:onMode = off", "23:onIfAny = 12 14 16")
_BOOSTED_V = ("WeakBosonAndParton:qqbar2gmZg = on", "WeakBosonAndParton:qg2gmZq = on",
              "WeakZ0:gmZmode = 2")
_BOOSTED_W = ("WeakBosonAndParton:qqbar2Wg = on", "WeakBosonAndParton:qg2Wq = on")
_TTBAR = ("Top:gg2ttbar = on", "Top:qqbar2ttbar = on")
JETCLASS: dict[str, tuple[str, ...]] = {
    "QCD": ("HardQCD:all = on",),
    "Hbb": (*_BOOSTED_H, "25:onMode = off", "25:onIfAny = 5"),
    "Hcc": (*_BOOSTED_H, "25:onMode = off", "25:onIfAny = 4"),
    "Hgg": (*_BOOSTED_H, "25:onMode = off", "25:onIfAny = 21"),
    "H4q": (*_BOOSTED_H, "25:onMode = off", "25:onIfMatch = 24 -24", *_W_HADRONIC),
    "Hqql": (*_BOOSTED_H, "25:onMode = off", "25:onIfMatch = 24 -24", *_SEMILEPTONIC),
    "Zqq": (*_BOOSTED_V, "23:onMode = off", "23:onIfAny = 1 2 3 4 5"),
    "Wqq": (*_BOOSTED_W, *_W_HADRONIC),
    "Tbqq": (*_TTBAR, *_W_HADRONIC),
    "Tbl": (*_TTBAR, "24:onMode = off", "24:onIfAny = 11 13 15"),
}


def _jetclass(o: dict[str, Any]) -> list[str]:
    return [*JETCLASS[o["label"]], f"PhaseSpace:pTHatMin = {o['pthat_min']}"]


def _check_jetclass(o: dict[str, Any]) -> None:
    if o["label"] not in JETCLASS:
        raise UsageError(f"jetclass label={o['label']!r} is unknown; use one of "
                         f"{', '.join(JETCLASS)}.")


CATALOGUE: dict[str, Process] = {p.name: p for p in (
    Process("ttbar", "pp -> t tbar (b, c, light jets); decay=inclusive|semileptonic|hadronic",
            _ttbar, {"decay": ("inclusive", str, "W decays"),
                     "pthat_min": (0.0, float, "minimum pT-hat [GeV]")}, _check_ttbar),
    Process("qcd_dijet", "QCD 2 -> 2 (HardQCD:all) with pT-hat and m-hat windows",
            _dijet, {"pthat_min": (20.0, float, "minimum pT-hat [GeV]"),
                     "mhat_min": (0.0, float, "minimum m-hat [GeV]"),
                     "mhat_max": (0.0, float, "maximum m-hat [GeV], 0 = none")}, _check_dijet),
    Process("wprime_xy", "heavy resonance (3.5 TeV) -> X (500 GeV) Y (100 GeV), X,Y -> q qbar",
            _wprime_xy, {"mwprime": (3500.0, float, "resonance mass [GeV]"),
                         "mx": (500.0, float, "X mass [GeV]"),
                         "my": (100.0, float, "Y mass [GeV]"),
                         "gx": (None, float, "X width [GeV]; unset: 1 % of mx"),
                         **{f"{k}_max": (None, float, f"spread {k} from event to event up to "
                                         "this [GeV] (each event's masses in its partons); "
                                         "unset: fixed")
                            for k in WPRIME_XY_IDS},
                         "flat": (None, int, "1: draw the spread masses flat over their "
                                  "windows (a process-level veto, hepchain.collider.flatmass)")},
            _check_wprime),
    Process("Z_tautau", "q qbar -> Z -> tau tau (m-hat > 60 GeV)", _z_tautau),
    Process("H_tautau", "g g -> H (125 GeV) -> tau tau", _h_tautau),
    Process("ttH_bb", "t tbar H, H -> b bbar, semileptonic t tbar", _tth_bb),
    Process("ttbb", "semileptonic t tbar with >= 4 b hadrons (extra b bbar from the shower)",
            _ttbb, {"prefilter": (0, int, "1: veto events with < 4 b quarks (pT > 5 GeV) "
                                          "before hadronisation")}),
    Process("Zjets", "Z + jet, Z -> e e / mu mu", _zjets,
            {"pthat_min": (20.0, float, "minimum pT-hat [GeV]")}),
    Process("top_boosted", "hadronic t tbar with pT-hat > 500 GeV (top-tagging signal)",
            _top_boosted, {"pthat_min": (500.0, float, "minimum pT-hat [GeV]")}),
    Process("qcd_boosted", "QCD dijets with pT-hat > 500 GeV (top-tagging background)",
            _qcd_boosted, {"pthat_min": (500.0, float, "minimum pT-hat [GeV]")}),
    Process("top_qcd", "top-tagging-landscape-like mix: half boosted hadronic t tbar, half "
            "QCD (pT-hat > 500 GeV), R = 0.8 jets with constituents, field is_signal",
            _top_boosted, {"pthat_min": (500.0, float, "minimum pT-hat [GeV]"),
                           "fatjet_R": (0.8, float, "anti-kt radius of the large-R jets"),
                           "fatjet_ptmin": (500.0, float, "minimum large-R jet pT [GeV]"),
                           "fatjet_constituents": (1, int, "store constituents (1) or not")},
            background=_qcd_boosted),
    Process("jetclass", "JetClass-like boosted jets of one class (label=QCD, Hbb, Hcc, Hgg, "
            "H4q, Hqql, Zqq, Wqq, Tbqq, Tbl), R = 0.8 with constituents",
            _jetclass, {"label": ("QCD", str, "JetClass class"),
                        "pthat_min": (400.0, float, "minimum pT-hat [GeV]"),
                        "fatjet_R": (0.8, float, "anti-kt radius of the large-R jets"),
                        "fatjet_ptmin": (400.0, float, "minimum large-R jet pT [GeV]"),
                        "fatjet_constituents": (1, int, "store constituents (1) or not")},
            _check_jetclass),
)}


def resolve(name: str, options: dict[str, str] | None = None) -> tuple[Process, dict[str, Any]]:
    """The process ``name`` and its typed options (defaults filled in); UsageError on bad input."""
    if name not in CATALOGUE:
        raise UsageError(f"Unknown process {name!r}; choose one of {', '.join(CATALOGUE)}.")
    proc = CATALOGUE[name]
    spec = {**COMMON_OPTIONS, **proc.options}
    values = {key: default for key, (default, _, _) in spec.items() if default is not None}
    for key, raw in (options or {}).items():
        if key not in spec:
            raise UsageError(f"{name} has no option {key!r}; known options: "
                             f"{', '.join(sorted(spec))}.")
        kind = spec[key][1]
        try:
            values[key] = kind(raw)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"Option {key}={raw!r} of {name} must be a {kind.__name__}.") from exc
    for key in ("mu", "fatjet_ptmin", "pthat_min", "mhat_min", "mhat_max"):
        if key in values and values[key] < 0:
            raise UsageError(f"Option {key} of {name} must be >= 0, got {values[key]}.")
    for key in ("fatjet_constituents", "jet_trees", "prefilter", "flat"):
        if key in values and values[key] not in (0, 1):
            raise UsageError(f"Option {key} of {name} must be 0 or 1.")
    for key in ("fatjet_R", "mwprime", "mx", "my"):
        if key in values and values[key] <= 0:
            raise UsageError(f"Option {key} of {name} must be > 0, got {values[key]}.")
    if proc.check is not None:
        proc.check(values)
    return proc, values


def pythia_settings(name: str, values: dict[str, Any]) -> list[str]:
    """All Pythia setting strings of process ``name`` with typed option ``values``."""
    return [*BASE_SETTINGS, *CATALOGUE[name].build(values)]


def conjugate_settings(settings: list[str]) -> list[str] | None:
    """The charge-conjugate Pythia settings of a process whose W decays depend on the W
    charge (semileptonic: W+ hadronic, W- leptonic), or None for a charge-symmetric process.
    Events are drawn from both with probability 1/2 each (:mod:`.events`), so W+ and W- are
    leptonic equally often."""
    if not any(line in _CONJUGATE for line in settings):
        return None
    return [_CONJUGATE.get(line, line) for line in settings]


def background_settings(name: str, values: dict[str, Any]) -> list[str] | None:
    """Pythia settings of the background half of a mixed process (None if not mixed)."""
    bkg = CATALOGUE[name].background
    return None if bkg is None else [*BASE_SETTINGS, *bkg(values)]
