"""What each seeder cut buys: doublets, time and end-to-end efficiency per SeedingConfig variant.

Usage: python benchmarks/ablation_seeding.py [--data DIR] [--model M.onnx] [-o JSON]

The shipped model's engine runs with its own seeding config and with variants that undo one
change each (two seeds per middle hit, |d0| < 3 mm, |z0| < 250 mm) and all of them, on the
bench's samples (benchmarks/bench_seeding.py: seed 11, kept in DIR). Per variant and size:
the seeding kernel's counters (doublets, third-hit candidates, triplets) and process CPU time
(best of 3), the engine's ms/event per stage (CPU time of the whole event), and efficiency,
fake and duplicate rates against truth (pT > 1 GeV, |eta| < 2.5). The model was trained with
its own config; the variants change only which seeds it is shown.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import awkward as ak
from bench_seeding import SIZES, sample

import hepgan.reco.seeding as seeding
from hepgan.io.events import read_events
from hepgan.perf.machine import machine_info
from hepgan.perf.metrics import summarize
from hepgan.reco.engine import Engine
from hepgan.reco.geometry import GENERIC_DETECTOR
from hepgan.reco.model_file import shipped_model_path

_COLS = ("hit_x", "hit_y", "hit_z", "hit_volume_id", "hit_layer_id")
EVENTS = {20: 5, 100: 3, 200: 2}


def variants(base: seeding.SeedingConfig) -> dict[str, seeding.SeedingConfig]:
    undo = {"max_seeds_per_middle": 2, "d0_max": 3.0, "z0_max": 250.0}
    out = {"shipped": base}
    for key, value in undo.items():
        out[f"{key}={value}"] = dataclasses.replace(base, **{key: value})
    out["all three undone"] = dataclasses.replace(base, **undo)
    return out


def kernel_counters(cols: list, config: seeding.SeedingConfig) -> tuple[list[int], float]:
    """Counters of the seeding kernel (first-layer candidates, doublets, third-hit candidates,
    triplets, confirmed) and its best CPU ms of 3 calls."""
    captured: dict = {}
    kernel = seeding._seed_kernel

    def spy(*args):
        t0 = time.process_time()
        result = kernel(*args)
        captured.setdefault("ms", []).append(1e3 * (time.process_time() - t0))
        captured["stats"] = result[1]
        return result

    seeding._seed_kernel = spy
    try:
        for _ in range(3):
            seeding.find_seeds(*cols, geometry=GENERIC_DETECTOR, config=config)
    finally:
        seeding._seed_kernel = kernel
    return [int(x) for x in captured["stats"]], min(captured["ms"])


def run_variant(engine: Engine, config: seeding.SeedingConfig, path: Path, n_events: int) -> dict:
    data = read_events(path, trees=("hits", "particles"), truth=True)
    hits, particles = data["hits"][:n_events], data["particles"][:n_events]
    engine.seeding_config = config
    events = [[ak.to_numpy(hits[k][i]) for k in _COLS] for i in range(n_events)]
    engine.reconstruct_event(*events[0], event_id=0)  # warm-up
    per_event, stage_ms, cpu_ms, counters, kernel_ms = [], {}, [], [], []
    for i, cols in enumerate(events):
        t0 = time.process_time()
        tracks, ms = engine.reconstruct_event(*cols, event_id=int(hits["event_id"][i]))
        cpu_ms.append(1e3 * (time.process_time() - t0))
        per_event.append(tracks)
        for k, v in ms.items():
            stage_ms[k] = stage_ms.get(k, 0.0) + v / n_events
        c, k_ms = kernel_counters(cols, config)
        counters.append(c)
        kernel_ms.append(k_ms)
    tracks = {k: ak.Array([t[k] for t in per_event]) for k in per_event[0]}
    tracks["event_id"] = hits["event_id"]
    s = summarize(hits, particles, ak.Array(tracks), pt_min=1.0, eta_max=2.5)
    names = ("first_layer_candidates", "doublets", "third_hit_candidates", "triplets", "confirmed")
    return {
        "events": n_events,
        "kernel_counters_per_event": {n: sum(c[j] for c in counters) / n_events for j, n in enumerate(names)},
        "seeding_kernel_cpu_ms": sum(kernel_ms) / n_events,
        "engine_stage_ms": {k: round(v, 2) for k, v in stage_ms.items()},
        "engine_cpu_ms": sum(cpu_ms) / n_events,
        "efficiency": s["efficiency"],
        "fake_rate": s["fake_rate"],
        "duplicate_rate": s["duplicate_rate"],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("/tmp/seed_data"))
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("-o", "--output", type=Path, default=Path(__file__).parent / "results" / "ablation-seeding.json")
    args = ap.parse_args(argv)
    model = args.model or shipped_model_path()
    engine = Engine(model, threads=1)
    base = engine.seeding_config
    results: dict = {}
    for name, config in variants(base).items():
        results[name] = {"config": dataclasses.asdict(config), "sizes": {}}
        for v, p in SIZES:
            path = sample(args.data, v, p, {20: 5, 100: 4, 200: 3}[v])
            r = run_variant(engine, config, path, EVENTS[v])
            results[name]["sizes"][f"{v}x{p}"] = r
            print(f"{name:28s} {v}x{p}: doublets {r['kernel_counters_per_event']['doublets']:.0f}, kernel "
                  f"{r['seeding_kernel_cpu_ms']:.0f} ms, engine {r['engine_cpu_ms']:.0f} ms, eff {r['efficiency']:.4f}, "
                  f"fake {r['fake_rate']:.4f}, dup {r['duplicate_rate']:.4f}", flush=True)  # fmt: skip
    doc = {"benchmark": "seeding ablation (engine end to end)", "machine": machine_info(), "model": str(model), "variants": results}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
