"""Study ``anomaly``: weakly supervised resonant anomaly detection with normalizing flows
(seed 001) on LHC-Olympics-like dijets — ANODE and CATHODE with MAF and NSF flows, CWoLa
hunting, the idealised detector and the supervised bound; SIC, background-model quality and the
bump significance after cuts.

Data roles (background split at random per seed; signal likewise):

- *data* = background[data] + signal injected at S/B in the SR → side-band flows, SR flows,
  CATHODE/CWoLa/idealised classifiers;
- *template* = background[template] in the SR, plus the SR part of ``template_background``
  (generated like the background, its own seed) → idealised AD and supervised background; it
  should hold at least as many events as CATHODE's oversampled samples (the run reports the
  ratio), so the idealised AD is not handicapped by a smaller background model;
- *test* = background[test] (+ signal of the test pool) → SIC (SR only), background-model
  quality (held-out SB NLL, samples vs true SR background), bump fit after cuts (all m_jj).

Max SIC is the maximum of a noisy curve on the test set (biased upward); the table also
gives the SIC of the cut chosen on one half of the test events, measured on the other half
(:mod:`hepchain.analysis.sic`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hepchain.analysis import bump, detectors, features, plots, sic
from hepchain.analysis.classifier import fitter
from hepchain.analysis.dijets import Dijets
from hepchain.analysis.regions import Window, n_injected, split_indices
from hepchain.analysis.samples import load_lhco, make_sample, rng_for
from hepchain.core import metrics, plotting, twosample
from hepchain.core.errors import DataError, UsageError
from hepchain.core.result import Reference, Result
from hepchain.core.seeding import derive_seed
from hepchain.core.study import Study
from hepchain.core.threads import set_torch_threads

REF_SOURCE = ("LHCO R&D, S/B≈0.6%, CATHODE repo performance_comparison.png "
              "(generative.md §1.6)")
REFERENCES = {"CATHODE": 14.0, "ANODE": 6.5, "supervised": 17.0, "idealized AD": 14.5,
              "CWoLa": 10.75}
REF_S_OVER_B = 0.006  # injected S/B in the SR at which REFERENCES were measured
REF_S_OVER_B_TOLERANCE = 0.25  # relative: a row at S/B within ±25 % of it gets the reference

HIGHER_IS_BETTER = {"max SIC": True, "AUC": True, "SB test NLL": False,
                    "SIC at validation-chosen cut": True,
                    "max SIC of the validation half": True,
                    "samples vs SR background AUC": None, "marginal KS": False,
                    "train seconds": False, "template events / CATHODE samples": None}
SAMPLE_ROLES = (("background", 0), ("signal", 1), ("test_background", 0),
                ("template_background", 0))


@dataclass
class Roles:
    """The event sets of one seed and one injected S/B."""

    data: Dijets
    template_sr: Dijets
    test_sr: Dijets
    test_data: Dijets
    supervised_signal: Dijets
    n_injected: int


def load_data(config: dict[str, Any]) -> tuple[dict[str, Dijets], list, dict]:
    """Dijets after the leading-jet selection per role (background, signal and, if
    configured, test_background and template_background), dataset manifests and generation
    costs [s]. The extra background samples get their own generation seed, so they share no
    event with the background sample even when generated with the same options."""
    d = config["data"]
    sel = config["selection"]
    if d.get("lhco_file"):
        bkg, sig = load_lhco(d["lhco_file"], sel)
        return ({"background": bkg, "signal": sig},
                [{"name": str(d["lhco_file"]), "generator": "LHCO R&D file"}], {})
    out, manifests, cost = {}, [], {}
    for role, label in SAMPLE_ROLES:
        spec = d.get(role)
        if not spec:
            continue
        seed = d["seed"] if role in ("background", "signal") else derive_seed(d["seed"], role)
        sample = make_sample(spec, seed, label, sel, d.get("workers", 1), d.get("shard_size"))
        out[role] = sample.jets
        manifests.append(sample.manifest)
        cost[role] = {"seconds": sample.generation_s, "events": sample.n_generated,
                      "selected": len(sample.jets)}
    return out, manifests, cost


def make_roles(bkg: Dijets, sig: Dijets, window: Window, s_over_b: float,
               split: dict[str, float], seed: int, test_bkg: Dijets | None = None,
               template_bkg: Dijets | None = None) -> Roles:
    """Split background and signal into the data / template / test roles and inject signal.

    ``test_bkg`` (a separate background sample) replaces the SR part of the background test
    split for the SIC test set, as the extra SR background of the LHCO set; the SR part of
    ``template_bkg`` is added to the idealised-AD template.
    """
    rng = rng_for(seed, "roles", s_over_b)
    b = split_indices(len(bkg), split, rng)
    s = split_indices(len(sig), {"inject": 0.35, "test": 0.35, "supervised": 0.3}, rng)
    m_sig = sig.mjj() / 1000.0
    f_sr = float(window.in_sr(m_sig).mean())
    data_b, test_b = bkg[b["data"]], bkg[b["test"]]
    n_data = n_injected(s_over_b, int(window.in_sr(data_b.mjj() / 1000).sum()), f_sr)
    n_test = n_injected(s_over_b, int(window.in_sr(test_b.mjj() / 1000).sum()), f_sr)
    for n, pool in ((n_data, "inject"), (n_test, "test")):
        if n > len(s[pool]):
            raise DataError(f"S/B={s_over_b} needs {n} signal events but the {pool} pool has "
                            f"{len(s[pool])}; generate more signal events.")
    inject = sig[s["inject"][:n_data]]
    test_sig = sig[s["test"]]
    in_sr = lambda j: j[window.in_sr(j.mjj() / 1000.0)]  # noqa: E731
    return Roles(
        data=Dijets.concatenate([data_b, inject]),
        template_sr=in_sr(bkg[b["template"]] if template_bkg is None
                          else Dijets.concatenate([bkg[b["template"]], template_bkg])),
        test_sr=Dijets.concatenate([in_sr(test_b if test_bkg is None else test_bkg),
                                    in_sr(test_sig)]),
        test_data=Dijets.concatenate([test_b, test_sig[:n_test]]),
        supervised_signal=in_sr(sig[s["supervised"]]),
        n_injected=n_data)


def run_methods(roles: Roles, names: list[str], window: Window, config: dict[str, Any],
                seed: int, figdir: Path | None
                ) -> tuple[dict[str, dict[str, float]], dict[str, np.ndarray]]:
    """Train every detector on ``roles`` with feature ``names``.

    Returns per-method measurements and each detector's scores on the SR test set.
    """
    feat = lambda j: (features.compute(j, names), j.mjj() / 1000.0)  # noqa: E731
    x, m = feat(roles.data)
    sr, sb = window.in_sr(m), window.in_sb(m)
    x_tpl, _ = feat(roles.template_sr)
    x_test, m_test = feat(roles.test_sr)
    y_test = roles.test_sr.label
    x_td, m_td = feat(roles.test_data)
    test_sb = window.in_sb(m_td) & (roles.test_data.label == 0)
    ccfg = config["classifier"]
    out: dict[str, dict[str, float]] = {}
    scorers: dict[str, detectors.Scorer] = {}
    test_scores: dict[str, np.ndarray] = {}
    samples_by_kind: dict[str, np.ndarray] = {}
    for kind in config["flows"]:
        fcfg = {**config["flow"], "kind": kind}
        sb_flow = detectors.fit_density(x[sb], m[sb], fcfg, config["train"], seed)
        sr_flow = detectors.fit_density(x[sr], m[sr], fcfg, config["train"],
                                        derive_seed(seed, "SR flow"))
        nll = -np.mean(detectors.flows.log_prob(sb_flow.model, x_td[test_sb],
                                                m_td[test_sb, None]))
        scorers[f"ANODE ({kind.upper()})"] = detectors.anode(sb_flow, sr_flow, window)
        n_samples = int(config["cathode"]["oversampling"] * sr.sum())
        xs, _ = detectors.cathode_samples(sb_flow, m[sr], n_samples, window, seed)
        samples_by_kind[kind.upper()] = xs
        scorers[f"CATHODE ({kind.upper()})"] = detectors.classifier_scorer(x[sr], xs, ccfg, seed)
        out[f"flow {kind.upper()}"] = {
            "SB test NLL": nll,
            "samples vs SR background AUC": twosample.c2st(xs, x_tpl, fitter(ccfg),
                                                           seed=seed).value,
            "marginal KS": twosample.ks_statistic(xs, x_tpl).mean(),
            "train seconds": sb_flow.seconds + sr_flow.seconds}
    near = window.in_near_sb(m, config["cwola"]["sideband_width"])
    scorers["CWoLa"] = detectors.classifier_scorer(x[sr], x[near], ccfg, seed)
    scorers["idealized AD"] = detectors.classifier_scorer(x[sr], x_tpl, ccfg, seed)
    out["idealized AD vs CATHODE"] = {"template events / CATHODE samples": len(x_tpl) / max(
        int(config["cathode"]["oversampling"] * sr.sum()), 1)}
    x_sup, _ = feat(roles.supervised_signal)
    scorers["supervised"] = detectors.classifier_scorer(x_sup, x_tpl, ccfg, seed)
    td_sr = window.in_sr(m_td)
    for method, scorer in scorers.items():
        s_test = scorer(x_test, m_test)
        s_td = scorer(x_td, m_td)
        held = sic.validated_sic(y_test, s_test, derive_seed(seed, "SIC halves"))
        row = {"max SIC": metrics.max_sic(y_test, s_test),
               "SIC at validation-chosen cut": (held.value, held.error),
               "max SIC of the validation half": held.max_on_validation,
               "AUC": metrics.roc_auc(y_test, s_test)}
        for keep in config["bump"]["keep"]:
            cut = np.quantile(s_td[td_sr], 1.0 - keep)
            fit = bump.fit_bump(m_td[s_td >= cut], window, config["bump"]["bin_width"])
            row[f"bump Z (keep {keep:.0%})"] = fit.significance
        out[method] = row
        test_scores[method] = s_test
    out["no cut"] = {"bump Z": bump.fit_bump(m_td, window,
                                             config["bump"]["bin_width"]).significance}
    if figdir is not None:
        plots.marginals({"SR data": x[sr], "SR background (truth)": x_tpl,
                         **{f"{k} samples": v for k, v in samples_by_kind.items()}},
                        names, figdir / "marginals.png",
                        title="CATHODE background model in the SR")
    return out, test_scores


def validate(config: dict[str, Any]) -> None:
    """UsageError for settings that would only fail after the (slow) event generation."""
    from hepchain.analysis.flows import KINDS

    if not config["s_over_b"] or min(float(v) for v in config["s_over_b"]) < 0:
        raise UsageError(f"s_over_b must be a non-empty list of values >= 0, got "
                         f"{config['s_over_b']}.")
    bad = [k for k in config["flows"] if k not in KINDS]
    if bad:
        raise UsageError(f"Unknown flows {bad}; use {list(KINDS)}.")
    for names in config["feature_sets"].values():
        unknown = [n for n in names if n not in features.KNOWN]
        if unknown:
            raise UsageError(f"Unknown features {unknown}; choose from {sorted(features.KNOWN)}.")
    if not all(0 < k <= 1 for k in config["bump"]["keep"]):
        raise UsageError("bump.keep fractions must be in (0, 1].")


def spline_finding(values: dict[tuple[str, str], float], s_over_b: list[float]) -> str:
    """The seed's question in one sentence: does the spline flow's better density (lower
    held-out NLL) give a better anomaly detector (higher max SIC)? (One run seed; ``bench``
    gives the spread over seeds.)"""
    nll = {k: values[("SB test NLL", f"flow {k}")] for k in ("MAF", "NSF")}
    parts = [f"SB test NLL MAF {nll['MAF']:.3f} vs NSF {nll['NSF']:.3f} nats/event"]
    for sob in s_over_b:
        for method in ("ANODE", "CATHODE"):
            sic = {k: values[(f"max SIC, S/B={sob:.2%}", f"{method} ({k})")]
                   for k in ("MAF", "NSF")}
            parts.append(f"{method} max SIC at S/B={sob:.2%}: MAF {sic['MAF']:.2f} vs "
                         f"NSF {sic['NSF']:.2f}")
    return ("Seed 001 question (standard features, this run seed; compare over seeds with "
            "bench): " + "; ".join(parts) + ".")


def template_note(values: dict[tuple[str, str], float]) -> str:
    """How the idealised AD's background template compares with CATHODE's samples."""
    ratios = [v for (name, _), v in values.items()
              if name.startswith("template events / CATHODE samples")]
    low = min(ratios)
    verdict = ("at least as large as" if low >= 1 else
               "SMALLER than (the idealised AD is handicapped against)")
    return (f"Idealised-AD background template: {low:.2f}x the number of CATHODE's "
            f"oversampled SR samples (smallest over S/B and flows) — {verdict} CATHODE's; "
            "raise data.template_background.events if it is below 1.")


def reference_note(s_over_b: list[float]) -> str | None:
    """Why the literature max SIC is not beside rows whose S/B differs from its S/B (None when
    every row matches)."""
    off = [float(s) for s in s_over_b if not reference_applies(float(s))]
    if not off:
        return None
    return (f"Literature max SIC ({', '.join(f'{k} {v:g}' for k, v in REFERENCES.items())}; "
            f"{REF_SOURCE}) was measured at injected S/B ≈ {REF_S_OVER_B:.1%} in the SR on "
            "the LHCO R&D set (1M background events, 1000 signal events); it is shown only "
            f"beside rows within ±{REF_S_OVER_B_TOLERANCE:.0%} of that S/B, so not beside the "
            f"rows at S/B = {', '.join(f'{s:.2%}' for s in off)}.")


def reference_applies(s_over_b: float) -> bool:
    """Whether a row at injected ``s_over_b`` matches the conditions of REFERENCES."""
    return abs(s_over_b / REF_S_OVER_B - 1.0) <= REF_S_OVER_B_TOLERANCE


def literature_reference(metric: str, method: str, s_over_b: float) -> Reference | None:
    """The literature max SIC of ``method`` where its S/B matches ``s_over_b``, else None."""
    base = method.split(" (")[0]
    if metric != "max SIC" or base not in REFERENCES or not reference_applies(s_over_b):
        return None
    return Reference(REFERENCES[base], REF_SOURCE)


@dataclass
class Table:
    """A run's rows: (metric, method) → value, its error and its literature reference; the
    test scores and labels per injected S/B (for the SIC figures)."""

    values: dict[tuple[str, str], float] = field(default_factory=dict)
    errors: dict[tuple[str, str], float] = field(default_factory=dict)
    refs: dict[tuple[str, str], Reference] = field(default_factory=dict)
    scores: dict[float, dict[str, np.ndarray]] = field(default_factory=dict)
    labels: dict[float, np.ndarray] = field(default_factory=dict)


def run_scan(samples: dict[str, Dijets], window: Window, config: dict[str, Any], seed: int,
             workdir: Path) -> Table:
    """Every method (:func:`run_methods`) at every injected S/B and on every feature set,
    on the events in the m_jj range of ``window``; the flows' own rows (density quality) are
    kept at the first S/B only, and the marginals figures are drawn there."""
    keep = lambda j: j[window.in_range(j.mjj() / 1000.0)]  # noqa: E731
    bkg, sig = keep(samples["background"]), keep(samples["signal"])
    window.check_sidebands(bkg.mjj() / 1000.0, int(config["min_sideband_events"]),
                           "background sample")
    table, first_sob = Table(), config["s_over_b"][0]
    for sob in config["s_over_b"]:
        roles = make_roles(bkg, sig, window, float(sob), config["split"], seed,
                           samples.get("test_background"), samples.get("template_background"))
        table.labels[sob] = roles.test_sr.label
        for fs, names in config["feature_sets"].items():
            figdir = workdir / fs if sob == first_sob else None
            rows, scores = run_methods(roles, list(names), window, config, seed, figdir)
            suffix = "" if fs == "standard" else f" [{fs}]"
            table.scores.setdefault(sob, {}).update({k + suffix: v for k, v in scores.items()})
            for method, row in rows.items():
                if method.startswith("flow") and sob != first_sob:
                    continue
                _add_row(table, row, method, suffix, float(sob))
    return table


def _add_row(table: Table, row: dict[str, Any], method: str, suffix: str, sob: float) -> None:
    """One method's metrics into ``table`` (a flow's rows carry no S/B: they do not use the
    signal); a (value, error) pair gives both."""
    for metric, entry in row.items():
        name = metric if method.startswith("flow") else f"{metric}, S/B={sob:.2%}"
        key = (name, method + suffix)
        value, error = entry if isinstance(entry, tuple) else (entry, None)
        table.values[key] = float(value)
        if error is not None:
            table.errors[key] = float(error)
        ref = literature_reference(metric, method, sob)
        if ref is not None:
            table.refs[key] = ref


def run_notes(values: dict[tuple[str, str], float], config: dict[str, Any]) -> list[str]:
    """The result's notes: the template size, how max SIC is biased, where the data come
    from, the literature reference's conditions and the seed's MAF-vs-NSF question."""
    notes = [template_note(values),
             "Max SIC is the maximum of a noisy SIC curve on the test events, so it is biased "
             "upward; 'SIC at validation-chosen cut' chooses the cut on half of the test events "
             "and measures it on the other half (± binomial error), and 'max SIC of the "
             "validation half' shows how much choosing and measuring on the same events adds.",
             "Background and signal come from the collider provider (Pythia 8 + detector "
             "response) unless data.lhco_file is set. Bump Z ignores the background-fit "
             "uncertainty."]
    note = reference_note(config["s_over_b"])
    if note:
        notes.append(note)
    if {"maf", "nsf"} <= set(config["flows"]):
        notes.append(spline_finding(values, config["s_over_b"]))
    return notes


class AnomalyStudy(Study):
    name = "anomaly"
    description = "ANODE/CATHODE/CWoLa resonant anomaly detection with MAF and NSF flows"
    seed_doc = "001"

    def run(self, config: dict[str, Any], workdir: Path, seed: int) -> Result:
        set_torch_threads(int(config.get("threads", 1)))
        window = Window(**config["window"])
        validate(config)
        t0 = time.perf_counter()
        samples, manifests, cost = load_data(config)
        result = Result(study=self.name, preset="")
        result.provenance.datasets = manifests
        table = run_scan(samples, window, config, seed, workdir)
        self._report(result, table, cost, time.perf_counter() - t0)
        self._figures(result, workdir, table, config)
        result.notes.extend(run_notes(table.values, config))
        return result

    @staticmethod
    def _report(result: Result, table: Table, cost: dict, wall: float) -> None:
        for (name, method), value in table.values.items():
            better = HIGHER_IS_BETTER.get(name.split(",")[0], True)  # bump Z: higher
            unit = "nats/event" if "NLL" in name else ("s" if "seconds" in name else "")
            # bump fits can fail (too few events): NaN, counted as no finite value
            result.add(name, method, value, n=int(np.isfinite(value)),
                       std=table.errors.get((name, method)),
                       reference=table.refs.get((name, method)),
                       unit=unit, higher_is_better=better)
        for role, c in cost.items():
            result.add(f"{role} generation time", "Pythia 8 + detector", c["seconds"], unit="s")
            result.add(f"{role} events selected / generated", "LHCO selection",
                       c["selected"] / c["events"])
        result.add("study wall time", "all methods", wall, unit="s")

    @staticmethod
    def _figures(result: Result, workdir: Path, table: Table, config: dict[str, Any]) -> None:
        values = table.values
        for sob, by_method in table.scores.items():
            path = plotting.sic_curves({k: (table.labels[sob], v) for k, v in by_method.items()},
                                       workdir / f"sic_{plotting.slug(f'{sob:.4f}')}.png",
                                       title=f"SIC, injected S/B = {sob:.2%}")
            result.figures.append(path.name)
        if len(config["s_over_b"]) > 1:
            sobs = [float(s) for s in config["s_over_b"]]
            methods = {m for (n, m) in values if n.startswith("max SIC")}
            curves = {method: (np.array(sobs) * 100,
                               np.array([values[(f"max SIC, S/B={s:.2%}", method)]
                                         for s in sobs]), None)
                      for method in sorted(methods)}
            path = plots.series(curves, workdir / "max_sic_vs_sob.png", "injected S/B [%]",
                                "max SIC", logx=True)
            result.figures.append(path.name)
        for fs in config["feature_sets"]:
            if (workdir / fs / "marginals.png").exists():
                result.figures.append(f"{fs}/marginals.png")
