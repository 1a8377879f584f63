"""``hepgan simulate``: run the ACTS chain in-process and write events.root.

The chain (:mod:`hepgan.acts.chain`) runs on one thread; a Python algorithm at its end reads
the whiteboard of each event, converts it to numpy arrays in hepgan's file format (docs/file-format.md) and
buffers at most ``chunk_events`` events before handing them to
:class:`hepgan.io.events.RootEventWriter`, so memory stays flat however many events are asked for.

Conventions of the written file (beyond docs/file-format.md):

* One hit per ACTS measurement; hit index = measurement index in the event, so
  ``track_hit_index`` values are measurement indices. ``hit_x/y/z`` is the measured local
  position transformed to global on the measurement's surface (the generic detector's modules
  are planes; all its measurements are 2D with the smearing config used). For a 1D
  measurement the unmeasured local coordinate would be set to 0 (module centre line).
* ``particle_id`` packs the ACTS barcode into a positive int64, see :func:`pack_barcode`.
  ``hit_particle_id`` is the packed barcode of the sim hit that made the measurement.
* Particles are all particles Fatras simulated (primaries and interaction secondaries),
  with their momentum and vertex at production. ``particle_primary``: generator-level
  (b-hadron decay products included) vs Fatras interaction product.
  ``particle_vertex_primary`` / ``particle_vertex_secondary`` are the barcode's vertex ids:
  the collision (1 = the hard scatter; for the gun, 1 = its first vertex) and the displaced
  generator decay vertex inside it (0 = prompt); ``particle_hard_scatter`` = (vertex_primary
  == 1). Fatras products inherit their parent's vertex ids.
* Collisions (``process`` ttbar / minbias, :mod:`hepgan.acts.collisions`): only particles that
  pass ACTS's generator-level selection (r < 24 mm, |z| < 1 m, |eta| < 4, pT > 150 MeV) are
  simulated, with Fatras's threshold at 0.15 GeV; the gun keeps the chain unchanged.
* ``track_hit_index`` lists, per track from the innermost to the outermost state, the
  measurements the track holds (outliers and holes excluded), so ``track_nhits`` equals
  ACTS's ``nMeasurements``. Parameters are ACTS's perigee at the origin (the beam line).
* ``acts_timing`` differs between runs (wall time); every other tree is identical for the
  same configuration and seed, however many workers made the file.

Workers (``workers=N`` / ``scheduler=ADDRESS``, :mod:`hepgan.distributed`): the events are cut
into contiguous ranges, each simulated by a chain of its own on a Dask worker, and written here
in event order. What an event is does not depend on the cut:

* ACTS's random numbers (gun, vertices, pile-up counts, Fatras, digitisation) derive from (seed,
  event number), and a range's chain numbers its events as a run from event 0 would
  (:func:`hepgan.acts.chain.build_chain`'s ``skip``).
* Pythia's collisions come in stream blocks of :data:`BLOCK_EVENTS` events. Block 0 is what a
  single run has always made (Pythia streams and ACTS seed from the master seed, so the files
  made before workers existed stay the same up to that many events); block k > 0 is simulated
  as events 0, 1, ... of the master seed :func:`block_seed` (seed, k), its event ids shifted by
  k x :data:`BLOCK_EVENTS`: Pythia generators must run their events in order, and ACTS's HepMC3
  reader reads its files from the first event. A range inside a block regenerates the block's
  collisions before it, which the reader skips; ranges never cross a block boundary, and with
  Poisson pile-up (which the reader cannot skip, :mod:`hepgan.acts.collisions`) a range is a
  whole block. A run in this process follows the same blocks.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import awkward as ak
import numpy as np
from tqdm import tqdm

from hepgan.acts.config import ChainConfig
from hepgan.errors import InputError
from hepgan.io.schema import PARTICLE_ID_FIELDS, pack_particle_id

if TYPE_CHECKING:
    from hepgan.acts.convert import SurfaceFrames

logger = logging.getLogger(__name__)

__all__ = [
    "BLOCK_EVENTS",
    "RangeResult",
    "SimulationConfig",
    "block_seed",
    "event_ranges",
    "pack_barcode",
    "simulate",
    "simulate_range",
]

#: Events per Pythia stream block (module doc). Part of what defines collision events: a change
#: changes every collision file of more events than the old or new value.
BLOCK_EVENTS = 100


@dataclass(frozen=True)
class SimulationConfig(ChainConfig):
    """Configuration of one ``hepgan simulate`` run: the chain's physics options
    (:class:`hepgan.acts.config.ChainConfig`, documented there) plus how the run is done.

    Attributes:
        events: number of events.
        chunk_events: events buffered in memory before they are written.
        threads: ACTS threads; must be 1 (per-algorithm timing and event order need it).
    """

    events: int = 10
    chunk_events: int = 50
    threads: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("events", "chunk_events"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                msg = f"simulation config: {name} must be an integer >= 1, got {value!r}"
                raise InputError(msg)
        if self.threads != 1:
            msg = (
                f"simulation config: threads must be 1 (got {self.threads}): the per-algorithm "
                "ACTS timing and in-order writing need events to run one after another"
            )
            raise InputError(msg)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_toml(cls, path: str | Path, **overrides: Any) -> SimulationConfig:
        """Read top-level keys of a TOML file; ``overrides`` (not None) win over the file.

        Raises:
            InputError: unreadable file or an unknown key (the message names the key and
                lists the valid ones).
        """
        from hepgan.io.config import load_config

        return load_config(cls, path, what="simulation config", overrides=overrides)

    def chain_config(self) -> ChainConfig:
        """The physics part alone, as a :class:`ChainConfig`."""
        return ChainConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(ChainConfig)})


# ---------------------------------------------------------------------------------------
# Barcode packing
# ---------------------------------------------------------------------------------------

def pack_barcode(vertex_primary: int, vertex_secondary: int, particle: int, generation: int, sub_particle: int) -> int:
    """Pack an ACTS barcode into an int64 particle id, as `hepgan.io.schema.pack_particle_id`
    (vertexPrimary 11 | vertexSecondary 12 | particle 16 | generation 8 | subParticle 16 bits);
    vertexPrimary >= 1 for every generated particle, so the id is never 0 (0 = noise).

    Raises:
        ValueError: a field does not fit its width.
    """
    return int(pack_particle_id(vertex_primary, vertex_secondary, particle, generation, sub_particle))


def _pack_all(barcodes) -> np.ndarray:
    """Packed ids of many barcodes in one vectorised call (a call per barcode cost 0.1 ms,
    13 s of a 200 x 50 event's 120k sim hits)."""
    fields = np.array(
        [(b.vertexPrimary, b.vertexSecondary, b.particle, b.generation, b.subParticle) for b in barcodes], np.int64
    ).reshape(-1, 5)
    return pack_particle_id(*fields.T)


_PRIMARY_SHIFT = sum(bits for _, bits in PARTICLE_ID_FIELDS[1:])
_SECONDARY_SHIFT = sum(bits for _, bits in PARTICLE_ID_FIELDS[2:])
_SECONDARY_MASK = (1 << PARTICLE_ID_FIELDS[1][1]) - 1


def _is_primary(barcode) -> bool:
    """Generator-level (generation 0, not a Fatras interaction product). Decay products of a
    displaced generator vertex (b hadrons) are primary: the generator made them; their
    vertexSecondary tells them apart (``particle_vertex_secondary``)."""
    return barcode.generation == 0 and barcode.subParticle == 0


# ---------------------------------------------------------------------------------------
# Whiteboard -> numpy
# ---------------------------------------------------------------------------------------


def _convert_hits(data: dict, frames: SurfaceFrames) -> dict[str, np.ndarray]:
    """One hit per measurement: measured global position, ids and truth."""
    measurements = data["measurements"]
    n = len(measurements)
    gid_values = np.empty(n, np.int64)
    ids = np.empty((n, 3), np.int32)
    local = np.zeros((n, 2), np.float64)
    for i, m in enumerate(measurements):
        gid = m.geometryId
        gid_values[i] = gid.value
        ids[i] = (gid.volume, gid.layer, gid.sensitive)
        params = np.asarray(m.fullParameters)
        for axis in m.subspaceIndices:
            if axis < 2:  # bound loc0/loc1; unmeasured local coordinate stays 0
                local[i, axis] = params[axis]
    unique, inverse = np.unique(gid_values, return_inverse=True)
    table = np.stack([frames.frame(int(g)) for g in unique]) if n else np.zeros((0, 3, 3))
    f = table[inverse]
    xyz = f[:, 0] + local[:, :1] * f[:, 1] + local[:, 1:2] * f[:, 2]

    # np.asarray on ACTS vectors uses the buffer protocol: ~30x faster than list(v)
    simhits = list(data["simhits"])
    sim_pos = np.array([np.asarray(h.fourPosition)[:3] for h in simhits], np.float64).reshape(-1, 3)
    sim_pid = _pack_all([h.particleId for h in simhits])
    meas_to_sim = data["measurement_simhits_map"]
    first_sim = np.empty(n, np.int64)
    for i in range(n):
        # smearing digitisation: exactly one sim hit per measurement
        first_sim[i] = meas_to_sim.valuesFor(i)[0]
    truth = sim_pos[first_sim] if n else np.zeros((0, 3))
    return {
        "hit_x": xyz[:, 0].astype(np.float32),
        "hit_y": xyz[:, 1].astype(np.float32),
        "hit_z": xyz[:, 2].astype(np.float32),
        "hit_volume_id": ids[:, 0],
        "hit_layer_id": ids[:, 1],
        "hit_module_id": ids[:, 2],
        "hit_particle_id": sim_pid[first_sim] if n else np.zeros(0, np.int64),
        "hit_tx": truth[:, 0].astype(np.float32),
        "hit_ty": truth[:, 1].astype(np.float32),
        "hit_tz": truth[:, 2].astype(np.float32),
    }


def _convert_particles(data: dict, hit_particle_id: np.ndarray) -> dict[str, np.ndarray]:
    """All simulated particles at production; nhits = their measurement count."""
    particles = list(data["particles"])
    n = len(particles)
    pid = _pack_all([p.particleId for p in particles])
    vertex_primary = pid >> _PRIMARY_SHIFT
    mom = np.array([np.asarray(p.momentum) for p in particles], np.float64).reshape(-1, 3)
    pos = np.array([np.asarray(p.fourPosition)[:3] for p in particles], np.float64).reshape(-1, 3)
    hit_ids, hit_counts = np.unique(hit_particle_id, return_counts=True)
    where = np.searchsorted(hit_ids, pid)
    where = np.clip(where, 0, max(len(hit_ids) - 1, 0))
    nhits = np.where((len(hit_ids) > 0) & (hit_ids[where] == pid), hit_counts[where], 0) if n else []
    return {
        "particle_id": pid,
        "particle_q": np.array([round(p.charge) for p in particles], np.int32),
        "particle_px": mom[:, 0].astype(np.float32),
        "particle_py": mom[:, 1].astype(np.float32),
        "particle_pz": mom[:, 2].astype(np.float32),
        "particle_vx": pos[:, 0].astype(np.float32),
        "particle_vy": pos[:, 1].astype(np.float32),
        "particle_vz": pos[:, 2].astype(np.float32),
        "particle_pdg": np.array([int(p.pdg) for p in particles], np.int32),
        "particle_nhits": np.asarray(nhits, np.int32),
        "particle_primary": np.array([_is_primary(p.particleId) for p in particles], bool),
        # barcode fields (schema: vertexPrimary 1 = the hard scatter, read first)
        "particle_hard_scatter": vertex_primary == 1,
        "particle_vertex_primary": vertex_primary.astype(np.int32),
        "particle_vertex_secondary": ((pid >> _SECONDARY_SHIFT) & _SECONDARY_MASK).astype(np.int32),
    }


# ---------------------------------------------------------------------------------------
# Whiteboard reader algorithm and chunked writing
# ---------------------------------------------------------------------------------------


_TREE_PREFIX = {"hits": "hit_", "particles": "particle_", "tracks": "track_"}


class _EventBuffer:
    """Up to ``chunk_events`` converted events, flushed to the writer as one chunk each."""

    def __init__(self, writer, chunk_events: int) -> None:
        self._writer = writer
        self._chunk = chunk_events
        self._events: list[dict[str, dict[str, Any]]] = []

    def add(self, event: dict[str, dict[str, Any]]) -> None:
        self._events.append(event)
        if len(self._events) >= self._chunk:
            self.flush()

    def flush(self) -> None:
        if not self._events:
            return
        for tree in ("hits", "particles", "tracks", "acts_timing"):
            rows = [e[tree] for e in self._events]
            columns: dict[str, Any] = {}
            for name in rows[0]:
                values = [r[name] for r in rows]
                if tree == "acts_timing" or name == "event_id":
                    columns[name] = np.asarray(values)
                else:
                    counts = np.array([len(v) for v in values], np.int64)
                    columns[name] = ak.unflatten(np.concatenate(values), counts)
            self._writer.write_chunk(tree, columns)
        logger.debug("wrote %d events", len(self._events))
        self._events = []


def _make_sink(buffer: _EventBuffer, stats: dict[str, list], on_event: Callable[[int], None] | None, event_offset: int):
    """Build the Python algorithm that converts each event at the end of the chain."""
    import acts
    import acts.examples as ae

    from hepgan.acts import chain as ac
    from hepgan.acts.convert import SurfaceFrames, convert_tracks

    class WhiteboardToNumpy(ae.IAlgorithm):
        """Reads the event's ACTS objects from the whiteboard and buffers numpy arrays."""

        _inputs = {
            "measurements": (ae.MeasurementContainer, ac.KEY_MEASUREMENTS),
            "measurement_simhits_map": (ae.MeasurementSimHitsMap, ac.KEY_MEAS_SIMHITS),
            "measurement_particles_map": (ae.MeasurementParticlesMap, ac.KEY_MEAS_PARTICLES),
            "simhits": (ae.SimHitContainer, ac.KEY_SIMHITS),
            "particles": (ae.SimParticleContainer, ac.KEY_PARTICLES),
            "tracks": (ae.ConstTrackContainer, ac.KEY_TRACKS),
        }

        def __init__(self, chain: ac.ActsChain) -> None:
            ae.IAlgorithm.__init__(self, "WhiteboardToNumpy", acts.logging.WARNING)
            self._chain = chain
            self._handles = {}
            for name, (kind, key) in self._inputs.items():
                handle = ae.ReadDataHandle(self, kind, name)
                handle.initialize(key)
                self._handles[name] = handle
            self._frames = None

        def execute(self, context: ae.AlgorithmContext) -> ae.ProcessCode:
            t0 = time.perf_counter()
            if self._frames is None:
                self._frames = SurfaceFrames(self._chain.tracking_geometry, context.recoGeoContext)
            data = {name: h(context.eventStore) for name, h in self._handles.items()}
            event_id = event_offset + int(context.eventNumber)
            hits = _convert_hits(data, self._frames)
            particles = _convert_particles(data, hits["hit_particle_id"])
            tracks = convert_tracks(data["tracks"])
            ms = self._chain.clock.take()
            timing = {f"acts_{s}_ms": ms.get(s, 0.0) for s in ac.STAGES}
            timing["acts_total_reco_ms"] = (
                timing["acts_seeding_ms"] + timing["acts_ckf_ms"] + timing["acts_ambiguity_ms"]
            )
            buffer.add(
                {
                    "hits": {"event_id": event_id, **hits},
                    "particles": {"event_id": event_id, **particles},
                    "tracks": {"event_id": event_id, **tracks},
                    "acts_timing": {"event_id": event_id, **timing},
                }
            )
            stats["hits"].append(len(hits["hit_x"]))
            stats["particles"].append(len(particles["particle_id"]))
            stats["tracks"].append(len(tracks["track_nhits"]))
            stats["timing"].append(timing)
            stats["convert_ms"].append((time.perf_counter() - t0) * 1e3)
            if on_event is not None:
                on_event(1)
            return ae.ProcessCode.SUCCESS

    return WhiteboardToNumpy


def block_seed(seed: int, block: int) -> int:
    """Master seed of collision stream block ``block`` (module doc): ``seed`` itself for block 0,
    a SeedSequence hash of (seed, block) below 2^63 otherwise."""
    if block == 0:
        return seed
    words = np.random.SeedSequence([seed, block, *b"hepgan block"]).generate_state(2, np.uint32)
    return (int(words[0]) << 31) ^ int(words[1])


def event_ranges(config: SimulationConfig, *, pieces: int = 1, max_events: int | None = None) -> list[tuple[int, int]]:
    """Contiguous event ranges ``[start, stop)`` covering the run, in order, for one chain each.

    At least ``pieces`` ranges (fewer only when there are fewer events), none longer than
    ``max_events`` (None: no limit), and for collisions none across a stream block boundary;
    with Poisson pile-up, one range per block whatever ``pieces`` and ``max_events`` (module
    doc). The cut decides only how the work is shared, never what an event is.
    """
    n = config.events
    parts = min(n, max(pieces, math.ceil(n / max_events) if max_events else 1))
    cuts = {round(i * n / parts) for i in range(parts + 1)}
    if config.collisions and config.pileup_poisson and config.pileup:
        cuts = {0, n}
    if config.collisions:
        cuts |= set(range(BLOCK_EVENTS, n, BLOCK_EVENTS))
    edges = sorted(cuts)
    return list(zip(edges[:-1], edges[1:], strict=True))


@dataclass
class RangeResult:
    """What :func:`simulate_range` made off this process: the written chunks in order (tree,
    columns) and the per-event statistics."""

    chunks: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    stats: dict[str, list] = field(default_factory=lambda: {k: [] for k in _STATS})
    generation_s: float = 0.0

    def write_chunk(self, tree: str, columns: dict[str, Any]) -> None:
        """Keep a chunk (the writer interface of :class:`_EventBuffer`)."""
        self.chunks.append((tree, columns))


_STATS = ("hits", "particles", "tracks", "timing", "convert_ms")


def _run_range(config: SimulationConfig, start: int, stop: int, writer, stats: dict[str, list],
               on_event: Callable[[int], None] | None, *, progress: bool = False) -> float:
    """Simulate events ``start`` to ``stop - 1`` into ``writer`` (chunks of ``chunk_events``);
    returns Pythia's seconds (module doc: how the range's chain is seeded)."""
    from hepgan.acts import chain as ac

    chain_config = config.chain_config()
    skip, offset = start, 0
    if config.collisions:
        block = start // BLOCK_EVENTS
        if stop > (block + 1) * BLOCK_EVENTS:
            msg = f"event range {start}-{stop} crosses a stream block boundary"
            raise ValueError(msg)
        offset = block * BLOCK_EVENTS
        skip = start - offset
        chain_config = dataclasses.replace(chain_config, seed=block_seed(config.seed, block))
    buffer = _EventBuffer(writer, config.chunk_events)
    sink_class = _make_sink(buffer, stats, on_event, offset)
    chain = ac.build_chain(chain_config, stop - start, sink_factory=sink_class, progress=progress, skip=skip)
    generation_s = chain.generation_s
    try:
        chain.run()  # the chain (and its detector) stays referenced until here
    finally:
        chain.close()
    buffer.flush()
    del chain
    return generation_s


def simulate_range(config: SimulationConfig, start: int, stop: int,
                   report: Callable[[int], None] | None = None) -> RangeResult:
    """Simulate events ``start`` to ``stop - 1`` of ``config`` and return them (a worker's task).

    ``report`` is called with 1 after each event (progress).
    """
    result = RangeResult()
    result.generation_s = _run_range(config, start, stop, result, result.stats, report)
    if len(result.stats["hits"]) != stop - start:
        msg = f"ACTS processed {len(result.stats['hits'])} of events {start}-{stop - 1}"
        raise RuntimeError(msg)
    return result


def simulate(output: Path, config: SimulationConfig, *, progress: bool = True, workers: int | None = None,
             scheduler: str | None = None) -> dict:
    """Simulate and reconstruct ``config.events`` events with ACTS and write them to ``output``.

    Args:
        output: the ROOT file to write (hits, particles, tracks, acts_timing trees); it only
            appears under this name once complete.
        config: what to simulate.
        progress: show a tqdm progress bar on stderr.
        workers: run on a local Dask cluster of this many processes (:mod:`hepgan.distributed`).
        scheduler: run on the Dask cluster of the scheduler at this address. Neither: in this
            process. The events are the same either way (module doc).

    Returns:
        Summary: ``events``, ``mean_hits``, ``mean_particles`` (all simulated particles,
        secondaries included), ``mean_tracks``, ``acts_ms_per_event`` ({stage: mean ms}), ``convert_ms_per_event``
        (our whiteboard conversion), ``wall_s``, ``output``, ``executor`` and, for collisions,
        ``pythia_ms_per_event`` (generating them, before ACTS runs; with workers, a range that
        starts inside a stream block generates the block's collisions before it too).

    Raises:
        InputError: bad ``workers`` / ``scheduler`` (both, or < 1), an unreachable scheduler,
            or a setting Pythia refuses; nothing is written then.
    """
    from hepgan.distributed import SerialExecutor, make_executor
    from hepgan.io.events import ACTS_TIMING, HITS, PARTICLES, RootEventWriter
    from hepgan.io.schema import CLASSIC_TRACKS

    output = Path(output)
    executor = make_executor(workers=workers, scheduler=scheduler)
    serial = isinstance(executor, SerialExecutor)
    stats: dict[str, list] = {k: [] for k in _STATS}
    if config.collisions:
        logger.info("simulating %d %s events at pile-up %d%s (seed %d) -> %s", config.events, config.process,
                    config.pileup, " (Poisson mean)" if config.pileup_poisson else "", config.seed, output)
    else:
        logger.info("simulating %d events of %d x %d pions (seed %d) -> %s",
                    config.events, config.vertices, config.particles, config.seed, output)
    t0 = time.perf_counter()
    generation_s = 0.0
    with executor:  # a cluster that cannot start or be reached fails here, before any output
        if serial:
            ranges = event_ranges(config)
        else:
            ranges = event_ranges(config, pieces=executor.worker_count(), max_events=config.chunk_events)
            logger.info("%d event ranges on %s", len(ranges), executor.describe())
        bar = tqdm(total=config.events, unit="event", desc="ACTS", disable=not progress)
        lock = threading.Lock()

        def advance(n: int) -> None:  # workers' reports arrive on Dask's thread
            with lock:
                bar.update(min(n, bar.total - bar.n))  # a rerun task (lost worker) reports again

        try:
            facts = {"b_field_t": float(config.b_field), "made_by": "hepgan simulate", "config": dataclasses.asdict(config)}
            with RootEventWriter(output, [HITS, PARTICLES, CLASSIC_TRACKS, ACTS_TIMING], metadata=facts) as writer:
                if serial:
                    for start, stop in ranges:
                        generation_s += _run_range(config, start, stop, writer, stats, advance, progress=progress)
                else:
                    with executor.progress(advance) as report:
                        tasks = [(config, start, stop, report) for start, stop in ranges]
                        for result in executor.map_ordered(simulate_range, tasks):
                            for tree, columns in result.chunks:
                                writer.write_chunk(tree, columns)
                            for key in _STATS:
                                stats[key] += result.stats[key]
                            generation_s += result.generation_s
                    advance(bar.total)  # reports still in flight when the last result came
                if len(stats["hits"]) != config.events:  # before the file gets its name
                    msg = f"ACTS processed {len(stats['hits'])} of {config.events} events"
                    raise RuntimeError(msg)
        finally:
            bar.close()
    summary = {
        "output": str(output),
        "events": config.events,
        "mean_hits": float(np.mean(stats["hits"])),
        "mean_particles": float(np.mean(stats["particles"])),
        "mean_tracks": float(np.mean(stats["tracks"])),
        "acts_ms_per_event": {
            key.removeprefix("acts_").removesuffix("_ms"): float(np.mean([t[key] for t in stats["timing"]]))
            for key in stats["timing"][0]
        },
        "convert_ms_per_event": float(np.mean(stats["convert_ms"])),
        "wall_s": time.perf_counter() - t0,
        "executor": executor.describe(),
    }
    if config.collisions:
        summary["pythia_ms_per_event"] = generation_s * 1e3 / config.events
    logger.debug("simulation summary: %s", summary)  # the command line prints it for people
    return summary
