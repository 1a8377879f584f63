"""The classic ACTS reconstruction on hits read from a file (``hepgan reco --engine acts``).

hepgan files keep each hit's measured global position and its surface (volume, layer,
module), not ACTS measurement objects. They are rebuilt without changing them: every hit
becomes a sim hit on its surface (projected onto the module plane, which removes only the
float32 rounding of the file), and ACTS's own digitisation turns it into a measurement with
the ``Exact`` smearer, i.e. the local position unchanged and the covariance of the smearing
that ``hepgan simulate`` applies (:data:`hepgan.acts.chain.DIGI_SMEARING_MM`). Seeding, CKF
and greedy ambiguity resolution are then the algorithms and cuts of ``hepgan simulate``
(:mod:`hepgan.acts.chain`), so on a simulated file this reproduces the file's own ACTS tracks.

The measurement model is the generic detector's. A file from another detector is refused by
its surfaces: every hit must lie on a sensitive surface of the generic detector.
"""

from __future__ import annotations

import functools
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import acts
import acts.examples as ae
import numpy as np

from hepgan.acts import chain as ac
from hepgan.acts.convert import SurfaceFrames, convert_tracks
from hepgan.errors import InputError

__all__ = ["ACTS_STAGES", "EventHits", "reconstruct_events"]

log = logging.getLogger(__name__)
u = acts.UnitConstants

#: Stages timed per event: hits -> measurements (our conversion and ACTS digitisation),
#: then the three ACTS reconstruction stages.
ACTS_STAGES = ("measurements", "seeding", "ckf", "ambiguity")

#: A hit farther than this from its module's plane is on the wrong module (mm); float32
#: rounding of a global position within the detector is below 1e-4 mm.
PLANE_TOLERANCE_MM = 0.01


@dataclass(frozen=True)
class EventHits:
    """The hits of one event as a file holds them (mm; ids as in ``hepgan.io.schema.HITS``)."""

    event_id: int
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    volume: np.ndarray
    layer: np.ndarray
    module: np.ndarray


@functools.cache
def _detector() -> tuple[ae.GenericDetector, acts.TrackingGeometry]:
    """The generic detector, built once per process and never dropped (its tracking
    geometry does not own the detector elements)."""
    return ac.build_detector()


def _surface_ids(hits: EventHits, surfaces: SurfaceFrames, source: str) -> np.ndarray:
    """Geometry id value of every hit's module; InputError on a hit on no sensitive surface."""
    triples = np.stack([hits.volume, hits.layer, hits.module], axis=1).astype(np.int64)
    unique, inverse = np.unique(triples, axis=0, return_inverse=True)
    values = np.empty(len(unique), np.uint64)
    for k, (vol, lay, mod) in enumerate(unique):
        value = acts.GeometryIdentifier(volume=int(vol), layer=int(lay), sensitive=int(mod)).value
        if value not in surfaces:
            first = int(np.flatnonzero(inverse.reshape(-1) == k)[0])
            msg = (
                f"{source}: event {hits.event_id} hit {first}: (hit_volume_id, hit_layer_id, hit_module_id) = "
                f"({vol}, {lay}, {mod}) is no sensitive surface of the ACTS generic detector; "
                "the acts engine reconstructs generic-detector hits only"
            )
            raise InputError(msg)
        values[k] = value
    return values[inverse.reshape(-1)]


class _HitReader(ae.IReader):
    """Puts each event's hits on the whiteboard as sim hits on their surfaces.

    The hit's position in the event is kept in the sim hit's ``index``, which digitisation
    carries through, so every measurement maps back to the hit it came from.
    """

    def __init__(self, events: list[EventHits], source: str, clock: ac.StageClock) -> None:
        ae.IReader.__init__(self, "HepganHitReader", acts.logging.WARNING)
        self._events = events
        self._source = source
        self._clock = clock
        self._handle = ae.WriteDataHandle(self, ae.SimHitContainer, "OutputSimHits")
        self._handle.initialize(ac.KEY_SIMHITS)
        self._frames: SurfaceFrames | None = None

    def availableEvents(self) -> tuple[int, int]:
        return (0, len(self._events))

    def read(self, context: ae.AlgorithmContext) -> ae.ProcessCode:
        self._clock.start("measurements")
        if self._frames is None:
            self._frames = SurfaceFrames(_detector()[1], context.recoGeoContext)
        hits = self._events[context.eventNumber]
        gids = _surface_ids(hits, self._frames, self._source)
        unique, inverse = np.unique(gids, return_inverse=True)
        frames = np.stack([self._frames.frame(int(g)) for g in unique]) if len(unique) else np.zeros((0, 3, 3))
        f = frames[inverse.reshape(-1)]
        pos = np.stack([hits.x, hits.y, hits.z], axis=1).astype(np.float64)
        rel = pos - f[:, 0]
        loc0 = np.einsum("ij,ij->i", rel, f[:, 1])
        loc1 = np.einsum("ij,ij->i", rel, f[:, 2])
        on_plane = f[:, 0] + loc0[:, None] * f[:, 1] + loc1[:, None] * f[:, 2]
        off = np.linalg.norm(pos - on_plane, axis=1)
        if len(off) and off.max() > PLANE_TOLERANCE_MM:
            i = int(off.argmax())
            msg = (
                f"{self._source}: event {hits.event_id} hit {i} at (hit_x, hit_y, hit_z) = {tuple(pos[i].round(3))} lies "
                f"{off[i]:.3g} mm off the plane of its module ({hits.volume[i]}, {hits.layer[i]}, {hits.module[i]}); "
                f"expected at most {PLANE_TOLERANCE_MM} mm: the file's detector is not ACTS's generic detector "
                "(its modules sit elsewhere: the TrackML detector's, for one, up to 11 mm away), or its positions "
                "and module ids disagree; the acts engine reconstructs generic-detector files only"
            )
            raise InputError(msg)
        container = ae.SimHitContainer()
        barcode = ae.SimBarcode()
        # the momentum matters to neither the plane projection nor the exact smearer
        momentum = acts.Vector4(0.0, 0.0, u.GeV, u.GeV)
        geo_ids = [acts.GeometryIdentifier(int(g)) for g in unique]
        which = inverse.reshape(-1).tolist()
        for i, (px, py, pz) in enumerate((on_plane * u.mm).tolist()):
            container.insert(ae.SimHit(geo_ids[which[i]], barcode, acts.Vector4(px, py, pz, 0.0), momentum, momentum, i))
        self._handle(context, container)
        self._clock.stop("measurements")
        return ae.ProcessCode.SUCCESS


class _TrackSink(ae.IAlgorithm):
    """Collects each event's ambiguity-resolved tracks as TRACKS columns, in hit indices."""

    def __init__(self, clock: ac.StageClock, out: dict[int, tuple[dict, dict]], on_event: Callable[[], None] | None) -> None:
        ae.IAlgorithm.__init__(self, "HepganTrackSink", acts.logging.WARNING)
        self._clock = clock
        self._out = out
        self._on_event = on_event
        self.hits = self.dropped = 0  # hits seen, and those digitisation made no measurement of
        self._handles = {}
        for name, kind, key in (
            ("tracks", ae.ConstTrackContainer, ac.KEY_TRACKS),
            ("simhits", ae.SimHitContainer, ac.KEY_SIMHITS),
            ("measurements", ae.MeasurementContainer, ac.KEY_MEASUREMENTS),
            ("measurement_simhits", ae.MeasurementSimHitsMap, ac.KEY_MEAS_SIMHITS),
        ):
            handle = ae.ReadDataHandle(self, kind, name)
            handle.initialize(key)
            self._handles[name] = handle

    def execute(self, context: ae.AlgorithmContext) -> ae.ProcessCode:
        data = {name: h(context.eventStore) for name, h in self._handles.items()}
        hit_of_simhit = np.array([h.index for h in data["simhits"]], np.int64)
        # Not one measurement per sim hit: digitisation drops a hit outside its module's active
        # area (a file whose modules sit elsewhere than the generic detector's, e.g. TrackML's).
        n_meas = len(data["measurements"])
        to_sim = data["measurement_simhits"]
        simhit_of_measurement = np.full(n_meas, -1, np.int64)
        for i in range(n_meas):
            linked = to_sim.valuesFor(i)
            if len(linked):
                simhit_of_measurement[i] = linked[0]
        if (simhit_of_measurement < 0).any():
            msg = f"event {context.eventNumber}: {int((simhit_of_measurement < 0).sum())} ACTS measurements map to no hit"
            raise RuntimeError(msg)
        self.hits += len(hit_of_simhit)
        self.dropped += len(hit_of_simhit) - n_meas
        hit_of_measurement = hit_of_simhit[simhit_of_measurement] if n_meas else np.zeros(0, np.int64)
        tracks = convert_tracks(data["tracks"], hit_of_measurement)
        self._out[int(context.eventNumber)] = (tracks, self._clock.take())
        if self._on_event is not None:
            self._on_event()
        return ae.ProcessCode.SUCCESS


def reconstruct_events(events: list[EventHits], *, b_field: float, source: str,
                       seeds_per_middle_sp: int = 1,
                       on_event: Callable[[], None] | None = None) -> tuple[list[dict], dict[str, float]]:  # fmt: skip
    """ACTS seeding + CKF + ambiguity resolution on `events` (one thread, in order).

    Args:
        events: the events' hits.
        b_field: solenoid field (tesla) the events were made in.
        source: names the input in error messages (file and entry range).
        seeds_per_middle_sp: the seed finder's ``maxSeedsPerSpM`` (1: ``hepgan simulate``'s).
        on_event: called after each event (progress).

    Returns:
        Per event, the TRACKS columns (``track_hit_index`` indexes the event's hits); and
        milliseconds per stage of :data:`ACTS_STAGES` summed over the events.
    """
    if not events:
        return [], dict.fromkeys(ACTS_STAGES, 0.0)
    detector, geo = _detector()
    cfg = ac.ChainConfig(b_field=b_field, seeds_per_middle_sp=seeds_per_middle_sp)
    bfield = acts.ConstantBField(acts.Vector3(0.0, 0.0, b_field * u.T))
    clock = ac.StageClock()
    out: dict[int, tuple[dict, dict]] = {}
    s = ae.Sequencer(
        events=len(events), numThreads=1, logLevel=acts.logging.WARNING, outputDir="", trackFpes=False
    )
    for decorator in detector.contextDecorators():
        s.addContextDecorator(decorator)
    keep_alive: list = []
    with tempfile.TemporaryDirectory(prefix="hepgan-acts-reco-") as tmp:
        rnd = ae.RandomNumbers(seed=0)  # the exact smearer draws nothing
        reader = _HitReader(events, source, clock)
        s.addReader(reader)
        stages = {
            "measurements": [ac.digitization_algorithm(geo, rnd, Path(tmp), smearer="Exact")],
            "seeding": ac.seeding_algorithms(cfg, geo, bfield),
            "ckf": [ac.ckf_algorithm(geo, bfield)],
            "ambiguity": [ac.ambiguity_algorithm()],
        }
        for stage in ACTS_STAGES:
            ac.add_stage(s, clock, stage, stages[stage], keep_alive)
            keep_alive += stages[stage]
        sink = _TrackSink(clock, out, on_event)
        s.addAlgorithm(sink)
        t0 = time.perf_counter()
        s.run()
        log.debug("acts reco of %d events of %s: %.1f s", len(events), source, time.perf_counter() - t0)
    if sink.dropped:
        log.warning(
            "%s: %d of %d hits lie outside the active area of their generic-detector module and were left out "
            "(is the file's detector ACTS's generic detector?)", source, sink.dropped, sink.hits,
        )  # fmt: skip
    if sorted(out) != list(range(len(events))):
        msg = f"{source}: ACTS returned events {sorted(out)} of {len(events)}"
        raise RuntimeError(msg)
    ms = dict.fromkeys(ACTS_STAGES, 0.0)
    for _, stage_ms in out.values():
        for k, v in stage_ms.items():
            ms[k] += v
    return [out[i][0] for i in range(len(events))], ms
