"""hepchain convert: calorimeter datasets to the CaloChallenge layout, public files into our
dataset layout and back (round trips), and one sentence for an unsupported pair."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pandas as pd
import pytest
import uproot

from hepchain.calo.formats.calochallenge import read_calochallenge
from hepchain.calo.produce import load_showers, produce
from hepchain.cli import main
from hepchain.collider.formats.jetclass import LABELS, read_jetclass
from hepchain.collider.formats.toptagging import N_CONST, read_toptagging
from hepchain.convert import convert
from hepchain.core.dataset import ShardedDataset
from hepchain.core.errors import DataError, UsageError

SMALL_ECAL = {"n_thin": "3", "n_thick": "2", "n_pix": "8", "energies": "1,2", "sim": "fast"}


@pytest.fixture(scope="module")
def showers_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("convert") / "ecal"
    produce("ecal_fixed", out, n_events=6, seed=1, options=SMALL_ECAL, progress=False)
    return out


def test_calo_dataset_to_calochallenge_and_back(showers_dir, tmp_path) -> None:
    energies, pixels, _ = load_showers(showers_dir)
    h5 = convert(showers_dir, tmp_path / "ours.h5", "calochallenge-h5")
    xml = tmp_path / "ours.xml"
    data = read_calochallenge(h5, xml)
    assert data.binning.particle == "electron"
    np.testing.assert_allclose(data.incident_energies, energies * 1000.0)  # MeV
    for i in range(pixels.shape[1]):  # every layer keeps its energy
        np.testing.assert_allclose(data.binning.layer(data.showers, i).sum(axis=(1, 2)),
                                   pixels[:, i].sum(axis=(1, 2)), rtol=1e-5)
    back = convert(h5, tmp_path / "imported", "hepchain", binning=xml, shard_size=4)
    ds = ShardedDataset(back)
    assert len(ds.manifest.shards) == 2 and ds.manifest.settings["particle"] == "electron"
    np.testing.assert_array_equal(ds.read()["showers"], data.showers)
    with pytest.raises(UsageError, match="--binning"):
        convert(h5, tmp_path / "nobinning", "hepchain")


def test_public_files_into_our_layout(tmp_path) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({f"{c}_{i}": rng.normal(size=5).astype(np.float32)
                          for i in range(N_CONST) for c in ("E", "PX", "PY", "PZ")})
    frame["is_signal_new"] = [1, 0, 1, 0, 1]
    top = tmp_path / "train.h5"
    frame.to_hdf(top, key="table", format="table")
    data = ShardedDataset(convert(top, tmp_path / "top", "hepchain", shard_size=2)).read()
    np.testing.assert_array_equal(data["four"], read_toptagging(top)["four"])
    np.testing.assert_array_equal(data["is_signal"], frame["is_signal_new"])

    counts = np.array([2, 1, 3])
    root = tmp_path / "jets.root"
    with uproot.recreate(root) as fh:
        fh["tree"] = {**{b: ak.unflatten(rng.normal(size=6), counts)
                         for b in ("part_px", "part_py", "part_pz", "part_energy")},
                      **{f"label_{n}": np.array([n == "Hbb"] * 3) for n in LABELS}}
    jets = ShardedDataset(convert(root, tmp_path / "jc", "hepchain", shard_size=2)).read()
    assert ak.to_list(jets) == ak.to_list(read_jetclass(root))


def test_unsupported_pairs_are_one_sentence(showers_dir, tmp_path, capsys) -> None:
    with pytest.raises(UsageError, match="holds calorimeter showers, which convert to "
                                         "calochallenge-h5, not to jetclass-root"):
        convert(showers_dir, tmp_path / "x.root", "jetclass-root")
    with pytest.raises(UsageError, match="is not a known layout"):
        convert(showers_dir, tmp_path / "x", "weaver")
    h5 = convert(showers_dir, tmp_path / "ours.h5", "calochallenge-h5")
    with pytest.raises(UsageError, match="converts only to --to hepchain"):
        convert(h5, tmp_path / "x.h5", "toptagging-h5")
    (tmp_path / "notes.txt").write_text("not data")
    with pytest.raises(DataError, match="neither a ROOT nor an HDF5 file"):
        convert(tmp_path / "notes.txt", tmp_path / "z", "hepchain")
    with pytest.raises(SystemExit) as exit_info:
        main(["convert", str(showers_dir), str(tmp_path / "y.h5"), "--to", "lhco-h5"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "calochallenge-h5, not to lhco-h5" in err and "Traceback" not in err
    assert not (tmp_path / "y.h5").exists()
