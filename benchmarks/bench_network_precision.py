"""Reduced precision for the network stage: int8 weights (onnxruntime dynamic quantisation)
against the shipped float32 model, on tuning events.

Usage: python benchmarks/bench_network_precision.py FILE.root [FILE.root ...] [-o JSON] [--repeats 5]

Give tuning files (simulated with seeds registered for tuning in hepgan.perf.seeds, e.g. ttbar
5200 / 5050 and gun 3011): the decision is taken on them, so report seeds are refused.

Per file:

* time of the network stage alone on the network's real inputs (the preselected seeds'
  features and the engine's noise, captured from the engine), each model in turn, interleaved
  over the repeats, 1 intra-op thread as the engine runs it; CPU ms per event (process_time)
  and the ratio per repeat;
* parity on the same inputs: largest difference of params (relative above 1, as the export
  check), score and hit probabilities;
* physics: the whole engine with each model, efficiency at pT > 1 and 0.5 GeV, fake and
  duplicate rates (hepgan.perf.metrics), and how many tracks differ at all.

Why int8 and not float16: this CPU has no float16 arithmetic, so onnxruntime's CPU provider
would cast around every float16 operator; int8 matrix products it runs natively (VNNI or
AVX2). The quantised model keeps the float32 model's metadata (error model, seeder, features),
so the engine reads it as it reads the shipped one.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import awkward as ak
import numpy as np

from hepgan.io.atomic import write_json_atomically
from hepgan.io.events import read_events, read_file_metadata
from hepgan.perf.machine import machine_info, model_info
from hepgan.perf.metrics import duplicate_rate, efficiency_denominator, fake_rate, match_tracks
from hepgan.perf.seeds import seed_purpose
from hepgan.reco.engine import Engine
from hepgan.reco.model_file import OUTPUTS, shipped_model_path

_COLS = ("hit_x", "hit_y", "hit_z", "hit_volume_id", "hit_layer_id")


def quantise(src: Path, dst: Path) -> None:
    """int8 weights, per output channel, activations quantised per call (dynamic)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True)


def captured_inputs(engine: Engine, hits: ak.Array) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (features, noise) the engine gives its network, per event."""
    seen: list[tuple[np.ndarray, np.ndarray]] = []
    run = engine.run_network

    def capture(features, noise):
        seen.append((features.copy(), noise.copy()))
        return run(features, noise)

    engine.run_network = capture
    try:
        for i in range(len(hits)):
            engine.reconstruct_event(*(ak.to_numpy(hits[k][i]) for k in _COLS), event_id=int(hits["event_id"][i]))
    finally:
        del engine.run_network
    return seen


def network_cpu_ms(engine: Engine, inputs) -> float:
    t0 = time.process_time()
    for feats, noise in inputs:
        engine.run_network(feats, noise)
    return (time.process_time() - t0) * 1e3 / len(inputs)


def parity(a: dict, b: dict) -> dict:
    out = {}
    for k in OUTPUTS:
        d = np.abs(a[k].astype(np.float64) - b[k].astype(np.float64))
        if k == "params":  # phi (column 2): the difference of two angles, not of two numbers
            d[:, 2] = np.abs((d[:, 2] + np.pi) % (2 * np.pi) - np.pi)
        scale = np.maximum(np.abs(a[k].astype(np.float64)), 1.0)
        out[k] = {"max_abs": float(d.max(initial=0.0)), "max_rel_above_1": float((d / scale).max(initial=0.0)),
                  "median_abs": float(np.median(d)) if d.size else 0.0}  # fmt: skip
    return out


def physics(engine: Engine, data: dict) -> tuple[dict, list]:
    per_event = []
    for i in range(len(data["hits"])):
        tracks, _ = engine.reconstruct_event(*(ak.to_numpy(data["hits"][k][i]) for k in _COLS),
                                             event_id=int(data["hits"]["event_id"][i]))  # fmt: skip
        per_event.append(tracks)
    tracks = ak.Array({**{k: ak.Array([t[k] for t in per_event]) for k in per_event[0]}, "event_id": data["hits"]["event_id"]})
    match = match_tracks(data["hits"], data["particles"], tracks)
    found = ak.to_numpy(ak.flatten(match.particle_n_matched)) > 0
    out: dict = {"tracks": int(match.n_tracks), "fake_rate": fake_rate(match), "duplicate_rate": duplicate_rate(match)}
    for pt in (1.0, 0.5):
        den = ak.to_numpy(ak.flatten(efficiency_denominator(data["particles"], match, pt_min=pt, eta_max=2.5)))
        out[f"efficiency_pt{pt}"] = {"found": int((found & den).sum()), "of": int(den.sum())}
    return out, per_event


def same_tracks(a: list, b: list) -> dict:
    """Tracks (as hit lists) found by both runs, and by one only."""
    both = only_a = only_b = 0
    for ta, tb in zip(a, b, strict=True):
        sa, sb = (
            {tuple(h) for h in np.split(t["track_hit_index"], np.cumsum(t["track_nhits"])[:-1])} if len(t["track_nhits"]) else set()
            for t in (ta, tb)
        )
        both += len(sa & sb)
        only_a += len(sa - sb)
        only_b += len(sb - sa)
    return {"same_hits": both, "float32_only": only_a, "int8_only": only_b}


def measure(path: Path, engines: dict[str, Engine], repeats: int) -> dict:
    data = read_events(path, trees=("hits", "particles"), truth=True)
    meta = read_file_metadata(path)
    seed = (meta.get("config") or {}).get("seed")
    if seed_purpose(seed) in ("report",):
        msg = f"{path}: seed {seed} is a report seed; this benchmark chooses, so it runs on tuning events only"
        raise SystemExit(msg)
    ref = engines["float32"]
    inputs = captured_inputs(ref, data["hits"])
    result: dict = {"file": str(path), "seed": seed, "seed_purpose": seed_purpose(seed), "events": len(inputs),
                    "seeds_into_network_per_event": float(np.mean([len(f) for f, _ in inputs]))}  # fmt: skip
    for e in engines.values():  # warm-up, both models
        network_cpu_ms(e, inputs[:1])
    times: dict[str, list[float]] = {k: [] for k in engines}
    for _ in range(repeats):
        for name, e in engines.items():
            times[name].append(network_cpu_ms(e, inputs))
    result["network_cpu_ms_per_event"] = {k: {"median": float(np.median(v)), "all": v} for k, v in times.items()}
    ratios = [q / f for q, f in zip(times["int8"], times["float32"], strict=True)]
    result["int8_over_float32"] = {"median": float(np.median(ratios)), "min": min(ratios), "max": max(ratios)}
    worst: dict = {}
    for feats, noise in inputs:
        p = parity(ref.run_network(feats, noise), engines["int8"].run_network(feats, noise))
        for k, v in p.items():
            w = worst.setdefault(k, {"max_abs": 0.0, "max_rel_above_1": 0.0, "median_abs": []})
            w["max_abs"] = max(w["max_abs"], v["max_abs"])
            w["max_rel_above_1"] = max(w["max_rel_above_1"], v["max_rel_above_1"])
            w["median_abs"].append(v["median_abs"])
    for w in worst.values():
        w["median_abs"] = float(np.median(w["median_abs"]))
    result["parity"] = worst
    runs = {name: physics(e, data) for name, e in engines.items()}
    result["physics"] = {name: r[0] for name, r in runs.items()}
    result["tracks_compared"] = same_tracks(runs["float32"][1], runs["int8"][1])
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("-o", "--output", type=Path, default=Path("benchmarks/results/network-precision.json"))
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    src = shipped_model_path()
    with tempfile.TemporaryDirectory() as tmp:
        q8 = Path(tmp) / "int8.onnx"
        quantise(src, q8)
        engines = {"float32": Engine(src), "int8": Engine(q8)}
        doc = {"machine": machine_info(), "model": model_info(src), "int8_model_bytes": q8.stat().st_size,
               "method": "onnxruntime.quantization.quantize_dynamic, QInt8 weights per channel", "samples": []}  # fmt: skip
        for path in args.files:
            print(f"{path} ...", flush=True)
            r = measure(path, engines, args.repeats)
            doc["samples"].append(r)
            print(json.dumps({k: r[k] for k in ("network_cpu_ms_per_event", "int8_over_float32", "physics")}, indent=1))
    doc["machine_after"] = machine_info()["load_average"]
    write_json_atomically(args.output, doc)
    print(f"-> {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
