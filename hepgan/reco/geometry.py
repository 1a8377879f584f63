"""The detector as barrel cylinders and endcap disks keyed by (volume_id, layer_id).

Seeding and the features need only this coarse picture: which layers are cylinders at a radius
and which are disks at a z, and how far each extends. It ships for the ACTS generic detector
(the TrackML detector) and can be inferred from a file of hits for any other detector.

The generic detector's numbers were read off pyacts 48.1.0's `GenericDetector` (module centres
for the nominal radius or z, module corners for the extents), so they describe what ACTS
simulates, not a drawing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

import awkward as ak
import numpy as np

from hepgan.errors import InputError

__all__ = ["GENERIC_DETECTOR", "Geometry", "Layer", "infer_geometry"]

BARREL = "barrel"
ENDCAP = "endcap"


@dataclass(frozen=True)
class Layer:
    """One sensitive layer: a barrel cylinder (nominal `position` = radius) or an endcap disk
    (nominal `position` = z). Extents in mm."""

    volume_id: int
    layer_id: int
    kind: str
    position: float
    r_min: float
    r_max: float
    z_min: float
    z_max: float

    @property
    def key(self) -> tuple[int, int]:
        return (self.volume_id, self.layer_id)

    @property
    def is_barrel(self) -> bool:
        return self.kind == BARREL


@dataclass(frozen=True)
class Geometry:
    """A detector: its name, its layers sorted by (volume_id, layer_id), and which volumes hold
    pixel (space-point) layers, where seeding looks."""

    name: str
    layers: tuple[Layer, ...]
    pixel_volumes: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        keys = [layer.key for layer in self.layers]
        if len(set(keys)) != len(keys):
            msg = f"geometry {self.name!r}: duplicate (volume_id, layer_id) among {keys}"
            raise ValueError(msg)

    def layer(self, volume_id: int, layer_id: int) -> Layer:
        for layer in self.layers:
            if layer.key == (volume_id, layer_id):
                return layer
        msg = f"geometry {self.name!r} has no layer (volume_id={volume_id}, layer_id={layer_id})"
        raise KeyError(msg)

    @property
    def keys(self) -> tuple[tuple[int, int], ...]:
        return tuple(layer.key for layer in self.layers)

    def layer_index(self, volume_id: np.ndarray, layer_id: np.ndarray) -> np.ndarray:
        """Dense index of each hit's layer in `layers`, -1 where the layer is unknown.

        (n_hits,) int32 in, (n_hits,) int32 out.
        """
        volume_id = np.asarray(volume_id, dtype=np.int64)
        layer_id = np.asarray(layer_id, dtype=np.int64)
        packed_layers = np.array([v * 100_000 + la for v, la in self.keys], dtype=np.int64)
        order = np.argsort(packed_layers)
        packed = volume_id * 100_000 + layer_id
        pos = np.searchsorted(packed_layers[order], packed)
        pos = np.clip(pos, 0, len(order) - 1)
        found = packed_layers[order][pos] == packed
        return np.where(found, order[pos], -1).astype(np.int32)

    def check_hits(self, volume_id: np.ndarray, layer_id: np.ndarray, *, source: str = "hits") -> None:
        """Raise `InputError` listing the (volume, layer) ids of `source` this geometry lacks."""
        index = self.layer_index(volume_id, layer_id)
        if (index < 0).any():
            bad = sorted({(int(v), int(la)) for v, la in zip(volume_id[index < 0], layer_id[index < 0], strict=True)})
            shown = ", ".join(map(str, bad[:8])) + (" ..." if len(bad) > 8 else "")
            msg = f"{source}: {len(bad)} (volume_id, layer_id) pairs not in geometry {self.name!r}: {shown}"
            raise InputError(msg)

    def to_dict(self) -> dict:
        return {"name": self.name, "pixel_volumes": list(self.pixel_volumes), "layers": [asdict(x) for x in self.layers]}

    @classmethod
    def from_dict(cls, doc: Mapping) -> Geometry:
        try:
            layers = tuple(Layer(**x) for x in doc["layers"])
            return cls(str(doc["name"]), layers, tuple(int(v) for v in doc.get("pixel_volumes", ())))
        except (KeyError, TypeError) as err:
            msg = f"not a geometry description: {err}; expected name, layers[] of {list(Layer.__dataclass_fields__)}"
            raise InputError(msg) from err

    def fingerprint(self) -> str:
        """Short hash of the layer ids and kinds: two geometries with equal fingerprints agree on
        which layers exist and what they are (positions may differ by less than a mm)."""
        text = json.dumps([(x.volume_id, x.layer_id, x.kind, round(x.position)) for x in self.layers])
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _barrel(volume: int, layer: int, r: float, r_min: float, r_max: float, half_z: float) -> Layer:
    return Layer(volume, layer, BARREL, r, r_min, r_max, -half_z, half_z)


def _disks(volume: int, zs: Iterable[float], r_min: float, r_max: float, half_thickness: float) -> list[Layer]:
    return [
        Layer(volume, 2 * (i + 1), ENDCAP, z, r_min, r_max, z - half_thickness, z + half_thickness)
        for i, z in enumerate(zs)
    ]


_PIXEL_DISKS_Z = (600.0, 700.0, 820.0, 960.0, 1100.0, 1300.0, 1500.0)
_STRIP_DISKS_Z = (1220.0, 1500.0, 1800.0, 2150.0, 2550.0, 2950.0)

GENERIC_DETECTOR = Geometry(
    "acts-generic",
    tuple(
        sorted(
            [
                *_disks(7, [-z for z in reversed(_PIXEL_DISKS_Z)], 30.0, 176.2, 2.5),
                _barrel(8, 2, 32.0, 31.7, 34.4, 491.0),
                _barrel(8, 4, 72.0, 71.1, 73.9, 491.0),
                _barrel(8, 6, 116.0, 114.9, 117.7, 491.0),
                _barrel(8, 8, 172.0, 170.8, 173.6, 491.0),
                *_disks(9, _PIXEL_DISKS_Z, 30.0, 176.2, 2.5),
                *_disks(12, [-z for z in reversed(_STRIP_DISKS_Z)], 240.0, 701.1, 4.5),
                _barrel(13, 2, 260.0, 256.0, 266.1, 1084.0),
                _barrel(13, 4, 360.0, 355.7, 365.9, 1084.0),
                _barrel(13, 6, 500.0, 495.5, 505.6, 1084.0),
                _barrel(13, 8, 660.0, 655.3, 665.5, 1084.0),
                *_disks(14, _STRIP_DISKS_Z, 240.0, 701.1, 4.5),
                *_disks(16, [-z for z in reversed(_STRIP_DISKS_Z)], 750.0, 1022.5, 5.5),
                _barrel(17, 2, 820.0, 815.3, 825.4, 1084.0),
                _barrel(17, 4, 1020.0, 1015.2, 1025.4, 1084.0),
                *_disks(18, _STRIP_DISKS_Z, 750.0, 1022.5, 5.5),
            ],
            key=lambda x: x.key,
        )
    ),
    pixel_volumes=(7, 8, 9),
)


def infer_geometry(
    hits: ak.Array, *, name: str = "inferred", pixel_volumes: Iterable[int] | None = None, min_hits: int = 20
) -> Geometry:
    """Describe the layers seen in `hits` (an array with hit_x/y/z, hit_volume_id, hit_layer_id).

    A layer whose hits spread further in z than in r is a barrel cylinder at the median radius,
    otherwise an endcap disk at the median z. Pixel volumes default to those whose layers all
    lie within 200 mm of the beam line (where seeding in the generic detector looks).
    Layers with fewer than `min_hits` hits are dropped as noise in the ids.
    """
    x = ak.to_numpy(ak.flatten(hits["hit_x"])).astype(np.float64)
    y = ak.to_numpy(ak.flatten(hits["hit_y"])).astype(np.float64)
    z = ak.to_numpy(ak.flatten(hits["hit_z"])).astype(np.float64)
    vol = ak.to_numpy(ak.flatten(hits["hit_volume_id"])).astype(np.int64)
    lay = ak.to_numpy(ak.flatten(hits["hit_layer_id"])).astype(np.int64)
    if len(x) == 0:
        msg = "cannot infer a geometry from no hits"
        raise InputError(msg)
    r = np.hypot(x, y)
    layers = []
    for v, la in sorted({(int(a), int(b)) for a, b in zip(vol, lay, strict=True)}):
        sel = (vol == v) & (lay == la)
        if sel.sum() < min_hits:
            continue
        rs, zs = r[sel], z[sel]
        r_lo, r_hi = np.percentile(rs, [0.5, 99.5])
        z_lo, z_hi = np.percentile(zs, [0.5, 99.5])
        barrel = (z_hi - z_lo) > (r_hi - r_lo)
        position = float(np.median(rs) if barrel else np.median(zs))
        kind = BARREL if barrel else ENDCAP
        layers.append(Layer(v, la, kind, round(position, 1), float(rs.min()), float(rs.max()), float(zs.min()), float(zs.max())))
    if pixel_volumes is None:
        pixel_volumes = sorted({x.volume_id for x in layers} - {x.volume_id for x in layers if x.r_max > 200.0})
    return Geometry(name, tuple(layers), tuple(int(v) for v in pixel_volumes))
