"""``hepgan bench``: the surrogate against ACTS on the same events, in the same process.

Protocol (docs/benchmark-protocol.md), per size (:mod:`hepgan.perf.sizes`: the gun ``VxM`` or
collisions ``ttbar-puN``):

1. **Events**: :func:`hepgan.acts.simulation.simulate` makes them once (seed: a registered
   report seed, :mod:`hepgan.perf.seeds`).
2. **Timing**, every side warmed up first (:mod:`hepgan.perf.timing`): ACTS's classic chain on
   the file's hits with ``max_seeds_per_spm`` 1 (its generic-detector example) and 5 (its
   stronger configuration), one thread each; the surrogate on one thread and on all cores
   (as many events at once as cores, :mod:`hepgan.reco.parallel`; its ``reco`` is wall time).
   The four are interleaved, repeat after repeat, in an order rotated each repeat, so that
   load on a shared machine falls on all of them alike. ``acts_repeats`` and ``repeats``
   passes (default 3 each); per side the median over repeats of the marginal ms/event is
   quoted, and each speed-up as the median, min and max of the per-repeat ratios (repeat i
   of ACTS over repeat i of the surrogate).
3. **Physics** (:mod:`hepgan.perf.metrics`) of the three track sets on the same events: the
   summaries at pT > 1 and > 0.5 GeV with Clopper-Pearson intervals and the efficiency
   categories the file supports, binned efficiencies, residual and pull histograms; per
   ACTS row the paired counts (particles found by one side only) and the agreement (ACTS
   tracks reproduced by one surrogate track with >= 75% of their hits).
4. **Scaling**: time vs hits with log-log exponents, over all sizes and per process.

Results on an accelerator (``providers`` other than CPU) are labelled with the device and
never merged into CPU figures. Units: ms per event, MiB, GeV, mm, rad. The JSON layout is
documented in :func:`run_bench`; :func:`format_headline` renders its headline for a terminal.
"""

from __future__ import annotations

import logging
import math
import os
import resource
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
from tqdm import tqdm

from hepgan.errors import InputError
from hepgan.io.atomic import write_json_atomically
from hepgan.perf import metrics as m
from hepgan.perf.headline import build_headline, format_headline
from hepgan.perf.machine import PeakMemory, device_label, machine_info, model_info
from hepgan.perf.seeds import DEFAULT_REPORT_SEED, check_report_seed
from hepgan.perf.sizes import DEFAULT_EVENTS, DEFAULT_SIZES, BenchSize, parse_size
from hepgan.perf.timing import ACTS_CONFIGS, ACTS_COVERS, STAGES, SURROGATE_COVERS, ActsTimer, SurrogateTimer

__all__ = [
    "ACTS_CONFIGS",
    "DEFAULT_SIZES",
    "SCHEMA_VERSION",
    "STAGES",
    "fit_exponent",
    "format_headline",
    "parse_size",
    "run_bench",
]

log = logging.getLogger(__name__)

SCHEMA_VERSION = "hepgan-bench/2"

_N_HIST_BINS = 40
_PULL_RANGE = 5.0


# --------------------------------------------------------------------------- helpers
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


def _json(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _spread(num: Sequence[float], den: Sequence[float]) -> dict:
    """Ratios num[i] / den[i] of paired repeats: median, min, max, each repeat's, and the ratio
    of the two medians."""
    n = min(len(num), len(den))
    a, b = np.asarray(num[:n], dtype=np.float64), np.asarray(den[:n], dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(b > 0, a / np.where(b > 0, b, 1.0), np.nan)
    r = r[np.isfinite(r)]
    if not len(r):
        return {"median": None, "min": None, "max": None, "per_repeat": [], "of_medians": None}
    med_b = float(np.median(den))
    return {
        "median": round(float(np.median(r)), 3),
        "min": round(float(r.min()), 3),
        "max": round(float(r.max()), 3),
        "per_repeat": [round(float(x), 3) for x in r],
        "of_medians": round(float(np.median(num)) / med_b, 3) if med_b > 0 else None,
    }


def _medians(per_repeat: Mapping[str, Sequence[float]]) -> dict[str, float]:
    return {k: round(float(np.median(v)), 4) for k, v in per_repeat.items()}


def _same_tracks(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return all(
        np.array_equal(ak.to_numpy(ak.flatten(a[k])), ak.to_numpy(ak.flatten(b[k])))
        for k in ("track_nhits", "track_hit_index")
    )


# --------------------------------------------------------------------------- physics
def _physics(hits, particles, tracks: Mapping[str, Mapping[str, Any]]) -> dict:
    """Summaries (pT > 1 and > 0.5 GeV), binned efficiencies and residual/pull histograms of
    each named set of tracks on the same events; residual bins are shared by all sets."""
    out: dict[str, Any] = {"summary": {}, "efficiency_vs_pt": {}, "efficiency_vs_eta": {}, "residuals": {}, "pulls": {}}
    residuals = {}
    for name, trk in tracks.items():
        out["summary"][name] = {
            "pt_gt_1": m.summarize(hits, particles, trk, pt_min=1.0, eta_max=2.5),
            "pt_gt_0.5": m.summarize(hits, particles, trk, pt_min=0.5, eta_max=2.5),
        }
        match = m.match_tracks(hits, particles, trk)
        out["efficiency_vs_pt"][name] = m.efficiency_vs_pt(match, particles, eta_max=2.5).as_dict()
        out["efficiency_vs_eta"][name] = m.efficiency_vs_eta(match, particles, pt_min=1.0).as_dict()
        den = m.efficiency_denominator(particles, match, pt_min=1.0, eta_max=2.5)
        residuals[name] = m.track_residuals(trk, particles, match, particle_mask=den)
    pull_edges = np.linspace(-_PULL_RANGE, _PULL_RANGE, _N_HIST_BINS + 1)
    for p in m.PERIGEE_PARAMETERS:
        # +-5 of the widest core width: the same bins for every set, tails in under/overflow.
        widths = [m.core_width(r.residual[p]) for r in residuals.values()]
        widths = [w for w in widths if math.isfinite(w) and w > 0]
        half = 5.0 * max(widths) if widths else 1.0
        edges = np.linspace(-half, half, _N_HIST_BINS + 1)
        out["residuals"][p] = {name: m.histogram_dict(r.residual[p], edges) for name, r in residuals.items()}
        out["pulls"][p] = {name: m.histogram_dict(r.pull[p], pull_edges) for name, r in residuals.items()}
    return out


def _paired(hits, particles, acts_tracks, sur_tracks) -> dict:
    """Particles found by both, by ACTS only, by the surrogate only (pT > 1 and > 0.5 GeV)."""
    ma = m.match_tracks(hits, particles, acts_tracks)
    ms = m.match_tracks(hits, particles, sur_tracks)
    out = {}
    for key, cut in (("pt_gt_1", 1.0), ("pt_gt_0.5", 0.5)):
        p = m.paired_counts(ma, ms, particles, pt_min=cut)
        out[key] = {
            "n_total": p["n_total"], "both": p["both"], "only_acts": p["only_a"],
            "only_surrogate": p["only_b"], "neither": p["neither"], "mcnemar_p_value": p["mcnemar_p_value"],
        }  # fmt: skip
    return out


# --------------------------------------------------------------------------- one size
def _simulate(size: BenchSize, n_events: int, seed: int, workdir: Path, progress: bool) -> tuple[Path, dict]:
    from hepgan.acts.simulation import simulate

    cfg = size.simulation_config(events=n_events, seed=seed)
    path = workdir / f"bench_{size.name}.root"
    t0 = time.perf_counter()
    summary = simulate(path, cfg, progress=progress)
    return path, {
        "wall_s": round(time.perf_counter() - t0, 2),
        "b_field_t": float(cfg.b_field),
        # ACTS's own timing inside simulate (spm 1, cold, one pass): for reference only
        "acts_ms_per_event_in_simulate": {k: round(float(v), 3) for k, v in summary["acts_ms_per_event"].items()},
    }


def _timed_runs(
    acts: Mapping[str, ActsTimer], sur: Mapping[str, SurrogateTimer], *, repeats: int, acts_repeats: int,
    progress: bool, size: str,
) -> tuple[dict, dict, dict, dict]:  # fmt: skip
    """Interleaved passes; returns per-repeat ms of ACTS and surrogate, their last tracks, and
    the surrogate's per-event engine ms (median over repeats)."""
    acts_ms: dict[str, dict[str, list[float]]] = {k: {} for k in acts}
    sur_ms: dict[str, dict[str, list[float]]] = {k: {} for k in sur}
    tracks: dict[str, Any] = {}
    per_event: dict[str, list[list[float]]] = {k: [] for k in sur}
    jobs = [("acts", k) for k in acts] + [("sur", k) for k in sur]
    n = max(repeats, acts_repeats)
    bar = tqdm(total=acts_repeats * len(acts) + repeats * len(sur), desc=f"timing {size}", unit="pass",
               disable=not progress, leave=False)  # fmt: skip
    for r in range(n):
        # rotate the order each repeat: no side always runs right after another
        for kind, key in jobs[r % len(jobs) :] + jobs[: r % len(jobs)]:
            if kind == "acts" and r < acts_repeats:
                ms, tracks[key] = acts[key].run()
                for s, v in ms.items():
                    acts_ms[key].setdefault(s, []).append(v)
            elif kind == "sur" and r < repeats:
                ms, ev_ms, tracks[key] = sur[key].run()
                for s, v in ms.items():
                    sur_ms[key].setdefault(s, []).append(v)
                per_event[key].append(ev_ms)
            else:
                continue
            bar.update(1)
    bar.close()
    ev_median = {k: [round(float(x), 4) for x in np.median(np.array(v), axis=0)] for k, v in per_event.items()}
    return acts_ms, sur_ms, tracks, ev_median


def _bench_size(
    size: BenchSize, n_events: int, *, model: Path, repeats: int, acts_repeats: int, threads_all: int,
    providers: Any, seed: int, workdir: Path, memory: PeakMemory, progress: bool,
) -> dict:  # fmt: skip
    from hepgan.io.events import read_events

    mem: dict[str, float] = {}
    memory.start()
    path, simulation = _simulate(size, n_events, seed, workdir, progress)
    mem["simulate"] = memory.peak_mib()
    memory.start()
    acts = {
        key: ActsTimer(path, seeds_per_middle_sp=spm, b_field=simulation["b_field_t"]) for key, spm in ACTS_CONFIGS.items()
    }
    thread_sets = {"threads_1": 1, "threads_all": max(1, int(threads_all))}
    sur = {
        key: SurrogateTimer(model, path, workdir / f"surrogate_{size.name}_{key}.root", threads=n, providers=providers, seed=seed)
        for key, n in thread_sets.items()
    }
    acts_ms, sur_ms, tracks, ev_median = _timed_runs(
        acts, sur, repeats=repeats, acts_repeats=acts_repeats, progress=progress, size=size.name
    )
    mem["timing"] = memory.peak_mib()

    memory.start()
    ev = read_events(path, trees=("hits", "particles", "tracks"), truth=True)
    hits, particles = ev["hits"], ev["particles"]
    file_tracks = {k: ev["tracks"][k] for k in ev["tracks"].fields}
    hits_n = ak.to_numpy(ak.num(hits["hit_x"], axis=1)).astype(np.float64)
    sets = {f"acts_{k}": tracks[k] for k in acts} | {"surrogate": tracks["threads_1"]}
    physics = _physics(hits, particles, sets)
    paired = {k: _paired(hits, particles, tracks[k], tracks["threads_1"]) for k in acts}
    agree = {k: m.agreement(tracks[k], tracks["threads_1"]) for k in acts}
    mem["physics"] = memory.peak_mib()

    acts_out = {}
    for key, spm in ACTS_CONFIGS.items():
        walls, cpus = acts_ms[key].pop("call_wall_s"), acts_ms[key].pop("call_cpu_s")
        acts_out[key] = {
            "max_seeds_per_spm": spm,
            "acts_repeats": acts_repeats,
            "threads": 1,
            "covers": ACTS_COVERS,
            "startup_s": round(acts[key].startup_s, 3),
            "ms_per_event": _medians(acts_ms[key]),
            "ms_per_event_repeats": {s: [round(x, 4) for x in v] for s, v in acts_ms[key].items()},
            "call_wall_s": [round(x, 3) for x in walls],
            # share of a core the one-thread ACTS calls got: < 1 means they waited for a CPU
            "cpu_share": round(float(np.median(np.asarray(cpus) / np.asarray(walls))), 3),
        }
    sur_out = {}
    for key, t in sur.items():
        sur_out[key] = {
            "threads": t.engine.threads,
            "providers": list(t.engine.providers),
            "repeats": repeats,
            "covers": SURROGATE_COVERS,
            "startup_s": round(t.startup_s, 3),
            "ms_per_event": _medians(sur_ms[key]),
            "ms_per_event_repeats": {s: [round(x, 4) for x in v] for s, v in sur_ms[key].items()},
            "reco_ms_per_event_list": ev_median[key],
        }
    speedup = {
        a: {
            s: {
                "reco": _spread(acts_ms[a]["total_reco"], sur_ms[s]["reco"]),
                "end_to_end": _spread(acts_ms[a]["total_reco"], sur_ms[s]["end_to_end"]),
                "seeding": _spread(acts_ms[a]["seeding"], sur_ms[s]["seeding"]),
            }
            for s in sur
        }
        for a in acts
    }
    return {
        "size": size.as_dict(),
        "events": n_events,
        "file": str(path),
        "hits_per_event": round(float(hits_n.mean()), 1),
        "hits_per_event_list": [int(x) for x in hits_n],
        "simulation": simulation,
        "acts": acts_out,
        "surrogate": sur_out,
        "speedup": speedup,
        # the classic chain with spm 1 on the file's hits reproduces simulate's own ACTS tracks
        "acts_spm1_reproduces_file_tracks": _same_tracks(tracks["spm1"], file_tracks),
        # the noise is seeded per event, so the thread count must not change the tracks
        "surrogate_tracks_identical_across_threads": _same_tracks(tracks["threads_1"], tracks["threads_all"]),
        "physics": physics,
        "paired": paired,
        "agreement": agree,
        "peak_rss_mib": mem,
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
    }


# --------------------------------------------------------------------------- run
def _events_per_size(sizes: Sequence[BenchSize], events: int | Mapping[str, int] | None) -> dict[str, int]:
    if events is None:
        n = {s.name: DEFAULT_EVENTS.get(s.name, 5) for s in sizes}
    elif isinstance(events, Mapping):
        given = {parse_size(k).name: int(v) for k, v in events.items()}
        unknown = sorted(set(given) - {s.name for s in sizes})
        if unknown:
            msg = f"events given for sizes not benchmarked: {unknown}; sizes are {[s.name for s in sizes]}"
            raise InputError(msg)
        n = {s.name: given.get(s.name, DEFAULT_EVENTS.get(s.name, 5)) for s in sizes}
    else:
        n = {s.name: int(events) for s in sizes}
    if min(n.values()) < 1:
        msg = f"events per size must be >= 1, got {n}"
        raise InputError(msg)
    return n


def run_bench(
    output_json: str | os.PathLike | None,
    *,
    sizes: Sequence[str] = DEFAULT_SIZES,
    events: int | Mapping[str, int] | None = None,
    repeats: int = 3,
    acts_repeats: int = 3,
    model: str | os.PathLike | None = None,
    threads_all: int | None = None,
    providers: str | Sequence[str] | None = None,
    seed: int = DEFAULT_REPORT_SEED,
    allow_tuning_seed: bool = False,
    progress: bool = True,
    workdir: str | os.PathLike | None = None,
) -> dict:
    """Run the benchmark protocol (module docstring) and write its JSON.

    Args:
        output_json: where to write the results (None: do not write; the dict is returned).
        sizes: ``"VxM"`` (gun) or ``"ttbar-puN"`` (collisions) strings.
        events: events per size: one int for all, or {size: n}; None: :data:`DEFAULT_EVENTS`
            (5 for sizes not listed there).
        repeats: timed surrogate passes per thread setting (>= 1; 3 or more for the protocol).
        acts_repeats: timed ACTS passes per configuration, interleaved with the surrogate's.
        model: the ONNX model (None: the shipped one).
        threads_all: threads (events at once) of the "all cores" setting (None: os.cpu_count()).
        providers: onnxruntime providers (None = CPU; 'cuda' or 'auto' for a GPU run, whose
            results are labelled with the device).
        seed: simulation seed (also the engine's noise seed); a registered report seed
            (:mod:`hepgan.perf.seeds`); train/tune seeds are refused unless `allow_tuning_seed`.
        progress: tqdm bars for the simulation and the timed passes.
        workdir: where the simulated and reconstructed files go (None: a temporary folder,
            removed at the end).

    Returns:
        The results: ``schema``, ``device`` {kind, name, providers, label}, ``machine``
        (:func:`hepgan.perf.machine.machine_info`, load average at start and end), ``model``,
        ``config`` (with ``seed_purpose``), ``notes``, ``sizes`` {name: ``size``, ``events``,
        ``hits_per_event``, ``acts`` {spm1, spm5: ``max_seeds_per_spm``, ``acts_repeats``,
        ``covers``, ``startup_s``, ``ms_per_event`` (median over repeats) per stage and
        ``total_reco``, ``ms_per_event_repeats``, ``cpu_share``}, ``surrogate`` {threads_1,
        threads_all: the same for the surrogate's stages, ``reco`` (wall), ``reco_stages``,
        ``end_to_end``, ``reco_cpu``}, ``speedup`` {spm1, spm5: {threads_1, threads_all: {reco, end_to_end,
        seeding: {median, min, max, per_repeat, of_medians}}}}, ``physics`` (``summary`` of
        acts_spm1, acts_spm5, surrogate at pt_gt_1 and pt_gt_0.5 with intervals and
        categories, binned efficiencies, residual and pull histograms), ``paired`` and
        ``agreement`` per ACTS row, ``peak_rss_mib``}, ``scaling`` and ``headline``.
    """
    from hepgan.reco.model_file import shipped_model_path

    if repeats < 1 or acts_repeats < 1:
        msg = f"repeats and acts_repeats must be >= 1, got {repeats}, {acts_repeats}"
        raise InputError(msg)
    parsed = [parse_size(s) for s in sizes]
    if not parsed:
        msg = "no benchmark sizes given"
        raise InputError(msg)
    names = [s.name for s in parsed]
    if len(set(names)) != len(names):
        msg = f"benchmark sizes repeat: {names}"
        raise InputError(msg)
    n_events = _events_per_size(parsed, events)
    purpose = check_report_seed(seed, allow_tuning_seed=allow_tuning_seed)
    threads_all = int(threads_all or os.cpu_count() or 1)
    model_path = Path(model) if model is not None else shipped_model_path()
    device = device_label(providers)
    memory = PeakMemory()
    results: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "device": device,
        "machine": machine_info(),
        "model": model_info(model_path),
        "config": _config(names, n_events, repeats, acts_repeats, threads_all, device, seed, purpose, memory),
        "notes": _notes(purpose, device),
        "sizes": {},
    }
    training = results["model"].get("training") or {}
    if isinstance(training, Mapping) and training.get("fake"):
        results["notes"].append(
            "The model is the test-only stand-in (tests/_fake_model.py: seed helix + fixed hit "
            "windows, no learning): timings are representative of the chain, physics is not."
        )
    with tempfile.TemporaryDirectory(prefix="hepgan-bench-") as tmp:
        work = Path(workdir) if workdir is not None else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for s in parsed:
            t0 = time.perf_counter()
            log.info("bench %s: %d events, %d + %d repeats", s.name, n_events[s.name], acts_repeats, repeats)
            results["sizes"][s.name] = _bench_size(
                s, n_events[s.name], model=model_path, repeats=repeats, acts_repeats=acts_repeats,
                threads_all=threads_all, providers=providers, seed=seed, workdir=work, memory=memory,
                progress=progress,
            )  # fmt: skip
            log.info("bench %s done in %.1f s", s.name, time.perf_counter() - t0)
    results["scaling"] = _scaling(results["sizes"])
    results["headline"] = build_headline(results)
    results["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    # ru_maxrss: KiB on Linux (the platform this runs on; macOS would report bytes).
    results["machine"]["peak_rss_mib_process"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)
    if output_json is not None:
        write_json_atomically(Path(output_json), results)
    return results


def _config(names, n_events, repeats, acts_repeats, threads_all, device, seed, purpose, memory) -> dict:
    """The run's settings as the results JSON records them."""
    return {
        "sizes": names,
        "events": n_events,
        "repeats": repeats,
        "acts_repeats": acts_repeats,
        "acts_max_seeds_per_spm": list(ACTS_CONFIGS.values()),
        "threads_all": threads_all,
        "providers": device["providers"],
        "seed": seed,
        "seed_purpose": purpose,
        "gun": {"pt_range_gev": [0.5, 10.0], "eta_max": 2.5, "vertex_sigma_z_mm": 50.0},
        "efficiency_pt_min_gev": [1.0, 0.5],
        "eta_max": 2.5,
        "interval": {"method": "Clopper-Pearson", "cl": m.ONE_SIGMA_CL},
        "agreement_fraction": m.AGREEMENT_FRACTION,
        "pt_bins_gev": [float(x) for x in m.DEFAULT_PT_BINS],
        "eta_bins": [float(x) for x in m.DEFAULT_ETA_BINS],
        "peak_rss_method": memory.method,
    }


def _notes(purpose: str, device: Mapping[str, Any]) -> list[str]:
    notes = [
        "Same events, same process: ACTS (1 thread; max_seeds_per_spm 1 and 5) and the surrogate (1 thread "
        "and all cores) each warmed up, then interleaved repeat after repeat (order rotated each repeat).",
        f"ACTS {ACTS_COVERS}.",
        f"Surrogate {SURROGATE_COVERS}.",
        "ms/event are marginal: per-event stage times summed over the events / events (the surrogate's reco: "
        "its engine's wall time / events), warm; one-off start-up (detector, sequencer, model load, kernel "
        "compilation) is startup_s, apart.",
        "Quoted ms/event are medians over repeats; each speed-up is the median [min, max] of the per-repeat "
        "ratios ACTS total_reco / surrogate reco.",
        "threads_all reconstructs threads_all events at once, one thread each, in one process (as hepgan reco "
        "--threads N; onnxruntime on one thread per event): its reco and end_to_end are wall time per event, "
        "the throughput; its stages are each event's stage times in its own thread (per-thread wall) summed over "
        "events / events, so they add up to reco_stages, up to threads_all times reco. With 1 thread reco and "
        "reco_stages differ by the event loop only.",
        "Rates carry Clopper-Pearson intervals at 68.27% CL; paired counts are particles found by one side only "
        "(exact McNemar p-value); agreement = ACTS tracks reproduced by one surrogate track with >= 75% of "
        "their hits.",
        "trackml_score is trackml-library's definition (|tz - vz| hit order, one track per hit: a shared hit "
        "goes to the track listing most hits); trackml_score_hepgan is hepgan's earlier variant.",
    ]
    if purpose != "report":
        notes.append(f"THE SEED IS NOT A REPORT SEED (registered purpose: {purpose}); do not quote these figures.")
    if device["kind"] != "cpu":
        notes.append(
            f"Network on {device['label']}: speed-ups here compare ACTS on 1 CPU thread with the surrogate on "
            "this device; never mix them with CPU-only ratios."
        )
    return notes


def _scaling(per_size: Mapping[str, dict]) -> dict:
    """Time vs hits per event across sizes and the exponents of log-log fits (ms ~ hits^k):
    over all sizes, over sizes of >= 10k hits/event, and per process over its sizes of >= 10k
    hits/event (docs/targets.md's range: gun 20 x 50 up, ttbar pile-up 50 up)."""
    names = list(per_size)
    hits = [per_size[s]["hits_per_event"] for s in names]
    series: dict[str, list[float]] = {}
    for a in ACTS_CONFIGS:
        for key in ("total_reco", "seeding", "ckf"):
            series[f"acts_{a}_{key}"] = [per_size[s]["acts"][a]["ms_per_event"][key] for s in names]
    for label in ("threads_1", "threads_all"):
        for key in ("reco", "end_to_end", "seeding", "network"):
            series[f"surrogate_{label}_{key}"] = [per_size[s]["surrogate"][label]["ms_per_event"][key] for s in names]

    def fit(idx: list[int]) -> dict[str, float | None] | None:
        if len(idx) < 2:
            return None
        return {k: fit_exponent([hits[i] for i in idx], [v[i] for i in idx]) for k, v in series.items()}

    big = [i for i, h in enumerate(hits) if h >= 10_000]
    processes = sorted({per_size[s]["size"]["process"] for s in names})
    return {
        "sizes": names,
        "hits_per_event": hits,
        "ms_per_event": series,
        "exponent": fit(list(range(len(names)))) or dict.fromkeys(series),
        "exponent_from_12k_hits": fit(big),
        "exponent_by_process": {p: fit([i for i in big if per_size[names[i]]["size"]["process"] == p]) for p in processes},
    }
