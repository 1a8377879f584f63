"""Benchmark of hepgan.reco.seeding on ACTS events at 20 x 50, 100 x 50 and 200 x 50.

Usage: python benchmarks/bench_seeding.py [--data DIR] [--events N] [--repeats R] [-o JSON]

Samples are simulated with hepgan.acts.simulation into DIR (default /tmp/seed_data, reused when
present: s20x50.root, s100x50.root, s200x50.root, seed 11). For each size: ms/event (median
over events x repeats after a warm-up call; wall and process CPU time, because the machine may
be shared), seeds/event, seeding efficiency (pT > 1 GeV and > 0.5 GeV) and purity against
truth, the doublet/triplet counters, and ACTS's seeding time from the same files'
``acts_timing`` tree. The exponent of time vs hits is a least-squares fit of log(ms) on
log(hits) over all events. Compile time is measured in fresh processes: with an empty numba
cache (compile) and with the cache filled (load).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from hepgan.io.events import read_events
from hepgan.perf.machine import machine_info
from hepgan.reco.geometry import GENERIC_DETECTOR
from hepgan.reco.seeding import SeedingConfig, find_seeds

SIZES = ((20, 50), (100, 50), (200, 50))
_BRANCHES = ("hit_x", "hit_y", "hit_z", "hit_volume_id", "hit_layer_id")


def seeding_efficiency(seeds: np.ndarray, hit_particle_id: np.ndarray, particles, pt_min: float = 1.0) -> tuple[int, int, int]:
    """(found, reconstructable, pure seeds); reconstructable = primary, charged, pT > pt_min,
    |eta| < 2.5, >= 7 hits; found = has a seed whose 3 hits all belong to it."""
    px = np.asarray(particles["particle_px"], np.float64)
    py = np.asarray(particles["particle_py"], np.float64)
    pz = np.asarray(particles["particle_pz"], np.float64)
    pt = np.hypot(px, py)
    eta = np.arcsinh(pz / pt)
    rec = (
        np.asarray(particles["particle_primary"]) & (np.asarray(particles["particle_q"]) != 0)
        & (pt > pt_min) & (np.abs(eta) < 2.5) & (np.asarray(particles["particle_nhits"]) >= 7)
    )  # fmt: skip
    owner = hit_particle_id[seeds]
    pure = (owner[:, 0] == owner[:, 1]) & (owner[:, 1] == owner[:, 2]) & (owner[:, 0] != 0)
    found = np.isin(np.asarray(particles["particle_id"])[rec], owner[pure, 0])
    return int(found.sum()), int(rec.sum()), int(pure.sum())


def sample(data: Path, vertices: int, particles: int, events: int) -> Path:
    path = data / f"s{vertices}x{particles}.root"
    if not path.exists():
        from hepgan.acts.simulation import SimulationConfig, simulate

        data.mkdir(parents=True, exist_ok=True)
        simulate(path, SimulationConfig(events=events, vertices=vertices, particles=particles, seed=11), progress=False)
    return path


def compile_times() -> dict:
    """Seconds for the first find_seeds call in a fresh process: empty cache, then warm cache."""
    code = (
        "import time, numpy as np\n"
        "t = time.perf_counter()\n"
        "from hepgan.reco.geometry import GENERIC_DETECTOR\n"
        "from hepgan.reco.seeding import find_seeds\n"
        "r = np.array([32.0, 72.0, 116.0, 172.0]); z = 0.5 * r\n"
        "t0 = time.perf_counter()\n"
        "find_seeds(r, 0 * r, z, np.full(4, 8, np.int32), np.array([2, 4, 6, 8], np.int32), geometry=GENERIC_DETECTOR)\n"
        "print(time.perf_counter() - t0)\n"
    )
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        for label in ("cold_cache_s", "warm_cache_s"):
            res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
            out[label] = round(float(res.stdout.strip().splitlines()[-1]), 3)
    return out


def bench_size(path: Path, n_events: int, repeats: int, config: SeedingConfig) -> dict:
    d = read_events(path, trees=("hits", "particles", "acts_timing"), truth=True)
    hits, parts, acts = d["hits"], d["particles"], d["acts_timing"]
    n = min(n_events, len(hits))
    find_seeds(*[np.asarray(hits[0][b]) for b in _BRANCHES], geometry=GENERIC_DETECTOR, config=config)  # warm-up
    wall, cpu, n_hits, n_pixel, n_seeds = [], [], [], [], []
    found = total = pure = found05 = total05 = 0
    for k in range(n):
        cols = [np.asarray(hits[k][b]) for b in _BRANCHES]
        ev_wall, ev_cpu = [], []
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            seeds = find_seeds(*cols, geometry=GENERIC_DETECTOR, config=config)
            ev_wall.append(time.perf_counter() - t0)
            ev_cpu.append(time.process_time() - c0)
        wall.append(1e3 * float(np.median(ev_wall)))
        cpu.append(1e3 * float(np.median(ev_cpu)))
        n_hits.append(len(cols[0]))
        n_pixel.append(int(np.isin(cols[3], GENERIC_DETECTOR.pixel_volumes).sum()))
        n_seeds.append(len(seeds))
        hpid = np.asarray(hits[k]["hit_particle_id"])
        f, t, p = seeding_efficiency(seeds, hpid, parts[k], 1.0)
        f5, t5, _ = seeding_efficiency(seeds, hpid, parts[k], 0.5)
        found, total, pure = found + f, total + t, pure + p
        found05, total05 = found05 + f5, total05 + t5
    acts_ms = np.asarray(acts["acts_seeding_ms"], np.float64)[:n]
    return {
        "file": str(path),
        "events": n,
        "repeats": repeats,
        "hits_per_event": float(np.mean(n_hits)),
        "pixel_hits_per_event": float(np.mean(n_pixel)),
        "ms_per_event_median_wall": round(float(np.median(wall)), 2),
        "ms_per_event_median_cpu": round(float(np.median(cpu)), 2),
        "ms_per_event_wall": [round(x, 2) for x in wall],
        "ms_per_event_cpu": [round(x, 2) for x in cpu],
        "seeds_per_event": float(np.mean(n_seeds)),
        "efficiency_pt1": found / total if total else None,
        "reconstructable_pt1": total,
        "efficiency_pt05": found05 / total05 if total05 else None,
        "purity": pure / sum(n_seeds) if n_seeds and sum(n_seeds) else None,
        "acts_seeding_ms_median": round(float(np.median(acts_ms)), 1),
        "speedup_vs_acts_seeding": round(float(np.median(acts_ms)) / float(np.median(cpu)), 1),
        "_points": list(zip(n_hits, cpu, strict=True)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("/tmp/seed_data"))
    ap.add_argument("--events", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("-o", "--output", type=Path, default=Path(__file__).parent / "results" / "seeding.json")
    args = ap.parse_args(argv)
    config = SeedingConfig()
    events_for = {20: 5, 100: 4, 200: 3}
    results = {}
    points = []
    for v, p in SIZES:
        path = sample(args.data, v, p, events_for[v])
        res = bench_size(path, args.events, args.repeats, config)
        points += res.pop("_points")
        results[f"{v}x{p}"] = res
        print(f"{v}x{p}: {res['hits_per_event']:.0f} hits, {res['ms_per_event_median_cpu']} ms cpu "
              f"({res['ms_per_event_median_wall']} wall), {res['seeds_per_event']:.0f} seeds, "
              f"eff {res['efficiency_pt1']:.4f}, purity {res['purity']:.3f}, ACTS seeding "
              f"{res['acts_seeding_ms_median']} ms", flush=True)  # fmt: skip
    h, t = np.log([x[0] for x in points]), np.log([x[1] for x in points])
    exponent = float(np.polyfit(h, t, 1)[0])
    doc = {
        "benchmark": "hepgan.reco.seeding.find_seeds",
        # 1 thread; the machine may be shared: cpu = process time, wall = elapsed
        "machine": machine_info(),
        "config": {k: getattr(config, k) for k in config.__dataclass_fields__},
        "sizes": results,
        "time_vs_hits_exponent_cpu": round(exponent, 2),
        "first_call_s": compile_times(),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"exponent {exponent:.2f}; first call {doc['first_call_s']}; wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
