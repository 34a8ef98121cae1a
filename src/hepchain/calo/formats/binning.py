"""The voxel geometry of a CaloChallenge dataset, from its binning XML.

The XML (``binning_dataset_*.xml`` of github.com/CaloChallenge/homepage) holds one ``Bin``
element per particle, each with one ``Layer`` per calorimeter layer, in layer order::

    <Bins>
      <Bin pid="11" name="electron">
        <Layer id="0" r_edges="0,4.65,9.3,13.95" n_bin_alpha="16" />
        ...
      </Bin>
    </Bins>

A layer has ``len(r_edges) − 1`` radial bins [mm] (``r_edges="0"``: no voxels) times
``n_bin_alpha`` equal angular bins over [−π, π). Its voxels are consecutive in the
``showers`` array, angle outer and radius inner (voxel ``a · n_r + r``), layers in order —
the order of the challenge's ``XMLHandler``/``HighLevelFeatures``.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hepchain.core.errors import DataError, UsageError
from hepchain.core.io import atomic_write_text


@dataclass(frozen=True)
class LayerBinning:
    """One layer: radial bin edges [mm] and the number of angular bins."""

    r_edges: tuple[float, ...]
    n_alpha: int

    @property
    def n_r(self) -> int:
        return len(self.r_edges) - 1

    @property
    def n_voxels(self) -> int:
        return self.n_r * self.n_alpha

    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        """(r [mm], α [rad]) of each voxel, shape (n_alpha, n_r) (the voxel order)."""
        edges = np.asarray(self.r_edges)
        alpha_edges = np.linspace(-math.pi, math.pi, self.n_alpha + 1)
        r = 0.5 * (edges[1:] + edges[:-1])
        a = 0.5 * (alpha_edges[1:] + alpha_edges[:-1])
        return np.broadcast_to(r, (self.n_alpha, self.n_r)), np.repeat(a[:, None], self.n_r, 1)


@dataclass(frozen=True)
class Binning:
    """All layers of one particle's binning; ``attributes`` keeps the ``Bin`` element's XML
    attributes other than name and pid (e.g. etaMin/etaMax) so a file round-trips."""

    particle: str
    pid: int
    layers: tuple[LayerBinning, ...]
    attributes: dict[str, str] = field(default_factory=dict)

    @property
    def n_voxels(self) -> int:
        return sum(layer.n_voxels for layer in self.layers)

    @property
    def layer_edges(self) -> np.ndarray:
        """Voxel index where each layer starts, plus the total (n_layers + 1,)."""
        return np.concatenate([[0], np.cumsum([layer.n_voxels for layer in self.layers])])

    def layer(self, showers: np.ndarray, index: int) -> np.ndarray:
        """Layer ``index`` of ``showers`` (N, n_voxels) as (N, n_alpha, n_r)."""
        lo, hi = self.layer_edges[index:index + 2]
        spec = self.layers[index]
        return showers[:, lo:hi].reshape(len(showers), spec.n_alpha, spec.n_r)

    def to_xml(self) -> str:
        """The binning as the challenge's XML text."""
        root = ET.Element("Bins")
        attrs = {"pid": str(self.pid), **self.attributes, "name": self.particle}
        particle = ET.SubElement(root, "Bin", attrs)
        for i, spec in enumerate(self.layers):
            ET.SubElement(particle, "Layer", {"id": str(i),
                                              "r_edges": ",".join(map(_text, spec.r_edges)),
                                              "n_bin_alpha": str(spec.n_alpha)})
        ET.indent(root, space="   ")
        return ET.tostring(root, encoding="unicode") + "\n"


def read_binning(path: str | Path, particle: str | None = None) -> Binning:
    """The binning of ``particle`` (the ``name`` attribute; optional when the file has one
    ``Bin``) from a CaloChallenge binning XML."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p} does not exist; pass the dataset's binning XML "
                        "(binning_dataset_*.xml).")
    try:
        root = ET.parse(p).getroot()
    except ET.ParseError as exc:
        raise DataError(f"{p} is not valid XML ({exc}); pass the dataset's binning XML.") from exc
    bins = [b for b in root if b.tag == "Bin"]
    if root.tag != "Bins" or not bins:
        raise DataError(f"{p} has no <Bins><Bin …> elements; it is not a CaloChallenge "
                        "binning XML.")
    names = [b.get("name", "") for b in bins]
    if particle is None and len(bins) > 1:
        raise UsageError(f"{p} holds binnings for {names}; say which particle to use.")
    chosen = bins[0] if particle is None else next((b for b in bins if b.get("name") == particle),
                                                   None)
    if chosen is None:
        raise UsageError(f"{p} has no binning for particle {particle!r}; it has {names}.")
    return Binning(particle=chosen.get("name", ""), pid=_number(chosen, "pid", p, int),
                   layers=tuple(_layer(e, i, p) for i, e in
                                enumerate(x for x in chosen if x.tag == "Layer")),
                   attributes={k: v for k, v in chosen.attrib.items()
                               if k not in ("name", "pid")})


def write_binning(binning: Binning, path: str | Path) -> Path:
    """Write ``binning`` as a CaloChallenge binning XML (atomically)."""
    atomic_write_text(path, binning.to_xml())
    return Path(path)


def cylindrical_binning(half_width_mm: float, n_layers: int, r_step_mm: float,
                        n_alpha: int = 16, particle: str = "electron",
                        pid: int = 11) -> Binning:
    """Equal layers with radial bins of ``r_step_mm`` out to the corner of a square pixel grid
    of half-width ``half_width_mm`` (so every pixel lies inside), ``n_alpha`` angular bins."""
    if not (half_width_mm > 0 and r_step_mm > 0 and n_alpha >= 1 and n_layers >= 1):
        raise UsageError("A cylindrical binning needs a positive grid size and radial step, "
                         "n_alpha >= 1 and at least one layer.")
    n_r = math.ceil(half_width_mm * math.sqrt(2) / r_step_mm - 1e-9)
    layer = LayerBinning(tuple(float(r) for r in np.arange(n_r + 1) * r_step_mm), n_alpha)
    return Binning(particle, pid, (layer,) * n_layers)


def _text(value: float) -> str:
    """A bin edge as the challenge writes it ("0", "4.65"), exact on reading back."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _number(element: ET.Element, name: str, path: Path, kind: type) -> int | float:
    try:
        return kind(element.get(name, ""))
    except ValueError:
        raise DataError(f"{path}: <{element.tag}> has {name}={element.get(name)!r}, not a "
                        "number; it is not a CaloChallenge binning XML.") from None


def _layer(element: ET.Element, index: int, path: Path) -> LayerBinning:
    if element.get("id") != str(index):
        raise DataError(f"{path}: layer {index} has id={element.get('id')!r}; the layers must "
                        "be listed in order from id 0.")
    try:
        edges = tuple(float(v) for v in element.get("r_edges", "").split(","))
    except ValueError:
        raise DataError(f"{path}: layer {index} has r_edges={element.get('r_edges')!r}, not "
                        "comma-separated numbers.") from None
    n_alpha = int(_number(element, "n_bin_alpha", path, int))
    if n_alpha < 1 or np.any(np.diff(edges) <= 0) or edges[0] < 0:
        raise DataError(f"{path}: layer {index} needs r_edges increasing from >= 0 mm and "
                        f"n_bin_alpha >= 1 (got {edges}, {n_alpha}).")
    return LayerBinning(edges, n_alpha)
