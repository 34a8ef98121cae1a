"""Performance of the taggers: the b-tag discriminant, rejections at working points, and the
auxiliary-task metrics (track origin, vertexing).

b-tag discriminant (DL1/GN1 convention)::

    D_b = ln( p_b / (f_c p_c + (1 − f_c) p_light) )

with the charm fraction f_c a free choice that trades light- against c-rejection (ATLAS values
recalled, not checked: 0.018 for DL1r, 0.05 for GN1 in ATL-PHYS-PUB-2022-027). This study's
default is 0.05 (``fc`` in ``configs/btag.yaml``), the same for every model. With a τ class, τ jets are
counted with the light jets in the denominator.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from hepchain.core import metrics
from hepchain.core.result import Result
from hepchain.reco.btag.labels import ORIGIN_CLASSES


def discriminant(probs: np.ndarray, classes: list[str] | tuple[str, ...], fc: float) -> np.ndarray:
    """D_b from class probabilities (N, C) with columns named by ``classes``."""
    eps = 1e-12
    p = {name: probs[:, i] for i, name in enumerate(classes)}
    light = p["light"] + p.get("tau", 0.0)
    return np.log(p["b"] + eps) - np.log(fc * p["c"] + (1 - fc) * light + eps)


def rejection_at_cut(is_signal: np.ndarray, score: np.ndarray, threshold: float,
                     target: float) -> metrics.Rejection:
    """Background rejection 1/ε_B ± binomial error of the cut ``score ≥ threshold`` (set on
    other jets, e.g. validation), a 68 % CL lower limit when no background jet passes;
    ``efficiency`` is the signal efficiency reached on these jets (``target`` when it cannot
    be measured: no signal jet)."""
    sig, bkg = score[is_signal], score[~is_signal]
    eff = float((sig >= threshold).mean()) if sig.size else target
    return metrics.rejection_from_counts(int((bkg >= threshold).sum()), bkg.size, eff, threshold)


def working_point(label: np.ndarray, score: np.ndarray, b: int, bkg: int,
                  efficiency: float) -> float:
    """Cut on ``score`` keeping ``efficiency`` of the b-jets (class ``b``) among the b and
    ``bkg`` jets of ``label`` (the validation jets)."""
    sel = (label == b) | (label == bkg)
    return metrics.rejection_at_efficiency(label[sel] == b, score[sel], efficiency).threshold


def rejections(val: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
               classes: list[str] | tuple[str, ...], efficiencies: list[float],
               backgrounds: tuple[str, ...] = ("light", "c")
               ) -> dict[tuple[str, float], metrics.Rejection]:
    """Rejection of each background flavour on the test jets at working points set on the
    validation jets (``val`` and ``test`` are ``(label, score)``), binomial errors."""
    b = classes.index("b")
    out = {}
    for bkg in backgrounds:
        k = classes.index(bkg)
        sel = (test[0] == b) | (test[0] == k)
        for eff in efficiencies:
            cut = working_point(*val, b, k, eff)
            out[(bkg, eff)] = rejection_at_cut(test[0][sel] == b, test[1][sel], cut, eff)
    return out


def add_rejection_rows(result: Result, name: str, bkg: str, eff: float,
                       row: metrics.Rejection) -> None:
    """The rows of one tagger's ``bkg`` rejection at the ``eff`` working point: the rejection
    (a lower limit when no background passes), its binomial error, the number of test
    background jets passing and, for light jets, the b-efficiency reached on the test jets."""
    result.add_rejection(f"{bkg} rejection @ {eff:.0%} b-eff", name, row, higher_is_better=True)
    if not row.is_lower_limit:
        result.add(f"{bkg} rejection @ {eff:.0%} b-eff, binomial error", name, row.error,
                   higher_is_better=False)
    result.add(f"test {bkg}-jets passing the {eff:.0%} working point", name,
               0.0 if row.is_lower_limit else round(row.n_background / row.rejection))
    if bkg == "light":
        result.add(f"test b-jet efficiency at the {eff:.0%} working point", name, row.efficiency)


def rejection_ratio(a: metrics.Rejection, b: metrics.Rejection) -> tuple[float, float]:
    """Rejection ratio a / b and its binomial error (the two relative errors in quadrature,
    as for independent jets: conservative for two taggers on the same jets); NaN when either
    rejection is only a lower limit (no background jet passed the cut)."""
    if a.is_lower_limit or b.is_lower_limit:
        return float("nan"), float("nan")
    ratio = a.rejection / b.rejection
    return ratio, ratio * float(np.hypot(a.error / a.rejection, b.error / b.rejection))


def paired_ratio_error(passes_a: np.ndarray, passes_b: np.ndarray, n_boot: int = 2000,
                       seed: int = 0) -> float:
    """Bootstrap error of the rejection ratio a / b of two taggers' cuts on the *same*
    background jets (``passes_a``, ``passes_b``: whether each jet passes each cut): on every
    resampling of the jets the ratio is passes(b) / passes(a), so jets that both taggers pass
    (or both reject) move both counts together and the error is the paired one, smaller than
    the binomial errors in quadrature of :func:`rejection_ratio`. A resampling with replacement
    only changes the four (pass a, pass b) counts, a multinomial draw, which is how it is
    drawn here. NaN when either tagger passes no jet::

        paired_ratio_error(score_a[light] >= cut_a, score_b[light] >= cut_b)
    """
    a, b = np.asarray(passes_a, dtype=bool), np.asarray(passes_b, dtype=bool)
    counts = np.array([(a & b).sum(), (a & ~b).sum(), (~a & b).sum(), (~a & ~b).sum()])
    if counts[0] + counts[1] == 0 or counts[0] + counts[2] == 0:
        return float("nan")
    draws = np.random.default_rng(seed).multinomial(counts.sum(), counts / counts.sum(), n_boot)
    pass_a, pass_b = draws[:, 0] + draws[:, 1], draws[:, 0] + draws[:, 2]
    ok = pass_a > 0
    return float(np.std(pass_b[ok] / pass_a[ok], ddof=1))


def add_training_cost(result: Result, name: str, wall_s: float, cpu_s: float,
                      jets_seen: int) -> None:
    """Training cost rows of one tagger: wall time [s], CPU time [s] (user + system) and the
    throughput in training jets per wall second and per CPU second (``jets_seen`` = training
    jets x epochs run, validation passes included in the time; on a shared machine the CPU
    figure is the steadier one)."""
    result.add("training wall time (s)", name, wall_s, higher_is_better=False)
    result.add("training CPU time (s)", name, cpu_s, higher_is_better=False)
    for unit, seconds in (("jets/s", wall_s), ("jets/CPU-s", cpu_s)):
        result.add(f"training throughput ({unit})", name,
                   jets_seen / seconds if seconds > 0 else float("nan"), higher_is_better=True)


def selection_score(rej: metrics.Rejection) -> float:
    """Rejection with half a count added, (N_B + ½) / (N_pass + ½): finite when no
    background passes, used to pick the strongest baseline on validation jets."""
    n_pass = 0.0 if rej.is_lower_limit else rej.n_background / rej.rejection
    return (rej.n_background + 0.5) / (n_pass + 0.5)


def rejection_vs_pt(val: tuple[np.ndarray, np.ndarray, np.ndarray],
                    test: tuple[np.ndarray, np.ndarray, np.ndarray],
                    classes: list[str] | tuple[str, ...], edges: list[float], eff: float,
                    bkg: str = "light") -> list[metrics.Rejection | None]:
    """Light (or c) rejection at a b-efficiency in each jet-pT bin [GeV]: ``val`` and
    ``test`` are ``(label, score, pt)``; the cut is set per bin on the validation jets (flat
    efficiency) and applied to the test jets; None where a bin lacks b or background jets."""
    b, k = classes.index("b"), classes.index(bkg)
    out: list[metrics.Rejection | None] = []
    for lo, hi in itertools.pairwise(edges):
        in_bin = [(pt >= lo) & (pt < hi) & ((lab == b) | (lab == k)) for lab, _, pt in (val, test)]
        ok = all((lab[m] == b).any() and (lab[m] != b).any()
                 for (lab, _, _), m in zip((val, test), in_bin, strict=True))
        if not ok:
            out.append(None)
            continue
        cut = working_point(val[0][in_bin[0]], val[1][in_bin[0]], b, k, eff)
        lab, score = test[0][in_bin[1]], test[1][in_bin[1]]
        out.append(rejection_at_cut(lab == b, score, cut, eff))
    return out


def origin_metrics(origin: np.ndarray, probs: np.ndarray, mask: np.ndarray
                   ) -> tuple[np.ndarray, dict[str, float]]:
    """Row-normalised confusion matrix (8×8) and one-vs-rest ROC AUC per present class."""
    y = origin[mask]
    p = probs[mask]
    cm = metrics.confusion_matrix(y, p.argmax(-1), n_classes=len(ORIGIN_CLASSES), normalize=True)
    aucs = {}
    for k, name in enumerate(ORIGIN_CLASSES):
        pos = y == k
        if pos.any() and (~pos).any():
            aucs[name] = metrics.roc_auc(pos, p[:, k])
    return cm, aucs


def vertex_index(pair_prob: np.ndarray, mask: np.ndarray, threshold: float = 0.5
                 ) -> np.ndarray:
    """Predicted vertex of every track (N, T): the connected components of the graph of
    real-track pairs with ``pair_prob`` (N, T, T) > ``threshold``, numbered from 0 in each jet
    (a track alone is its own vertex); −1 in padding. salt's vertexing output
    (``VertexIndex``) is the same construction on its edge scores."""
    out = np.full(mask.shape, -1, dtype=np.int64)
    for j in range(len(mask)):
        m = mask[j]
        adj = (pair_prob[j] > threshold) & m[:, None] & m[None, :]
        _, comp = connected_components(csr_matrix(adj | adj.T), directed=False)
        _, out[j][m] = np.unique(comp[m], return_inverse=True)
    return out


def same_vertex_pairs(index: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(N, T, T) bool: both tracks real and in the same predicted vertex ``index`` (N, T) —
    the pair decisions of a vertex finder, for :func:`vertex_metrics`."""
    return (index[:, :, None] == index[:, None, :]) & mask[:, :, None] & mask[:, None, :]


def vertex_metrics(vertex: np.ndarray, origin: np.ndarray, pair_prob: np.ndarray,
                   mask: np.ndarray, b_jets: np.ndarray, threshold: float = 0.5
                   ) -> dict[str, float]:
    """Pairwise precision/recall of the same-vertex head and the b-hadron vertex efficiency.

    Pairs are unordered pairs of distinct real tracks. The numbers over all pairs are
    dominated by primary-vertex pairs (truth vertex 0); ``displaced_recall`` counts only the
    pairs of one displaced truth vertex (index ≥ 1), ``displaced_precision`` only the
    predicted pairs with at least one track from a displaced vertex (NaN without such pairs).
    Predicted vertices are the connected components (≥ 2 tracks) of the graph of pairs with
    probability > ``threshold``. A b-jet's b-hadron vertex is the truth vertex holding most of
    its fromB tracks (needs ≥ 2); it is found if a predicted vertex contains ≥ 65 % of its
    tracks with ≥ 50 % purity (GN1's matching criterion).
    """
    t = mask.shape[1]
    upper = np.triu(np.ones((t, t), dtype=bool), k=1)
    valid = mask[:, :, None] & mask[:, None, :] & upper
    truth = (vertex[:, :, None] == vertex[:, None, :]) & (vertex[:, :, None] >= 0)
    pred = pair_prob > threshold
    tp = (pred & truth & valid).sum()
    precision = tp / max((pred & valid).sum(), 1)
    recall = tp / max((truth & valid).sum(), 1)
    displaced = vertex >= 1
    truth_d = truth & valid & displaced[:, :, None]
    pred_d = pred & valid & (displaced[:, :, None] | displaced[:, None, :])
    recall_d = (pred & truth_d).sum() / truth_d.sum() if truth_d.any() else float("nan")
    precision_d = (pred_d & truth).sum() / pred_d.sum() if pred_d.any() else float("nan")

    n_eligible = n_found = 0
    for j in np.flatnonzero(b_jets):
        m = mask[j]
        from_b = m & (origin[j] == 3) & (vertex[j] >= 0)
        if from_b.sum() < 2:
            continue
        ids, counts = np.unique(vertex[j][from_b], return_counts=True)
        target = m & (vertex[j] == ids[counts.argmax()])
        if target.sum() < 2:
            continue
        n_eligible += 1
        comp = vertex_index(pair_prob[j:j + 1], mask[j:j + 1], threshold)[0]
        for c in np.unique(comp[target]):
            members = comp == c
            if members.sum() < 2:
                continue
            overlap = (members & target).sum()
            if overlap >= 0.65 * target.sum() and overlap >= 0.5 * members.sum():
                n_found += 1
                break
    return {"pair_precision": float(precision), "pair_recall": float(recall),
            "displaced_precision": float(precision_d), "displaced_recall": float(recall_d),
            "b_vertex_efficiency": n_found / n_eligible if n_eligible else float("nan"),
            "b_vertex_jets": float(n_eligible)}
