"""Run the hepgan benchmark protocol and write its JSON (and optionally the HTML report).

Usage: python benchmarks/run_bench.py [--sizes 1x100 20x50 ...] [--events N | --events SIZE=N ...]
       [--repeats R] [--model MODEL.onnx] [--providers cuda] [--workdir DIR]
       [-o benchmarks/results/bench-cpu.json] [--report benchmarks/results/report.html]

A thin wrapper around hepgan.perf.bench.run_bench and hepgan.perf.report.write_report until
``hepgan bench`` / ``hepgan report`` are wired into the command line.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from hepgan.perf.bench import run_bench


def _events(values: list[str] | None) -> int | dict[str, int] | None:
    if not values:
        return None
    if len(values) == 1 and "=" not in values[0]:
        return int(values[0])
    out = {}
    for v in values:
        size, _, n = v.partition("=")
        out[size] = int(n)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["1x100", "20x50"])
    ap.add_argument("--events", nargs="+", help="N for all sizes, or SIZE=N pairs")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--acts-repeats", type=int, default=1)
    ap.add_argument("--model", type=Path)
    ap.add_argument("--providers", help="onnxruntime providers (default CPU; 'cuda' for a GPU run)")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("-o", "--output", type=Path, default=Path("benchmarks/results/bench-cpu.json"))
    ap.add_argument("--report", type=Path, help="also write the HTML report of this JSON here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    run_bench(
        args.output, sizes=args.sizes, events=_events(args.events), repeats=args.repeats,
        acts_repeats=args.acts_repeats, model=args.model, providers=args.providers, seed=args.seed,
        workdir=args.workdir, progress=True,
    )  # fmt: skip
    print(f"wrote {args.output}", file=sys.stderr)
    if args.report is not None:
        from hepgan.perf.report import write_report

        print(f"wrote {write_report([args.output], args.report)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
