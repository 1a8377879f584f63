"""hepgan.reco.geometry: the shipped generic detector against what ACTS simulates, and inference."""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np
import pytest

from hepgan.errors import InputError
from hepgan.io.events import read_events
from hepgan.reco.geometry import GENERIC_DETECTOR, Geometry, infer_geometry


def test_every_simulated_hit_lies_on_a_shipped_layer(small_sim: Path) -> None:
    hits = read_events(small_sim)["hits"]
    vol = ak.to_numpy(ak.flatten(hits.hit_volume_id))
    lay = ak.to_numpy(ak.flatten(hits.hit_layer_id))
    GENERIC_DETECTOR.check_hits(vol, lay, source=str(small_sim))
    index = GENERIC_DETECTOR.layer_index(vol, lay)
    r = np.hypot(ak.to_numpy(ak.flatten(hits.hit_x)), ak.to_numpy(ak.flatten(hits.hit_y)))
    z = ak.to_numpy(ak.flatten(hits.hit_z))
    r_min = np.array([layer.r_min for layer in GENERIC_DETECTOR.layers])[index]
    r_max = np.array([layer.r_max for layer in GENERIC_DETECTOR.layers])[index]
    z_min = np.array([layer.z_min for layer in GENERIC_DETECTOR.layers])[index]
    z_max = np.array([layer.z_max for layer in GENERIC_DETECTOR.layers])[index]
    # Measured positions are smeared by the resolution (< 1 mm across the module plane).
    assert np.all((r > r_min - 1) & (r < r_max + 1))
    assert np.all((z > z_min - 1) & (z < z_max + 1))


def test_inferred_geometry_agrees_with_shipped(small_sim: Path) -> None:
    hits = read_events(small_sim)["hits"]
    inferred = infer_geometry(hits, min_hits=5)
    assert len(inferred.layers) >= 20
    for layer in inferred.layers:
        shipped = GENERIC_DETECTOR.layer(layer.volume_id, layer.layer_id)
        assert layer.kind == shipped.kind, layer.key
        # Barrel modules are tilted and overlap, so hits spread a few mm around the radius.
        assert abs(layer.position - shipped.position) < 6.0, layer.key
    assert inferred.pixel_volumes == (7, 8, 9)


def test_unknown_layers_are_named() -> None:
    with pytest.raises(InputError, match=r"2 \(volume_id, layer_id\) pairs not in geometry 'acts-generic': \(3, 2\), \(8, 3\)"):
        GENERIC_DETECTOR.check_hits(np.array([8, 3, 8]), np.array([2, 2, 3]), source="f.root")


def test_dict_round_trip_and_fingerprint() -> None:
    doc = GENERIC_DETECTOR.to_dict()
    again = Geometry.from_dict(doc)
    assert again == GENERIC_DETECTOR
    assert again.fingerprint() == GENERIC_DETECTOR.fingerprint()
    fewer = Geometry("x", GENERIC_DETECTOR.layers[1:], GENERIC_DETECTOR.pixel_volumes)
    assert fewer.fingerprint() != GENERIC_DETECTOR.fingerprint()


def test_layer_index_marks_unknown() -> None:
    idx = GENERIC_DETECTOR.layer_index(np.array([8, 8, 99]), np.array([2, 8, 2]))
    assert GENERIC_DETECTOR.layers[idx[0]].key == (8, 2)
    assert GENERIC_DETECTOR.layers[idx[1]].position == pytest.approx(172.0)
    assert idx[2] == -1
