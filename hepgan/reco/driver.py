"""``hepgan reco``: surrogate tracks for event files, one output file per input.

For each input ``IN/<name>.root`` the output ``OUT/<name>.root`` holds a ``tracks`` tree in
the layout of ACTS's tracks (``hepgan.io.schema.TRACKS``: ``event_id`` and the jagged
``track_*`` branches), one entry per input event, same order.

* Chunked: events are read ``step_events`` at a time (hits only, never truth branches), and
  each chunk is a task: in this process, or on a Dask cluster (``workers`` / ``scheduler``,
  :mod:`hepgan.distributed`).
* Atomic: an output is written under a hidden temporary name and renamed when complete
  (``hepgan.io.events.RootEventWriter``); a file under the final name is always whole.
* Resumable: every output records what made it (engine, model and its sha256, seed, cuts,
  branch map, field, hepgan's version: :mod:`hepgan.reco.provenance`). An input whose output
  was made the same way is skipped; one made another way (or recording nothing) is redone, with
  a warning saying what differs; ``resume=False`` (``--force``) redoes all. Temporaries left by
  killed runs (their process id no longer alive on this machine) are removed before starting.
* Reproducible: the noise of each event is seeded by (seed, event_id), so outputs do not
  depend on chunking or on the number of workers.

Every run returns a summary: events, tracks per event, ms/event per stage (read, seeding,
features, network, assignment, ambiguity, write) and, apart from them, the one-off start-up
(``startup_s``: loading the model, compiling or loading the numba kernels on a warm-up event).

Engines: ``onnx`` (the surrogate, :mod:`hepgan.reco.engine`) and ``acts`` (the classic chain on the
same hits, :mod:`hepgan.acts.classic`; needs pyacts, the ``sim`` extra), same output layout.

The magnetic field: a file made by ``hepgan simulate`` records it; users' files may declare it
(``b_field``). A file recorded or declared at a field other than the model's is refused by the
onnx engine; the acts engine reconstructs at the file's field (2 T, the generic detector's,
when neither says).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from hepgan.distributed import SerialExecutor, make_executor
from hepgan.errors import InputError
from hepgan.io.atomic import clean_stale_temporaries
from hepgan.io.events import BranchMap, RootEventWriter, open_event_file, read_range
from hepgan.io.notice import NOTICE_AFTER_S, Progress, slow_notice
from hepgan.io.schema import CLASSIC_TRACKS, TRACKS
from hepgan.io.writable import check_writable
from hepgan.reco.ambiguity import AmbiguityConfig
from hepgan.reco.assignment import AssignmentConfig
from hepgan.reco.engine import ENGINE_STAGES, NETWORK_BATCH, cached_engine
from hepgan.reco.model_file import shipped_model_path
from hepgan.reco.parallel import reconstruct_events
from hepgan.reco.provenance import differences, provenance, recorded_provenance, resolve_field

__all__ = [
    "ACTS_ENGINE_STAGES",
    "ENGINES",
    "STAGES",
    "RangeResult",
    "RecoOptions",
    "output_path",
    "process_range",
    "resolve_field",
    "reconstruct_files",
    "run_files",
]

log = logging.getLogger(__name__)

#: Engines ``reconstruct_files`` accepts: the surrogate and the classic ACTS chain.
ENGINES = ("onnx", "acts")

#: Stages of the summary's ms/event, in chain order (onnx engine).
STAGES = ("read", *ENGINE_STAGES, "write")

#: The same for the acts engine (:data:`hepgan.acts.classic.ACTS_STAGES`, spelled out here so
#: that naming the stages does not import pyacts).
ACTS_ENGINE_STAGES = ("read", "measurements", "seeding", "ckf", "ambiguity", "write")

#: Field (tesla) of files that neither record nor declare one, for the acts engine: the
#: generic detector's field in ACTS's examples, and ``hepgan simulate``'s default.
DEFAULT_B_FIELD_T = 2.0

_TRACK_BRANCHES = tuple(b.name for b in TRACKS.branches[1:])
_PER_TRACK = tuple(n for n in _TRACK_BRANCHES if n != "track_hit_index")


@dataclass(frozen=True)
class RecoOptions:
    """Everything a task needs besides its file range (picklable: sent to Dask workers).

    Attributes:
        model: the model file (resolved path); None for the acts engine.
        threads: events reconstructed at once per process, one thread each
            (:mod:`hepgan.reco.parallel`; the acts engine runs one).
        providers: onnxruntime providers (see ``hepgan.reco.engine.Engine``).
        seed: base of the per-event noise seeds.
        batch_size: seeds per network call.
        assignment, ambiguity: track building cuts.
        branch_map: names of trees and branches in users' files.
        refuse_unknown_layers: raise ``InputError`` on hits on layers the model's geometry
            lacks (reco); triage counts them instead and flags the event.
        engine_name: ``'onnx'`` or ``'acts'`` (:data:`ENGINES`).
        b_field: the field (tesla) users declare for files that do not record one.
    """

    model: str | None
    threads: int = 1
    providers: str | tuple[str, ...] | None = None
    seed: int = 0
    batch_size: int = NETWORK_BATCH
    assignment: AssignmentConfig = field(default_factory=AssignmentConfig)
    ambiguity: AmbiguityConfig = field(default_factory=AmbiguityConfig)
    branch_map: BranchMap | None = None
    refuse_unknown_layers: bool = True
    engine_name: str = "onnx"
    b_field: float | None = None

    def stages(self) -> tuple[str, ...]:
        """Stages of this engine's summary."""
        return ACTS_ENGINE_STAGES if self.engine_name == "acts" else STAGES

    def engine(self) -> Any:
        return cached_engine(
            self.model,
            threads=self.threads,
            providers=self.providers,
            seed=self.seed,
            batch_size=self.batch_size,
            assignment=self.assignment,
            ambiguity=self.ambiguity,
        )


@dataclass
class RangeResult:
    """Tracks of events ``[start, stop)`` of one input, flattened for cheap transport.

    ``event_id`` (n,) int64; ``ntracks`` (n,) int64 tracks per event; ``nindex`` (n,) int64
    entries of ``track_hit_index`` per event; ``flat`` maps each TRACKS branch (but event_id)
    to its values of all events concatenated. ``ms`` is the total milliseconds per stage
    over the range (``read`` and the engine stages; each event's in its own thread), and
    ``wall_ms`` the wall time of the engine over the range (less than the stages' sum when
    events ran in parallel). Per event, for triage: ``nhits`` hits, ``n_unknown`` hits on
    layers unknown to the model, ``n_assigned`` distinct hits on tracks.
    """

    path: str
    start: int
    stop: int
    event_id: np.ndarray
    ntracks: np.ndarray
    nindex: np.ndarray
    flat: dict[str, np.ndarray]
    ms: dict[str, float]
    nhits: np.ndarray
    n_unknown: np.ndarray
    n_assigned: np.ndarray
    wall_ms: float = 0.0

    def columns(self) -> dict[str, Any]:
        """The TRACKS columns of these events (jagged awkward arrays), for the writer."""
        cols: dict[str, Any] = {"event_id": self.event_id}
        for name in _PER_TRACK:
            if name in self.flat:  # the classic engine has no sampled spread
                cols[name] = ak.unflatten(self.flat[name], self.ntracks)
        cols["track_hit_index"] = ak.unflatten(self.flat["track_hit_index"], self.nindex)
        return cols


def _read_hits(path: str, start: int, stop: int, options: RecoOptions, columns: tuple[str, ...]):
    """Event ids, hits per event and the flat hit columns of entries ``[start, stop)``."""
    with open_event_file(path, trees=("hits",), truth=False, branch_map=options.branch_map) as ef:
        hits = read_range(ef, start, stop).arrays["hits"]
    counts = ak.to_numpy(ak.num(hits["hit_x"], axis=1)).astype(np.int64)
    flat = {k: ak.to_numpy(ak.flatten(hits[k])) for k in columns}
    return ak.to_numpy(hits["event_id"]).astype(np.int64), counts, flat


def _flatten_tracks(per_event: list[dict[str, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    ntracks = np.array([len(t["track_d0"]) for t in per_event], dtype=np.int64)
    nindex = np.array([len(t["track_hit_index"]) for t in per_event], dtype=np.int64)
    flat = {}
    for name in _TRACK_BRANCHES:
        if per_event and name not in per_event[0]:  # optional branches this engine has no values for
            continue
        dtype = TRACKS.branch(name).dtype
        flat[name] = np.concatenate([t[name] for t in per_event]).astype(dtype) if per_event else np.zeros(0, dtype)
    return ntracks, nindex, flat


_HIT_COLUMNS = ("hit_x", "hit_y", "hit_z", "hit_volume_id", "hit_layer_id")


def process_range(path: str, start: int, stop: int, options: RecoOptions, b_field: float | None = None,
                  on_event: Callable[[], None] | None = None) -> RangeResult:  # fmt: skip
    """Reconstruct events ``[start, stop)`` of `path` (the task of a reco run).

    Reads the hits tree without truth branches, validates it (``hepgan.io.events``), and runs the
    process's cached Engine on every event, ``options.threads`` events at a time, or ACTS at
    `b_field` (tesla) for the acts engine.
    `on_event` is called after each event (the progress bar of a run in this process).
    """
    if options.engine_name == "acts":
        field_t = DEFAULT_B_FIELD_T if b_field is None else b_field
        return _process_range_acts(path, start, stop, options, field_t, on_event)
    engine = options.engine()
    t0 = time.perf_counter()
    names = _HIT_COLUMNS
    event_id, counts, flat_hits = _read_hits(path, start, stop, options, names)
    ms = dict.fromkeys(("read", *ENGINE_STAGES), 0.0)
    ms["read"] = (time.perf_counter() - t0) * 1e3
    if options.refuse_unknown_layers:
        engine.check_geometry(flat_hits["hit_volume_id"], flat_hits["hit_layer_id"], source=f"{path} entries {start}-{stop}")
    engine.warn_if_no_error_model()
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    per_event: list[dict[str, np.ndarray]] = []
    n = len(event_id)
    n_unknown = np.zeros(n, np.int64)
    n_assigned = np.zeros(n, np.int64)
    hits = [tuple(flat_hits[k][offsets[j] : offsets[j + 1]] for k in names) for j in range(n)]
    t_engine = time.perf_counter()
    for j, (tracks, stage_ms) in enumerate(reconstruct_events(engine, hits, event_id, options.threads)):
        for k, v in stage_ms.items():
            ms[k] += v
        per_event.append(tracks)
        n_unknown[j] = int((engine.geometry.layer_index(hits[j][3], hits[j][4]) < 0).sum())
        n_assigned[j] = len(np.unique(tracks["track_hit_index"]))
        if on_event is not None:
            on_event()
    wall_ms = (time.perf_counter() - t_engine) * 1e3
    ntracks, nindex, flat = _flatten_tracks(per_event)
    return RangeResult(str(path), start, stop, event_id, ntracks, nindex, flat, ms, counts, n_unknown, n_assigned, wall_ms)


def _import_acts_reco() -> Any:
    try:
        from hepgan.acts import classic as acts_reco
    except ImportError as exc:  # pyacts is the 'sim' extra, not an inference dependency
        msg = f"the acts engine needs pyacts ({exc}); install it with: pip install 'hepgan[sim]'"
        raise InputError(msg) from exc
    return acts_reco


def _process_range_acts(path: str, start: int, stop: int, options: RecoOptions, b_field: float,
                        on_event: Callable[[], None] | None = None) -> RangeResult:  # fmt: skip
    """The acts engine's task: ACTS seeding, CKF and ambiguity resolution on the file's hits."""
    acts_reco = _import_acts_reco()
    t0 = time.perf_counter()
    names = ("hit_x", "hit_y", "hit_z", "hit_volume_id", "hit_layer_id", "hit_module_id")
    event_id, counts, flat_hits = _read_hits(path, start, stop, options, names)
    read_ms = (time.perf_counter() - t0) * 1e3
    offsets = np.concatenate([[0], np.cumsum(counts)])
    events = [
        acts_reco.EventHits(int(event_id[j]), *(flat_hits[k][offsets[j] : offsets[j + 1]] for k in names))
        for j in range(len(event_id))
    ]
    per_event, ms = acts_reco.reconstruct_events(events, b_field=b_field, source=f"{path} entries {start}-{stop}", on_event=on_event)
    wall_ms = sum(ms.values())  # one thread
    ms = {"read": read_ms, **ms}
    ntracks, nindex, flat = _flatten_tracks(per_event)
    n_assigned = np.array([len(np.unique(t["track_hit_index"])) for t in per_event], np.int64)
    n_unknown = np.zeros(len(event_id), np.int64)  # a hit on no known surface is an error here
    return RangeResult(str(path), start, stop, event_id, ntracks, nindex, flat, ms, counts, n_unknown, n_assigned, wall_ms)


# --------------------------------------------------------------------------- files
def output_path(input_path: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """``out_dir/<input name>.root`` (the input's name without its suffix, plus .root)."""
    return Path(out_dir) / (Path(input_path).stem + ".root")


@dataclass
class _FilePlan:
    input: Path
    output: Path
    n_events: int
    ranges: list[tuple[int, int]]
    skip: bool = False
    redone: str = ""  # why an existing output is redone ('' when there was none)


def _plan(inputs: Sequence[Path], out_dir: Path, *, step_events: int, branch_map: BranchMap | None) -> list[_FilePlan]:
    plans = []
    seen: dict[Path, Path] = {}
    for path in inputs:
        out = output_path(path, out_dir)
        if out in seen:
            msg = f"{path} and {seen[out]} would both write {out}; rename one (outputs are named after inputs)"
            raise InputError(msg)
        seen[out] = path
        # Opening checks the file and schema now, before any hour-long work starts.
        with open_event_file(path, trees=("hits",), truth=False, branch_map=branch_map) as ef:
            n = ef.num_entries
        clean_stale_temporaries(out)
        plans.append(_FilePlan(path, out, n, [(s, min(s + step_events, n)) for s in range(0, n, step_events)]))
    return plans


def _apply_resume_rule(plans: list[_FilePlan], records: dict[Path, dict[str, Any]], *, resume: bool) -> None:
    """Skip an output made the same way; redo (and say why) one made otherwise
    (:mod:`hepgan.reco.provenance`); without `resume` (``--force``) redo every one."""
    for p in plans:
        if not p.output.exists():
            continue
        if not resume:
            p.redone = "--force"
            log.debug("%s: redoing %s (--force)", p.input, p.output)
            continue
        why = differences(recorded_provenance(p.output), records[p.input])
        if not why:
            p.skip = True
            log.info("%s: %s was made the same way; skipped (--force redoes it)", p.input, p.output)
        else:
            p.redone = why
            log.warning("%s: redoing %s, made another way: %s", p.input, p.output, why)


def _warm_up(options: RecoOptions, plans: list[_FilePlan]) -> None:
    """Run the chain once on a few hits, untimed: the numba kernels compile (the first run
    after an install, tens of seconds) or load from numba's cache, and the per-geometry tables
    are built, so that these one-off costs stay out of the per-event figures."""
    todo = [p for p in plans if not p.skip and p.n_events]
    if not todo:
        return
    plan = todo[0]
    stop = min(plan.n_events, 5)
    if options.engine_name == "acts":
        with slow_notice("building ACTS's generic detector"):
            _import_acts_reco()._detector()
        return
    engine = options.engine()
    event_id, counts, flat = _read_hits(str(plan.input), 0, stop, options, _HIT_COLUMNS)
    j = int(np.argmax(counts))
    lo = int(counts[:j].sum())
    hits = [flat[k][lo : lo + counts[j]] for k in _HIT_COLUMNS]
    known = engine.geometry.layer_index(hits[3], hits[4]) >= 0
    with slow_notice("compiling the numba kernels (once after an install, about 30 s; numba caches them)"):
        engine.reconstruct_event(*(h[known] for h in hits), event_id=int(event_id[j]))


def _load(options: RecoOptions) -> tuple[float | None, str | None]:
    """Load the engine now (a bad model fails at once, not in the first worker task); the
    model's field and the hepgan version that exported it."""
    if options.engine_name == "acts":
        with slow_notice("loading pyacts"):
            _import_acts_reco()
        return None, None
    with slow_notice(f"loading the model {options.model}"):
        engine = options.engine()
    return engine.feature_config.bfield, engine.info.metadata.get("hepgan_version")


def _resolve_fields(plans: list[_FilePlan], options: RecoOptions, model_field: float | None) -> tuple[dict, list[Path]]:
    """Each input's field (:func:`resolve_field`; the acts engine's default where unknown), and
    the inputs that neither record nor declare one."""
    fields = {p.input: resolve_field(p.input, options.b_field, model_field) for p in plans}
    unknown = [path for path, value in fields.items() if value is None]
    if options.engine_name == "acts":
        fields.update(dict.fromkeys(unknown, DEFAULT_B_FIELD_T))
    return fields, unknown


def _warn_unknown_fields(plans: list[_FilePlan], unknown: list[Path], options: RecoOptions, model_field: float | None) -> None:
    """One warning per input that will be reconstructed at an assumed field."""
    for p in plans:
        if p.skip or p.input not in unknown:
            continue
        if options.engine_name == "acts":
            log.warning("%s records no field and none was declared (--b-field): ACTS runs at %s T", p.input, DEFAULT_B_FIELD_T)
        else:
            log.warning(
                "%s records no field and none was declared (--b-field): assumed to be the model's %s T; "
                "tracks' momenta are wrong if it is not", p.input, model_field,
            )  # fmt: skip


def run_files(
    inputs: Iterable[str | os.PathLike],
    out_dir: str | os.PathLike,
    options: RecoOptions,
    *,
    step_events: int = 100,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = True,
    resume: bool = True,
    write: bool = True,
    on_result: Callable[[RangeResult], None] | None = None,
) -> dict[str, Any]:
    """The driver behind :func:`reconstruct_files` and triage (see there); `on_result` sees
    every range's result in order, `write=False` writes no track files."""
    inputs = [Path(p) for p in inputs]
    if not inputs:
        msg = "no input files given"
        raise InputError(msg)
    if step_events < 1:
        msg = f"step_events must be >= 1, got {step_events}"
        raise InputError(msg)
    out_dir = Path(out_dir)
    check_writable(out_dir, folder=True)
    plans = _plan(inputs, out_dir, step_events=step_events, branch_map=options.branch_map)
    t_load = time.perf_counter()
    model_field, model_version = _load(options)
    acts = options.engine_name == "acts"
    startup = {"pyacts_load" if acts else "model_load": time.perf_counter() - t_load}
    fields, unknown = _resolve_fields(plans, options, model_field)
    records = {p.input: provenance(options, model_version=model_version, b_field=fields[p.input]) for p in plans}
    if write:
        _apply_resume_rule(plans, records, resume=resume)
    _warn_unknown_fields(plans, unknown, options, model_field)
    # Only now: a refused run (bad input, bad model) leaves no empty output folder behind.
    out_dir.mkdir(parents=True, exist_ok=True)
    t_warm = time.perf_counter()
    _warm_up(options, plans)
    startup["detector_build" if acts else "kernels"] = time.perf_counter() - t_warm
    if sum(startup.values()) > NOTICE_AFTER_S:
        parts = ", ".join(f"{k.replace('_', ' ')} {v:.1f} s" for k, v in startup.items())
        log.info("start-up took %.1f s (%s); not in the per-event times", sum(startup.values()), parts)
    executor = make_executor(workers=workers, scheduler=scheduler)
    bar = Progress(sum(p.n_events for p in plans if not p.skip), bar=progress, desc="reco")
    # In this process each event moves the bar; a cluster's tasks report when they return.
    on_event = (lambda: bar.update(1)) if isinstance(executor, SerialExecutor) else None
    tasks = [(str(p.input), a, b, options, fields[p.input], on_event) for p in plans if not p.skip for a, b in p.ranges]
    t_start = time.perf_counter()
    try:
        with executor:
            results = executor.map_ordered(process_range, tasks)
            done = _consume(plans, results, records, options.stages(), bar, write=write, on_result=on_result,
                            per_task=on_event is None)  # fmt: skip
    finally:
        bar.close()
    seconds = time.perf_counter() - t_start
    n_events, n_tracks, ms, files = done
    engine_wall = ms.pop("engine_wall")
    per_event = {k: (v / n_events if n_events else 0.0) for k, v in ms.items()}
    per_event["total"] = sum(per_event[k] for k in options.stages())
    summary = {
        "model": options.model,
        "engine": options.engine_name,
        "b_field_t": {str(p.input): fields[p.input] for p in plans},
        "executor": executor.describe(),
        "threads": options.threads,
        "files": files,
        "files_done": sum(f["status"] == "done" for f in files),
        "files_redone": sum(f.get("redone", "") != "" for f in files),
        "files_skipped": sum(f["status"] == "skipped" for f in files),
        "events": n_events,
        "tracks": n_tracks,
        "tracks_per_event": n_tracks / n_events if n_events else 0.0,
        # one-off costs of this process, kept out of ms_per_event (with a cluster, each worker
        # pays them once more, inside its first task)
        "startup_s": startup,
        # each event's stages in its own thread, summed over events and workers: with N
        # workers, or N threads, the wall time per event is about 1/N of it
        "ms_per_event": per_event,
        # the engine's wall time (no read/write) over events: with --threads N, the throughput
        "engine_wall_ms_per_event": engine_wall / n_events if n_events else 0.0,
        "seconds": seconds,
        "events_per_second": n_events / seconds if seconds > 0 else 0.0,
    }
    log.debug("reco: %d events, %.1f tracks/event, %.1f ms/event", n_events, summary["tracks_per_event"], per_event["total"])
    return summary


def _consume(plans: list[_FilePlan], results: Iterator[RangeResult], records: dict[Path, dict[str, Any]],
             stages: tuple[str, ...], bar: Progress, *, write: bool,
             on_result: Callable[[RangeResult], None] | None, per_task: bool) -> tuple[int, int, dict[str, float], list]:  # fmt: skip
    """Write the results of every file's ranges, in order; (events, tracks, ms per stage, files)."""
    ms = dict.fromkeys((*stages, "engine_wall"), 0.0)
    files: list[dict[str, Any]] = []
    n_events = n_tracks = 0
    for plan in plans:
        entry: dict[str, Any] = {"input": str(plan.input), "output": str(plan.output) if write else None,
                                 "events": plan.n_events}  # fmt: skip
        if plan.skip:
            files.append({**entry, "status": "skipped"})
            continue
        metadata = {"b_field_t": records[plan.input]["b_field_t"], "reco": records[plan.input]}
        t_close = 0.0
        schema = TRACKS if records[plan.input]["engine"] == "onnx" else CLASSIC_TRACKS
        with RootEventWriter(plan.output, [schema], metadata=metadata) if write else contextlib.nullcontext() as writer:
            count = 0
            for _ in plan.ranges:
                r = next(results)
                for k, v in r.ms.items():
                    ms[k] += v
                ms["engine_wall"] += r.wall_ms
                if writer is not None:
                    t0 = time.perf_counter()
                    writer.write_chunk("tracks", r.columns())
                    ms["write"] += (time.perf_counter() - t0) * 1e3
                if on_result is not None:
                    on_result(r)
                count += int(r.ntracks.sum())
                n_events += len(r.event_id)
                if per_task:
                    bar.update(len(r.event_id))
            t_close = time.perf_counter()
        if write:  # closing (flush + rename) is writing too
            ms["write"] += (time.perf_counter() - t_close) * 1e3
        n_tracks += count
        files.append({**entry, "status": "done", "tracks": count, **({"redone": plan.redone} if plan.redone else {})})
    return n_events, n_tracks, ms, files


def reconstruct_files(
    inputs: Iterable[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    model: str | os.PathLike | None = None,
    engine: str = "onnx",
    threads: int = 1,
    providers: str | Sequence[str] | None = None,
    step_events: int = 100,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = True,
    seed: int = 0,
    batch_size: int = NETWORK_BATCH,
    assignment: AssignmentConfig = AssignmentConfig(),  # noqa: B008  (frozen: a shared default is safe)
    ambiguity: AmbiguityConfig = AmbiguityConfig(),  # noqa: B008
    branch_map: BranchMap | None = None,
    resume: bool = True,
    b_field: float | None = None,
) -> dict[str, Any]:
    """Tracks for every event of `inputs`: ``out_dir/<input name>.root`` each.

    Args:
        inputs: event files with a ``hits`` tree (truth branches are never read).
        out_dir: output folder (created).
        model: model.onnx (default: the shipped model, ``hepgan.reco.model_file.shipped_model_path``);
            not used by the acts engine.
        engine: ``'onnx'`` (the surrogate) or ``'acts'`` (the classic chain, one thread per
            process; needs pyacts).
        threads: events reconstructed at once per process, one thread each (onnx engine).
        providers: onnxruntime providers (``None`` CPU, ``'auto'`` CUDA when available).
        step_events: events per task (read at once; the unit of work on a cluster).
        workers: run on a new local Dask cluster of this many processes (1 thread each).
        scheduler: run on the Dask cluster at this address instead.
        progress: show a progress bar.
        seed: base of the per-event noise seeds (same seed, same tracks).
        batch_size: seeds per network call.
        assignment, ambiguity: track building cuts.
        branch_map: tree and branch names of users' files.
        resume: skip inputs whose output was made the same way (:mod:`hepgan.reco.provenance`);
            outputs made another way are redone either way (False, ``--force``: redo all).
        b_field: the field (tesla) of inputs that do not record one (see
            :func:`resolve_field`).

    Returns:
        The run summary: ``files`` (input, output, status done/skipped, events, tracks, and
        ``redone`` with the reason where an existing output was replaced), ``startup_s``
        (seconds, not in the per-event times: ``model_load`` and ``kernels``, or for the acts
        engine ``pyacts_load`` and ``detector_build``), ``events``, ``tracks``, ``tracks_per_event``, ``ms_per_event`` per stage of
        :data:`STAGES` (acts: :data:`ACTS_ENGINE_STAGES`) plus ``total`` (summed over processes and threads),
        ``engine_wall_ms_per_event`` (the engine's wall time), ``seconds``, ``events_per_second``.
    """
    if engine not in ENGINES:
        msg = f"engine {engine!r} is not available; choose from {list(ENGINES)}"
        raise InputError(msg)
    if threads < 1:
        msg = f"threads must be >= 1, got {threads}"
        raise InputError(msg)
    if b_field is not None and not (math.isfinite(b_field) and b_field > 0):
        msg = f"b_field must be a positive field in tesla, got {b_field}"
        raise InputError(msg)
    if engine == "acts":
        if model is not None:
            msg = "--model is the surrogate's; the acts engine takes none"
            raise InputError(msg)
        model_path = None
    else:
        model_path = str((Path(model) if model is not None else shipped_model_path()).resolve())
    providers = tuple(providers) if providers is not None and not isinstance(providers, str) else providers
    options = RecoOptions(
        model=model_path,
        threads=threads,
        providers=providers,
        seed=seed,
        batch_size=batch_size,
        assignment=assignment,
        ambiguity=ambiguity,
        branch_map=branch_map,
        engine_name=engine,
        b_field=b_field,
    )
    return run_files(
        inputs, out_dir, options, step_events=step_events, workers=workers, scheduler=scheduler,
        progress=progress, resume=resume,
    )  # fmt: skip
