"""The ``collider`` study: generate samples, validate them against physics, measure speed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from hepchain.collider import validation
from hepchain.core import plotting
from hepchain.core.cache import cached_dataset
from hepchain.core.dataset import ShardedDataset
from hepchain.core.errors import UsageError
from hepchain.core.metrics import gaussian_core_fit
from hepchain.core.result import Reference, Result
from hepchain.core.seeding import derive_seed
from hepchain.core.study import Study

M_TOP, M_W, M_TAU = 172.5, 80.377, 1.777  # GeV (PDG)
FLAVOUR_NAMES = {5: "b", 4: "c", 15: "tau", 0: "light"}


def _truth_sample(process: str, n_events: int, seed: int) -> tuple[Any, Any, np.ndarray]:
    """In-process Pythia events with their full record (and particle charges)."""
    from hepchain.collider.events import _charges
    from hepchain.collider.produce import shard_settings
    from hepchain.collider.pythia import generate, make_pythia

    pythia = make_pythia(shard_settings(process)["pythia"], seed)
    p = generate(pythia, n_events)
    return pythia, p, _charges(pythia, p.pid)


def dataset_checks(events: ak.Array, result: Result, workdir: Path, tag: str = "") -> None:
    """Mass peaks, IP significances, secondaries in jets, flavour fractions and isolated leptons
    of a t tbar-like sample."""
    m_w, m_t = validation.top_w_masses(events)
    for label, masses, ref in (("W", m_w, M_W), ("top", m_t, M_TOP)):
        if len(masses) < 10:
            result.notes.append(f"too few matched {label} candidates ({len(masses)}) for a fit")
            continue
        core = gaussian_core_fit(masses)
        result.add(f"m({label}) peak{tag}", "truth-matched jets", core.mean, std=core.mean_error,
                   n=core.n_core, unit="GeV", reference=Reference(ref, "PDG mass"))
        result.add(f"m({label}) core width{tag}", "truth-matched jets", core.sigma,
                   std=core.sigma_error, n=core.n_core, unit="GeV")
    if len(m_w) and len(m_t):
        result.figures.append(plotting.histograms(
            {"W: 2 light jets": m_w, "top: 3 jets": m_t}, workdir / f"masses{tag}.png",
            xlabel="m [GeV]", bins=np.linspace(0, 300, 61), density=False).name)
    sd0 = validation.sd0_by_flavour(events)
    for flav, values in sd0.items():
        if len(values):
            result.add(f"tracks with sd0 > 3{tag}", f"{FLAVOUR_NAMES[flav]} jets",
                       float(np.mean(values > 3)), n=len(values))
    result.figures.append(plotting.histograms(
        {f"{FLAVOUR_NAMES[f]} jets": v for f, v in sd0.items() if len(v)},
        workdir / f"sd0{tag}.png", xlabel="lifetime-signed d0 significance",
        bins=np.linspace(-20, 40, 61), logy=True).name)
    for flav, (sec, conv, n) in validation.secondary_fractions(events).items():
        result.add(f"jet tracks from otherSecondary{tag}", f"{FLAVOUR_NAMES[flav]} jets", sec,
                   n=n)
        result.add(f"jet tracks from photon conversions{tag}", f"{FLAVOUR_NAMES[flav]} jets",
                   conv, n=n)
    for flav, frac in validation.flavour_fractions(events).items():
        result.add(f"jet flavour fraction{tag}", FLAVOUR_NAMES[flav], frac)
    lep = validation.lepton_check(events)
    if len(lep.found):
        result.add(f"prompt-lepton ID × isolation efficiency{tag}", "W -> e/mu, dR < 0.1",
                   lep.efficiency, std=lep.efficiency_error, n=len(lep.found))
    result.add(f"non-prompt isolated leptons per event{tag}", "not from W -> e/mu/tau",
               lep.n_nonprompt / max(lep.n_events, 1),
               std=np.sqrt(lep.n_nonprompt) / max(lep.n_events, 1), n=lep.n_events)


def _efficiency_plot(tc: validation.TrackCheck, path: Path) -> str:
    """Tracking efficiency of prompt charged particles vs pT in |eta| bins, with the card."""
    import matplotlib.pyplot as plt

    from hepchain.collider.tracking import efficiency

    edges = np.array([0.1, 0.3, 0.6, 1.0, 2.0, 5.0, 10.0, 30.0, 100.0])
    centres = np.sqrt(edges[1:] * edges[:-1])
    fig, ax = plt.subplots()
    prompt = tc.gen_r < 1.0
    for (lo, hi), colour in zip(((0.0, 1.5), (1.5, 2.5)), ("C0", "C1"), strict=True):
        sel = prompt & (np.abs(tc.gen_eta) >= lo) & (np.abs(tc.gen_eta) < hi)
        idx = np.digitize(tc.gen_pt[sel], edges) - 1
        ok = (idx >= 0) & (idx < len(centres))
        n = np.bincount(idx[ok], minlength=len(centres))
        k = np.bincount(idx[ok], weights=tc.found[sel][ok], minlength=len(centres))
        eff = np.where(n > 0, k / np.maximum(n, 1), np.nan)
        err = np.sqrt(eff * (1 - eff) / np.maximum(n, 1))
        ax.errorbar(centres, eff, yerr=err, fmt="o", color=colour,
                    label=f"{lo} < |eta| < {hi} (measured)")
        card = efficiency(np.zeros(len(centres)), centres, np.full(len(centres), (lo + hi) / 2))
        ax.step(edges, np.append(card, card[-1]), where="post", color=colour, ls="--",
                label="card (hadrons)")
    ax.set(xscale="log", xlabel="true pT [GeV]", ylabel="tracking efficiency", ylim=(0, 1.05))
    ax.legend(fontsize=8)
    return plotting.save(fig, path).name


class ColliderStudy(Study):
    name = "collider"
    description = "Pythia 8 + Delphes-like detector + FastJet samples: physics validation, speed"
    seed_doc = "002"

    def run(self, config: dict[str, Any], workdir: Path, seed: int) -> Result:
        from hepchain.collider import bench

        result = Result(study=self.name, preset="")
        ttbar = cached_dataset("ttbar", n_events=int(config["ttbar_events"]),
                               seed=derive_seed(seed, "ttbar"),
                               options={"decay": config["ttbar_decay"], "mu": config["mu"]},
                               shard_size=int(config["shard_size"]),
                               workers=int(config["workers"]))
        result.provenance.datasets.append(ttbar.manifest.summary())
        events = ShardedDataset(ttbar.path).read()
        dataset_checks(events, result, workdir)
        self._tracking(result, workdir, int(config["truth_events"]), seed)
        self._tau(result, workdir, int(config["tautau_events"]), seed)
        if int(config["bench_events"]) > 0:
            sp = bench.speed("ttbar", int(config["bench_events"]), workdir / "bench", seed)
            result.add("events/s per core", "bare pythia.next()", sp.bare_rate, unit="1/s",
                       reference=Reference(101.5, "collider.md §1.7, 2-core machine"))
            result.add("events/s per core", "end-to-end, 1 worker", sp.pipeline_rate, unit="1/s")
            result.add("end-to-end / bare rate", "1 worker", sp.ratio,
                       reference=Reference(0.7, "issue 3 goal"))
            result.add("speed-up with 2 workers", "end-to-end", sp.speedup,
                       reference=Reference(1.7, "issue 3 goal"))
            result.add("bytes per event", "Parquet, zstd", sp.bytes_per_event, unit="B")
        return result

    def _tracking(self, result: Result, workdir: Path, n_events: int, seed: int) -> None:
        pythia, p, charge = _truth_sample("ttbar", n_events,
                                          derive_seed(seed, "tracking") % 900_000_000)
        tc = validation.track_check(p, charge, seed)
        for name, pull in (("d0", tc.pull_d0), ("z0", tc.pull_z0)):
            core = gaussian_core_fit(pull)
            result.add(f"{name} pull core width (closure check)", "tracks vs truth", core.sigma,
                       std=core.sigma_error, n=core.n_core,
                       reference=Reference(1.0, "≈ 1: smeared with sigma(true p), "
                                           "divided by sigma(measured p)", True))
        ratio = gaussian_core_fit(tc.pt_rel / tc.res_expected)
        result.add("pT pull core width (closure check)", "tracks vs card sigma(pT)/pT",
                   ratio.sigma, std=ratio.sigma_error, n=ratio.n_core,
                   reference=Reference(1.0, "≈ 1 by construction: log-normal with the card "
                                       "sigma", True))
        result.notes.append("Pull widths are a closure check of the track smearing: tracks are "
                            "drawn with the same sigma the pull divides by, so they test the "
                            "code path, not the detector model against data.")
        hard = (np.abs(tc.gen_eta) < 1.5) & (tc.gen_pt > 1.0) & (tc.gen_r < 1.0)
        result.add("tracking efficiency |eta|<1.5, pT>1", "charged, r_prod < 1 mm",
                   tc.found[hard].mean(),
                   n=int(hard.sum()), reference=Reference(0.95, "CMS card, hadrons", True))
        result.figures.append(_efficiency_plot(tc, workdir / "tracking_efficiency.png"))
        result.figures.append(plotting.histograms(
            {"d0": tc.pull_d0, "z0": tc.pull_z0, "pT (per card sigma)": tc.pt_rel / tc.res_expected},
            workdir / "pulls.png", xlabel="(reco - true) / sigma (closure check of the smearing)",
            bins=np.linspace(-5, 5, 51)).name)
        ctau = validation.b_hadron_ctau(p)
        if len(ctau):
            result.add("B-hadron mean c*tau", "decay length / beta gamma", float(ctau.mean()),
                       std=float(ctau.std() / np.sqrt(len(ctau))), n=len(ctau), unit="mm",
                       reference=Reference(validation.b_hadron_mean_tau0(pythia, p),
                                           "Pythia tau0 of the same hadrons", True))
            result.figures.append(plotting.histograms(
                {"weakly decaying b hadrons": ctau}, workdir / "b_ctau.png",
                xlabel="c tau [mm]", bins=np.linspace(0, 3, 31), logy=True).name)

    def _tau(self, result: Result, workdir: Path, n_events: int, seed: int) -> None:
        if n_events <= 0:
            return
        _, p, _ = _truth_sample("H_tautau", n_events, derive_seed(seed, "tau") % 900_000_000)
        mvis = validation.tau_visible_mass(p)
        result.add("tau visible mass below m_tau", "H -> tau tau", float(np.mean(mvis < M_TAU)),
                   n=len(mvis), reference=Reference(1.0, "kinematics", True))
        result.figures.append(plotting.histograms(
            {"tau decay products": mvis}, workdir / "tau_mvis.png", xlabel="visible mass [GeV]",
            bins=np.linspace(0, 2, 41)).name)

    def add_commands(self, app: Any) -> None:
        import typer

        @app.command("validate")
        def validate(dataset: Path = typer.Argument(..., help="Dataset directory (t tbar)."),
                     out: Path = typer.Option(Path("runs/collider/validate"),
                                              help="Where plots and results.json go.")) -> None:
            """Check a generated dataset: mass peaks, IP significances, secondaries in jets, flavour
            fractions, isolated leptons."""
            from rich.console import Console

            if not dataset.is_dir():
                raise UsageError(f"{dataset} is not a directory; pass a dataset made by "
                                 "'hepchain generate'.")
            events = ShardedDataset(dataset).read()
            missing = [f for f in ("jets", "partons", "leptons") if f not in ak.fields(events)]
            if missing:
                raise UsageError(f"{dataset} holds no collider events (no {missing[0]!r} field); "
                                 "pass a dataset made by 'hepchain generate'.")
            out.mkdir(parents=True, exist_ok=True)
            result = Result(study=self.name, preset="validate", workdir=str(out))
            dataset_checks(events, result, out)
            result.save(out)
            Console().print(result.table())
