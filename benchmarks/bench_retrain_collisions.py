"""The collision-trained model against the gun-trained one, on tuning events only.

Usage: python benchmarks/bench_retrain_collisions.py --baseline OLD.onnx --model NEW.onnx [--name NAME]
       [--model NEW2.onnx --name NAME2 ...] [--data DIR] [--gun FILE FILE] [--no-scan] [-o JSON]

Samples (tuning seeds, docs/seeds.md; never the events a figure for the README comes from):
ttbar at pile-up 0 / 50 / 200 (seeds 5001 / 5050 / 5200; 10 / 4 / 3 events, named as
benchmarks/bench_collisions.py names them in --data) and pion guns 20 x 50 and 100 x 50 (seeds
3011 / 3012; 5 and 3 events), each simulated into --data unless there already. Per sample and
model, each with its own seeding config (the model's metadata): efficiency at pT > 1 and
> 0.5 GeV overall, for the hard scatter and for displaced particles (generator-level charged,
>= 7 hits, |eta| < 2.5; Clopper-Pearson 68% intervals), fake and duplicate rates, the TrackML
score (trackml-library's), the ACTS tracks reproduced (hepgan.perf.metrics.agreement: one track
holding >= 75% of an ACTS track's hits) with the pull widths against ACTS of the reproduced
pairs, the pull widths against the truth, and the engine's ms/event in all and per stage
(1 thread, after a warm-up event; the models alternate per event so that load on the shared
machine hits all alike); each new model against the baseline on the same particles (found by
both, by one only, exact McNemar p-value; pT > 1 and > 0.5 GeV, all and displaced). ACTS's
figures on the same events for reference. Then, for each new
model on the ttbar samples (unless --no-scan), the engine's score cut
(AssignmentConfig.score_min, not part of the model) scanned: efficiency and fake rate as it
tightens. With one --model it is named "new"; with several, --name gives each its name.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import awkward as ak
import numpy as np

from hepgan.acts.simulation import SimulationConfig, simulate
from hepgan.io.atomic import write_json_atomically
from hepgan.io.events import read_events
from hepgan.perf.bench import machine_info
from hepgan.perf.metrics import available_categories, match_tracks, paired_counts, summarize
from hepgan.perf.metrics.agreement import agreement
from hepgan.reco.engine import ENGINE_STAGES, Engine

SCORE_MIN_SCAN = (0.5, 0.6, 0.7, 0.8, 0.9)
_COLS = ("hit_x", "hit_y", "hit_z", "hit_volume_id", "hit_layer_id")
#: pile-up -> (seed, events)
TTBAR = {0: (5001, 10), 50: (5050, 4), 200: (5200, 3)}
#: name -> (seed, events, vertices)
GUNS = {"gun_20x50": (3011, 5, 20), "gun_100x50": (3012, 3, 100)}


def tuning_samples(data: Path, guns: list[Path] | None, ttbar_events: list[int] | None = None) -> list[tuple[str, Path, int]]:
    """(name, file, seed) of every sample, simulated into `data` where missing; `ttbar_events`
    the events at pile-up 0 / 50 / 200 instead of TTBAR's (the same seeds: the first events
    are the same, events depend on the seed and their index)."""
    data.mkdir(parents=True, exist_ok=True)
    out = []
    for i, (pu, (seed, n)) in enumerate(TTBAR.items()):
        n = ttbar_events[i] if ttbar_events else n
        path = data / f"ttbar_pu{pu}_seed{seed}_{n}ev.root"
        if not path.exists():
            simulate(path, SimulationConfig(events=n, process="ttbar", pileup=pu, seed=seed), progress=False)
        out.append((f"ttbar_pu{pu}", path, seed))
    for i, (name, (seed, n, vertices)) in enumerate(GUNS.items()):
        path = guns[i] if guns else data / f"{name}_seed{seed}_{n}ev.root"
        if not path.exists():
            simulate(path, SimulationConfig(events=n, vertices=vertices, particles=50, seed=seed), progress=False)
        out.append((name, path, seed))
    return out


def engine_tracks(engines: dict[str, Engine], hits: ak.Array) -> tuple[dict[str, ak.Array], dict[str, list[float]]]:
    """Every event through every engine, the engines alternating per event. ``ms[name]`` holds
    the ms of each event; ``ms[name + ":" + stage]`` those of each of the engine's stages."""
    per_event: dict[str, list] = {k: [] for k in engines}
    ms: dict[str, list[float]] = {k: [] for k in engines}
    ms.update({f"{k}:{stage}": [] for k in engines for stage in ENGINE_STAGES})
    first = [ak.to_numpy(hits[k][0]) for k in _COLS]
    for engine in engines.values():  # JIT and onnxruntime warm-up, not timed
        engine.reconstruct_event(*first, event_id=0)
    for i in range(len(hits)):
        cols = [ak.to_numpy(hits[k][i]) for k in _COLS]
        for name, engine in engines.items():
            t0 = time.perf_counter()
            tracks, stage_ms = engine.reconstruct_event(*cols, event_id=int(hits["event_id"][i]))
            ms[name].append(1e3 * (time.perf_counter() - t0))
            for stage in ENGINE_STAGES:
                ms[f"{name}:{stage}"].append(float(stage_ms.get(stage, np.nan)))
            per_event[name].append(tracks)
    out = {}
    for name, events in per_event.items():
        arrays = {k: ak.Array([t[k] for t in events]) for k in events[0]}
        arrays["event_id"] = hits["event_id"]
        out[name] = ak.Array(arrays)
    return out, ms


def figures(hits: ak.Array, particles: ak.Array, tracks: ak.Array, acts_tracks: ak.Array | None = None) -> dict:
    """The compared figures of one track collection; with `acts_tracks`, also the ACTS tracks
    it reproduces and the pulls of the reproduced pairs against ACTS."""
    s1 = summarize(hits, particles, tracks, pt_min=1.0)
    s05 = summarize(hits, particles, tracks, pt_min=0.5)
    out = {
        "tracks_per_event": s1["n_tracks"] / max(s1["n_events"], 1),
        "fake_rate": s1["fake_rate"],
        "fake_rate_interval": s1["fake_rate_interval"],
        "duplicate_rate": s1["duplicate_rate"],
        "duplicate_rate_interval": s1["duplicate_rate_interval"],
        "n_fakes": s1["n_fakes"],
        "trackml_score": s1["trackml_score"],
        # against the truth, matched particles with pT > 1 GeV: core width of the pulls
        "truth_pull_width": {p: r.get("pull_width") for p, r in s1["resolutions"].items()},
        "resolution": {p: r.get("resolution") for p, r in s1["resolutions"].items()},
    }
    for pt, s in (("1.0", s1), ("0.5", s05)):
        iv = s["efficiency_interval"]
        out[f"efficiency_pt{pt}"] = {"efficiency": s["efficiency"], "k": iv["k"], "n_total": s["n_particles_denominator"],
                                     "lower": iv["lower"], "upper": iv["upper"]}  # fmt: skip
        for cat in ("hard_scatter", "displaced"):
            c = s["efficiency_categories"].get(cat)
            if c is not None:
                out[f"efficiency_pt{pt}_{cat}"] = {"efficiency": c["value"], "k": c["k"], "n_total": c["n"],
                                                   "lower": c["lower"], "upper": c["upper"]}  # fmt: skip
    if acts_tracks is not None:
        ag = agreement(acts_tracks, tracks)
        out["agreement"] = {k: ag[k] for k in ("n_acts_tracks", "n_reproduced", "fraction_reproduced",
                                                "pull_width", "pull_mean")}  # fmt: skip
    return out


def score_min_scan(engine: Engine, hits: ak.Array, particles: ak.Array) -> dict:
    """The new model's efficiency and fake rate as the engine's score cut tightens."""
    base = engine.assignment
    scan = {}
    try:
        for cut in SCORE_MIN_SCAN:
            engine.assignment = dataclasses.replace(base, score_min=cut)
            tracks, _ = engine_tracks({"new": engine}, hits)
            f = figures(hits, particles, tracks["new"])
            scan[f"score_min={cut}"] = {k: f[k] for k in ("efficiency_pt1.0", "efficiency_pt0.5", "fake_rate",
                                                           "duplicate_rate", "trackml_score")}  # fmt: skip
            print(f"  score_min {cut}: eff>1 {f['efficiency_pt1.0']['efficiency']:.4f} fake {f['fake_rate']:.4f}", flush=True)
    finally:
        engine.assignment = base
    return scan


def measure(path: Path, engines: dict[str, Engine], *, scan: bool = True) -> dict:
    data = read_events(path, trees=("hits", "particles", "tracks"), truth=True)
    hits, particles = data["hits"], data["particles"]
    result: dict = {"file": str(path), "events": len(hits), "hits_per_event": float(ak.mean(ak.num(hits.hit_x)))}
    result["acts"] = figures(hits, particles, data["tracks"])
    tracks, ms = engine_tracks(engines, hits)
    for name in engines:
        result[name] = figures(hits, particles, tracks[name], data["tracks"])
        result[name]["engine_ms_per_event"] = float(np.mean(ms[name]))
        result[name]["engine_stage_ms_per_event"] = {s: float(np.mean(ms[f"{name}:{s}"])) for s in ENGINE_STAGES}
    # each new model against the baseline on the same particles: found by both, by one only
    # (exact McNemar p-value of the discordant counts)
    base_match = match_tracks(hits, particles, tracks["baseline"])
    cats = available_categories(particles)
    for name in engines:
        if name == "baseline":
            continue
        match = match_tracks(hits, particles, tracks[name])
        result[name]["paired_vs_baseline"] = {
            f"pt{cut}{'_' + cat if cat != 'all' else ''}": paired_counts(base_match, match, particles, pt_min=cut, category=cat)
            for cut in (1.0, 0.5) for cat in ("all", *(c for c in ("displaced",) if c in cats))
        }  # fmt: skip
    if scan and path.name.startswith("ttbar"):
        for name in engines:
            if name != "baseline":
                key = "new_score_min_scan" if name == "new" else f"{name}_score_min_scan"
                result[key] = score_min_scan(engines[name], hits, particles)
    return result


def _headline(r: dict, name: str) -> str:
    f = r[name]
    hs = f.get("efficiency_pt1.0_hard_scatter", {}).get("efficiency")
    hs_text = f"{hs:.4f}" if hs is not None else "-"
    dp = f.get("efficiency_pt1.0_displaced", {}).get("efficiency")
    dp_text = f"{dp:.4f}" if dp is not None else "-"
    ms = f.get("engine_ms_per_event")
    seeding = f.get("engine_stage_ms_per_event", {}).get("seeding")
    ag = f.get("agreement", {}).get("fraction_reproduced")
    return (f"{name:9s} eff>1 {f['efficiency_pt1.0']['efficiency']:.4f} eff>0.5 {f['efficiency_pt0.5']['efficiency']:.4f} "
            f"hs {hs_text} displ {dp_text} fake {f['fake_rate']:.4f} dup {f['duplicate_rate']:.4f} "
            f"trackml {f['trackml_score']:.3f}" + (f" reproduced {ag:.3f}" if ag is not None else "")
            + (f" {ms:.0f} ms (seeding {seeding:.0f})" if ms is not None else ""))  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", type=Path, required=True, help="the gun-trained model (.onnx)")
    ap.add_argument("--model", type=Path, required=True, action="append",
                    help="the collision-trained model (.onnx); repeat it to compare several")
    ap.add_argument("--name", action="append", help="each --model's name (default: new with one model)")
    ap.add_argument("--no-scan", dest="scan", action="store_false", help="skip the score_min scan")
    ap.add_argument("--ttbar-events", type=int, nargs=3, metavar=("PU0", "PU50", "PU200"),
                    help="ttbar events per pile-up (default 10 4 3), the same tuning seeds")
    ap.add_argument("--data", type=Path, default=Path("/tmp/collisions_data"),
                    help="folder of the tuning samples (bench_collisions.py's, by default)")
    ap.add_argument("--gun", type=Path, nargs=2, help="gun tuning files instead (seeds 3011, 3012: 20 x 50, 100 x 50)")
    ap.add_argument("--what", default="collision-trained model (new) against the gun-trained one (baseline)",
                    help="what the two models are, for the JSON")
    ap.add_argument("-o", "--output", type=Path,
                    default=Path(__file__).parent / "results" / "retrain-collisions.json")
    args = ap.parse_args(argv)
    names = args.name or (["new"] if len(args.model) == 1 else None)
    if names is None or len(names) != len(args.model) or len(set(names)) != len(names) or "baseline" in names:
        ap.error("give each --model a distinct --name (not 'baseline'), or one --model alone")
    paths = {"baseline": args.baseline, **dict(zip(names, args.model, strict=True))}
    engines = {name: Engine(p, threads=1) for name, p in paths.items()}
    results = {}
    for name, path, seed in tuning_samples(args.data, args.gun, args.ttbar_events):
        t0 = time.perf_counter()
        r = measure(path, engines, scan=args.scan)
        r["seed"] = seed
        results[name] = r
        print(f"{name} ({r['events']} events, {r['hits_per_event']:.0f} hits/event, {time.perf_counter() - t0:.0f} s)")
        for who in ("acts", *engines):
            print("  " + _headline(r, who), flush=True)
    doc = {
        "benchmark": f"{args.what}, tuning seeds only",
        "machine": machine_info(),
        "models": {
            name: {"path": str(p), "seeding_config": {k: getattr(engines[name].seeding_config, k)
                                                      for k in ("d0_max", "d0_max_first_layer", "z0_max", "pt_min",
                                                                "eta_max", "max_seeds_per_middle")}}
            for name, p in paths.items()
        },  # fmt: skip
        "selection": "generator-level (particle_primary) charged, >= 7 hits, |eta| < 2.5; hard_scatter = "
                     "particle_hard_scatter, displaced = particle_vertex_secondary > 0; fake/duplicate rates over "
                     "all tracks; trackml_score is trackml-library's; engine_ms_per_event: Engine.reconstruct_event, "
                     "1 thread, mean after a warm-up event, models alternating per event",
        "results": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomically(args.output, doc)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
