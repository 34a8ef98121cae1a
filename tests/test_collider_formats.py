"""hepchain.collider.formats and the boosted samples: JetClass ROOT and top-tagging HDF5
round trips on files written by the test, and bad files."""

from __future__ import annotations

import awkward as ak
import h5py
import numpy as np
import pytest

from hepchain.collider.formats.jetclass import LABELS, read_jetclass, write_jetclass
from hepchain.collider.formats.toptagging import (
    landscape_jets,
    read_toptagging,
    write_toptagging,
)
from hepchain.collider.produce import produce
from hepchain.core.dataset import ShardedDataset
from hepchain.core.errors import DataError, UsageError


@pytest.fixture(scope="module")
def top_qcd(tmp_path_factory) -> ak.Array:
    out = tmp_path_factory.mktemp("collider_fmt") / "top_qcd"
    produce("top_qcd", out, n_events=24, seed=5, executor=None, progress=False)
    return ShardedDataset(out).read()


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
    with h5py.File(tmp_path / "bad.h5", "w") as fh:
        fh["x"] = np.zeros(3)
    with pytest.raises(DataError, match="not a landscape file"):
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
