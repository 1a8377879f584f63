"""Benchmark of hepgan.reco.features.build_features on the seeds of ACTS events at 20 x 50, 100 x 50
and 200 x 50.

Usage: python benchmarks/bench_features.py [--data DIR] [--events N] [--repeats R] [-o JSON]

Uses the same samples as benchmarks/bench_seeding.py (DIR/s{V}x50.root, simulated there when
missing). Per event: the seeds from hepgan.reco.seeding.find_seeds (default configs), then
build_features timed alone (median over repeats after a warm-up call; wall and process CPU
time, because the machine may be shared), split into the hit index (index_hits) and the
kernel. Reports ms/event, us/seed and the exponent of time vs hits.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from hepgan.io.events import read_events
from hepgan.perf.machine import machine_info
from hepgan.reco.features import FeatureConfig, build_features, index_hits, layer_table
from hepgan.reco.geometry import GENERIC_DETECTOR
from hepgan.reco.seeding import find_seeds

SIZES = ((20, 50), (100, 50), (200, 50))
_BRANCHES = ("hit_x", "hit_y", "hit_z", "hit_volume_id", "hit_layer_id")


def _timed(fn, repeats: int) -> tuple[float, float]:
    """Median (wall, cpu) seconds of `fn()` over `repeats` calls."""
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return float(np.median(wall)), float(np.median(cpu))


def bench_size(path: Path, n_events: int, repeats: int, config: FeatureConfig) -> dict:
    hits = read_events(path, trees=("hits",))["hits"]
    table = layer_table(GENERIC_DETECTOR, config)
    n = min(n_events, len(hits))
    rows = []
    for k in range(n):
        x, y, z, vol, lay = [np.asarray(hits[k][b]) for b in _BRANCHES]
        seeds = find_seeds(x, y, z, vol, lay, geometry=GENERIC_DETECTOR)
        layer = GENERIC_DETECTOR.layer_index(vol, lay)
        build_features(x, y, z, layer, seeds, config=config, table=table)  # warm-up (compile, caches)
        w_all, c_all = _timed(lambda: build_features(x, y, z, layer, seeds, config=config, table=table), repeats)  # noqa: B023
        w_idx, c_idx = _timed(lambda: index_hits(x, y, z, layer, table, config.phi_bins), repeats)  # noqa: B023
        rows.append((len(x), len(seeds), w_all, c_all, w_idx, c_idx))
    a = np.array(rows, np.float64)
    ms = lambda col: round(1e3 * float(np.median(a[:, col])), 2)  # noqa: E731
    return {
        "file": str(path),
        "events": n,
        "repeats": repeats,
        "hits_per_event": float(a[:, 0].mean()),
        "seeds_per_event": float(a[:, 1].mean()),
        "ms_per_event_median_wall": ms(2),
        "ms_per_event_median_cpu": ms(3),
        "index_ms_per_event_median_cpu": ms(5),
        "us_per_seed_cpu": round(1e6 * float(np.median(a[:, 3] / a[:, 1])), 3),
        "us_per_seed_kernel_cpu": round(1e6 * float(np.median((a[:, 3] - a[:, 5]) / a[:, 1])), 3),
        "_points": [(float(h), 1e3 * float(c)) for h, c in zip(a[:, 0], a[:, 3], strict=True)],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("/tmp/seed_data"))
    ap.add_argument("--events", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("-o", "--output", type=Path, default=Path(__file__).parent / "results" / "features.json")
    args = ap.parse_args(argv)
    from bench_seeding import sample  # same samples as the seeding benchmark

    config = FeatureConfig()
    events_for = {20: 5, 100: 4, 200: 3}
    results, points = {}, []
    for v, p in SIZES:
        path = sample(args.data, v, p, events_for[v])
        res = bench_size(path, args.events, args.repeats, config)
        points += res.pop("_points")
        results[f"{v}x{p}"] = res
        print(f"{v}x{p}: {res['seeds_per_event']:.0f} seeds, {res['ms_per_event_median_cpu']} ms cpu "
              f"({res['ms_per_event_median_wall']} wall), {res['us_per_seed_cpu']} us/seed", flush=True)  # fmt: skip
    h, t = np.log([x[0] for x in points]), np.log([x[1] for x in points])
    exponent = float(np.polyfit(h, t, 1)[0])
    doc = {
        "benchmark": "hepgan.reco.features.build_features (seeds from hepgan.reco.seeding.find_seeds)",
        # 1 thread; the machine may be shared: cpu = process time, wall = elapsed
        "machine": machine_info(),
        "config": {k: v for k, v in config.to_dict().items() if k != "resolution"},
        "sizes": results,
        "time_vs_hits_exponent_cpu": round(exponent, 2),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"exponent {exponent:.2f}; wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
