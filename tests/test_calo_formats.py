"""hepchain.calo.formats: the CaloChallenge binning XML and HDF5 layout on files written by
the test as the challenge distributes them, wrong layouts, and pixel-to-voxel rebinning."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from hepchain.calo.formats.binning import cylindrical_binning, read_binning
from hepchain.calo.formats.calochallenge import (
    pixels_to_voxels,
    read_calochallenge,
    write_calochallenge,
)
from hepchain.calo.geometry import ECalGeometry
from hepchain.core.errors import DataError, UsageError

# two particles as in binning_dataset_1_*.xml: an unbinned layer, alpha-binned ones, no voxels
XML = """<Bins>
   <Bin pid="22" etaMin="0" etaMax="130" name="photon">
      <Layer id="0" r_edges="0,5,10,30" n_bin_alpha="1" />
      <Layer id="1" r_edges="0,2,4,6,8" n_bin_alpha="10"/>
      <Layer id="2" r_edges="0" n_bin_alpha="1" />
      <Layer id="3" r_edges="0,50,100" n_bin_alpha="4" />
   </Bin>
   <Bin pid="211" name="pion">
      <Layer id="0" r_edges="0,5" n_bin_alpha="1" />
   </Bin>
</Bins>
"""
N_VOXELS = 3 + 4 * 10 + 0 + 2 * 4


@pytest.fixture()
def xml_path(tmp_path):
    path = tmp_path / "binning_dataset_1_photons.xml"
    path.write_text(XML)
    return path


def _public_file(path, n, rng):
    """incident_energies (N, 1) and showers (N, voxels) [MeV], as the challenge ships them."""
    energies = rng.uniform(256, 4e6, (n, 1))
    showers = rng.exponential(10.0, (n, N_VOXELS)) * (rng.uniform(size=(n, N_VOXELS)) < 0.3)
    with h5py.File(path, "w") as fh:
        fh["incident_energies"], fh["showers"] = energies, showers
    return energies[:, 0], showers


def test_binning_xml_gives_the_voxel_geometry(xml_path) -> None:
    b = read_binning(xml_path, "photon")
    assert (b.pid, b.n_voxels) == (22, N_VOXELS)
    assert [layer.n_voxels for layer in b.layers] == [3, 40, 0, 8]
    np.testing.assert_array_equal(b.layer_edges, [0, 3, 43, 43, 51])
    r, alpha = b.layers[1].centres()  # angle outer, radius inner, as XMLHandler
    np.testing.assert_allclose(r[0], [1, 3, 5, 7])
    np.testing.assert_allclose(alpha[:, 0], -np.pi + (np.arange(10) + 0.5) * 2 * np.pi / 10)
    again = xml_path.with_name("again.xml")
    again.write_text(b.to_xml())
    assert read_binning(again) == b  # one particle now: no name needed
    assert read_binning(xml_path, "pion").n_voxels == 1


def test_binning_xml_wrong_layout_is_one_sentence(xml_path, tmp_path) -> None:
    with pytest.raises(UsageError, match=r"holds binnings for \['photon', 'pion'\]"):
        read_binning(xml_path)
    with pytest.raises(UsageError, match="no binning for particle 'kaon'"):
        read_binning(xml_path, "kaon")
    bad = tmp_path / "bad.xml"
    bad.write_text('<Bins><Bin pid="11" name="e"><Layer id="0" r_edges="0,5,3" n_bin_alpha="1"/>'
                   "</Bin></Bins>")
    with pytest.raises(DataError, match="r_edges increasing"):
        read_binning(bad)
    bad.write_text("<Showers/>")
    with pytest.raises(DataError, match="not a CaloChallenge binning XML"):
        read_binning(bad)


def test_reads_a_public_file_and_round_trips(xml_path, tmp_path) -> None:
    path = tmp_path / "dataset_1_photons_1.hdf5"
    energies, showers = _public_file(path, 9, np.random.default_rng(0))
    data = read_calochallenge(path, xml_path, "photon")
    np.testing.assert_array_equal(data.incident_energies, energies)
    np.testing.assert_array_equal(data.showers, showers)
    # voxel a * n_r + r of layer 1 is (alpha a, radius r)
    np.testing.assert_array_equal(data.binning.layer(data.showers, 1)[:, 7, 2],
                                  showers[:, 3 + 7 * 4 + 2])
    part = read_calochallenge(path, xml_path, "photon", start=4, stop=6)
    np.testing.assert_array_equal(part.showers, showers[4:6])
    out, xml = write_calochallenge(tmp_path / "copy.h5", data.incident_energies, data.showers,
                                   data.binning)
    again = read_calochallenge(out, xml)
    np.testing.assert_array_equal(again.showers, showers)  # stored as float64
    assert again.binning == data.binning


def test_wrong_calochallenge_layout_is_one_sentence(xml_path, tmp_path) -> None:
    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as fh:
        fh["showers"] = np.zeros((3, N_VOXELS))
    with pytest.raises(DataError, match=r"lacks the datasets \['incident_energies'\]"):
        read_calochallenge(path, xml_path, "photon")
    with h5py.File(path, "w") as fh:
        fh["incident_energies"], fh["showers"] = np.ones((3, 1)), np.zeros((3, 7))
    with pytest.raises(DataError, match=f"7 voxels per shower but .* describes {N_VOXELS}"):
        read_calochallenge(path, xml_path, "photon")
    with h5py.File(path, "w") as fh:
        fh["incident_energies"], fh["showers"] = np.ones((2, 1)), np.zeros((3, N_VOXELS))
    with pytest.raises(DataError, match="not one energy per 2-D shower row"):
        read_calochallenge(path, xml_path, "photon")


def test_pixels_to_voxels_conserves_energy_and_places_it() -> None:
    geometry = ECalGeometry(n_thin=2, n_thick=1, n_pix=8, pixel=4.0)  # grid ±16 mm
    binning = cylindrical_binning(geometry.half_width, geometry.n_layers, 4.0, n_alpha=8)
    rng = np.random.default_rng(1)
    pixels = rng.exponential(1.0, (5, *geometry.shape))
    voxels = pixels_to_voxels(pixels, geometry, binning)
    for i in range(geometry.n_layers):
        np.testing.assert_allclose(binning.layer(voxels, i).sum(axis=(1, 2)),
                                   pixels[:, i].sum(axis=(1, 2)))
    # one deposit in the pixel at x in [8, 12], y in [0, 4] mm: r in [8, 12.65], alpha in
    # [0, 0.46] rad -> radial bins 2-3 of the first angular bin above 0 (alpha in [0, pi/4])
    one = np.zeros((1, *geometry.shape))
    one[0, 0, 4, 6] = 1.0
    layer0 = binning.layer(pixels_to_voxels(one, geometry, binning), 0)[0]
    assert layer0[4, 2] + layer0[4, 3] == pytest.approx(1.0)
    assert layer0[4, 2] > layer0[4, 3] > 0
    small = cylindrical_binning(8.0, geometry.n_layers, 4.0)
    with pytest.raises(UsageError, match="must cover the pixel grid"):
        pixels_to_voxels(pixels, geometry, small)
