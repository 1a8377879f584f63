"""What the engine's leftover pass and its duplicate-seed drop buy and cost, on the same events.

Usage: python benchmarks/ablation_leftover.py FILE... [-o JSON] [--repeats N]

FILEs are event files with truth, tuning events (the choice of the pass's seeding pT was made
on them, never on report events), e.g.::

    hepgan simulate --process ttbar --pileup 200 --events 4 --seed 5200 -o tune_pu200.root
    hepgan simulate --process ttbar --pileup 50 --events 6 --seed 5050 -o tune_pu50.root
    hepgan simulate --process ttbar --pileup 0 --events 30 --seed 5001 -o tune_pu0.root
    hepgan simulate --process gun --vertices 20 --particles 50 --events 10 --seed 3011 -o tune_20x50.root
    hepgan simulate --process gun --vertices 100 --particles 50 --events 3 --seed 3100 -o tune_100x50.root

Per file and variant (``AssignmentConfig.leftover_pt_min`` 0, 0.25, 0.3, 0.4, with and without
``drop_duplicate_seeds``, the first pass's |d0| cut ``prompt_d0_max`` the model's or 0.5, 1 or 2
mm, ``leftover_seeds_per_middle`` 2 or 3, the first pass's confirmed seeds
``prompt_confirmed_eta_max`` 0, 1.2, 1.5 or everywhere; the engine's default: 0.3 GeV,
duplicates dropped, 1 mm, 3, 1.5): efficiency
(primary particles with >= 7 hits, |eta| < 2.5, pT > 1 and > 0.5 GeV), fake and duplicate
rates, the TrackML score; and the engine's process CPU ms/event, the variants interleaved per
repeat (best of N, after a warm-up event each), with its stages. The variants see the same
events, model and noise seed. ``--variants`` runs some of them, e.g. the confirmation ones
against the engine before them (``-o results/ablation-confirmation.json --variants 9,10,11,12``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import awkward as ak

from hepgan.io.events import read_events
from hepgan.perf.machine import machine_info
from hepgan.perf.metrics import summarize
from hepgan.reco.assignment import AssignmentConfig
from hepgan.reco.engine import Engine

_COLS = ("hit_x", "hit_y", "hit_z", "hit_volume_id", "hit_layer_id")
#: name -> (leftover_pt_min, drop_duplicate_seeds, prompt_d0_max, leftover_seeds_per_middle,
#: prompt_confirmed_eta_max)
_BASE = "leftover 0.3, duplicates dropped, prompt |d0| < 1 mm, 3 leftover seeds per middle hit"
VARIANTS = {
    "one pass": (0.0, False, 0.0, 2, 0.0), "one pass, duplicates dropped": (0.0, True, 0.0, 2, 0.0),
    "leftover 0.3": (0.3, False, 0.0, 2, 0.0), "leftover 0.3, duplicates dropped": (0.3, True, 0.0, 2, 0.0),
    "leftover 0.25, duplicates dropped": (0.25, True, 0.0, 2, 0.0),
    "leftover 0.4, duplicates dropped": (0.4, True, 0.0, 2, 0.0),
    "leftover 0.3, duplicates dropped, prompt |d0| < 0.5 mm": (0.3, True, 0.5, 2, 0.0),
    "leftover 0.3, duplicates dropped, prompt |d0| < 1 mm": (0.3, True, 1.0, 2, 0.0),
    "leftover 0.3, duplicates dropped, prompt |d0| < 2 mm": (0.3, True, 2.0, 2, 0.0),
    _BASE: (0.3, True, 1.0, 3, 0.0),
    _BASE + ", prompt seeds confirmed at |eta| < 1.2": (0.3, True, 1.0, 3, 1.2),
    _BASE + ", prompt seeds confirmed at |eta| < 1.5 (default)": (0.3, True, 1.0, 3, 1.5),
    _BASE + ", prompt seeds confirmed everywhere": (0.3, True, 1.0, 3, 10.0),
}


def _run(engine: Engine, events: list, event_ids: list) -> tuple[list, float, dict]:
    """Tracks of every event, the process CPU ms/event and the stage ms/event."""
    stage: dict[str, float] = {}
    tracks = []
    t0 = time.process_time()
    for cols, eid in zip(events, event_ids, strict=True):
        tr, ms = engine.reconstruct_event(*cols, event_id=eid)
        tracks.append(tr)
        for k, v in ms.items():
            stage[k] = stage.get(k, 0.0) + v / len(events)
    return tracks, 1e3 * (time.process_time() - t0) / len(events), stage


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("inputs", type=Path, nargs="+")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--variants", default="",
                    help="comma-separated variant numbers (0-based, in the order above) to run; the "
                         "first one given is the reference of the time ratios (default: all, 'one pass')")
    ap.add_argument("-o", "--output", type=Path, default=Path(__file__).parent / "results" / "ablation-leftover.json")
    args = ap.parse_args(argv)
    names = list(VARIANTS)
    chosen = [names[int(i)] for i in args.variants.split(",")] if args.variants else names
    engines = {
        name: Engine(assignment=AssignmentConfig(
            leftover_pt_min=pt, drop_duplicate_seeds=dup, prompt_d0_max=d0, leftover_seeds_per_middle=keep,
            prompt_confirmed_eta_max=conf,
        ))
        for name, (pt, dup, d0, keep, conf) in VARIANTS.items() if name in chosen
    }  # fmt: skip
    results: dict = {}
    for path in args.inputs:
        data = read_events(path, trees=("hits", "particles"), truth=True)
        hits, particles = data["hits"], data["particles"]
        events = [[ak.to_numpy(hits[k][i]) for k in _COLS] for i in range(len(hits))]
        ids = [int(e) for e in hits["event_id"]]
        for engine in engines.values():
            engine.reconstruct_event(*events[0], event_id=ids[0])  # warm-up
        cpu: dict[str, list[float]] = {v: [] for v in engines}
        out: dict = {}
        for rep in range(args.repeats):
            for v, engine in engines.items():
                tracks, ms, stage = _run(engine, events, ids)
                cpu[v].append(ms)
                if rep:
                    continue
                arr = {k: ak.Array([t[k] for t in tracks]) for k in tracks[0]}
                arr["event_id"] = hits["event_id"]
                arr = ak.Array(arr)
                s = summarize(hits, particles, arr, pt_min=1.0, eta_max=2.5)
                out[v] = {
                    "efficiency_pt1": s["efficiency_pt_1.0"], "efficiency_pt05": s["efficiency_pt_0.5"],
                    "efficiency_categories": s["efficiency_categories"], "fake_rate": s["fake_rate"],
                    "duplicate_rate": s["duplicate_rate"], "trackml": s["trackml_score"], "tracks": s["n_tracks"],
                    "engine_stage_ms": {k: round(x, 2) for k, x in stage.items()},
                }  # fmt: skip
        for v in engines:
            r = out[v]
            r["engine_cpu_ms_best"] = min(cpu[v])
            r["engine_cpu_ms_all"] = [round(x, 1) for x in cpu[v]]
            r["time_ratio_to_reference"] = min(cpu[v]) / min(cpu[chosen[0]])
            # the same repeat's ratio, repeat by repeat: the machine drifts between repeats
            r["time_ratio_to_reference_per_repeat"] = [round(a / b, 3) for a, b in zip(cpu[v], cpu[chosen[0]], strict=True)]
            print(f"{path.name} {v}: eff pT>1 {r['efficiency_pt1']:.4f} pT>0.5 {r['efficiency_pt05']:.4f} "
                  f"fake {r['fake_rate']:.4f} dup {r['duplicate_rate']:.4f} TrackML {r['trackml']:.4f} "
                  f"cpu {r['engine_cpu_ms_best']:.1f} ms ({r['time_ratio_to_reference']:.2f}x)", flush=True)  # fmt: skip
        results[path.name] = {"events": len(events), "variants": out}
    doc = {"benchmark": "leftover pass ablation (engine end to end)", "machine": machine_info(),
           "reference": chosen[0], "files": results}  # fmt: skip
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
