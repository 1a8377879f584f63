"""Timed passes of both reconstructions over one file's events, one pass per call, so that the
bench can interleave them (docs/benchmark-protocol.md).

Both sides report *marginal* milliseconds per event: the per-event stage times summed over the
events and divided by their number, after a warm-up outside the clock. One-off start-up
(building ACTS's detector and sequencer, loading the model, numba's kernel loading and
onnxruntime's arena) is measured apart as ``startup_s``.

What each side's ``total_reco`` / ``reco`` covers:

- ACTS (:data:`ACTS_COVERS`): space points from the measurements, triplet seeding, track
  parameter estimation (stage ``seeding``), the combinatorial Kalman filter (``ckf``) and the
  greedy ambiguity solver (``ambiguity``). Not in it: ``measurements`` (hepgan's rebuild of
  sim hits on their modules and ACTS's digitisation with the exact smearer, which stands in for
  the experiment's clustering) and file I/O.
- The surrogate (:data:`SURROGATE_COVERS`): seeding on global hit positions (it needs no
  space-point formation), features, the network, hit assignment and ambiguity resolution. Not
  in it: ``read`` and ``write`` (timed apart; ``end_to_end`` includes them).

The surrogate on N threads reconstructs N events at once (:mod:`hepgan.reco.parallel`, as
``hepgan reco --threads N``). Its ``reco`` is the wall time of the engine over the events /
events: the throughput, what a user waits for. Its stages are each event's stage times in its
own thread, summed over events / events (so, with N threads, up to N times ``reco``; their sum
is ``reco_stages``); with one thread ``reco`` and ``reco_stages`` differ by the loop only.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from hepgan.errors import InputError

__all__ = [
    "ACTS_CONFIGS",
    "ACTS_COVERS",
    "ACTS_STAGES",
    "STAGES",
    "SURROGATE_COVERS",
    "ActsTimer",
    "SurrogateTimer",
    "tracks_columns",
]

log = logging.getLogger(__name__)

#: Surrogate stages timed per event, in chain order (ms/event each).
STAGES = ("read", "seeding", "features", "network", "assignment", "ambiguity", "write")
_ENGINE_STAGES = STAGES[1:-1]
#: The ACTS rows of the bench: name -> max seeds per middle space point (1: ACTS's
#: generic-detector example, as ``hepgan simulate``; 5: its stronger configuration).
ACTS_CONFIGS = {"spm1": 1, "spm5": 5}
#: ACTS stages of :func:`hepgan.acts.classic.reconstruct_events`; ``total_reco`` sums the last three.
ACTS_STAGES = ("measurements", "seeding", "ckf", "ambiguity")
_ACTS_RECO = ACTS_STAGES[1:]

ACTS_COVERS = (
    "total_reco = seeding (space points from measurements, triplet seeding, parameter estimation) "
    "+ ckf + ambiguity (greedy solver); not measurements (sim hits rebuilt on their modules and "
    "ACTS digitisation, standing in for clustering) nor file I/O"
)
SURROGATE_COVERS = (
    "reco = seeding (on global hit positions: no space-point formation needed) + features + network "
    "+ assignment + ambiguity, wall time with the setting's threads (events in parallel); not read / write "
    "(end_to_end includes them)"
)

_HIT_COLUMNS = ("hit_x", "hit_y", "hit_z", "hit_volume_id", "hit_layer_id")


def _read_hits(path: Path) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Hits as reconstruction reads them (no truth): flat columns, offsets, event ids."""
    from hepgan.io.events import read_events

    hits = read_events(path, trees=("hits",), truth=False)["hits"]
    counts = ak.to_numpy(ak.num(hits["hit_x"], axis=1)).astype(np.int64)
    flat = {k: ak.to_numpy(ak.flatten(hits[k])) for k in (*_HIT_COLUMNS, "hit_module_id")}
    offsets = np.concatenate([[0], np.cumsum(counts)])
    return flat, offsets, ak.to_numpy(hits["event_id"]).astype(np.int64)


def tracks_columns(event_id: np.ndarray, per_event: list[dict[str, np.ndarray]]) -> dict[str, Any]:
    """Tracks of all events (one TRACKS-columns dict per event) as the TRACKS tree's jagged
    columns, ``event_id`` first."""
    from hepgan.io.schema import TRACKS

    cols: dict[str, Any] = {"event_id": event_id}
    for b in TRACKS.branches[1:]:
        if per_event and b.name not in per_event[0]:
            continue  # a branch one engine does not fill (e.g. the surrogate's spread for ACTS)
        counts = np.array([len(t[b.name]) for t in per_event], dtype=np.int64)
        flat = np.concatenate([t[b.name] for t in per_event]).astype(b.dtype) if per_event else np.zeros(0, b.dtype)
        cols[b.name] = ak.unflatten(flat, counts)
    return cols


class SurrogateTimer:
    """Passes read -> :class:`hepgan.reco.engine.Engine` -> write over all events of `path`.

    Construction loads the model and runs one warm-up event outside the clock (numba loads or
    compiles its kernels, onnxruntime sizes its arena); ``startup_s`` is that time. `threads`
    events are reconstructed at once (module docstring).
    """

    def __init__(self, model: Path, path: Path, out_path: Path, *, threads: int, providers: Any, seed: int) -> None:
        from hepgan.reco.engine import Engine

        t0 = time.perf_counter()
        self.engine = Engine(model, threads=threads, providers=providers, seed=seed)
        self.path, self.out_path = path, out_path
        flat, offsets, event_id = _read_hits(path)
        if len(event_id) == 0:
            msg = f"{path}: no events to benchmark"
            raise InputError(msg)
        lo, hi = offsets[0], offsets[1]
        self.engine.reconstruct_event(*(flat[k][lo:hi] for k in _HIT_COLUMNS), event_id=int(event_id[0]))
        self.startup_s = time.perf_counter() - t0

    def run(self) -> tuple[dict[str, float], list[float], dict[str, Any]]:
        """One timed pass: (ms/event per stage + reco, reco_stages, end_to_end, reco_cpu; engine
        ms of each event, in its thread; the tracks as TRACKS columns)."""
        from hepgan.io.events import TRACKS, RootEventWriter
        from hepgan.reco.parallel import reconstruct_events

        ms = dict.fromkeys(STAGES, 0.0)
        ev_reco = []
        t_start = time.perf_counter()
        flat, offsets, event_id = _read_hits(self.path)
        ms["read"] = (time.perf_counter() - t_start) * 1e3
        n_ev = len(event_id)
        hits = [tuple(flat[k][offsets[j] : offsets[j + 1]] for k in _HIT_COLUMNS) for j in range(n_ev)]
        tracks = []
        # Process CPU time (all threads) of the engine calls: on a shared machine wall time
        # includes waiting for a core, CPU time does not (for 1 thread it is the cost itself).
        cpu0, t_reco = time.process_time(), time.perf_counter()
        for trk, stage_ms in reconstruct_events(self.engine, hits, event_id, self.engine.threads):
            tracks.append(trk)
            for k in _ENGINE_STAGES:
                ms[k] += stage_ms[k]
            ev_reco.append(sum(stage_ms[k] for k in _ENGINE_STAGES))
        reco_wall = (time.perf_counter() - t_reco) * 1e3
        cpu_reco = (time.process_time() - cpu0) * 1e3
        t_write = time.perf_counter()
        cols = tracks_columns(event_id, tracks)
        with RootEventWriter(self.out_path, [TRACKS]) as w:
            w.write_chunk("tracks", cols)
        t_end = time.perf_counter()
        ms["write"] = (t_end - t_write) * 1e3
        out = {s: ms[s] / n_ev for s in STAGES}
        out["reco"] = reco_wall / n_ev
        out["reco_stages"] = sum(ms[s] for s in _ENGINE_STAGES) / n_ev
        out["end_to_end"] = (t_end - t_start) * 1e3 / n_ev
        out["reco_cpu"] = cpu_reco / n_ev
        return out, ev_reco, cols


class ActsTimer:
    """Passes of the classic ACTS chain (:func:`hepgan.acts.classic.reconstruct_events`, one
    thread) with ``maxSeedsPerSpM`` = `seeds_per_middle_sp` over the hits of `path`.

    Construction runs the first event once outside the clock (detector geometry, sequencer
    set-up, first allocations); ``startup_s`` is that time.
    """

    def __init__(self, path: Path, *, seeds_per_middle_sp: int, b_field: float) -> None:
        from hepgan.acts.classic import EventHits, reconstruct_events

        self._reconstruct = reconstruct_events
        self.seeds_per_middle_sp = seeds_per_middle_sp
        self.b_field = b_field
        self.source = str(path)
        flat, offsets, self.event_id = _read_hits(path)
        self.events = [
            EventHits(
                int(self.event_id[j]),
                *(flat[k][offsets[j] : offsets[j + 1]] for k in (*_HIT_COLUMNS, "hit_module_id")),
            )
            for j in range(len(self.event_id))
        ]
        t0 = time.perf_counter()
        self._call(self.events[:1])
        self.startup_s = time.perf_counter() - t0

    def _call(self, events: list) -> tuple[list[dict], dict[str, float]]:
        return self._reconstruct(
            events, b_field=self.b_field, source=self.source, seeds_per_middle_sp=self.seeds_per_middle_sp
        )

    def run(self) -> tuple[dict[str, float], dict[str, Any]]:
        """One timed pass: (ms/event per stage, total_reco, wall and CPU seconds of the call
        including its set-up; the tracks as TRACKS columns)."""
        t0, cpu0 = time.perf_counter(), time.process_time()
        tracks, ms = self._call(self.events)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        n_ev = len(self.events)
        out = {s: ms[s] / n_ev for s in ACTS_STAGES}
        out["total_reco"] = sum(ms[s] for s in _ACTS_RECO) / n_ev
        out["call_wall_s"] = wall
        out["call_cpu_s"] = cpu
        return out, tracks_columns(self.event_id, tracks)
