"""IP3D-like baseline: per-track log-likelihood ratios from signed impact-parameter
significance templates, summed over the jet's tracks.

Templates are 2D histograms of (s_d0, s_z0) — lifetime-signed transverse and longitudinal IP
significances — for the tracks of each jet flavour in the training set, binned in
u = sign(s) ln(1 + |s|) (over/underflow folded into the edge bins) with a pseudo-count per bin.
The jet discriminant is ``LLR = Σ_tracks ln(p_b(s_d0, s_z0) / p_x(s_d0, s_z0))``.

As a *feature* of the jets the templates were filled from (DL1-like inputs of the training
jets), the LLR is taken out of fold (:func:`out_of_fold_llr`): the training events are split
into folds and each fold's LLRs come from templates filled from the other folds only, so a
jet's own tracks never enter the templates that score it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hepchain.core.errors import DataError, UsageError


def _u(s: np.ndarray) -> np.ndarray:
    return np.sign(s) * np.log1p(np.abs(s))


@dataclass
class IPTemplates:
    """Normalised per-flavour track templates on a fixed (u_d0, u_z0) grid."""

    edges: np.ndarray                  # (n_bins + 1,), shared by both axes
    log_pdf: dict[str, np.ndarray]     # flavour name -> (n_bins, n_bins)

    @classmethod
    def fit(cls, sd0: np.ndarray, sz0: np.ndarray, mask: np.ndarray, labels: np.ndarray,
            classes: tuple[str, ...] | list[str], n_bins: int = 24,
            u_range: tuple[float, float] = (-3.0, 4.5), pseudo_count: float = 1.0
            ) -> IPTemplates:
        """Fill one template per class from the real tracks of jets with label ``i``."""
        edges = np.linspace(*u_range, n_bins + 1)
        log_pdf = {}
        for i, name in enumerate(classes):
            sel = mask & (labels == i)[:, None]
            if not sel.any():
                raise DataError(f"No {name}-jet tracks to build the IP template; "
                                "use more events.")
            hist = np.histogram2d(_clip(_u(sd0[sel]), edges), _clip(_u(sz0[sel]), edges),
                                  bins=(edges, edges))[0] + pseudo_count
            log_pdf[name] = np.log(hist / hist.sum())
        return cls(edges, log_pdf)

    def track_llr(self, sd0: np.ndarray, sz0: np.ndarray, num: str, den: str) -> np.ndarray:
        """Per-track ln(p_num / p_den), same shape as ``sd0``."""
        n = len(self.edges) - 1
        i = np.clip(np.digitize(_clip(_u(sd0), self.edges), self.edges) - 1, 0, n - 1)
        j = np.clip(np.digitize(_clip(_u(sz0), self.edges), self.edges) - 1, 0, n - 1)
        return self.log_pdf[num][i, j] - self.log_pdf[den][i, j]

    def jet_llr(self, sd0: np.ndarray, sz0: np.ndarray, mask: np.ndarray, num: str = "b",
                den: str = "light") -> np.ndarray:
        """Σ over real tracks of the per-track LLR, (N,)."""
        return (self.track_llr(sd0, sz0, num, den) * mask).sum(axis=1)


#: the LLR features: name -> (numerator, denominator) flavour
LLR_FEATURES: dict[str, tuple[str, str]] = {"ip3d_llr_bl": ("b", "light"),
                                            "ip3d_llr_bc": ("b", "c")}


def llr_features(templates: IPTemplates, sd0: np.ndarray, sz0: np.ndarray,
                 mask: np.ndarray) -> dict[str, np.ndarray]:
    """The :data:`LLR_FEATURES` columns, (N,) each, from ``templates``."""
    return {name: templates.jet_llr(sd0, sz0, mask, num, den)
            for name, (num, den) in LLR_FEATURES.items()}


def out_of_fold_llr(sd0: np.ndarray, sz0: np.ndarray, mask: np.ndarray, labels: np.ndarray,
                    groups: np.ndarray, classes: tuple[str, ...] | list[str], n_folds: int,
                    seed: int, **template_kw) -> dict[str, np.ndarray]:
    """:data:`LLR_FEATURES` of training jets from templates that never saw them.

    ``groups`` (N,) are event numbers: the events are shuffled with ``seed`` and dealt into
    ``n_folds`` folds (all jets of an event in one fold); each fold is scored with templates
    filled from the other ``n_folds − 1`` folds (``template_kw`` as in :meth:`IPTemplates.fit`).
    """
    if n_folds < 2:
        raise UsageError(f"ip3d.folds must be at least 2, got {n_folds}.")
    events, inverse = np.unique(groups, return_inverse=True)
    fold_of_event = np.empty(len(events), np.int64)
    fold_of_event[np.random.default_rng(seed).permutation(len(events))] = (
        np.arange(len(events)) % n_folds)
    fold = fold_of_event[inverse.ravel()]
    out = {name: np.zeros(len(labels)) for name in LLR_FEATURES}
    for k in range(n_folds):
        held, rest = fold == k, fold != k
        t = IPTemplates.fit(sd0[rest], sz0[rest], mask[rest], labels[rest], classes,
                            **template_kw)
        for name, values in llr_features(t, sd0[held], sz0[held], mask[held]).items():
            out[name][held] = values
    return out


def _clip(u: np.ndarray, edges: np.ndarray) -> np.ndarray:
    half = 0.5 * (edges[1] - edges[0])
    return np.clip(u, edges[0] + half, edges[-1] - half)
