"""``hepgan dataset``: training shards of (condition features, target track) pairs.

For every event: our seeder (:func:`hepgan.reco.seeding.find_seeds`) on the hits -> seeds ->
condition features (:func:`hepgan.reco.features.build_features`); every seed is matched to the
ACTS track (``tracks`` tree) that holds all three of its hits (several: the one with the most
hits, ties to the first); a matched seed is a positive (label 1, target = that track's
perigee and which of its candidate hits belong to the track), an unmatched one a negative
(label 0, zero targets). The parameters and hits the surrogate learns come from ACTS's
reconstruction, which is what it imitates. Where the input holds truth (simulated files),
each seed also gets ``real``: 1 when its three hits belong to one particle, 0 when not (a fake
seed), -1 where the file has no truth. That is what the track score learns by default
(``hepgan.ml.train``): whether a seed is a real track, not whether ACTS happened to return it
(about half of ACTS's unmatched seeds are real particles it lost).

Output folder layout::

    out_dir/shard-00000.npz   features (n, F) float32, candidates (n, L, K) int32,
                              target (n, 5) float32 = d0, z0, phi, theta, qop (mm, mm, rad,
                              rad, e/GeV), target_hits (n, L, K) int8, label (n,) int8,
                              real (n,) int8 (1 real, 0 fake, -1 no truth),
                              event_id (n,) int64, seeds (n, 3) int32 hit indices,
                              track_index (n,) int32 index of the matched track in its
                              event's tracks tree (-1 for negatives)
    out_dir/stats.json        feature layout, per-feature mean/std, geometry fingerprint,
                              config, counts, the list of shards and their inputs

Shards hold whole events, at most ``DatasetConfig.max_seeds_per_shard`` seeds (a single event
with more makes a shard of its own). A shard is written under a temporary name and renamed,
then recorded in ``out_dir/progress.json`` with its statistics; a re-run with the same inputs
and config skips the events of recorded shards and only adds the rest, and the final statistics
combine the recorded ones (Chan et al.'s parallel mean/variance update), so nothing holds more
than one shard of seeds in memory.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import awkward as ak
import numba
import numpy as np
from tqdm import tqdm

from hepgan.io.atomic import atomic_output, write_text_atomically
from hepgan.io.config import load_config
from hepgan.io.events import has_truth, iterate_chunks
from hepgan.reco.features import FeatureConfig, build_features, feature_names, layer_table
from hepgan.reco.geometry import GENERIC_DETECTOR, Geometry
from hepgan.reco.seeding import SeedingConfig, find_seeds

__all__ = [
    "DatasetConfig",
    "RunningStats",
    "build_dataset",
    "candidate_labels",
    "match_seeds",
    "real_seeds",
]

log = logging.getLogger(__name__)

_TARGET_BRANCHES = ("track_d0", "track_z0", "track_phi", "track_theta", "track_qop")
_FORMAT_VERSION = 2  # 2: the truth label `real`


@dataclass(frozen=True)
class DatasetConfig:
    """How the training set is built.

    Attributes:
        features: shape and road of the condition features (L = features.layers,
            K = features.candidates).
        seeding: the seeder's cuts (the same config must serve inference).
        max_seeds_per_shard: a shard is closed before it would exceed this many seeds.
        step_events: events read at once.
    """

    features: FeatureConfig = field(default_factory=FeatureConfig)
    seeding: SeedingConfig = field(default_factory=SeedingConfig)
    max_seeds_per_shard: int = 200_000
    step_events: int = 50

    def __post_init__(self) -> None:
        if self.max_seeds_per_shard < 1 or self.step_events < 1:
            msg = f"max_seeds_per_shard and step_events must be >= 1, got {self.max_seeds_per_shard}, {self.step_events}"
            raise ValueError(msg)

    @classmethod
    def from_toml(cls, source: str | Path | Mapping, **overrides: object) -> DatasetConfig:
        """Read a TOML file (or its parsed mapping): top-level keys, and ``[features]`` and
        ``[seeding]`` tables of FeatureConfig and SeedingConfig keys; `overrides` (not None)
        win. Raises ``InputError`` naming the file and the key (:mod:`hepgan.io.config`)."""
        return load_config(cls, source, what="dataset config", overrides=overrides)

    def to_dict(self) -> dict:
        return {
            "features": self.features.to_dict(),
            "seeding": asdict(self.seeding),
            "max_seeds_per_shard": self.max_seeds_per_shard,
            "step_events": self.step_events,
        }


# --------------------------------------------------------------------------- matching
@numba.njit(cache=True)
def _hit_tracks(track_hits, track_start, n_hits):
    """CSR of hit -> tracks holding it: (start (n_hits + 1,), tracks)."""
    n_tracks = track_start.shape[0] - 1
    counts = np.zeros(n_hits + 1, dtype=np.int64)
    for t in range(n_tracks):
        for j in range(track_start[t], track_start[t + 1]):
            counts[track_hits[j] + 1] += 1
    for i in range(n_hits):
        counts[i + 1] += counts[i]
    fill = counts[:-1].copy()
    out = np.empty(counts[n_hits], dtype=np.int64)
    for t in range(n_tracks):
        for j in range(track_start[t], track_start[t + 1]):
            h = track_hits[j]
            out[fill[h]] = t
            fill[h] += 1
    return counts, out


@numba.njit(cache=True)
def _holds(start, tracks, hit, t):
    # an explicit loop: numba compiles it to a plain scan, any() of a generator it handles badly
    for j in range(start[hit], start[hit + 1]):  # noqa: SIM110
        if tracks[j] == t:
            return True
    return False


@numba.njit(cache=True)
def _match_kernel(seeds, start, tracks, nhits, out):
    for i in range(seeds.shape[0]):
        a = seeds[i, 0]
        best = -1
        for j in range(start[a], start[a + 1]):
            t = tracks[j]
            both = _holds(start, tracks, seeds[i, 1], t) and _holds(start, tracks, seeds[i, 2], t)
            if both and (best < 0 or nhits[t] > nhits[best]):
                best = t
        out[i] = best


@numba.njit(cache=True)
def _label_kernel(cand, matched, start, tracks, out):
    for i in range(cand.shape[0]):
        t = matched[i]
        if t < 0:
            continue
        for s in range(cand.shape[1]):
            for k in range(cand.shape[2]):
                h = cand[i, s, k]
                if h >= 0 and _holds(start, tracks, h, t):
                    out[i, s, k] = 1


def _csr(track_hits: np.ndarray, track_nhits: np.ndarray, n_hits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    track_hits = np.ascontiguousarray(track_hits, dtype=np.int64)
    track_start = np.zeros(len(track_nhits) + 1, dtype=np.int64)
    np.cumsum(track_nhits, out=track_start[1:])
    if track_start[-1] != len(track_hits):
        msg = f"track_nhits sums to {track_start[-1]} but there are {len(track_hits)} track hit indices"
        raise ValueError(msg)
    if len(track_hits) and (track_hits.min() < 0 or track_hits.max() >= n_hits):
        msg = f"track hit indices must lie in [0, {n_hits})"
        raise ValueError(msg)
    start, tracks = _hit_tracks(track_hits, track_start, n_hits)
    return start, tracks, track_start


def match_seeds(seeds: np.ndarray, track_hits: np.ndarray, track_nhits: np.ndarray, n_hits: int) -> np.ndarray:
    """Index of the track holding all three hits of each seed, -1 for none.

    seeds: (n_seeds, 3) hit indices; track_hits: flat hit indices of the tracks, concatenated
    (``track_hit_index``); track_nhits: (n_tracks,) counts; n_hits: hits in the event.
    Several candidates: the track with the most hits (ties: the first). (n_seeds,) int64.
    """
    start, tracks, _ = _csr(track_hits, track_nhits, n_hits)
    out = np.full(len(seeds), -1, dtype=np.int64)
    nhits = np.ascontiguousarray(track_nhits, dtype=np.int64)
    _match_kernel(np.ascontiguousarray(seeds, dtype=np.int64).reshape(-1, 3), start, tracks, nhits, out)
    return out


def real_seeds(seeds: np.ndarray, particle_id: np.ndarray) -> np.ndarray:
    """(n_seeds,) int8: 1 where the seed's three hits belong to one particle (id != 0: 0 marks
    noise hits), 0 for a fake seed."""
    p = np.asarray(particle_id)[np.asarray(seeds, dtype=np.int64).reshape(-1, 3)]
    return ((p[:, 0] == p[:, 1]) & (p[:, 1] == p[:, 2]) & (p[:, 0] != 0)).astype(np.int8)


def candidate_labels(
    candidates: np.ndarray, matched: np.ndarray, track_hits: np.ndarray, track_nhits: np.ndarray, n_hits: int
) -> np.ndarray:
    """(n_seeds, L, K) int8: 1 where the candidate hit belongs to the seed's matched track."""
    start, tracks, _ = _csr(track_hits, track_nhits, n_hits)
    out = np.zeros(candidates.shape, dtype=np.int8)
    _label_kernel(np.ascontiguousarray(candidates), np.ascontiguousarray(matched, dtype=np.int64), start, tracks, out)
    return out


# --------------------------------------------------------------------------- statistics
@dataclass
class RunningStats:
    """Per-column count, mean and sum of squared deviations (M2), combinable batch by batch
    (Chan, Golub & LeVeque), in float64 so millions of float32 rows lose no precision."""

    n: int
    mean: np.ndarray
    m2: np.ndarray

    @classmethod
    def empty(cls, width: int) -> RunningStats:
        return cls(0, np.zeros(width), np.zeros(width))

    @classmethod
    def of(cls, values: np.ndarray) -> RunningStats:
        values = np.asarray(values, dtype=np.float64)
        if len(values) == 0:
            return cls.empty(values.shape[1])
        mean = values.mean(axis=0)
        return cls(len(values), mean, ((values - mean) ** 2).sum(axis=0))

    def merge(self, other: RunningStats) -> RunningStats:
        n = self.n + other.n
        if n == 0:
            return RunningStats(0, self.mean.copy(), self.m2.copy())
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.n / n)
        m2 = self.m2 + other.m2 + delta**2 * (self.n * other.n / n)
        return RunningStats(n, mean, m2)

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.m2 / self.n) if self.n else np.zeros_like(self.m2)

    def to_dict(self) -> dict:
        return {"n": self.n, "mean": self.mean.tolist(), "m2": self.m2.tolist()}

    @classmethod
    def from_dict(cls, doc: dict) -> RunningStats:
        return cls(int(doc["n"]), np.asarray(doc["mean"], dtype=np.float64), np.asarray(doc["m2"], dtype=np.float64))


# --------------------------------------------------------------------------- building
def _event_arrays(hits: ak.Array, tracks: ak.Array, geometry: Geometry) -> dict[str, np.ndarray]:
    x = ak.to_numpy(hits["hit_x"])
    return {
        "x": x,
        "y": ak.to_numpy(hits["hit_y"]),
        "z": ak.to_numpy(hits["hit_z"]),
        "volume_id": ak.to_numpy(hits["hit_volume_id"]),
        "layer_id": ak.to_numpy(hits["hit_layer_id"]),
        "track_hits": ak.to_numpy(tracks["track_hit_index"]).astype(np.int64),
        "track_nhits": ak.to_numpy(tracks["track_nhits"]).astype(np.int64),
        # truth, when the file has it (simulation): the seeds' real/fake label
        "particle_id": ak.to_numpy(hits["hit_particle_id"]) if "hit_particle_id" in hits.fields else None,
        "track_params": np.stack([ak.to_numpy(tracks[b]) for b in _TARGET_BRANCHES], axis=1).astype(np.float32)
        if len(tracks["track_d0"])
        else np.zeros((0, 5), np.float32),
    }


def process_event(
    ev: dict[str, np.ndarray], *, config: DatasetConfig, geometry: Geometry, table=None
) -> dict[str, np.ndarray]:
    """Seeds, features and targets of one event given as numpy arrays (see ``_event_arrays``).

    Returns the per-seed arrays of a shard (without event_id).
    """
    fc = config.features
    layer = geometry.layer_index(ev["volume_id"], ev["layer_id"])
    seeds = find_seeds(
        ev["x"], ev["y"], ev["z"], ev["volume_id"], ev["layer_id"], geometry=geometry, config=config.seeding, layer=layer
    )
    feats, cand = build_features(
        ev["x"], ev["y"], ev["z"], layer, seeds, config=fc, table=table, geometry=geometry
    )
    n_hits = len(ev["x"])
    matched = match_seeds(seeds, ev["track_hits"], ev["track_nhits"], n_hits)
    target_hits = candidate_labels(cand, matched, ev["track_hits"], ev["track_nhits"], n_hits)
    target = np.zeros((len(seeds), 5), dtype=np.float32)
    pos = matched >= 0
    target[pos] = ev["track_params"][matched[pos]]
    return {
        "features": feats,
        "candidates": cand,
        "target": target,
        "target_hits": target_hits,
        "label": pos.astype(np.int8),
        "real": real_seeds(seeds, ev["particle_id"])
        if ev.get("particle_id") is not None
        else np.full(len(seeds), -1, dtype=np.int8),
        "seeds": seeds.astype(np.int32),
        "track_index": matched.astype(np.int32),
    }


_SHARD_KEYS = ("features", "candidates", "target", "target_hits", "label", "real", "event_id", "seeds", "track_index")


def _write_shard(path: Path, parts: list[dict[str, np.ndarray]]) -> dict:
    arrays = {k: np.concatenate([p[k] for p in parts]) for k in _SHARD_KEYS}
    # An open file, so that np.savez appends no ".npz" to the temporary's name.
    with atomic_output(path) as tmp, tmp.open("wb") as fh:
        np.savez(fh, **arrays)
    return arrays


def _load_json(path: Path) -> dict | None:
    if not path.exists():
        return None
    return json.loads(path.read_text())


def build_dataset(
    inputs: list[Path],
    out_dir: Path,
    *,
    config: DatasetConfig = DatasetConfig(),
    geometry: Geometry = GENERIC_DETECTOR,
    progress: bool = True,
) -> dict:
    """Build training shards from event files holding ``hits`` and ``tracks`` trees.

    Writes ``out_dir/shard-NNNNN.npz`` and ``out_dir/stats.json`` (module docstring); returns
    the stats.json document. Re-running with the same inputs and config resumes: events of
    shards already recorded in ``out_dir/progress.json`` are skipped. A different config or
    input list in an existing folder raises ``ValueError`` (mixing would corrupt the
    statistics).
    """
    inputs = [Path(p) for p in inputs]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fc = config.features
    table = layer_table(geometry, fc)
    identity = {
        "format_version": _FORMAT_VERSION,
        "inputs": [str(p.resolve()) for p in inputs],
        "config": config.to_dict(),
        "geometry": geometry.fingerprint(),
    }
    # as stored: JSON turns the config's tuples into lists, and the comparison below must agree
    identity = json.loads(json.dumps(identity))
    progress_path = out_dir / "progress.json"
    state = _load_json(progress_path)
    if state is None:
        state = {**identity, "shards": []}
    elif {k: state.get(k) for k in identity} != identity:
        msg = f"{out_dir}: holds a dataset of other inputs or config; use a new folder"
        raise ValueError(msg)
    # Events already in a shard: (input index, entry) pairs.
    done: set[tuple[int, int]] = set()
    for shard in state["shards"]:
        if not (out_dir / shard["file"]).exists():
            msg = f"{out_dir}: {shard['file']} is recorded in progress.json but missing; use a new folder"
            raise ValueError(msg)
        for file_index, start, stop in shard["events"]:
            done.update((file_index, e) for e in range(start, stop))

    t0 = time.perf_counter()
    pending: list[dict[str, np.ndarray]] = []
    pending_events: list[tuple[int, int]] = []
    pending_seeds = 0
    pending_hits: list[int] = []
    bar = tqdm(desc="dataset", unit="event", disable=not progress)

    def flush() -> None:
        nonlocal pending, pending_events, pending_seeds, pending_hits
        if not pending:
            return
        name = f"shard-{len(state['shards']):05d}.npz"
        arrays = _write_shard(out_dir / name, pending)
        stats = RunningStats.of(arrays["features"])
        # contiguous (file, first entry, stop) runs of the shard's events
        runs: list[list[int]] = []
        for fi, e in pending_events:
            if runs and runs[-1][0] == fi and runs[-1][2] == e:
                runs[-1][2] = e + 1
            else:
                runs.append([fi, e, e + 1])
        state["shards"].append(
            {
                "file": name,
                "events": runs,
                "seeds": int(len(arrays["label"])),
                "positives": int(arrays["label"].sum()),
                "truth_seeds": int((arrays["real"] >= 0).sum()),
                "real": int((arrays["real"] > 0).sum()),
                "stats": stats.to_dict(),
                # occupancy seen in training: the engine flags events outside it
                "hits": [min(pending_hits), max(pending_hits), sum(pending_hits)],
            }
        )
        write_text_atomically(progress_path, json.dumps(state, indent=1))
        pending, pending_events, pending_seeds, pending_hits = [], [], 0, []

    try:
        for file_index, path in enumerate(inputs):
            truth = has_truth(path)
            if not truth:
                log.warning("%s: no truth branches; its seeds get no real/fake label (real = -1)", path)
            for chunk in iterate_chunks(path, trees=("hits", "tracks"), truth=truth, step_events=config.step_events):
                ids = chunk.event_id
                for j in range(len(chunk)):
                    entry = chunk.entry_start + j
                    bar.update(1)
                    if (file_index, entry) in done:
                        continue
                    ev = _event_arrays(chunk["hits"][j], chunk["tracks"][j], geometry)
                    out = process_event(ev, config=config, geometry=geometry, table=table)
                    n = len(out["label"])
                    if pending and pending_seeds + n > config.max_seeds_per_shard:
                        flush()
                    out["event_id"] = np.full(n, ids[j], dtype=np.int64)
                    pending.append(out)
                    pending_events.append((file_index, entry))
                    pending_hits.append(len(ev["x"]))
                    pending_seeds += n
        flush()
    finally:
        bar.close()

    total = RunningStats.empty(fc.n_features)
    for shard in state["shards"]:
        total = total.merge(RunningStats.from_dict(shard["stats"]))
    n_seeds = sum(s["seeds"] for s in state["shards"])
    n_pos = sum(s["positives"] for s in state["shards"])
    n_truth = sum(s["truth_seeds"] for s in state["shards"])
    n_real = sum(s["real"] for s in state["shards"])
    n_events = sum(stop - start for s in state["shards"] for _, start, stop in s["events"])
    std = total.std
    doc = {
        **identity,
        "layout": {
            "features": {"shape": [fc.n_features], "dtype": "float32", "names": feature_names(fc)},
            "candidates": {"shape": [fc.layers, fc.candidates], "dtype": "int32"},
            "target": {"shape": [5], "dtype": "float32", "names": ["d0", "z0", "phi", "theta", "qop"]},
            "target_hits": {"shape": [fc.layers, fc.candidates], "dtype": "int8"},
            "label": {"shape": [], "dtype": "int8"},
            "real": {"shape": [], "dtype": "int8"},
        },
        "mean": total.mean.tolist(),
        # a constant column (e.g. an always-empty slot) would divide by zero: use 1
        "std": np.where(std > 0, std, 1.0).tolist(),
        "counts": {"events": n_events, "seeds": n_seeds, "positives": n_pos, "negatives": n_seeds - n_pos,
                   "truth_seeds": n_truth, "real": n_real, "fake": n_truth - n_real},
        "hits_per_event": {
            "min": min((s["hits"][0] for s in state["shards"]), default=0),
            "max": max((s["hits"][1] for s in state["shards"]), default=0),
            "mean": sum(s["hits"][2] for s in state["shards"]) / max(n_events, 1),
        },
        "shards": [s["file"] for s in state["shards"]],
        "seconds": time.perf_counter() - t0,
    }
    write_text_atomically(out_dir / "stats.json", json.dumps(doc, indent=1))
    return doc
