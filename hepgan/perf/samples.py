"""Perturbed event samples for benchmarks and tests: events with added noise hits, the
out-of-distribution input the triage reliability flag must catch."""

from __future__ import annotations

import os
from pathlib import Path

import awkward as ak
import numpy as np

from hepgan.io.events import HITS, PARTICLES, RootEventWriter, read_events
from hepgan.io.schema import CLASSIC_TRACKS
from hepgan.reco.geometry import GENERIC_DETECTOR, Geometry

__all__ = ["add_noise_hits", "noise_hit_columns"]


def noise_hit_columns(
    volume_id: np.ndarray, layer_id: np.ndarray, fraction: float, rng: np.random.Generator, geometry: Geometry = GENERIC_DETECTOR
) -> dict[str, np.ndarray]:
    """Noise hits of one event: ``round(fraction * len(volume_id))`` hits, each on a layer drawn
    with the event's own share of hits per layer (so every layer gets ``fraction`` more hits;
    pixel and strip layers alike), uniform in phi and in z (barrel) or r (endcap) over the
    layer's extent, ``hit_particle_id`` 0, truth position = measured position."""
    n = int(round(fraction * len(volume_id)))
    index = geometry.layer_index(np.asarray(volume_id), np.asarray(layer_id))
    index = index[index >= 0]
    layers = geometry.layers
    which = index[rng.integers(0, len(index), n)] if len(index) else np.zeros(0, np.int64)
    r_min = np.array([layers[i].r_min for i in which])
    r_max = np.array([layers[i].r_max for i in which])
    z_min = np.array([layers[i].z_min for i in which])
    z_max = np.array([layers[i].z_max for i in which])
    phi = rng.uniform(-np.pi, np.pi, n)
    # barrel: a radius within the layer's (thin) radial extent, z uniform over its length;
    # endcap: r uniform over the disk (uniform in r, as asked, not in area), z within its thickness
    r = rng.uniform(r_min, r_max)
    z = rng.uniform(z_min, z_max)
    x, y = r * np.cos(phi), r * np.sin(phi)
    return {
        "hit_x": x, "hit_y": y, "hit_z": z,
        "hit_volume_id": np.array([layers[i].volume_id for i in which], np.int64),
        "hit_layer_id": np.array([layers[i].layer_id for i in which], np.int64),
        "hit_module_id": np.zeros(n, np.int64), "hit_particle_id": np.zeros(n, np.int64),
        "hit_tx": x, "hit_ty": y, "hit_tz": z,
    }  # fmt: skip


def add_noise_hits(src: str | os.PathLike, dst: str | os.PathLike, fraction: float, *, seed: int) -> Path:
    """Copy `src` (hits, particles, tracks) to `dst` with noise hits appended to every event
    (:func:`noise_hit_columns`); appended last, so ACTS's ``track_hit_index`` stays valid."""
    dst = Path(dst)
    data = read_events(src, trees=("hits", "particles", "tracks"), truth=True)
    hits = data["hits"]
    rng = np.random.default_rng(seed)
    names = [b.name for b in HITS.branches[1:]]
    cols: dict[str, list[np.ndarray]] = {k: [] for k in names}
    for i in range(len(hits)):
        ev = {k: ak.to_numpy(hits[k][i]) for k in names}
        noise = noise_hit_columns(ev["hit_volume_id"], ev["hit_layer_id"], fraction, rng)
        for k in names:
            cols[k].append(np.concatenate([ev[k], noise[k].astype(ev[k].dtype)]))
    out_hits: dict[str, object] = {k: ak.Array(v) for k, v in cols.items()}
    out_hits["event_id"] = ak.to_numpy(hits["event_id"])
    with RootEventWriter(dst, [HITS, PARTICLES, CLASSIC_TRACKS]) as w:
        w.write_chunk("hits", out_hits)
        w.write_chunk("particles", {k: data["particles"][k] for k in data["particles"].fields})
        w.write_chunk("tracks", {k: data["tracks"][k] for k in data["tracks"].fields})
    return dst
