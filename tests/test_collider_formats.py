"""hepchain.collider.formats and the boosted samples: JetClass ROOT, top-tagging and LHCO
HDF5 on files written by the test in the public layouts (both pandas formats, with and
without optional columns), bad and pickled files, and conversion of our events to them."""

from __future__ import annotations

import pickle
from pathlib import Path

import awkward as ak
import h5py
import numpy as np
import pandas as pd
import pytest
import uproot

from hepchain.collider.formats import lhco, pandas_hdf
from hepchain.collider.formats.jetclass import LABELS, read_jetclass, write_jetclass
from hepchain.collider.formats.toptagging import (
    N_CONST,
    landscape_jets,
    read_toptagging,
    write_toptagging,
)
from hepchain.collider.produce import produce
from hepchain.convert import convert
from hepchain.core.dataset import ShardedDataset
from hepchain.core.errors import DataError, UsageError


@pytest.fixture(scope="module")
def top_qcd_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("collider_fmt") / "top_qcd"
    produce("top_qcd", out, n_events=24, seed=5, executor=None, progress=False)
    return out


@pytest.fixture(scope="module")
def top_qcd(top_qcd_dir: Path) -> ak.Array:
    return ShardedDataset(top_qcd_dir).read()


def test_top_qcd_is_a_labelled_mix_with_constituents(top_qcd: ak.Array) -> None:
    assert ak.sum(top_qcd["is_signal"]) == 12
    events = top_qcd[ak.num(top_qcd["fatjets"]) > 0]
    sig = ak.to_numpy(events["is_signal"])
    lead = events["fatjets"][:, 0]
    c = lead["constituents"]
    # the constituents add up to the jet
    assert np.allclose(ak.to_numpy(np.hypot(ak.sum(c["px"], axis=1), ak.sum(c["py"], axis=1))),
                       ak.to_numpy(lead["pt"]), rtol=1e-6)
    # boosted hadronic tops are three-pronged and heavier than QCD jets
    msd = ak.to_numpy(lead["msd"])
    tau32 = ak.to_numpy(lead["tau3"] / lead["tau2"])
    assert np.median(msd[sig == 1]) > np.median(msd[sig == 0]) + 40
    assert np.median(tau32[sig == 1]) < np.median(tau32[sig == 0])


def test_toptagging_round_trip(top_qcd: ak.Array, tmp_path) -> None:
    four, sig = landscape_jets(top_qcd, pt_range=(450.0, 2000.0))
    assert four.shape[1:] == (200, 4) and len(four) == len(sig) > 0
    path = write_toptagging(four, sig, tmp_path / "test.h5")
    back = read_toptagging(path)
    assert np.allclose(back["four"], four) and np.array_equal(back["is_signal"], sig)
    # the pandas block layout: constituent columns first, then the integer block
    with h5py.File(path) as fh:
        names = [x.decode() for x in fh["table/axis0"][...]]
    assert names[:4] == ["E_0", "PX_0", "PY_0", "PZ_0"] and names[-1] == "is_signal_new"
    # pandas (PyTables) reads our file as the landscape DataFrame
    frame = pd.read_hdf(path, "table")
    np.testing.assert_array_equal(frame["is_signal_new"], sig)
    np.testing.assert_allclose(frame["PX_3"], four[:, 3, 1])
    with h5py.File(tmp_path / "bad.h5", "w") as fh:
        fh["x"] = np.zeros(3)
    with pytest.raises(DataError, match=r"no .table. table.*top-tagging landscape HDF5 file"):
        read_toptagging(tmp_path / "bad.h5")


def test_jetclass_round_trip(top_qcd: ak.Array, tmp_path) -> None:
    jets = ak.flatten(top_qcd["fatjets"])
    path = write_jetclass(jets, tmp_path / "jc.root", "Tbqq")
    back = read_jetclass(path)
    assert len(back) == len(jets)
    assert np.all(ak.to_numpy(back["label"]) == LABELS.index("Tbqq"))
    assert np.allclose(ak.to_numpy(back["msd"]), ak.to_numpy(jets["msd"]))
    assert ak.all(back["constituents"]["pid"] == jets["constituents"]["pid"])
    with pytest.raises(UsageError, match="label"):
        write_jetclass(jets, tmp_path / "x.root", "Higgs")
    (tmp_path / "junk.root").write_bytes(b"not root")
    with pytest.raises(DataError):
        read_jetclass(tmp_path / "junk.root")


def test_jetclass_process_rejects_unknown_class(tmp_path) -> None:
    with pytest.raises(UsageError, match="jetclass label"):
        produce("jetclass", tmp_path / "j", n_events=2, seed=1, executor=None,
                options={"label": "Xbb"})


def _landscape_frame(n: int, rng: np.random.Generator, optional: bool) -> pd.DataFrame:
    """A DataFrame with the public landscape columns (truth*/ttv only if ``optional``)."""
    four = rng.normal(50, 20, (n, N_CONST, 4)).astype(np.float32)
    columns = {f"{c}_{i}": four[:, i, j] for i in range(N_CONST)
               for j, c in enumerate(("E", "PX", "PY", "PZ"))}
    if optional:
        columns.update({f"truth{c}": rng.normal(size=n) for c in ("E", "PX", "PY", "PZ")})
        columns["ttv"] = rng.integers(0, 3, n)
    columns["is_signal_new"] = rng.integers(0, 2, n)
    return pd.DataFrame(columns)


@pytest.mark.parametrize("fmt", ["fixed", "table"])
@pytest.mark.parametrize("optional", [True, False])
def test_toptagging_reads_public_files_in_both_pandas_formats(tmp_path, fmt, optional) -> None:
    frame = _landscape_frame(7, np.random.default_rng(1), optional)
    path = tmp_path / "test.h5"
    frame.to_hdf(path, key="table", format=fmt)
    back = read_toptagging(path)
    np.testing.assert_array_equal(back["four"][:, 5, 2], frame["PY_5"])
    np.testing.assert_array_equal(back["is_signal"], frame["is_signal_new"])
    assert ("truth" in back) == ("ttv" in back) == optional
    if optional:
        np.testing.assert_array_equal(back["truth"][:, 1], frame["truthPX"])
        np.testing.assert_array_equal(back["ttv"], frame["ttv"])
    part = read_toptagging(path, start=2, stop=5)
    np.testing.assert_array_equal(part["four"], back["four"][2:5])


def test_toptagging_wrong_layout_is_one_sentence(tmp_path) -> None:
    path = tmp_path / "other.h5"
    pd.DataFrame({"pt": [1.0, 2.0], "is_signal_new": [0, 1]}).to_hdf(path, key="table",
                                                                     format="table")
    with pytest.raises(DataError, match=r"lacks the landscape columns \['E_0'\]"):
        read_toptagging(path)
    with h5py.File(tmp_path / "plain.h5", "w") as fh:
        fh["table"] = np.zeros(3)
    with pytest.raises(DataError, match="not a pandas DataFrame"):
        read_toptagging(tmp_path / "plain.h5")


@pytest.mark.parametrize("fmt", ["fixed", "table"])
@pytest.mark.parametrize("labelled", [True, False])
def test_lhco_feature_file_in_both_pandas_formats(tmp_path, fmt, labelled) -> None:
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({c: rng.normal(300, 50, 6) for c in lhco.FEATURE_COLUMNS})
    if labelled:
        frame["label"] = [0.0, 1.0] * 3
    path = tmp_path / "events_anomalydetection_v2.features.h5"
    frame.to_hdf(path, key="df", format=fmt)
    t = lhco.read_features(path)
    np.testing.assert_array_equal(t["tau2"][:, 1], frame["tau2j2"])
    np.testing.assert_array_equal(t["label"], [0, 1] * 3 if labelled else [-1] * 6)


def test_object_columns_are_refused_not_unpickled(tmp_path) -> None:
    frame = _landscape_frame(3, np.random.default_rng(3), optional=False)
    frame["note"] = ["a", "b", "c"]  # object dtype: pandas pickles it in the fixed format
    path = tmp_path / "pickled.h5"
    frame.to_hdf(path, key="table", format="fixed")
    with pytest.raises(DataError, match=r"\['note'\] has pandas object dtype"):
        read_toptagging(path)


class _Touch:
    """Unpickling this would create a file (what a hostile download could do)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_table_metadata_pickle_that_would_run_code_is_refused(tmp_path) -> None:
    path = tmp_path / "hostile.h5"
    pd.DataFrame({"E_0": [1.0], "is_signal_new": [1]}).to_hdf(path, key="table", format="table")
    target = tmp_path / "pwned"
    with h5py.File(path, "r+") as fh:
        fh["table/table"].attrs["values_block_0_kind"] = np.bytes_(
            pickle.dumps([_Touch(target)], protocol=0))
    with pytest.raises(DataError, match="never unpickles"):
        read_toptagging(path)
    assert not target.exists()
    assert pandas_hdf.literal_pickle(pickle.dumps(["E_0", 3, (1, "x")], 0), "t") == [
        "E_0", 3, (1, "x")]


def _write_root(path: Path, branches: dict) -> Path:
    with uproot.recreate(path) as fh:
        fh["tree"] = branches
    return path


def _minimal_jetclass(n: int) -> dict:
    """Only what a weaver model needs: constituent four-momenta and one-hot labels."""
    rng = np.random.default_rng(4)
    counts = rng.integers(1, 5, n)
    comp = {b: ak.unflatten(rng.normal(size=counts.sum()), counts)
            for b in ("part_px", "part_py", "part_pz", "part_energy")}
    labels = {f"label_{name}": np.arange(n) % len(LABELS) == i for i, name in enumerate(LABELS)}
    return {**comp, **labels}


def test_jetclass_needs_only_four_momenta_and_labels(tmp_path) -> None:
    branches = _minimal_jetclass(12)
    back = read_jetclass(_write_root(tmp_path / "min.root", branches))
    assert set(back.fields) == {"label", "constituents"}
    assert set(back["constituents"].fields) == {"px", "py", "pz", "e"}
    np.testing.assert_array_equal(ak.to_numpy(back["label"]), np.arange(12) % len(LABELS))
    assert ak.all(back["constituents"]["e"] == branches["part_energy"])
    part = read_jetclass(tmp_path / "min.root", start=3, stop=5)
    np.testing.assert_array_equal(ak.to_numpy(part["label"]), [3, 4])
    # optional branches appear when present
    extra = {**branches, "jet_tau1": np.ones(12), "part_isPhoton": ak.ones_like(
        branches["part_px"])}
    back = read_jetclass(_write_root(tmp_path / "extra.root", extra))
    assert "tau1" in back.fields and ak.all(back["constituents"]["pid"] == 22)


def test_jetclass_wrong_layout_is_one_sentence(tmp_path) -> None:
    branches = _minimal_jetclass(4)
    del branches["label_Hbb"]
    with pytest.raises(DataError, match=r"lacks the JetClass branches \['label_Hbb'\]"):
        read_jetclass(_write_root(tmp_path / "nolabel.root", branches))
    branches = _minimal_jetclass(4)
    branches["label_QCD"] = np.ones(4, bool)  # jet 1 now has two labels
    with pytest.raises(DataError, match="jet 1 has 2 labels set"):
        read_jetclass(_write_root(tmp_path / "twolabels.root", branches))


def test_convert_our_events_to_the_public_layouts(top_qcd_dir: Path, top_qcd: ak.Array,
                                                  tmp_path) -> None:
    jc = convert(top_qcd_dir, tmp_path / "jc.root", "jetclass-root", label="Tbqq")
    jets = read_jetclass(jc)
    assert len(jets) == ak.sum(ak.num(top_qcd["fatjets"]))
    np.testing.assert_allclose(ak.to_numpy(jets["pt"]),
                               ak.to_numpy(ak.flatten(top_qcd["fatjets"]["pt"])), rtol=1e-6)
    with pytest.raises(UsageError, match="--label"):
        convert(top_qcd_dir, tmp_path / "x.root", "jetclass-root")
    feats = lhco.read_features(convert(top_qcd_dir, tmp_path / "lhco.h5", "lhco-h5"))
    two = top_qcd[ak.num(top_qcd["fatjets"]) >= 2]
    np.testing.assert_allclose(np.hypot(feats["px"][:, 0], feats["py"][:, 0]),
                               ak.to_numpy(two["fatjets"][:, 0]["pt"]), rtol=1e-6)
    np.testing.assert_array_equal(feats["label"], ak.to_numpy(two["is_signal"]))
    top = read_toptagging(convert(top_qcd_dir, tmp_path / "top.h5", "toptagging-h5"))
    jet_pt = np.hypot(top["four"][:, :, 1].sum(axis=1), top["four"][:, :, 2].sum(axis=1))
    assert len(jet_pt) > 0 and np.all((jet_pt > 550) & (jet_pt < 650))  # landscape window
    assert set(top["is_signal"]) <= {0, 1}
    with pytest.raises(UsageError, match="holds collider events, which convert to "
                                         "jetclass-root, toptagging-h5, lhco-h5"):
        convert(top_qcd_dir, tmp_path / "x.h5", "calochallenge-h5")
