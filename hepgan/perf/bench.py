"""``hepgan bench``: the surrogate against ACTS on the same events, in the same process.

Protocol (DESIGN.md, "Benchmark protocol"), per size ``V x M`` (V vertices x M pions):

1. **ACTS**: :func:`hepgan.acts.simulation.simulate` runs the ACTS chain (Fatras, digitisation,
   seeding, CKF, ambiguity solver) in this process on one thread and writes hits, truth,
   ACTS's tracks and ``acts_timing`` (ACTS's own wall ms per event and algorithm). ACTS is
   run ``acts_repeats`` times with the same seed (identical events; each run re-simulates);
   per event the median over runs is taken, then the mean over events.
2. **Surrogate**: the hits are read back as reconstruction reads them (``truth=False``), and
   :class:`hepgan.reco.engine.Engine` reconstructs every event, with onnxruntime on 1 thread and on
   ``threads_all`` threads. Seeding, features, assignment and ambiguity are single-threaded
   numba/numpy whatever ``threads`` says: only the network stage uses more cores. One warm-up
   event per engine is excluded (numba cache load, onnxruntime arena). Each repeat times
   read, the engine stages and write; per repeat the mean ms/event per stage is taken, then
   the median over ``repeats`` repeats. ``end_to_end`` is the wall time of the whole repeat
   (read + engine + write + Python glue) per event; ``reco`` is the sum of the engine stages,
   the like-for-like figure against ACTS's ``total_reco`` (seeding + CKF + ambiguity, no I/O).
3. **Physics** of both on the same events with :func:`hepgan.perf.metrics.summarize` (pT > 1 and
   > 0.5 GeV, |eta| < 2.5), binned efficiency vs pT and eta, residual and pull histograms;
   the surrogate's agreement with ACTS (fraction of ACTS tracks reproduced with >= 75% of
   their hits on one surrogate track) and, for those pairs, the pull
   (ACTS parameter - surrogate mean) / surrogate spread per parameter.
4. **Scaling**: time vs hits per event with the exponent of a log-log least-squares fit over
   the sizes, for ACTS and the surrogate; speed-up ratios ACTS / surrogate per size, both on
   one thread. Results with the network on an accelerator (``providers`` other than CPU) go
   into their own JSON whose ``device`` names the GPU; the report shows them under that
   label, beside (never merged into) the CPU figures.

Peak resident memory per phase is the kernel's high-water mark (``VmHWM``), reset before each
phase through ``/proc/self/clear_refs``; where that is not possible the process's peak so far
(``resource.getrusage``) is reported and the method says so.

Units: ms per event, MiB, GeV, mm, rad. The JSON layout is documented in :func:`run_bench`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import math
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
from tqdm import tqdm

from hepgan.errors import InputError
from hepgan.perf.metrics import (
    DEFAULT_ETA_BINS,
    DEFAULT_PT_BINS,
    PERIGEE_PARAMETERS,
    core_width,
    efficiency_denominator,
    efficiency_vs_eta,
    efficiency_vs_pt,
    match_tracks,
    summarize,
    track_residuals,
    wrap_phi,
)

__all__ = [
    "DEFAULT_SIZES",
    "SCHEMA_VERSION",
    "STAGES",
    "agreement",
    "fit_exponent",
    "machine_info",
    "parse_size",
    "run_bench",
]

log = logging.getLogger(__name__)

SCHEMA_VERSION = "hepgan-bench/1"

#: The DESIGN sizes, V x M.
DEFAULT_SIZES = ("1x100", "20x50", "100x50", "200x50")

#: Surrogate stages timed per event, in chain order (ms/event each).
STAGES = ("read", "seeding", "features", "network", "assignment", "ambiguity", "write")
_ENGINE_STAGES = STAGES[1:-1]
#: ACTS's algorithms as ``acts_timing`` records them.
ACTS_STAGES = ("seeding", "ckf", "ambiguity")

#: Default events per size: enough for stable means, few enough for a 2-core laptop.
DEFAULT_EVENTS = {"1x100": 20, "20x50": 5, "100x50": 3, "200x50": 2}

_HIT_COLUMNS = ("hit_x", "hit_y", "hit_z", "hit_volume_id", "hit_layer_id")
#: Agreement: an ACTS track is reproduced when one surrogate track holds >= this fraction of its hits.
AGREEMENT_FRACTION = 0.75
_N_HIST_BINS = 40
_PULL_RANGE = 5.0


# --------------------------------------------------------------------------- helpers
def parse_size(size: str) -> tuple[int, int]:
    """``"20x50"`` -> (20 vertices, 50 pions per vertex); InputError on anything else."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", str(size))
    if not m or int(m.group(1)) < 1 or int(m.group(2)) < 1:
        msg = f"benchmark size {size!r}: expected VxM with integers >= 1 (vertices x pions), e.g. 20x50"
        raise InputError(msg)
    return int(m.group(1)), int(m.group(2))


def fit_exponent(hits: Sequence[float], ms: Sequence[float]) -> float | None:
    """Slope of log(ms) against log(hits) by least squares: time ~ hits^slope.

    None with fewer than two distinct positive points (no slope to fit)."""
    h = np.asarray(hits, dtype=np.float64)
    t = np.asarray(ms, dtype=np.float64)
    ok = np.isfinite(h) & np.isfinite(t) & (h > 0) & (t > 0)
    if ok.sum() < 2 or len(np.unique(h[ok])) < 2:
        return None
    slope, _ = np.polyfit(np.log(h[ok]), np.log(t[ok]), 1)
    return float(slope)


def _finite(x: Any) -> float | None:
    """JSON-friendly float: NaN and infinities become None (JSON has no NaN)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not b > 0:
        return None
    return _finite(a / b)


def _median(values: Sequence[float]) -> float:
    return float(np.median(np.asarray(values, dtype=np.float64)))


class _PeakMemory:
    """Peak resident memory (MiB) of phases of this process.

    Linux lets a process reset its own high-water mark (``echo 5 > /proc/self/clear_refs``),
    which makes ``VmHWM`` the peak of the phase alone. Elsewhere (or where that write is
    refused) the peak of the process so far from getrusage is all there is; ``method`` says
    which one the numbers are.
    """

    def __init__(self) -> None:
        self.method = "VmHWM reset per phase (/proc/self/clear_refs)"
        try:
            self._reset()
            self._hwm()
        except OSError as err:
            log.info("per-phase peak RSS unavailable (%s); using the process peak so far", err)
            self.method = "process peak so far (resource.getrusage ru_maxrss)"

    @staticmethod
    def _reset() -> None:
        with open("/proc/self/clear_refs", "w") as f:  # noqa: PTH123 - procfs, not a path object job
            f.write("5")

    @staticmethod
    def _hwm() -> float:
        with open("/proc/self/status") as f:  # noqa: PTH123
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
        msg = "no VmHWM in /proc/self/status"
        raise OSError(msg)

    def start(self) -> None:
        if self.method.startswith("VmHWM"):
            self._reset()

    def peak_mib(self) -> float:
        if self.method.startswith("VmHWM"):
            return round(self._hwm(), 1)
        # ru_maxrss is KiB on Linux, bytes on macOS.
        scale = 1.0 / 1024.0 if sys.platform != "darwin" else 1.0 / (1024.0 * 1024.0)
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale, 1)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:  # noqa: PTH123
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError as err:
        log.info("no /proc/cpuinfo (%s)", err)
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo") as f:  # noqa: PTH123
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024.0**2, 2)
    except OSError as err:
        log.info("no /proc/meminfo (%s)", err)
    return None


def _version(module: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(module)
    except metadata.PackageNotFoundError:
        return None


def _gpu_name() -> str | None:
    """The first GPU's name from nvidia-smi, or None where there is none."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=20, check=True,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError) as err:
        log.info("nvidia-smi: %s", err)
        return None
    names = [s.strip() for s in out.stdout.splitlines() if s.strip()]
    return names[0] if names else None


def machine_info() -> dict:
    """Where the numbers were measured: platform, CPU model, cores, memory (GiB), package
    versions, date (UTC, ISO 8601) and the load average (1, 5, 15 min) at the time of the call."""
    import numba
    import onnxruntime

    return {
        "platform": platform.platform(),
        "hostname": platform.node(),
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "onnxruntime": onnxruntime.__version__,
        "onnxruntime_providers": onnxruntime.get_available_providers(),
        "pyacts": _version("pyacts"),
        "awkward": ak.__version__,
        "hepgan": _version("hepgan"),
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def model_info(path: Path) -> dict:
    """The model file's path, size, sha256, the sha256 of its ``hepgan`` metadata (canonical
    JSON: sorted keys) and the metadata's version and training facts."""
    from hepgan.reco.model_file import read_model_info

    info = read_model_info(path)
    meta = dict(info.metadata)
    canonical = json.dumps(meta, sort_keys=True, separators=(",", ":")).encode()
    return {
        "path": str(path),
        "bytes": path.stat().st_size,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "metadata_sha256": hashlib.sha256(canonical).hexdigest(),
        "hepgan_version": meta.get("hepgan_version"),
        "training": meta.get("training"),
        "n_samples": info.n_samples,
        "noise_dim": info.noise_dim,
    }


# --------------------------------------------------------------------------- agreement
def agreement(
    acts_tracks: Mapping[str, Any],
    sur_tracks: Mapping[str, Any],
    *,
    fraction: float = AGREEMENT_FRACTION,
) -> dict:
    """How well the surrogate reproduces ACTS's tracks on the same events.

    An ACTS track is reproduced when one surrogate track holds at least `fraction` of its
    hits (the surrogate track with most shared hits is its partner). For reproduced pairs the
    pull (ACTS parameter - surrogate mean) / surrogate spread is formed per parameter (phi
    difference wrapped); its 68% core width should be 1 when the sampled spread is calibrated.

    Args:
        acts_tracks, sur_tracks: mappings with ``track_nhits``, ``track_hit_index`` and
            ``track_<p>`` (and ``track_err_<p>`` for the surrogate), one list per event.

    Returns:
        ``n_acts_tracks``, ``n_reproduced``, ``fraction_reproduced``; ``pull_width`` and
        ``pull_mean`` (median) per parameter; ``pull_hist`` per parameter ({edges, counts}).
    """
    a_nh = ak.to_numpy(ak.flatten(acts_tracks["track_nhits"])).astype(np.int64)
    a_cnt = ak.to_numpy(ak.num(acts_tracks["track_nhits"], axis=1)).astype(np.int64)
    a_hi = acts_tracks["track_hit_index"]
    s_nh = ak.to_numpy(ak.flatten(sur_tracks["track_nhits"])).astype(np.int64)
    s_cnt = ak.to_numpy(ak.num(sur_tracks["track_nhits"], axis=1)).astype(np.int64)
    s_hi = sur_tracks["track_hit_index"]
    if len(a_cnt) != len(s_cnt):
        msg = f"agreement: ACTS and surrogate tracks hold {len(a_cnt)} and {len(s_cnt)} events"
        raise InputError(msg)
    partner = np.full(len(a_nh), -1, dtype=np.int64)  # global surrogate track index
    a_off = np.concatenate([[0], np.cumsum(a_cnt)])
    s_off = np.concatenate([[0], np.cumsum(s_cnt)])
    for ev in range(len(a_cnt)):
        na, ns = a_cnt[ev], s_cnt[ev]
        if na == 0 or ns == 0:
            continue
        # (hit, track) pairs of both; join them on the hit to count shared hits per pair.
        a_track = np.repeat(np.arange(na), a_nh[a_off[ev] : a_off[ev + 1]])
        s_track = np.repeat(np.arange(ns), s_nh[s_off[ev] : s_off[ev + 1]])
        a_hits = ak.to_numpy(a_hi[ev]).astype(np.int64)
        s_hits = ak.to_numpy(s_hi[ev]).astype(np.int64)
        order = np.argsort(s_hits, kind="stable")
        s_sorted = s_hits[order]
        lo = np.searchsorted(s_sorted, a_hits, side="left")
        hi = np.searchsorted(s_sorted, a_hits, side="right")
        n_per = hi - lo
        if n_per.sum() == 0:
            continue
        rows = np.repeat(a_track, n_per)
        pos = np.repeat(lo - np.cumsum(n_per) + n_per, n_per) + np.arange(n_per.sum())
        cols = s_track[order[pos]]
        pair, shared = np.unique(rows * ns + cols, return_counts=True)
        pa, ps = pair // ns, pair % ns
        # best partner per ACTS track: most shared hits (ties: lower surrogate index, np.lexsort stable)
        best = np.lexsort((ps, -shared, pa))
        first = np.ones(len(best), dtype=bool)
        first[1:] = pa[best][1:] != pa[best][:-1]
        bi = best[first]
        ok = shared[bi] >= fraction * a_nh[a_off[ev] + pa[bi]]
        partner[a_off[ev] + pa[bi][ok]] = s_off[ev] + ps[bi][ok]
    rep = partner >= 0
    out: dict[str, Any] = {
        "fraction": fraction,
        "n_acts_tracks": int(len(a_nh)),
        "n_surrogate_tracks": int(len(s_nh)),
        "n_reproduced": int(rep.sum()),
        "fraction_reproduced": _finite(rep.mean()) if len(rep) else None,
        "pull_width": {},
        "pull_mean": {},
        "pull_hist": {},
    }
    edges = np.linspace(-_PULL_RANGE, _PULL_RANGE, _N_HIST_BINS + 1)
    for p in PERIGEE_PARAMETERS:
        av = ak.to_numpy(ak.flatten(acts_tracks[f"track_{p}"])).astype(np.float64)[rep]
        sv = ak.to_numpy(ak.flatten(sur_tracks[f"track_{p}"])).astype(np.float64)[partner[rep]]
        se = ak.to_numpy(ak.flatten(sur_tracks[f"track_err_{p}"])).astype(np.float64)[partner[rep]]
        d = av - sv
        if p == "phi":
            d = wrap_phi(d)
        with np.errstate(divide="ignore", invalid="ignore"):
            pull = np.where(se > 0, d / np.where(se > 0, se, 1.0), np.nan)
        fin = pull[np.isfinite(pull)]
        out["pull_width"][p] = _finite(core_width(fin))
        out["pull_mean"][p] = _finite(np.median(fin)) if len(fin) else None
        out["pull_hist"][p] = _hist(fin, edges)
    return out


def _hist(values: np.ndarray, edges: np.ndarray) -> dict:
    """{edges, counts, underflow, overflow} of finite values (JSON lists)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    counts, _ = np.histogram(v, bins=edges)
    return {
        "edges": [float(x) for x in edges],
        "counts": [int(c) for c in counts],
        "underflow": int((v < edges[0]).sum()),
        "overflow": int((v > edges[-1]).sum()),
    }


# --------------------------------------------------------------------------- physics
def _physics(hits, particles, tracks: Mapping[str, Mapping[str, Any]]) -> dict:
    """Summaries (pT > 1 and > 0.5 GeV), binned efficiencies and residual/pull histograms of
    each named set of tracks on the same events; residual bins are shared by all sets."""
    out: dict[str, Any] = {"summary": {}, "efficiency_vs_pt": {}, "efficiency_vs_eta": {}, "residuals": {}, "pulls": {}}
    residuals = {}
    for name, trk in tracks.items():
        out["summary"][name] = {
            "pt_gt_1": summarize(hits, particles, trk, pt_min=1.0, eta_max=2.5),
            "pt_gt_0.5": summarize(hits, particles, trk, pt_min=0.5, eta_max=2.5),
        }
        match = match_tracks(hits, particles, trk)
        out["efficiency_vs_pt"][name] = efficiency_vs_pt(match, particles, bins=DEFAULT_PT_BINS, eta_max=2.5).as_dict()
        out["efficiency_vs_eta"][name] = efficiency_vs_eta(match, particles, bins=DEFAULT_ETA_BINS, pt_min=1.0).as_dict()
        den = efficiency_denominator(particles, match, pt_min=1.0, eta_max=2.5)
        residuals[name] = track_residuals(trk, particles, match, particle_mask=den)
    pull_edges = np.linspace(-_PULL_RANGE, _PULL_RANGE, _N_HIST_BINS + 1)
    for p in PERIGEE_PARAMETERS:
        # +-5 of the widest core width: the same bins for every set, tails in under/overflow.
        widths = [core_width(r.residual[p]) for r in residuals.values()]
        widths = [w for w in widths if math.isfinite(w) and w > 0]
        half = 5.0 * max(widths) if widths else 1.0
        edges = np.linspace(-half, half, _N_HIST_BINS + 1)
        out["residuals"][p] = {name: _hist(r.residual[p], edges) for name, r in residuals.items()}
        out["pulls"][p] = {name: _hist(r.pull[p], pull_edges) for name, r in residuals.items()}
    return out


# --------------------------------------------------------------------------- surrogate timing
def _read_hits(path: Path) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Hits as reconstruction reads them (no truth): flat columns, offsets, event ids."""
    from hepgan.io.events import read_events

    hits = read_events(path, trees=("hits",), truth=False)["hits"]
    counts = ak.to_numpy(ak.num(hits["hit_x"], axis=1)).astype(np.int64)
    flat = {k: ak.to_numpy(ak.flatten(hits[k])) for k in _HIT_COLUMNS}
    offsets = np.concatenate([[0], np.cumsum(counts)])
    return flat, offsets, ak.to_numpy(hits["event_id"]).astype(np.int64)


def _tracks_columns(event_id: np.ndarray, per_event: list[dict[str, np.ndarray]]) -> dict[str, Any]:
    """Surrogate tracks of all events as the TRACKS tree's jagged columns."""
    from hepgan.io.schema import TRACKS

    cols: dict[str, Any] = {"event_id": event_id}
    for b in TRACKS.branches[1:]:
        counts = np.array([len(t[b.name]) for t in per_event], dtype=np.int64)
        flat = np.concatenate([t[b.name] for t in per_event]).astype(b.dtype) if per_event else np.zeros(0, b.dtype)
        cols[b.name] = ak.unflatten(flat, counts)
    return cols


def _time_surrogate(engine, path: Path, out_path: Path, repeats: int) -> tuple[dict, dict[str, Any]]:
    """Time `repeats` passes read -> engine -> write over all events of `path`.

    Returns (timing dict, tracks columns of the last pass)."""
    from hepgan.io.events import TRACKS, RootEventWriter

    flat, offsets, event_id = _read_hits(path)
    n_ev = len(event_id)
    if n_ev == 0:
        msg = f"{path}: no events to benchmark"
        raise InputError(msg)
    # Warm-up outside the clock: numba loads (or compiles) its kernels, onnxruntime sizes its arena.
    lo, hi = offsets[0], offsets[1]
    engine.reconstruct_event(*(flat[k][lo:hi] for k in _HIT_COLUMNS), event_id=int(event_id[0]))
    per_repeat: dict[str, list[float]] = {s: [] for s in (*STAGES, "reco", "end_to_end", "reco_cpu")}
    per_event_reco: list[list[float]] = []
    cols: dict[str, Any] = {}
    for _ in range(repeats):
        ms = dict.fromkeys(STAGES, 0.0)
        ev_reco = []
        t_start = time.perf_counter()
        flat, offsets, event_id = _read_hits(path)
        ms["read"] = (time.perf_counter() - t_start) * 1e3
        tracks = []
        # Process CPU time (all threads) of the engine calls: on a shared machine wall time
        # includes waiting for a core, CPU time does not (for 1 thread it is the cost itself).
        cpu0 = time.process_time()
        for j in range(n_ev):
            lo, hi = offsets[j], offsets[j + 1]
            trk, stage_ms = engine.reconstruct_event(*(flat[k][lo:hi] for k in _HIT_COLUMNS), event_id=int(event_id[j]))
            tracks.append(trk)
            for k, v in stage_ms.items():
                ms[k] += v
            ev_reco.append(sum(stage_ms[k] for k in _ENGINE_STAGES))
        cpu_reco = (time.process_time() - cpu0) * 1e3
        t_write = time.perf_counter()
        cols = _tracks_columns(event_id, tracks)
        with RootEventWriter(out_path, [TRACKS]) as w:
            w.write_chunk("tracks", cols)
        t_end = time.perf_counter()
        ms["write"] = (t_end - t_write) * 1e3
        for s in STAGES:
            per_repeat[s].append(ms[s] / n_ev)
        per_repeat["reco"].append(sum(ms[s] for s in _ENGINE_STAGES) / n_ev)
        per_repeat["end_to_end"].append((t_end - t_start) * 1e3 / n_ev)
        per_repeat["reco_cpu"].append(cpu_reco / n_ev)
        per_event_reco.append(ev_reco)
    timing = {
        "threads": engine.threads,
        "providers": list(engine.providers),
        "ms_per_event": {k: round(_median(v), 4) for k, v in per_repeat.items()},
        "ms_per_event_repeats": {k: [round(x, 4) for x in v] for k, v in per_repeat.items()},
        # median over repeats of each event's engine time (ms), for time-vs-hits per event
        "reco_ms_per_event_list": [round(x, 4) for x in np.median(np.array(per_event_reco), axis=0)],
    }
    return timing, cols


# --------------------------------------------------------------------------- one size
def _acts_timing(path: Path) -> dict[str, np.ndarray]:
    from hepgan.io.events import read_events

    t = read_events(path, trees=("acts_timing",))["acts_timing"]
    return {s: ak.to_numpy(t[f"acts_{s}_ms"]).astype(np.float64) for s in (*ACTS_STAGES, "total_reco")}


def _bench_size(
    size: str,
    n_events: int,
    *,
    model: Path,
    repeats: int,
    acts_repeats: int,
    threads_all: int,
    providers: Any,
    seed: int,
    workdir: Path,
    memory: _PeakMemory,
    progress: bool,
) -> dict:
    from hepgan.acts.simulation import SimulationConfig, simulate
    from hepgan.io.events import read_events
    from hepgan.reco.engine import Engine

    vertices, particles = parse_size(size)
    cfg = SimulationConfig(events=n_events, vertices=vertices, particles=particles, seed=seed)
    path = workdir / f"bench_{size}.root"
    mem: dict[str, float] = {}
    acts_runs = []
    sim_summaries = []
    memory.start()
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    for r in range(acts_repeats):
        # Same seed each run -> identical events; only acts_timing differs between runs.
        run_path = path if r == 0 else workdir / f"bench_{size}_acts{r}.root"
        sim_summaries.append(simulate(run_path, cfg, progress=progress))
        acts_runs.append(_acts_timing(run_path))
        if r:
            run_path.unlink()
    sim_wall = time.perf_counter() - t0
    sim_cpu = time.process_time() - cpu0
    mem["acts_simulate_and_reconstruct"] = memory.peak_mib()
    acts_ev = {s: np.median(np.stack([run[s] for run in acts_runs]), axis=0) for s in acts_runs[0]}
    acts = {
        "threads": 1,
        "repeats": acts_repeats,
        "ms_per_event": {s: round(float(np.mean(v)), 4) for s, v in acts_ev.items()},
        "ms_per_event_list": {s: [round(float(x), 4) for x in v] for s, v in acts_ev.items()},
        "simulate_wall_s": round(sim_wall, 2),
        "simulate_cpu_s": round(sim_cpu, 2),
        # Share of a core the (single-threaded) ACTS run got: < 1 means it waited for a CPU
        # on a shared machine, and its wall times above are inflated by about 1 / share.
        "cpu_share": round(sim_cpu / sim_wall, 3) if sim_wall > 0 else None,
        # hepgan's own conversion of ACTS's whiteboard to numpy (not part of ACTS's timing)
        "convert_ms_per_event": round(float(np.mean([x["convert_ms_per_event"] for x in sim_summaries])), 2),
    }

    timings: dict[str, dict] = {}
    cols_by_threads: dict[str, dict] = {}
    thread_sets = {"1": 1, "all": max(1, int(threads_all))}
    for label, n_threads in thread_sets.items():
        memory.start()
        engine = Engine(model, threads=n_threads, providers=providers, seed=seed)
        timing, cols = _time_surrogate(engine, path, workdir / f"surrogate_{size}_t{label}.root", repeats)
        mem[f"surrogate_threads_{label}"] = memory.peak_mib()
        timings[label] = timing
        cols_by_threads[label] = cols
        del engine
    # The noise is seeded per event, so the thread count must not change the tracks.
    same = all(
        np.array_equal(ak.to_numpy(ak.flatten(cols_by_threads["1"][k])), ak.to_numpy(ak.flatten(cols_by_threads["all"][k])))
        for k in ("track_nhits", "track_hit_index")
    )

    memory.start()
    ev = read_events(path, trees=("hits", "particles", "tracks"), truth=True)
    hits_n = ak.to_numpy(ak.num(ev["hits"]["hit_x"], axis=1)).astype(np.float64)
    acts_tracks = {k: ev["tracks"][k] for k in ev["tracks"].fields}
    sur_tracks = cols_by_threads["1"]
    physics = _physics(ev["hits"], ev["particles"], {"acts": acts_tracks, "surrogate": sur_tracks})
    agree = agreement(acts_tracks, sur_tracks)
    mem["physics"] = memory.peak_mib()

    acts_total = acts["ms_per_event"]["total_reco"]
    speed: dict[str, Any] = {}
    for label in thread_sets:
        t = timings[label]["ms_per_event"]
        speed[label] = {
            "reco": _ratio(acts_total, t["reco"]),
            "end_to_end": _ratio(acts_total, t["end_to_end"]),
            "seeding": _ratio(acts["ms_per_event"]["seeding"], t["seeding"]),
            # Load-corrected estimate for a shared machine: ACTS's wall time scaled by the
            # share of a core it got, against the surrogate's process CPU time. Only
            # meaningful for 1 thread (CPU time of several threads adds up).
            "reco_cpu_estimate": _ratio(acts_total * acts["cpu_share"], t["reco_cpu"])
            if label == "1" and acts["cpu_share"]
            else None,
            # ACTS's CKF + ambiguity vs everything after our seeding
            "after_seeding": _ratio(
                acts["ms_per_event"]["ckf"] + acts["ms_per_event"]["ambiguity"],
                t["features"] + t["network"] + t["assignment"] + t["ambiguity"],
            ),
        }
    return {
        "vertices": vertices,
        "particles": particles,
        "events": n_events,
        "file": str(path),
        "hits_per_event": round(float(hits_n.mean()), 1),
        "hits_per_event_list": [int(x) for x in hits_n],
        "acts": acts,
        "surrogate": {f"threads_{k}": v for k, v in timings.items()},
        "surrogate_tracks_identical_across_threads": bool(same),
        "speedup": {f"threads_{k}": v for k, v in speed.items()},
        "physics": physics,
        "agreement": agree,
        "peak_rss_mib": mem,
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
    }


# --------------------------------------------------------------------------- run
def _device(providers: Any) -> dict:
    """Label of the device the network ran on: 'cpu', or 'gpu' with the GPU's name."""
    from hepgan.reco.engine import _resolve_providers

    chosen = _resolve_providers(providers)
    if chosen[0] == "CPUExecutionProvider":
        return {"kind": "cpu", "name": _cpu_model(), "providers": chosen, "label": "cpu"}
    name = _gpu_name() or chosen[0]
    return {"kind": "gpu", "name": name, "providers": chosen, "label": f"gpu ({name})"}


def run_bench(
    output_json: str | os.PathLike | None,
    *,
    sizes: Sequence[str] = ("1x100", "20x50"),
    events: int | Mapping[str, int] | None = None,
    repeats: int = 3,
    acts_repeats: int = 1,
    model: str | os.PathLike | None = None,
    threads_all: int | None = None,
    providers: str | Sequence[str] | None = None,
    seed: int = 11,
    progress: bool = True,
    workdir: str | os.PathLike | None = None,
) -> dict:
    """Run the benchmark protocol (module docstring) and write its JSON.

    Args:
        output_json: where to write the results (None: do not write; the dict is returned).
        sizes: ``"VxM"`` strings (V vertices x M pions per event).
        events: events per size: one int for all, or {size: n}; None: :data:`DEFAULT_EVENTS`
            (5 for sizes not listed there).
        repeats: surrogate passes over the events per thread setting (median taken).
        acts_repeats: ACTS runs per size (each re-simulates the same events; median per event).
        model: the ONNX model (None: the shipped one, ``hepgan.reco.model_file.shipped_model_path``).
        threads_all: onnxruntime threads of the "all cores" setting (None: os.cpu_count()).
        providers: onnxruntime providers (None = CPU; 'cuda' or 'auto' for a GPU run, whose
            results are labelled with the GPU and carry no CPU speed-up ratios).
        seed: simulation seed (also the engine's noise seed).
        progress: tqdm bars for the ACTS runs and a log line per size.
        workdir: where the simulated and reconstructed files go (None: a temporary folder,
            removed at the end).

    Returns:
        The results: ``schema``, ``device`` {kind, name, providers, label}, ``machine``
        (:func:`machine_info`, load average at start and ``load_average_end``), ``model``
        (:func:`model_info`), ``config``, ``notes``, ``sizes`` {size: per-size results: hits
        per event, ``acts`` and ``surrogate`` (``threads_1``, ``threads_all``) ms/event per
        stage, ``speedup``, ``physics`` (summaries, binned efficiencies, residual and pull
        histograms of ``acts`` and ``surrogate``), ``agreement``, ``peak_rss_mib`` per phase},
        ``scaling`` (hits and ms per size, fitted exponents) and ``headline``.
    """
    from hepgan.reco.model_file import shipped_model_path

    if repeats < 1 or acts_repeats < 1:
        msg = f"repeats and acts_repeats must be >= 1, got {repeats}, {acts_repeats}"
        raise InputError(msg)
    sizes = list(sizes)
    if not sizes:
        msg = "no benchmark sizes given"
        raise InputError(msg)
    for s in sizes:
        parse_size(s)
    if len(set(sizes)) != len(sizes):
        msg = f"benchmark sizes repeat: {sizes}"
        raise InputError(msg)
    if events is None:
        n_events = {s: DEFAULT_EVENTS.get(s, 5) for s in sizes}
    elif isinstance(events, Mapping):
        n_events = {s: int(events.get(s, DEFAULT_EVENTS.get(s, 5))) for s in sizes}
    else:
        n_events = dict.fromkeys(sizes, int(events))
    if min(n_events.values()) < 1:
        msg = f"events per size must be >= 1, got {n_events}"
        raise InputError(msg)
    threads_all = int(threads_all or os.cpu_count() or 1)
    model_path = Path(model) if model is not None else shipped_model_path()
    device = _device(providers)
    results: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "device": device,
        "machine": machine_info(),
        "model": model_info(model_path),
        "config": {
            "sizes": sizes,
            "events": n_events,
            "repeats": repeats,
            "acts_repeats": acts_repeats,
            "threads_all": threads_all,
            "providers": device["providers"],
            "seed": seed,
            "pt_range_gev": [0.5, 10.0],
            "eta_max": 2.5,
            "vertex_sigma_z_mm": 50.0,
            "efficiency_pt_min_gev": [1.0, 0.5],
            "agreement_fraction": AGREEMENT_FRACTION,
            "pt_bins_gev": [float(x) for x in DEFAULT_PT_BINS],
            "eta_bins": [float(x) for x in DEFAULT_ETA_BINS],
        },
        "notes": [
            "ACTS: 1 thread, its own per-algorithm wall time (acts_timing), mean over events.",
            "Surrogate: median over repeats of the mean ms/event; one warm-up event excluded.",
            "threads_all sets onnxruntime's intra-op threads only: seeding, features, assignment "
            "and ambiguity are single-threaded numba/numpy, so only the network stage can gain.",
            "speedup = ACTS total_reco (seeding + CKF + ambiguity, no I/O) / surrogate time "
            "(reco: engine stages; end_to_end: with read and write).",
            "Times are wall clock; reco_cpu is the surrogate's process CPU time (all threads) per "
            "event. Compare load_average with cores: a shared machine inflates wall times. "
            "speedup reco_cpu_estimate = ACTS total_reco x ACTS cpu_share / surrogate reco_cpu "
            "(1 thread): an estimate of the ratio on an idle machine.",
        ],
        "sizes": {},
    }
    training = results["model"].get("training") or {}
    if isinstance(training, Mapping) and training.get("fake"):
        results["notes"].append(
            "The model is the test-only stand-in (tests/_fake_model.py: seed helix + fixed hit "
            "windows, no learning): timings are representative of the chain, physics is not."
        )
    if device["kind"] != "cpu":
        results["notes"].append(
            f"Network on {device['label']}: speed-ups here compare ACTS on 1 CPU thread with the "
            "surrogate on this device; never mix them with CPU-only ratios."
        )
    memory = _PeakMemory()
    results["config"]["peak_rss_method"] = memory.method
    with tempfile.TemporaryDirectory(prefix="hepgan-bench-") as tmp:
        work = Path(workdir) if workdir is not None else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        # A bar over the sizes: each takes minutes, and only the CLI decides what reaches the terminal.
        for s in tqdm(sizes, desc="bench", unit="size", disable=not progress):
            t0 = time.perf_counter()
            results["sizes"][s] = _bench_size(
                s, n_events[s], model=model_path, repeats=repeats, acts_repeats=acts_repeats,
                threads_all=threads_all, providers=providers, seed=seed, workdir=work,
                memory=memory, progress=progress,
            )  # fmt: skip
            log.info("bench %s: %d events in %.1f s", s, n_events[s], time.perf_counter() - t0)
    results["scaling"] = _scaling(results["sizes"])
    results["headline"] = _headline(results)
    results["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    # ru_maxrss: KiB on Linux (the platform this runs on; macOS would report bytes).
    results["machine"]["peak_rss_mib_process"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)
    if output_json is not None:
        out = Path(output_json)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp_out = out.with_name(f".{out.name}.tmp{os.getpid()}")
        tmp_out.write_text(json.dumps(results, indent=1, allow_nan=False) + "\n")
        os.replace(tmp_out, out)
    return results


def _scaling(per_size: Mapping[str, dict]) -> dict:
    """Time vs hits per event across sizes and the exponents of log-log fits (ms ~ hits^k).

    ``exponent`` fits all sizes; ``exponent_from_12k_hits`` only sizes of >= 10k hits/event
    (20 x 50 and up, the DESIGN target's range), when there are two of them."""
    names = list(per_size)
    hits = [per_size[s]["hits_per_event"] for s in names]
    series = {
        "acts_total_reco": [per_size[s]["acts"]["ms_per_event"]["total_reco"] for s in names],
        "acts_seeding": [per_size[s]["acts"]["ms_per_event"]["seeding"] for s in names],
        "acts_ckf": [per_size[s]["acts"]["ms_per_event"]["ckf"] for s in names],
    }
    for label in ("1", "all"):
        for key in ("reco", "end_to_end", "seeding", "network"):
            series[f"surrogate_threads_{label}_{key}"] = [per_size[s]["surrogate"][f"threads_{label}"]["ms_per_event"][key] for s in names]
    big = [i for i, h in enumerate(hits) if h >= 10_000]
    return {
        "sizes": names,
        "hits_per_event": hits,
        "ms_per_event": series,
        "exponent": {k: fit_exponent(hits, v) for k, v in series.items()},
        "exponent_from_12k_hits": {k: fit_exponent([hits[i] for i in big], [v[i] for i in big]) for k, v in series.items()}
        if len(big) >= 2
        else None,
    }


def _headline(results: Mapping[str, Any]) -> dict:
    """One row per size of the figures the README and the report table quote."""
    rows = {}
    for s, r in results["sizes"].items():
        a1 = r["physics"]["summary"]["acts"]["pt_gt_1"]
        s1 = r["physics"]["summary"]["surrogate"]["pt_gt_1"]
        rows[s] = {
            "hits_per_event": r["hits_per_event"],
            "acts_ms": r["acts"]["ms_per_event"]["total_reco"],
            "surrogate_1thread_ms": r["surrogate"]["threads_1"]["ms_per_event"]["reco"],
            "surrogate_all_ms": r["surrogate"]["threads_all"]["ms_per_event"]["reco"],
            "surrogate_1thread_end_to_end_ms": r["surrogate"]["threads_1"]["ms_per_event"]["end_to_end"],
            "speedup_1thread": r["speedup"]["threads_1"]["reco"],
            "speedup_1thread_cpu_estimate": r["speedup"]["threads_1"]["reco_cpu_estimate"],
            "acts_cpu_share": r["acts"]["cpu_share"],
            "acts_efficiency_pt1": a1["efficiency"],
            "surrogate_efficiency_pt1": s1["efficiency"],
            "acts_efficiency_pt0.5": r["physics"]["summary"]["acts"]["pt_gt_0.5"]["efficiency"],
            "surrogate_efficiency_pt0.5": r["physics"]["summary"]["surrogate"]["pt_gt_0.5"]["efficiency"],
            "acts_fake_rate": a1["fake_rate"],
            "surrogate_fake_rate": s1["fake_rate"],
            "acts_duplicate_rate": a1["duplicate_rate"],
            "surrogate_duplicate_rate": s1["duplicate_rate"],
            "acts_trackml_score": a1["trackml_score"],
            "surrogate_trackml_score": s1["trackml_score"],
            "agreement": r["agreement"]["fraction_reproduced"],
        }
    return rows
