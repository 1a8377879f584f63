"""The engine of this checkout against the engine of a git revision, on the same events.

Usage: python benchmarks/ab_revision.py --base REV FILE[:N]... [-o JSON] [--rounds R] [--repeats K]

A speed change is judged against the code before it, measured the same way: both engines run
in their own processes (numba compiles each tree's kernels; one process cannot hold two
versions of a module), alternating base, this, base, this... for R rounds; each process warms
up on the first event, then times K passes over the first N events (process CPU ms/event, the
engine's stage times), and hashes its tracks. The base is ``git worktree add`` of REV in a
temporary folder, imported through PYTHONPATH, with the shipped model of this checkout, so
that only the code differs. FILEs are tuning events (docs/seeds.md), never report events.
Results: per file, each round's ms/event of both, the ratio (this / base) per round, and
whether the tracks are the same to the bit.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# What each process runs: the engine over the file's first N events (argv: file, n, repeats).
_CHILD = r"""
import hashlib, json, sys, time
import awkward as ak
from hepgan.io.events import read_events
from hepgan.reco.engine import Engine
path, n, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
hits = read_events(path)["hits"][:n]
cols = ("hit_x", "hit_y", "hit_z", "hit_volume_id", "hit_layer_id")
events = [[ak.to_numpy(hits[c][i]) for c in cols] for i in range(len(hits))]
ids = [int(e) for e in hits["event_id"]]
engine = Engine()
engine.reconstruct_event(*events[0], event_id=ids[0])
digest, ms, stages = hashlib.sha256(), [], {}
for rep in range(repeats):
    t0 = time.process_time()
    for ev, eid in zip(events, ids):
        tracks, stage_ms = engine.reconstruct_event(*ev, event_id=eid)
        for k, v in stage_ms.items():
            stages[k] = stages.get(k, 0.0) + v / (len(events) * repeats)
        if rep == 0:
            for k in sorted(tracks):
                digest.update(k.encode() + tracks[k].tobytes())
    ms.append(1e3 * (time.process_time() - t0) / len(events))
import hepgan
print(json.dumps({"ms_per_event": ms, "stage_ms": stages, "tracks_sha256": digest.hexdigest(), "events": len(events),
                  "hepgan": hepgan.__file__}))
"""


def _run(tree: Path, spec: tuple[str, int], repeats: int, cache: Path) -> dict:
    """One process of the engine of source tree `tree` (its hepgan first on the path; run from
    the cache folder, because ``python -c`` puts the working directory before PYTHONPATH)."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache), "PYTHONPATH": str(tree)}
    cache.mkdir(parents=True, exist_ok=True)
    out = subprocess.run([sys.executable, "-c", _CHILD, spec[0], str(spec[1]), str(repeats)], env=env, cwd=cache,
                         capture_output=True, text=True, check=True)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("inputs", nargs="+", help="FILE or FILE:N (the first N events)")
    ap.add_argument("--base", required=True, help="git revision of the engine to compare with")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("-o", "--output", type=Path, default=REPO / "benchmarks" / "results" / "ab-revision.json")
    args = ap.parse_args(argv)
    from hepgan.perf.machine import machine_info

    specs = []
    for item in args.inputs:
        path, _, n = item.partition(":")
        specs.append((str(Path(path).resolve()), int(n) if n else 1 << 30))
    rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", args.base], capture_output=True, text=True,
                         check=True).stdout.strip()  # fmt: skip
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()  # fmt: skip
    dirty = bool(subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "hepgan"], capture_output=True,
                                text=True, check=True).stdout.strip())  # fmt: skip
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="hepgan-ab-") as tmp:
        tree = Path(tmp) / "base"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), rev], check=True,
                       capture_output=True)  # fmt: skip
        try:
            # the same model file on both sides: only the code differs
            shutil.copytree(REPO / "deploy" / "models", tree / "deploy" / "models", dirs_exist_ok=True)
            for spec in specs:
                rounds = []
                for r in range(args.rounds):
                    base = _run(tree, spec, args.repeats, Path(tmp) / "numba-base")
                    this = _run(REPO, spec, args.repeats, Path(tmp) / "numba-this")
                    rounds.append({"base": base, "this": this,
                                   "ratio": round(min(this["ms_per_event"]) / min(base["ms_per_event"]), 3)})
                    print(f"{Path(spec[0]).name} round {r}: base {min(base['ms_per_event']):.1f}, "
                          f"this {min(this['ms_per_event']):.1f} ms/event, ratio {rounds[-1]['ratio']}", flush=True)
                ratios = sorted(x["ratio"] for x in rounds)
                results[Path(spec[0]).name] = {
                    "events": rounds[0]["this"]["events"], "rounds": rounds,
                    "ratio_median": ratios[len(ratios) // 2], "ratio_min": ratios[0], "ratio_max": ratios[-1],
                    "tracks_identical": all(x["base"]["tracks_sha256"] == x["this"]["tracks_sha256"] for x in rounds),
                }  # fmt: skip
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=False)
    doc = {
        "what": "the engine of this checkout (this) against the engine at base, alternating processes",
        "base": rev, "this": head + (" + uncommitted changes" if dirty else ""),
        "rounds": args.rounds, "repeats": args.repeats, "time": "process CPU ms/event, best of the repeats",
        "machine": machine_info(), "files": results,
    }  # fmt: skip
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"-> {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
