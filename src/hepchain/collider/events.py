"""One shard of events: Pythia generation (+ pile-up), detector response, jets, truth labels,
assembled into the hepchain event record (an ``ak.Array``, one record per event).

Event record (GeV, mm, rad):

- ``jets``: anti-kt R = 0.4 jets (pT > 20, |eta| < 2.5, sorted by pT) with ``pt, eta, phi,
  mass, flavour`` (5 b, 4 c, 15 tau, 0 light), ``truth_hs_dr`` (ΔR to the nearest truth jet
  of the hard scatter, pT > 10 GeV, ``inf`` if none: < 0.3 hard-scatter, > 0.6 pile-up jet,
  :func:`.jets.hard_scatter_dr`) and ``tracks`` (see :data:`TRACK_FIELDS`), with
  option ``jet_trees=1`` also ``merge_tree`` and ``truth_tree`` (see :mod:`.trees`);
- ``fatjets``: anti-kt R = ``fatjet_R`` jets with ``pt, eta, phi, mass, tau1, tau2, tau3, msd``
  (and ``constituents`` with option ``fatjet_constituents=1``);
- ``leptons``: isolated electrons and muons (``pt, eta, phi, charge, pdgid``; isolation of
  :mod:`.isolation`, with the pile-up corrections when ``mu`` > 0);
- ``met``, ``met_phi``, ``n_pileup``;
- ``pv_x, pv_y, pv_z``: the reconstructed primary vertex (:mod:`.vertexing`), which the track
  impact parameters are measured from, and ``truth_pv_x, truth_pv_y, truth_pv_z`` the true
  hard-scatter vertex (drawn from the luminous region);
- ``partons``: the hard process (|status| 22-23: ``pid, pt, eta, phi, mass, parent``, where
  ``parent`` indexes this list, -1 for none);
- ``is_signal`` (mixed samples such as ``top_qcd`` only).
"""

from __future__ import annotations

from typing import Any

import awkward as ak
import numpy as np

from hepchain.collider import (
    calorimeter,
    isolation,
    jets,
    leptonid,
    material,
    tracking,
    trees,
    truth,
    vertexing,
)
from hepchain.collider.flatmass import flat_mass_veto, spread_windows
from hepchain.collider.kinematics import delta_phi
from hepchain.collider.prefilter import b_quark_veto
from hepchain.collider.pythia import Particles, concat, generate, make_pythia
from hepchain.core.dataset import ShardTask
from hepchain.core.seeding import derive_seed

INVISIBLE = (12, 14, 16, 1000022)
PION_MASS = 0.13957
LEPTON_MASS = {11: 0.000511, 13: 0.10566}
#: tracks attached to jets: GN1 selection
JET_TRACK_PT_MIN, JET_TRACK_D0_MAX, JET_TRACK_Z0ST_MAX, JET_TRACK_DR = 0.5, 3.5, 5.0, 0.4
#: lepton selection: pT > 10 GeV, identification efficiency, isolation (:mod:`.isolation`)
LEPTON_PT_MIN = 10.0
TTBB_MIN_B = 4
TRACK_FIELDS = (
    "qoverp", "deta", "dphi", "d0", "z0sintheta", "sigma_qoverp", "sigma_theta", "sigma_phi",
    "sigma_d0", "sigma_z0", "sd0", "sz0", "n_pix_hits", "n_sct_hits", "n_ibl_hits",
    "n_bl_hits", "n_ibl_shared", "n_ibl_split", "n_pix_shared", "n_pix_split", "n_sct_shared",
    "n_pix_holes", "n_sct_holes", "lepton_id", "pt", "eta", "phi", "charge", "truth_origin",
    "truth_vertex", "truth_lepton")


def _charges(pythia: Any, pid: np.ndarray) -> np.ndarray:
    """Electric charge (units of e) of each PDG id, from Pythia's particle data."""
    ids, inv = np.unique(pid, return_inverse=True)
    table = np.array([pythia.particleData.charge(int(i)) for i in ids])
    return table[inv].reshape(pid.shape)


def _select(p: Particles, keep_events: np.ndarray) -> Particles:
    """The events of ``p`` flagged in ``keep_events``."""
    mask = np.repeat(keep_events, np.diff(p.offsets))
    counts = np.diff(p.offsets)[keep_events]
    fields = {f: getattr(p, f)[mask] for f in Particles.__dataclass_fields__ if f != "offsets"}
    return Particles(offsets=np.concatenate([[0], np.cumsum(counts)]), **fields)


def _take(p: Particles, order: np.ndarray) -> Particles:
    """The events of ``p`` in the order of the event indices ``order``."""
    counts = np.diff(p.offsets)[order]
    offsets = np.concatenate([[0], np.cumsum(counts)])
    idx = np.repeat(p.offsets[:-1][order] - offsets[:-1], counts) + np.arange(offsets[-1])
    fields = {f: getattr(p, f)[idx] for f in Particles.__dataclass_fields__ if f != "offsets"}
    return Particles(offsets=offsets, **fields)


def _draw(gens: list[Any], rng: np.random.Generator, n_events: int) -> Particles:
    """``n_events`` events; with two generators (a process and its charge conjugate) each
    event comes from either with probability 1/2, in random order."""
    if len(gens) == 1:
        return generate(gens[0], n_events)
    second = rng.random(n_events) < 0.5
    n2 = int(second.sum())
    both = concat([generate(g, n) for g, n in ((gens[0], n_events - n2), (gens[1], n2)) if n])
    slot = np.empty(n_events, np.int64)  # event i of the output comes from ``both[slot[i]]``
    slot[~second] = np.arange(n_events - n2)
    slot[second] = n_events - n2 + np.arange(n2)
    return _take(both, slot)


def _generate_hard(gens: list[Any], rng: np.random.Generator, process: str,
                   n_events: int, prefiltered: bool = False) -> Particles:
    """``n_events`` events of ``process`` (ttbb keeps events with >= 4 b-hadron ghosts).

    Without the prefilter a draw of 50 events keeps ≈ 2; with it most drawn events pass, so
    a draw asks only for the events still missing (a draw of 50 prefiltered events costs
    ≈ 800 generated ones, and any surplus would be thrown away)."""
    if process != "ttbb":
        return _draw(gens, rng, n_events)
    chunks, have = [], 0
    while have < n_events:
        p = _draw(gens, rng, min(50, n_events - have) if prefiltered else 50)
        _, _, hf = truth.track_labels(p)
        n_b = np.bincount(p.event, weights=truth.ghost_kinds(p, hf) == truth.GHOST_B,
                          minlength=p.n_events)
        keep = n_b >= TTBB_MIN_B
        keep[np.cumsum(keep) > n_events - have] = False
        chunks.append(_select(p, keep))
        have += int(keep.sum())
    return concat(chunks)


def _visible_final(p: Particles) -> np.ndarray:
    """The final-state particles a detector can see (neutrinos and other invisibles not)."""
    return (p.status > 0) & ~np.isin(np.abs(p.pid), INVISIBLE)


def make_events(task: ShardTask) -> ak.Array:
    """Generate ``task.n_events`` events with ``task.settings`` (process, options, Pythia
    settings) and seed ``task.seed``; module level so it runs in worker processes."""
    s = task.settings
    options = s["options"]
    rng = np.random.default_rng(derive_seed(task.seed, "detector"))
    pythia = make_pythia(s["pythia"], task.seed, _veto(s["pythia"], options, task.seed))
    extra: dict[str, np.ndarray] = {}
    if s.get("pythia_background"):
        n_sig = task.n_events // 2
        bkg = make_pythia(s["pythia_background"], derive_seed(task.seed, "background") % 900_000_000)
        hard = concat([generate(pythia, n_sig), generate(bkg, task.n_events - n_sig)])
        extra["is_signal"] = (np.arange(task.n_events) < n_sig).astype(np.int64)
    else:
        gens = [pythia]
        if s.get("pythia_conjugate"):
            gens.append(make_pythia(s["pythia_conjugate"],
                                    derive_seed(task.seed, "conjugate") % 900_000_000,
                                    b_quark_veto(options)))
        hard = _generate_hard(gens, np.random.default_rng(derive_seed(task.seed, "w-charge")),
                              s["process"], task.n_events, bool(options.get("prefilter")))
    n_pu = rng.poisson(options["mu"], task.n_events) if options["mu"] > 0 else np.zeros(
        task.n_events, np.int64)
    # the pile-up is passed, not kept here, so that reconstruct can free it once merged
    return reconstruct(pythia, hard, _pileup(s, task.seed, n_pu), n_pu, rng, options, extra)


def _veto(pythia_settings: list[str], options: dict[str, Any], seed: int) -> Any:
    """The user hook of the hard-process generator: the flat mass draw (option ``flat``),
    the b-quark prefilter (option ``prefilter``) or None."""
    if options.get("flat"):
        return flat_mass_veto(pythia_settings, spread_windows(options),
                              derive_seed(seed, "flat-mass"))
    return b_quark_veto(options)


def _pileup(settings: dict[str, Any], seed: int, n_pu: np.ndarray) -> Particles | None:
    """The visible final-state particles of ``n_pu.sum()`` minimum-bias events (None if 0)."""
    if n_pu.sum() == 0:
        return None
    pu_gen = make_pythia([*settings["pythia_base"], "SoftQCD:inelastic = on"],
                         derive_seed(seed, "pileup") % 900_000_000)
    return generate(pu_gen, int(n_pu.sum()), batch=200, keep=_visible_final)


def reconstruct(pythia: Any, hard: Particles, pileup: Particles | None, n_pu: np.ndarray,
                rng: np.random.Generator, options: dict[str, Any],
                extra: dict[str, np.ndarray] | None = None) -> ak.Array:
    """Detector response, jets and truth for generated events; returns the event records."""
    n_events = hard.n_events
    origin, vparent, hf = truth.track_labels(hard)
    ghost = truth.ghost_kinds(hard, hf)
    final = _visible_final(hard)
    idx = np.flatnonzero(final)
    ev = hard.event
    true_pv = vertexing.draw_vertices(rng, n_events)
    at = true_pv[ev[idx]]
    cols = {"event": ev[idx], "pid": hard.pid[idx], "px": hard.px[idx], "py": hard.py[idx],
            "pz": hard.pz[idx], "e": hard.e[idx], "x": hard.x[idx] + at[:, 0],
            "y": hard.y[idx] + at[:, 1], "z": hard.z[idx] + at[:, 2], "origin": origin[idx],
            "vkey": np.where(vparent[idx] >= 0, vparent[idx] + 1, 0)}
    if pileup is not None:
        pu_final = _visible_final(pileup)
        owner = np.repeat(np.arange(n_events), n_pu)[pileup.event]
        shift = vertexing.draw_vertices(rng, pileup.n_events)[pileup.event]
        j = np.flatnonzero(pu_final)
        pu = {"event": owner[j], "pid": pileup.pid[j], "px": pileup.px[j], "py": pileup.py[j],
              "pz": pileup.pz[j], "e": pileup.e[j], "x": pileup.x[j] + shift[j, 0],
              "y": pileup.y[j] + shift[j, 1], "z": pileup.z[j] + shift[j, 2],
              "origin": np.full(len(j), truth.PILEUP, np.int8),
              "vkey": np.full(len(j), -1)}
        del pileup, owner, shift, j  # the largest arrays of a shard at high pile-up
        order = np.argsort(np.concatenate([cols["event"], pu["event"]]), kind="stable")
        cols = {k: np.concatenate([cols.pop(k), pu.pop(k)])[order] for k in list(cols)}
    cols, charge = material.interact(rng, cols, _charges(pythia, cols["pid"]))
    pt_all = np.hypot(cols["px"], cols["py"])
    eta_all = np.arcsinh(cols["pz"] / np.maximum(pt_all, 1e-12))
    phi_all = np.arctan2(cols["py"], cols["px"])

    # -- tracks
    ch = np.flatnonzero(charge != 0)
    trk = tracking.reconstruct(rng, cols["event"][ch], ch, cols["pid"][ch], charge[ch],
                               cols["px"][ch], cols["py"][ch], cols["pz"][ch], cols["x"][ch],
                               cols["y"][ch], cols["z"][ch])
    trk = tracking.add_fakes(rng, trk)
    real = trk.src >= 0
    pv = vertexing.fit_vertices(n_events, trk.event, trk.d0, trk.z0, trk.phi, trk.sigma["d0"],
                                trk.sigma["z0"], trk.pt)
    trk.d0, trk.z0 = vertexing.relative_to(pv, trk.event, trk.d0, trk.z0, trk.phi)
    tracked = np.zeros(len(charge), bool)
    tracked[trk.src[real]] = True
    # -- calorimeter: everything visible that is neither tracked nor a muon
    apid = np.abs(cols["pid"])
    dep = ~tracked & (apid != 13)
    em = np.isin(apid, (11, 22))
    tow = calorimeter.towers(rng, cols["event"][dep], cols["e"][dep], eta_all[dep],
                             phi_all[dep], em[dep])
    # -- particle-flow candidates: tracks (pion/lepton mass) + towers (massless)
    trk_pid = np.where(real, np.abs(cols["pid"][trk.src]), 0)  # 0: fake track
    lepton_id = leptonid.identify(rng, trk_pid, trk.pt, trk.eta)
    mass = np.where(trk_pid == 11, LEPTON_MASS[11], np.where(trk_pid == 13, LEPTON_MASS[13],
                                                             PION_MASS))
    t_px, t_py = trk.pt * np.cos(trk.phi), trk.pt * np.sin(trk.phi)
    t_pz = trk.pt * np.sinh(trk.eta)
    t_e = np.sqrt(t_px**2 + t_py**2 + t_pz**2 + mass**2)
    w_pt = tow.e / np.cosh(tow.eta)
    pf_event = np.concatenate([trk.event, tow.event])
    order = np.argsort(pf_event, kind="stable")
    pf = {"event": pf_event[order],
          "px": np.concatenate([t_px, w_pt * np.cos(tow.phi)])[order],
          "py": np.concatenate([t_py, w_pt * np.sin(tow.phi)])[order],
          "pz": np.concatenate([t_pz, w_pt * np.sinh(tow.eta)])[order],
          "e": np.concatenate([t_e, tow.e])[order],
          "pid": np.concatenate([np.where(np.isin(trk_pid, (11, 13)), trk_pid, 211),
                                 np.where(tow.ecal, 22, 130)])[order].astype(np.int64),
          "charge": np.concatenate([trk.charge, np.zeros(len(tow.e))])[order].astype(np.int64),
          "d0": np.concatenate([trk.d0, np.zeros(len(tow.e))])[order],
          "d0err": np.concatenate([trk.sigma["d0"], np.zeros(len(tow.e))])[order],
          "dz": np.concatenate([trk.z0, np.zeros(len(tow.e))])[order],
          "dzerr": np.concatenate([trk.sigma["z0"], np.zeros(len(tow.e))])[order]}

    # -- jets with ghost flavour
    g = np.flatnonzero(ghost > 0)
    ghost_p = np.stack([hard.px[g], hard.py[g], hard.pz[g], hard.e[g]], axis=1)
    small = jets.small_r_jets(n_events, pf["event"], pf["px"], pf["py"], pf["pz"], pf["e"],
                              ev[g], ghost_p, ghost[g])
    truth_jet = final & (np.abs(hard.pid) != 13)  # ATLAS truth jets: no neutrinos, muons
    t = np.flatnonzero(truth_jet)
    hs_dr = jets.hard_scatter_dr(n_events, small.event, small.eta, small.phi, ev[t],
                                 hard.px[t], hard.py[t], hard.pz[t], hard.e[t])
    fat = jets.large_r_jets(n_events, pf["event"], pf["px"], pf["py"], pf["pz"], pf["e"],
                            options["fatjet_R"], options["fatjet_ptmin"])
    jet_tracks = _jet_tracks(trk, cols, small, lepton_id, trk_pid)
    leptons = _leptons(trk, lepton_id, pf, options["mu"] > 0)
    met_x = -np.bincount(pf["event"], weights=pf["px"], minlength=n_events)
    met_y = -np.bincount(pf["event"], weights=pf["py"], minlength=n_events)
    partons = _partons(hard)
    events = _assemble(n_events, small, hs_dr, jet_tracks, fat, leptons, partons,
                       np.hypot(met_x, met_y), np.arctan2(met_y, met_x), n_pu,
                       pf if options["fatjet_constituents"] else None)
    if options["jet_trees"]:
        counts = np.bincount(small.event, minlength=n_events).astype(np.int64)
        merge = trees.to_awkward(trees.merge_trees(n_events, small, pf), trees.MERGE_FIELDS)
        decay = trees.to_awkward(trees.truth_trees(hard, small, final, partons),
                                 trees.TRUTH_FIELDS)
        jets_rec = ak.with_field(events["jets"], ak.unflatten(merge, counts), "merge_tree")
        jets_rec = ak.with_field(jets_rec, ak.unflatten(decay, counts), "truth_tree")
        events = ak.with_field(events, jets_rec, "jets")
    vertex_fields = {f"{prefix}pv_{axis}": np.ascontiguousarray(v[:, k])
                     for prefix, v in (("", pv), ("truth_", true_pv))
                     for k, axis in enumerate("xyz")}
    for key, value in {**vertex_fields, **(extra or {})}.items():
        events = ak.with_field(events, value, key)
    return events


def _jet_tracks(trk: tracking.Tracks, cols: dict[str, np.ndarray], small: jets.Jets,
                lepton_id: np.ndarray, trk_pid: np.ndarray) -> dict[str, np.ndarray]:
    """Tracks passing the GN1 selection attached to the nearest jet within ΔR < 0.4, with
    jet-relative and lifetime-signed quantities, the reconstructed ``lepton_id`` and the true
    ``truth_lepton`` (11/13 for true e/μ, else 0); flat, sorted by (jet, -pt); ``jet`` = index
    into ``small``."""
    sin_t = 1.0 / np.cosh(trk.eta)
    z0st = trk.z0 * sin_t
    sel = ((trk.pt > JET_TRACK_PT_MIN) & (np.abs(trk.d0) < JET_TRACK_D0_MAX)
           & (np.abs(z0st) < JET_TRACK_Z0ST_MAX))
    t = np.flatnonzero(sel)
    jet_idx = np.full(len(t), -1)
    best = np.full(len(t), JET_TRACK_DR)
    jet_start = np.searchsorted(small.event, trk.event[t], side="left")
    jet_stop = np.searchsorted(small.event, trk.event[t], side="right")
    for k in range(int((jet_stop - jet_start).max(initial=0))):
        j = np.minimum(jet_start + k, max(len(small.pt) - 1, 0))
        valid = jet_start + k < jet_stop
        if not valid.any():
            break
        dr = np.hypot(trk.eta[t] - small.eta[j], delta_phi(trk.phi[t], small.phi[j]))
        better = valid & (dr < best)
        best[better] = dr[better]
        jet_idx[better] = j[better]
    has = jet_idx >= 0
    t, j = t[has], jet_idx[has]
    order = np.lexsort((-trk.pt[t], j))
    t, j = t[order], j[order]
    dphi = delta_phi(trk.phi[t], small.phi[j])
    deta = trk.eta[t] - small.eta[j]
    d0, z0 = trk.d0[t], trk.z0[t]
    sign_d0 = np.where(np.sin(trk.phi[t] - small.phi[j]) * d0 >= 0, 1.0, -1.0)
    sign_z0 = np.where((small.eta[j] - trk.eta[t]) * z0 >= 0, 1.0, -1.0)
    src = trk.src[t]
    real = src >= 0
    origin = np.where(real, cols["origin"][src], truth.FAKE).astype(np.int64)
    vkey = np.where(real, cols["vkey"][src], -1)
    out = {
        "jet": j, "qoverp": trk.qoverp[t], "deta": deta, "dphi": dphi, "d0": d0,
        "z0sintheta": z0st[t], **{f"sigma_{k}": v[t] for k, v in trk.sigma.items()},
        "sd0": sign_d0 * np.abs(d0) / trk.sigma["d0"][t],
        "sz0": sign_z0 * np.abs(z0) / trk.sigma["z0"][t],
        **{k: v[t].astype(np.int64) for k, v in trk.hits.items()},
        "lepton_id": lepton_id[t],
        "pt": trk.pt[t], "eta": trk.eta[t], "phi": trk.phi[t],
        "charge": trk.charge[t].astype(np.int64), "truth_origin": origin,
        "truth_vertex": _vertex_index(trk.event[t], vkey),
        "truth_lepton": np.where(np.isin(trk_pid[t], (11, 13)), trk_pid[t], 0).astype(np.int64),
    }
    return out


def _vertex_index(event: np.ndarray, vkey: np.ndarray) -> np.ndarray:
    """Per-event truth vertex numbers: 0 the hard-scatter primary vertex, 1.. the displaced
    decay vertices (in record order), -1 pile-up."""
    out = np.where(vkey == 0, 0, -1)
    sec = vkey > 0
    if sec.any():
        pairs = np.stack([event[sec], vkey[sec]], axis=1)
        uniq, inv = np.unique(pairs, axis=0, return_inverse=True)
        first = np.searchsorted(uniq[:, 0], uniq[:, 0], side="left")
        out[sec] = (np.arange(len(uniq)) - first + 1)[inv.ravel()]
    return out


def _leptons(trk: tracking.Tracks, lepton_id: np.ndarray, pf: dict[str, np.ndarray],
             pileup: bool) -> dict[str, np.ndarray]:
    """Isolated e/mu: tracks identified as leptons (:mod:`.leptonid`: CMS-card efficiency
    above 10 GeV, hadron fakes) with pT > 10 GeV and relative isolation below
    :data:`.isolation.ISO_MAX` (with the pile-up card's corrections when ``pileup``);
    ``pdgid`` is the identified flavour."""
    cand = np.flatnonzero((lepton_id > 0) & (trk.pt > LEPTON_PT_MIN))
    iso = isolation.relative_isolation(trk.event[cand], trk.eta[cand], trk.phi[cand],
                                       trk.pt[cand], pf, pileup=pileup)
    c = cand[iso < np.array([isolation.ISO_MAX[int(i)] for i in lepton_id[cand]])]
    return {"event": trk.event[c], "pt": trk.pt[c], "eta": trk.eta[c], "phi": trk.phi[c],
            "charge": trk.charge[c].astype(np.int64),
            "pdgid": (-np.sign(trk.charge[c]) * lepton_id[c]).astype(np.int64)}


def _partons(hard: Particles) -> dict[str, np.ndarray]:
    keep, bottom, parent = truth.hard_process(hard)
    i = np.flatnonzero(keep)
    b = bottom[i]
    pt, eta, phi, mass = jets.kinematics(hard.px[b], hard.py[b], hard.pz[b], hard.e[b])
    ev = hard.event[i]
    pos = np.full(len(hard.pid), -1)
    pos[i] = np.arange(len(i)) - np.searchsorted(ev, ev, side="left")
    par = np.where(parent[i] >= 0, pos[np.maximum(parent[i], 0)], -1)
    return {"event": ev, "pid": hard.pid[i].astype(np.int64), "pt": pt, "eta": eta, "phi": phi,
            "mass": mass, "parent": par.astype(np.int64)}


def _constituents(fat: jets.FatJets, pf: dict[str, np.ndarray]) -> ak.Array:
    """Per large-R jet: its particle-flow constituents sorted by pT (``px, py, pz, e`` GeV,
    ``deta, dphi`` to the jet axis, ``pid`` 211/11/13/22/130, ``charge``, ``d0, d0err, dz,
    dzerr`` mm; 0 for neutrals)."""
    c = fat.const
    jet = np.repeat(np.arange(len(fat.pt)), fat.n_const)
    pt = np.hypot(pf["px"][c], pf["py"][c])
    order = np.lexsort((-pt, jet))
    c, jet, pt = c[order], jet[order], pt[order]
    eta = np.arcsinh(pf["pz"][c] / np.maximum(pt, 1e-12))
    phi = np.arctan2(pf["py"][c], pf["px"][c])
    fields = {k: pf[k][c] for k in ("px", "py", "pz", "e", "pid", "charge", "d0", "d0err",
                                    "dz", "dzerr")}
    fields["deta"] = eta - fat.eta[jet]
    fields["dphi"] = delta_phi(phi, fat.phi[jet])
    return ak.unflatten(ak.zip(fields, depth_limit=1), fat.n_const)


def _nest(n_events: int, event: np.ndarray, fields: dict[str, Any]) -> ak.Array:
    return ak.unflatten(ak.zip(fields, depth_limit=1),
                        np.bincount(event, minlength=n_events).astype(np.int64))


def _assemble(n_events: int, small: jets.Jets, hs_dr: np.ndarray, jt: dict[str, np.ndarray],
              fat: jets.FatJets,
              leptons: dict[str, np.ndarray], partons: dict[str, np.ndarray], met: np.ndarray,
              met_phi: np.ndarray, n_pu: np.ndarray,
              pf: dict[str, np.ndarray] | None) -> ak.Array:
    tracks = ak.unflatten(ak.zip({k: jt[k] for k in TRACK_FIELDS}, depth_limit=1),
                          np.bincount(jt["jet"], minlength=len(small.pt)).astype(np.int64))
    jet_fields = {"pt": small.pt, "eta": small.eta, "phi": small.phi, "mass": small.mass,
                  "flavour": small.flavour.astype(np.int64), "truth_hs_dr": hs_dr,
                  "tracks": tracks}
    fat_fields = {k: getattr(fat, k) for k in ("pt", "eta", "phi", "mass", "tau1", "tau2",
                                               "tau3", "msd")}
    if pf is not None:
        fat_fields["constituents"] = _constituents(fat, pf)
    return ak.zip({
        "jets": _nest(n_events, small.event, jet_fields),
        "fatjets": _nest(n_events, fat.event, fat_fields),
        "leptons": _nest(n_events, leptons["event"],
                         {k: v for k, v in leptons.items() if k != "event"}),
        "met": met, "met_phi": met_phi, "n_pileup": n_pu.astype(np.int64),
        "partons": _nest(n_events, partons["event"],
                         {k: v for k, v in partons.items() if k != "event"}),
    }, depth_limit=1)
