"""Rate of the triage reliability flag on data like the training set and on data unlike it.

Usage: python benchmarks/bench_reliability_flag.py [--data DIR] [--training DIR] [-o JSON]

The shipped model (trained on 2 T, 20/100/200 x 50 pile-up, no noise hits) triages, with
:func:`hepgan.triage.triage_files` and its default thresholds:

* in-distribution: the validation files ``val_20x50.root`` and ``val_100x50.root`` of the
  training (``--training``, default build/training; simulated into DIR with other seeds when
  absent), and ``val_200x50.root`` when present;
* another field: 20 x 50 simulated at 1.5 T and 3 T (``SimulationConfig.b_field``);
* another pile-up: 5 x 50 and 300 x 50;
* noise hits: the in-distribution 20 x 50 events plus 10% and 30% random noise hits
  (:func:`hepgan.perf.samples.add_noise_hits`).

Per sample: events, hits/event, the share of events flagged (any flag) and per flag, the
per-event quantities the flags cut on, and the surrogate's efficiency / fake / duplicate rate
against truth (``hepgan.perf.metrics.summarize``, pT > 1 GeV), with ACTS's on the same events (run
at the sample's own field) to show what is lost, and the surrogate's efficiency on the flagged
and on the unflagged events apart. Simulated samples are kept in DIR (default
/tmp/hepgan-reliability) and reused.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from hepgan.errors import InputError
from hepgan.io.events import HITS, PARTICLES, TRACKS, RootEventWriter, read_events
from hepgan.perf import metrics
from hepgan.perf.samples import add_noise_hits
from hepgan.reco.model_file import read_model_info, shipped_model_path
from hepgan.triage import FLAGS, TriageConfig, triage_files

REPO = Path(__file__).resolve().parent.parent
#: The select rule is irrelevant here (flags are computed on every event).
_RULE = "ntracks >= 0"
#: Per-event quantities of events.csv recorded per sample (min / median / max).
_QUANTITIES = ("nhits", "ntracks", "unassigned_fraction", "low_score_fraction", "mean_score")
_FIGURES = ("efficiency", "efficiency_pt_0.5", "fake_rate", "duplicate_rate", "trackml_score")


# --------------------------------------------------------------------------- samples
def simulated(path: Path, **config) -> Path:
    """Simulate `path` with ``SimulationConfig(**config)`` unless it exists already."""
    from hepgan.acts.simulation import SimulationConfig, simulate

    if not path.exists():
        t0 = time.perf_counter()
        simulate(path, SimulationConfig(**config), progress=False)
        print(f"simulated {path.name} in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return path


def samples(data: Path, training: Path) -> list[dict]:
    """(name, kind, description, path, field) of every sample, simulating what is missing."""
    data.mkdir(parents=True, exist_ok=True)
    val20 = training / "val_20x50.root"
    if not val20.exists():
        val20 = simulated(data / "val_20x50.root", events=10, vertices=20, particles=50, seed=2020)
    val100 = training / "val_100x50.root"
    if not val100.exists():
        val100 = simulated(data / "val_100x50.root", events=5, vertices=100, particles=50, seed=2100)
    out = [
        {"name": "in-dist 20x50", "kind": "in", "what": "training validation file, 2 T", "path": val20, "b_field": 2.0},
        {"name": "in-dist 100x50", "kind": "in", "what": "training validation file, 2 T", "path": val100, "b_field": 2.0},
        *([{"name": "in-dist 200x50", "kind": "in", "what": "training validation file, 2 T", "path": training / "val_200x50.root",
             "b_field": 2.0}] if (training / "val_200x50.root").exists() else []),
        {"name": "field 1.5 T", "kind": "out", "what": "20x50 at 1.5 T (seed 1501)", "b_field": 1.5,
         "path": simulated(data / "b1p5_20x50.root", events=5, vertices=20, particles=50, b_field=1.5, seed=1501)},
        {"name": "field 3 T", "kind": "out", "what": "20x50 at 3 T (seed 3001)", "b_field": 3.0,
         "path": simulated(data / "b3_20x50.root", events=5, vertices=20, particles=50, b_field=3.0, seed=3001)},
        {"name": "pile-up 5x50", "kind": "out", "what": "5x50 at 2 T (seed 501)", "b_field": 2.0,
         "path": simulated(data / "pu5x50.root", events=5, vertices=5, particles=50, seed=501)},
        {"name": "pile-up 300x50", "kind": "out", "what": "300x50 at 2 T (seed 30001)", "b_field": 2.0,
         "path": simulated(data / "pu300x50.root", events=3, vertices=300, particles=50, seed=30001)},
    ]  # fmt: skip
    for frac, seed in ((0.10, 10), (0.30, 30)):
        path = data / f"val_20x50_noise{int(frac * 100)}.root"
        if not path.exists():
            add_noise_hits(val20, path, frac, seed=seed)
        out.append({"name": f"noise +{int(frac * 100)}%", "kind": "out", "what": f"in-dist 20x50 + {int(frac * 100)}% noise hits (seed {seed})",
                    "path": path, "b_field": 2.0})  # fmt: skip
    return out


# --------------------------------------------------------------------------- measure
def _figures(hits, particles, tracks, b_field: float) -> dict:
    s = metrics.summarize(hits, particles, tracks, pt_min=1.0, bfield=b_field)
    qop = s["resolutions"]["qop"]
    return {k: s[k] for k in _FIGURES} | {
        "tracks_per_event": s["n_tracks"] / max(s["n_events"], 1),
        # q/p residuals of the good tracks of pT > 1 GeV particles: a field unlike the
        # training's shows as a bias of the momentum the network reads off the curvature
        "qop_bias": qop["bias"], "qop_resolution": qop["resolution"], "qop_pull_width": qop["pull_width"],
    }  # fmt: skip


def _without_metadata(src: Path, dst: Path) -> Path:
    """A copy of `src`'s trees without its `hepgan_metadata` record."""
    data = read_events(src, trees=("hits", "particles", "tracks"), truth=True)
    with RootEventWriter(dst, [HITS, PARTICLES, TRACKS]) as writer:
        for tree, schema in (("hits", HITS), ("particles", PARTICLES), ("tracks", TRACKS)):
            writer.write_chunk(tree, {b: data[tree][b] for b in schema.names})
    return dst


def measure(sample: dict, model: Path, work: Path, config: TriageConfig) -> dict:
    """Triage one sample and score the surrogate (and ACTS) on it."""
    path = Path(sample["path"])
    out = work / path.stem
    refused = None
    if sample["b_field"] != 2.0:
        # The file records its field, so reco refuses it outright; what follows measures the
        # per-event flag on the same events without that record, as in a user's own file.
        try:
            triage_files([path], out, select=_RULE, model=model, progress=False, plots=False, config=config)
            refused = False
        except InputError:
            refused = True
        path = _without_metadata(path, work / f"{path.stem}_unrecorded.root")
    t0 = time.perf_counter()
    summary = triage_files([path], out, select=_RULE, model=model, progress=False, plots=False, config=config)
    seconds = time.perf_counter() - t0
    with (out / "events.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    n = len(rows)
    flags = {f: np.array([int(r[f"flag_{f}"]) for r in rows], bool) for f in FLAGS}
    flagged = np.zeros(n, bool)
    for v in flags.values():
        flagged |= v
    data = read_events(path, trees=("hits", "particles", "tracks"), truth=True)
    surrogate = read_events(out / "tracks" / path.name, trees=("tracks",))["tracks"]
    hits, particles = data["hits"], data["particles"]
    result = {
        "sample": sample["name"], "kind": sample["kind"], "what": sample["what"], "file": str(path),
        "b_field_t": sample["b_field"], "refused_by_field_record": refused, "events": n,
        "hits_per_event": float(np.mean([int(r["nhits"]) for r in rows])) if n else 0.0,
        "flagged_fraction": float(flagged.mean()) if n else 0.0,
        "flag_rates": {f: float(v.mean()) if n else 0.0 for f, v in flags.items()},
        "quantities": {
            q: {"min": float(np.min(v)), "median": float(np.median(v)), "max": float(np.max(v))}
            for q in _QUANTITIES for v in [np.array([float(r[q]) for r in rows])] if n
        },
        "surrogate": _figures(hits, particles, surrogate, sample["b_field"]),
        "acts": _figures(hits, particles, data["tracks"], sample["b_field"]),
        "surrogate_ms_per_event": summary["ms_per_event"].get("total"),
        "triage_seconds": seconds,
    }  # fmt: skip
    for name, mask in (("flagged", flagged), ("unflagged", ~flagged)):
        idx = np.flatnonzero(mask)
        result[f"surrogate_on_{name}_events"] = (
            {"events": int(len(idx)), **_figures(hits[idx], particles[idx], surrogate[idx], sample["b_field"])} if len(idx) else {"events": 0}
        )
    return result


def machine() -> dict:
    import onnxruntime

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError as err:
        cpu = f"{cpu} (/proc/cpuinfo unreadable: {err})"
    return {
        "cpu": cpu, "cores": os.cpu_count(), "load_average": list(os.getloadavg()),
        "python": platform.python_version(), "platform": platform.platform(),
        "numpy": np.__version__, "onnxruntime": onnxruntime.__version__,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=Path("/tmp/hepgan-reliability"))
    ap.add_argument("--training", type=Path, default=REPO / "build" / "training")
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("-o", "--output", type=Path, default=REPO / "benchmarks" / "results" / "reliability-flag.json")
    args = ap.parse_args(argv)
    model = args.model or shipped_model_path()
    config = TriageConfig()
    info = read_model_info(model)
    results = []
    for sample in samples(args.data, args.training):
        r = measure(sample, model, args.data / "triage", config)
        results.append(r)
        print(
            f"{r['sample']:<16} ev {r['events']:>2} hits/ev {r['hits_per_event']:>8.0f} flagged {r['flagged_fraction']:.2f} "
            + " ".join(f"{f} {v:.2f}" for f, v in r["flag_rates"].items())
            + f" | eff sur {r['surrogate']['efficiency']} acts {r['acts']['efficiency']} fake sur {r['surrogate']['fake_rate']}",
            flush=True,
        )
    ins = [r for r in results if r["kind"] == "in"]
    outs = [r for r in results if r["kind"] == "out"]

    def pooled(rs: list[dict]) -> float:
        n = sum(r["events"] for r in rs)
        return sum(r["flagged_fraction"] * r["events"] for r in rs) / n if n else float("nan")

    doc = {
        "benchmark": "reliability flag (hepgan.triage) on in- and out-of-distribution samples",
        "command": "python benchmarks/bench_reliability_flag.py",
        "model": str(model),
        "model_training_hits_per_event": info.training.get("hits_per_event"),
        "triage_config": {k: getattr(config, k) for k in config.__dataclass_fields__},
        "efficiency_definition": "primary charged particles, pT > 1 GeV, |eta| < 2.5, >= 7 hits, ACTS double matching",
        "machine": machine(),
        "flagged_fraction_in_distribution": pooled(ins),
        "flagged_fraction_out_of_distribution": pooled(outs),
        "samples": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"in-distribution flagged {doc['flagged_fraction_in_distribution']:.3f}, "
          f"out-of-distribution flagged {doc['flagged_fraction_out_of_distribution']:.3f} -> {args.output}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
