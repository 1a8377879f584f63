"""Peak memory of `hepgan reco` against the number of events in a file (chunked reading).

Simulates 4 events of 200 vertices x 50 pions (`hepgan simulate`), concatenates copies into
files of 4, 16 and 32 events (new event ids, written with hepgan.io.events.RootEventWriter), runs
`hepgan reco` on each in a fresh process and records its peak RSS (getrusage of the child).
Reco reads `--step-events` events at a time, so the peak should not grow with the file.

    python benchmarks/bench_memory.py [-o benchmarks/results/memory.json] [--work DIR] [--model M.onnx]

Uses the shipped model unless --model names another, and records which.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import awkward as ak
import numpy as np

REPO = Path(__file__).resolve().parent.parent


def _run(cmd: list[str]) -> tuple[float, float]:
    """(peak RSS MB, seconds) of `cmd` run as a child through a fresh wrapper process, so
    RUSAGE_CHILDREN holds that command only."""
    code = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter(); r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL); dt = time.perf_counter() - t\n"
        "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, dt)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, *cmd], capture_output=True, text=True, check=True)
    rc, peak_kb, seconds = out.stdout.split()
    if int(rc) != 0:
        msg = f"{' '.join(cmd)} failed: {out.stderr[-2000:]}"
        raise RuntimeError(msg)
    return int(peak_kb) / 1024, float(seconds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", type=Path, default=REPO / "benchmarks" / "results" / "memory.json")
    ap.add_argument("--work", type=Path, default=REPO / "build" / "bench_memory")
    ap.add_argument("--sizes", type=int, nargs="+", default=[4, 16, 32])
    ap.add_argument("--step-events", type=int, default=4)
    ap.add_argument("--model", type=Path, help="model.onnx (default: the shipped model)")
    args = ap.parse_args()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    hepgan = [sys.executable, "-m", "hepgan.cli"]

    base = work / "sim_200x50_4ev.root"
    if not base.exists():
        subprocess.run([*hepgan, "simulate", "-o", str(base), "--events", "4", "--vertices", "200", "--particles", "50",
                        "--seed", "11"], check=True)  # fmt: skip

    from hepgan.io.events import HITS, RootEventWriter, read_events
    from hepgan.reco.model_file import shipped_model_path

    model = args.model or shipped_model_path()
    hits = read_events(base, trees=("hits",), truth=True)["hits"]
    n_base = len(hits)
    hits_per_event = ak.num(hits.hit_x, axis=1).to_list()
    rows = []
    for size in args.sizes:
        path = work / f"events_{size}.root"
        if not path.exists():
            with RootEventWriter(path, [HITS]) as w:
                for copy in range(0, size, n_base):
                    take = min(n_base, size - copy)
                    cols = {b.name: hits[b.name][:take] for b in HITS.branches}
                    cols["event_id"] = np.arange(copy, copy + take, dtype=np.int64)
                    w.write_chunk("hits", cols)
        out_dir = work / f"out_{size}"
        for p in out_dir.glob("*.root"):
            p.unlink()
        peak, seconds = _run([*hepgan, "reco", str(path), "-o", str(out_dir), "--model", str(model),
                              "--step-events", str(args.step_events), "--no-progress"])  # fmt: skip
        rows.append({"events": size, "peak_rss_mb": round(peak, 1), "seconds": round(seconds, 2),
                     "input_mb": round(path.stat().st_size / 2**20, 2)})  # fmt: skip
        print(f"{size:4d} events: peak RSS {peak:7.1f} MB, {seconds:6.1f} s", flush=True)
    peaks = [r["peak_rss_mb"] for r in rows]
    result = {
        "benchmark": "peak RSS of `hepgan reco` vs events per file (200 x 50 events)",
        "model": str(model),
        "step_events": args.step_events,
        "hits_per_event": hits_per_event,
        "results": rows,
        "growth_32_over_4": round(peaks[-1] / peaks[0], 3) if len(peaks) > 1 else None,
        "machine": {
            "platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        },
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "method": "resource.getrusage(RUSAGE_CHILDREN).ru_maxrss of a wrapper whose only child is the reco run",
    }  # fmt: skip
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
