"""``hepchain convert``: our datasets to the public layouts, and public files into our
dataset layout, so weaver-core (JetClass ROOT) or CaloChallenge tools train on our samples
and our studies on theirs.

| source                                   | ``--to``                                        |
|------------------------------------------|-------------------------------------------------|
| collider dataset (events with fatjets)   | ``jetclass-root``, ``toptagging-h5``, ``lhco-h5`` |
| collider dataset (ttbar events with jets) | ``salt-h5`` (a directory: btag's jets and split) |
| calorimeter dataset (``calo.produce``)   | ``calochallenge-h5`` (+ binning XML beside it)  |
| a public file in any of the four layouts | ``hepchain`` (a dataset directory with manifest) |

Importing a public file writes shards of ``shard_size`` rows through
:func:`hepchain.core.dataset.build_dataset` (manifest with the source's path and sha256,
resume after a kill); JetClass jets become Parquet records (:func:`read_jetclass` fields),
the HDF5 layouts become HDF5 shards with the reader's arrays.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hepchain.core.errors import DataError, UsageError

PUBLIC = ("jetclass-root", "toptagging-h5", "lhco-h5", "calochallenge-h5", "salt-h5")
TARGETS = (*PUBLIC, "hepchain")
FROM_EVENTS = ("jetclass-root", "toptagging-h5", "lhco-h5")
PARTICLES = {"e-": ("electron", 11), "e+": ("positron", -11), "gamma": ("photon", 22)}
"""hepchain particle names -> (binning XML particle name, PDG id)."""


def convert(src: str | Path, dst: str | Path, to: str, *, label: str | None = None,
            binning: str | Path | None = None, particle: str | None = None,
            shard_size: int = 10_000, preset: str = "quick",
            test_src: str | Path | None = None) -> Path:
    """Convert ``src`` (a hepchain dataset directory or a public file) to layout ``to``
    written at ``dst``; returns ``dst``. ``label``: JetClass class of all jets (default: the
    dataset's ``label`` option); ``binning``/``particle``: the CaloChallenge binning XML and
    its particle (required to read a CaloChallenge file; optional when writing one, default
    a cylindrical binning of the pixel grid); ``preset``: the btag preset whose jet selection,
    split, track count and lepton flag define the jets written by ``salt-h5``; ``test_src``:
    a second ttbar dataset whose jets are the ``salt-h5`` test file (as btag's separate test
    sample, ``data.n_test_events``), instead of the split's test events."""
    src, dst = Path(src), Path(dst)
    if to not in TARGETS:
        raise UsageError(f"--to {to!r} is not a known layout; use one of {', '.join(TARGETS)}.")
    if not src.exists():
        raise DataError(f"{src} does not exist; pass a hepchain dataset directory or a public "
                        "data file.")
    if test_src is not None and to != "salt-h5":
        raise UsageError("--test-src is an option of --to salt-h5 only.")
    if src.is_dir():
        if to == "salt-h5":
            return _to_salt(src, dst, preset, test_src)
        return _export(src, dst, to, label, binning, particle)
    if to == "salt-h5":
        raise UsageError(f"{src} is a file; --to salt-h5 converts a hepchain ttbar dataset "
                         "directory (hepchain generate ttbar --out DIR).")
    layout = detect_layout(src)
    if to != "hepchain":
        raise UsageError(f"{src} is already a public {layout} file; it converts only to "
                         "--to hepchain (our dataset layout).")
    return _import(src, dst, layout, binning, particle, shard_size)


def detect_layout(path: Path) -> str:
    """Which public layout a file is in, from its suffix and HDF5 keys."""
    if path.suffix == ".root":
        return "jetclass-root"
    import h5py

    try:
        with h5py.File(path, "r") as fh:
            keys = set(fh)
    except OSError:
        raise DataError(f"{path} is neither a ROOT nor an HDF5 file; pass a JetClass ROOT, "
                         "top-tagging, LHCO or CaloChallenge file.") from None
    for key, layout in (("table", "toptagging-h5"), ("df", "lhco-h5"),
                        ("showers", "calochallenge-h5")):
        if key in keys:
            return layout
    raise DataError(f"{path} has HDF5 keys {sorted(keys)}, none of 'table' (top tagging), "
                     "'df' (LHCO) or 'showers' (CaloChallenge); it is not a known public layout.")


# ----------------------------------------------------------------------------- ours -> public


def _export(src: Path, dst: Path, to: str, label: str | None, binning: str | Path | None,
            particle: str | None) -> Path:
    from hepchain.core.dataset import ShardedDataset

    ds = ShardedDataset(src)
    settings = ds.manifest.settings
    if ds.manifest.format == "parquet" and to in FROM_EVENTS:
        events = ds.read()
        if "fatjets" not in events.fields:
            raise UsageError(f"{src} has no large-R jets (fatjets); generate a boosted process "
                             f"(top_qcd, jetclass) to convert to {to}.")
        writer = {"jetclass-root": _to_jetclass, "toptagging-h5": _to_toptagging,
                  "lhco-h5": _to_lhco}[to]
        writer(events, dst, label or settings.get("options", {}).get("label"))
        return dst
    if ds.manifest.format == "hdf5" and "geometry" in settings and to == "calochallenge-h5":
        _to_calochallenge(src, dst, binning, particle)
        return dst
    if ds.manifest.format == "parquet":
        kind, allowed = "collider events", ", ".join(FROM_EVENTS)
    elif "geometry" in settings:
        kind, allowed = "calorimeter showers", "calochallenge-h5"
    else:
        kind, allowed = f"{ds.manifest.name} data", "no public layout"
    raise UsageError(f"{src} holds {kind}, which convert to {allowed}, not to {to}.")


def _to_salt(src: Path, dst: Path, preset: str, test_src: str | Path | None) -> Path:
    """btag's jets and split of the dataset ``src`` (as ``hepchain btag run --preset
    PRESET --set data.path=SRC`` selects them) in salt's layout under the directory ``dst``;
    the test jets from the dataset ``test_src`` when given."""
    from hepchain.core.dataset import ShardedDataset
    from hepchain.core.result import Result
    from hepchain.reco.btag.gn1 import btag_config, btag_jets
    from hepchain.reco.btag.salt.layout import write_salt_files

    for path in (src, test_src) if test_src is not None else (src,):
        if not Path(path).is_dir():
            raise DataError(f"{path} is not a dataset directory; --to salt-h5 converts "
                            "hepchain ttbar datasets (hepchain generate ttbar --out DIR).")
        if ShardedDataset(path).manifest.format != "parquet":
            raise UsageError(f"{path} holds no collider events; --to salt-h5 needs a ttbar "
                             "dataset (hepchain generate ttbar --out DIR).")
    config = btag_config(preset, {"data": {"path": str(src)}})
    result = Result(study="btag", preset=preset)
    jets = btag_jets(config, result, test_path=test_src)
    info = {"source": str(src.resolve()), "btag_preset": preset, "config": config,
            "test_source": str(Path(test_src).resolve()) if test_src is not None else None,
            "datasets": result.provenance.datasets}
    write_salt_files(jets, dst, info)
    return dst


def _to_jetclass(events: Any, dst: Path, label: str | None) -> None:
    import awkward as ak

    from hepchain.collider.formats.jetclass import write_jetclass

    if label is None:
        raise UsageError("Say which JetClass class these jets are with --label (e.g. QCD, "
                         "Tbqq); the dataset has no label option.")
    write_jetclass(ak.flatten(events["fatjets"]), dst, label)


def _to_toptagging(events: Any, dst: Path, label: str | None) -> None:
    from hepchain.collider.formats.toptagging import landscape_jets, write_toptagging

    if "is_signal" not in events.fields or "partons" not in events.fields:
        raise UsageError("The top-tagging layout needs a labelled top/QCD mix with partons "
                         "(is_signal); generate the top_qcd process.")
    four, is_signal = landscape_jets(events)
    if len(four) == 0:
        raise DataError("No jet passes the landscape selection (550 < pT < 650 GeV, |η| < 2); "
                        "generate more events.")
    write_toptagging(four, is_signal, dst)


def _to_lhco(events: Any, dst: Path, label: str | None) -> None:
    import awkward as ak

    from hepchain.collider.formats.lhco import JET_COLUMNS, write_frame

    two = events[ak.num(events["fatjets"]) >= 2]
    if len(two) == 0:
        raise DataError("No event has two large-R jets; the LHCO layout needs dijet events.")
    jets = two["fatjets"][:, :2]
    pt, eta, phi = (ak.to_numpy(jets[f]) for f in ("pt", "eta", "phi"))
    per_jet = {"px": pt * np.cos(phi), "py": pt * np.sin(phi), "pz": pt * np.sinh(eta),
               "m": ak.to_numpy(jets["mass"]),
               **{t: ak.to_numpy(jets[t]) for t in ("tau1", "tau2", "tau3")}}
    columns = {f"{q}j{j + 1}": per_jet[q][:, j] for j in (0, 1) for q in JET_COLUMNS}
    if "is_signal" in two.fields:  # a file without labels reads back as label -1
        columns["label"] = ak.to_numpy(two["is_signal"]).astype(float)
    write_frame(dst, list(columns), np.column_stack(list(columns.values())))


def _to_calochallenge(src: Path, dst: Path, binning_xml: str | Path | None,
                      particle: str | None) -> None:
    from hepchain.calo.formats.binning import cylindrical_binning, read_binning
    from hepchain.calo.formats.calochallenge import pixels_to_voxels, write_calochallenge
    from hepchain.calo.geometry import ECalGeometry
    from hepchain.calo.produce import load_showers

    energies, showers, manifest = load_showers(src)
    geometry = ECalGeometry.from_dict(manifest.settings["geometry"])
    if binning_xml is not None:
        binning = read_binning(binning_xml, particle)
    else:
        name, pid = PARTICLES[manifest.settings["particle"]]
        binning = cylindrical_binning(geometry.half_width, geometry.n_layers, geometry.pixel,
                                      particle=name, pid=pid)
    write_calochallenge(dst, energies * 1000.0, pixels_to_voxels(showers, geometry, binning),
                        binning)


# ----------------------------------------------------------------------------- public -> ours


def _import(src: Path, dst: Path, layout: str, binning_xml: str | Path | None,
            particle: str | None, shard_size: int) -> Path:
    from hepchain.core.dataset import build_dataset
    from hepchain.core.io import sha256_file

    settings: dict[str, Any] = {"layout": layout, "source": str(src.resolve()),
                                "sha256": sha256_file(src), "rows_per_shard": shard_size}
    if layout == "calochallenge-h5":
        if binning_xml is None:
            raise UsageError("Reading a CaloChallenge file needs its binning XML: pass "
                             "--binning binning_dataset_N.xml.")
        from hepchain.calo.formats.binning import read_binning

        binning = read_binning(binning_xml, particle)
        settings.update(binning=str(Path(binning_xml).resolve()), particle=binning.particle,
                        geometry_xml=binning.to_xml())
    n = _count(src, layout)
    if n == 0:
        raise DataError(f"{src} holds no rows; nothing to convert.")
    build_dataset(dst, generator=f"hepchain.convert/{layout}", settings=settings, n_events=n,
                  shard_size=shard_size, seed=0, make_shard=import_shard,
                  fmt="parquet" if layout == "jetclass-root" else "hdf5", name=dst.name)
    return dst


def _count(src: Path, layout: str) -> int:
    if layout == "jetclass-root":
        from hepchain.collider.formats.jetclass import count_jets

        return count_jets(src)
    if layout == "calochallenge-h5":
        from hepchain.calo.formats.calochallenge import count_showers

        return count_showers(src)
    from hepchain.collider.formats import lhco, toptagging
    from hepchain.collider.formats.pandas_hdf import n_rows

    module = toptagging if layout == "toptagging-h5" else lhco
    return n_rows(src, "table" if module is toptagging else "df", module.WHAT)


def import_shard(task: Any) -> Any:
    """One shard of an imported public file (a ``ShardTask``; module level for workers)."""
    s = task.settings
    start = task.index * s["rows_per_shard"]
    stop = start + task.n_events
    src = s["source"]
    if s["layout"] == "jetclass-root":
        from hepchain.collider.formats.jetclass import read_jetclass

        return read_jetclass(src, start, stop)
    if s["layout"] == "toptagging-h5":
        from hepchain.collider.formats.toptagging import read_toptagging

        return read_toptagging(src, start, stop)
    if s["layout"] == "calochallenge-h5":
        from hepchain.calo.formats.calochallenge import read_calochallenge

        data = read_calochallenge(src, s["binning"], s["particle"], start, stop)
        return {"incident_energies": data.incident_energies.reshape(-1, 1),
                "showers": data.showers}
    from hepchain.collider.formats import lhco

    columns, _ = lhco.read_frame(src, stop=0)
    if all(c in columns for c in lhco.FEATURE_COLUMNS):
        return lhco.read_features(src, start=start, stop=stop)
    hadrons, label = lhco.read_hadrons(src, start=start, stop=stop)
    return {"hadrons": hadrons, "label": label}
