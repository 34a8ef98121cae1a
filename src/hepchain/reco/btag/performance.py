"""The btag study's result rows: what the jets are, which baseline GN1 is compared with, and
every tagger's performance on the test jets at working points set on the validation jets.

- :func:`describe_jets`: jet counts per split and test class, the test sample's origin;
- :func:`feature_rows`: secondary-vertex finding efficiency and soft-lepton fraction per class;
- :func:`choose_baseline`: the stronger DL1-like baseline on validation (never on test);
- :func:`rejection_rows`: light/c rejections of every tagger, GN1's ratios to the baselines
  (with the goal's reference) and the auxiliary-task gain;
- :func:`pt_rejections`: light rejection per jet-pT bin;
- :func:`aux_rows`: track-origin AUCs and vertexing metrics of the track models
  (:func:`origin_rows`, :func:`vertex_rows`); :func:`origin_difference_rows`: two models'
  track-origin AUC differences on the same tracks with their paired bootstrap errors.

Scores are ``{tagger: {"val": (N,), "test": (N,)}}`` as :meth:`taggers.Taggers.scores`
returns them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import numpy as np

from hepchain.core import metrics
from hepchain.core.result import Reference, Result
from hepchain.reco.btag import evaluate
from hepchain.reco.btag.gn1 import FULL, BTagJets
from hepchain.reco.btag.highlevel import HL_FEATURES
from hepchain.reco.btag.labels import ORIGIN_CLASSES
from hepchain.reco.btag.taggers import BASELINES

Scores = dict[str, dict[str, np.ndarray]]
GN2_REF = "GN2 vs DL1d, ATLAS data, 70% WP (arXiv:2505.19689)"
STRONGEST = "strongest DL1-like (validation)"
GOAL_RATIOS = {"light": 1.8, "c": 3.5}
"""Reference rejection ratios GN2 / DL1d at 70 % (ATLAS data), printed beside GN1's."""


class TrackTruth(Protocol):
    """Per-track truth of padded jets (``JetTable``, a salt file's ``SaltSplit`` or ``H5Split``)."""

    vertex: np.ndarray  # (N, T) truth vertex, −1: none / padding
    origin: np.ndarray  # (N, T) origin class, −1 in padding
    mask: np.ndarray    # (N, T) True for real tracks


def describe_jets(result: Result, jets: BTagJets, prep_s: float) -> None:
    """A note with the event and jet counts per split (``prep_s``: data preparation [s]) and
    one row per class with its number of test jets."""
    source = (f"test jets from a separate sample of {jets.n_test_events} events (own seed "
              "stream)" if jets.n_test_events else "test jets from the split")
    result.notes.append(
        f"{jets.n_events} ttbar events -> {len(jets.event)} jets; {source} "
        f"({', '.join(f'{k}: {len(v)}' for k, v in jets.tables.items())}); "
        f"data prep {prep_s:.0f} s.")
    counts = np.bincount(jets.labels["test"], minlength=len(jets.classes))
    for name, n in zip(jets.classes, counts, strict=True):
        result.add(f"test {name}-jets", "data", float(n))


def feature_rows(result: Result, features: np.ndarray, label: np.ndarray,
                 classes: list[str]) -> None:
    """Per class of the test jets: the fraction with a secondary vertex found and with a
    soft lepton (``features``: test high-level features, :data:`HL_FEATURES` columns)."""
    for column, title, method in (("sv_found", "SV finding efficiency", "SV finder"),
                                  ("slt_found", "soft-lepton fraction", "lepton ID")):
        j = HL_FEATURES.index(column)
        for i, name in enumerate(classes):
            result.add(f"{title}, {name}-jets", method, float(features[label == i, j].mean()))


def choose_baseline(result: Result, scores: Scores, label: np.ndarray, classes: list[str],
                    eff: float) -> str:
    """The DL1-like baseline with the higher light rejection on the validation jets
    (``label``; half-count estimator, :func:`evaluate.selection_score`)."""
    val = {}
    for name in BASELINES:
        rej = evaluate.rejections((label, scores[name]["val"]), (label, scores[name]["val"]),
                                  classes, [eff], ("light",))[("light", eff)]
        val[name] = evaluate.selection_score(rej)
        result.add(f"validation light rejection @ {eff:.0%} (baseline choice)", name,
                   val[name], higher_is_better=True)
    best = max(BASELINES, key=val.__getitem__)
    result.notes.append(f"Strongest DL1-like baseline on validation: {best} (light rejection "
                        f"@ {eff:.0%}: " + ", ".join(f"{k} {v:.0f}" for k, v in val.items())
                        + ").")
    return best


def rejection_rows(result: Result, scores: Scores, labels: dict[str, np.ndarray],
                   classes: list[str], efficiencies: list[float], baseline: str | None,
                   baselines: tuple[str, ...] = BASELINES) -> None:
    """Light and c rejections of every tagger at every working point (binomial errors); at
    the first working point GN1's ratios to each of ``baselines`` and to the ``baseline``
    chosen on validation among them (with the GN2 / DL1d reference; None: no such choice,
    each ratio with a binomial-error row of its own), and the aux-task gain GN1 / GN1 no-aux."""
    rej = {name: evaluate.rejections((labels["val"], s["val"]), (labels["test"], s["test"]),
                                     classes, efficiencies) for name, s in scores.items()}
    for bkg, eff in next(iter(rej.values())):
        for name, r in rej.items():
            evaluate.add_rejection_rows(result, name, bkg, eff, r[(bkg, eff)])
    wp = efficiencies[0]
    compared = (*baselines, STRONGEST) if baseline is not None else baselines
    for name in (n for n in rej if n.startswith(FULL)):
        for bkg, ref in GOAL_RATIOS.items():
            for base in compared:
                other = rej[baseline if base == STRONGEST else base][(bkg, wp)]
                ratio, err = evaluate.rejection_ratio(rej[name][(bkg, wp)], other)
                title = f"{bkg} rejection ratio to {base} @ {wp:.0%}"
                result.add(title, name, ratio, std=err, higher_is_better=True,
                           reference=Reference(ref, GN2_REF) if base == STRONGEST else None)
                if base == STRONGEST or baseline is None:
                    result.add(f"{title}, binomial error", name, err, higher_is_better=False)
    if FULL in rej and f"{FULL} no-aux" in rej:
        gain, err = evaluate.rejection_ratio(rej[FULL][("light", wp)],
                                             rej[f"{FULL} no-aux"][("light", wp)])
        title = f"aux-task gain (light rej. {FULL} / {FULL} no-aux) @ {wp:.0%}"
        result.add(title, FULL, gain, std=err, higher_is_better=True)
        result.add(f"{title}, binomial error", FULL, err, higher_is_better=False)


def pt_rejections(result: Result, scores: Scores, jets: BTagJets, names: Iterable[str],
                  edges: list[float], wp: float) -> dict[str, list[metrics.Rejection | None]]:
    """Light rejection at the ``wp`` working point (cut per bin on validation) in each
    jet-pT bin of ``edges`` [GeV] for the taggers ``names`` (those present); a row per
    measured bin, None where a bin has no jets."""
    pt = {k: jets.tables[k].jet[:, 0] for k in ("val", "test")}
    labels = jets.labels
    per_pt = {name: evaluate.rejection_vs_pt((labels["val"], scores[name]["val"], pt["val"]),
                                             (labels["test"], scores[name]["test"], pt["test"]),
                                             jets.classes, edges, wp)
              for name in scores if name in names}
    for name, rows in per_pt.items():
        for lo, hi, r in zip(edges[:-1], edges[1:], rows, strict=True):
            if r is not None:
                result.add_rejection(f"light rejection @ {wp:.0%}, pT {lo:g}-{hi:g} GeV",
                                     name, r, higher_is_better=True)
    return per_pt


def aux_rows(result: Result, outputs: dict[str, dict[str, np.ndarray]], test: TrackTruth,
             label: np.ndarray, classes: list[str]) -> dict[str, np.ndarray]:
    """Per track model with those heads: :func:`origin_rows` and :func:`vertex_rows` on the
    test jets. Returns the row-normalised track-origin confusion matrix of each model with
    that head."""
    b_jets = label == classes.index("b")
    confusions = {}
    for name, out in outputs.items():
        if "track" in out:
            confusions[name] = origin_rows(result, name, out["track"], test.origin, test.mask)
        if "vertex" in out:
            vertex_rows(result, name, out["vertex"], test, b_jets)
    return confusions


def origin_rows(result: Result, name: str, probs: np.ndarray, origin: np.ndarray,
                mask: np.ndarray) -> np.ndarray:
    """The one-vs-rest AUC of every track-origin class present; returns the row-normalised
    confusion matrix."""
    confusion, aucs = evaluate.origin_metrics(origin, probs, mask)
    for cls, auc in aucs.items():
        result.add(f"track-origin AUC {cls}", name, auc, higher_is_better=True)
    return confusion


def origin_difference_rows(result: Result, a: str, b: str, probs_a: np.ndarray,
                           probs_b: np.ndarray, origin: np.ndarray, mask: np.ndarray,
                           n_boot: int = 200) -> None:
    """Per track-origin class present, AUC(a) − AUC(b) of two models' track-origin
    probabilities (N, T, classes) on the same tracks, with the test sample's error: the
    paired bootstrap over jets (:func:`~hepchain.core.metrics.bootstrap_aucs`, the tracks of a
    jet resampled together), as its ``std`` and as a row of its own (kept beside the seed
    spread when seeds are aggregated)."""
    y, jet = origin[mask], np.nonzero(mask)[0]
    pa, pb = probs_a[mask], probs_b[mask]
    for k, cls in enumerate(ORIGIN_CLASSES):
        pos = y == k
        if pos.all() or not pos.any():
            continue
        reps = metrics.bootstrap_aucs(pos, [pa[:, k], pb[:, k]], groups=jet, n_boot=n_boot)
        diff = metrics.roc_auc(pos, pa[:, k]) - metrics.roc_auc(pos, pb[:, k])
        error = float(np.std(reps[:, 0] - reps[:, 1], ddof=1))
        name = f"track-origin AUC {cls}, {a} − {b}"
        result.add(name, a, diff, std=error, higher_is_better=True)
        result.add(f"{name}, paired bootstrap error", a, error, higher_is_better=False)


def vertex_rows(result: Result, name: str, pair_prob: np.ndarray, truth: TrackTruth,
                b_jets: np.ndarray, suffix: str = "") -> None:
    """Same-vertex pair precision/recall (all pairs, and displaced-vertex pairs) and b-hadron
    vertex efficiency of ``pair_prob`` (N, T, T) against ``truth`` (its ``vertex``,
    ``origin`` and ``mask``); ``suffix`` is appended to every row name."""
    vm = evaluate.vertex_metrics(truth.vertex, truth.origin, pair_prob, truth.mask, b_jets)
    for metric, key in (("same-vertex pair precision", "pair_precision"),
                        ("same-vertex pair recall", "pair_recall"),
                        ("same-vertex pair precision, displaced vertices", "displaced_precision"),
                        ("same-vertex pair recall, displaced vertices", "displaced_recall")):
        result.add(metric + suffix, name, vm[key], higher_is_better=True)
    result.add("b-hadron vertex found (fraction of b-jets)" + suffix, name,
               vm["b_vertex_efficiency"], n=int(vm["b_vertex_jets"]), higher_is_better=True)
