"""Rate of the triage reliability flag on data like the training set and on data unlike it.

Usage: python benchmarks/bench_reliability_flag.py [--report] [--data DIR] [--model ONNX] [-o JSON]

The shipped model (trained at 2 T on ttbar at pile-up 0/50/200 and on 20/100/200 x 50 pion
guns, no noise hits) triages, with :func:`hepgan.triage.triage_files` and its default thresholds:

* in-distribution: ttbar at pile-up 0, 50 and 200 (5 / 3 / 2 events), guns 20 x 50 and 100 x 50;
* another field: 20 x 50 at 1.5 T and 3 T (``SimulationConfig.b_field``);
* another pile-up: 300 x 50 (above the training's hits/event);
* noise hits: the 20 x 50 and the ttbar pile-up 50 events plus 10% and 30% random noise hits
  (:func:`hepgan.perf.samples.add_noise_hits`).

Without ``--report`` the samples are simulated with the tune seeds (2020, 2100, 5001, 5050,
5200, 1501, 3001, 30001) that chose :class:`hepgan.triage.TriageConfig`'s thresholds, into
``benchmarks/results/reliability-flag.json``; with ``--report``, with the report seeds 41,
43-49 (fresh events no choice has seen: the rates the README quotes) into
``reliability-flag-report.json`` (docs/seeds.md).

Per sample: events, hits/event, the share of events flagged (any flag) and per flag with
Clopper-Pearson 68% intervals, the per-event quantities the flags cut on, and the surrogate's
efficiency / fake / duplicate rate against truth (``hepgan.perf.metrics.summarize``, pT > 1
GeV), with ACTS's on the same events (run at the sample's own field) to show what is lost, and
the surrogate's efficiency on the flagged and on the unflagged events apart. Simulated samples
are kept in DIR (default /tmp/hepgan-reliability[-report]) and reused; the whole run takes
about 4 minutes on 2 cores from scratch.
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
#: (name, kind, what, file stem, SimulationConfig keywords, tune seed, report seed). Tune seeds
#: chose the thresholds; report seeds (``--report``) make fresh events that measure them
#: (docs/seeds.md). 42 is a test fixture's seed, hence 41, 43-49.
_SPECS = (
    ("ttbar pu0", "in", "ttbar, pile-up 0, 2 T", "ttbar_pu0",
     {"process": "ttbar", "pileup": 0, "events": 5}, 5001, 41),
    ("ttbar pu50", "in", "ttbar, pile-up 50, 2 T", "ttbar_pu50",
     {"process": "ttbar", "pileup": 50, "events": 3}, 5050, 43),
    ("ttbar pu200", "in", "ttbar, pile-up 200, 2 T", "ttbar_pu200",
     {"process": "ttbar", "pileup": 200, "events": 2}, 5200, 44),
    ("gun 20x50", "in", "pion gun 20 x 50, 2 T", "gun_20x50",
     {"vertices": 20, "particles": 50, "events": 5}, 2020, 45),
    ("gun 100x50", "in", "pion gun 100 x 50, 2 T", "gun_100x50",
     {"vertices": 100, "particles": 50, "events": 3}, 2100, 46),
    ("field 1.5 T", "out", "pion gun 20 x 50 at 1.5 T", "gun_20x50_b1p5",
     {"vertices": 20, "particles": 50, "events": 5, "b_field": 1.5}, 1501, 47),
    ("field 3 T", "out", "pion gun 20 x 50 at 3 T", "gun_20x50_b3",
     {"vertices": 20, "particles": 50, "events": 5, "b_field": 3.0}, 3001, 48),
    ("pile-up 300x50", "out", "pion gun 300 x 50, 2 T (above the training's hits/event)", "gun_300x50",
     {"vertices": 300, "particles": 50, "events": 2}, 30001, 49),
)  # fmt: skip
#: Samples that get noise hits added: +10% and +30% (noise seeds 10 and 30 draw only noise).
_NOISY = ("gun 20x50", "ttbar pu50")


def simulated(path: Path, **config) -> Path:
    """Simulate `path` with ``SimulationConfig(**config)`` unless it exists already."""
    from hepgan.acts.simulation import SimulationConfig, simulate

    if not path.exists():
        t0 = time.perf_counter()
        simulate(path, SimulationConfig(**config), progress=False)
        print(f"simulated {path.name} in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return path


def samples(data: Path, *, report: bool) -> list[dict]:
    """(name, kind, what, path, field, seed) of every sample, simulating what is missing."""
    data.mkdir(parents=True, exist_ok=True)
    out = []
    for name, kind, what, stem, config, tune_seed, report_seed in _SPECS:
        seed = report_seed if report else tune_seed
        path = simulated(data / f"{stem}_s{seed}.root", seed=seed, **config)
        out.append({"name": name, "kind": kind, "what": f"{what} (seed {seed})", "path": path,
                    "b_field": config.get("b_field", 2.0), "seed": seed})  # fmt: skip
    for base in [s for s in out if s["name"] in _NOISY]:
        for frac, noise_seed in ((0.10, 10), (0.30, 30)):
            pct = int(frac * 100)
            path = data / f"{Path(base['path']).stem}_noise{pct}.root"
            if not path.exists():
                add_noise_hits(base["path"], path, frac, seed=noise_seed)
            out.append({"name": f"{base['name']} +{pct}% noise", "kind": "out",
                        "what": f"{base['what']} + {pct}% noise hits (noise seed {noise_seed})",
                        "path": path, "b_field": 2.0, "seed": base["seed"]})  # fmt: skip
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
    # optional branches (ACTS's tracks carry no network spread) stay out when the file lacks them
    schemas = [s if all(b in data[s.name].fields for b in s.names) else s.required() for s in (HITS, PARTICLES, TRACKS)]
    with RootEventWriter(dst, schemas) as writer:
        for schema in schemas:
            writer.write_chunk(schema.name, {b: data[schema.name][b] for b in schema.names})
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
        "seed": sample["seed"],
        "flagged_fraction": float(flagged.mean()) if n else 0.0,
        "flag_rates": {f: float(v.mean()) if n else 0.0 for f, v in flags.items()},
        # a handful of events per sample: the 68% Clopper-Pearson interval says how little
        # a 0 / n or n / n proves
        "flagged": metrics.rate_with_interval(int(flagged.sum()), n),
        "per_flag": {f: metrics.rate_with_interval(int(v.sum()), n) for f, v in flags.items()},
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
    ap.add_argument("--report", action="store_true",
                    help="fresh samples of the report seeds (41, 43-49): the rates the README quotes")
    ap.add_argument("--data", type=Path, default=None,
                    help="where samples are simulated and kept (default /tmp/hepgan-reliability[-report])")
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("-o", "--output", type=Path, default=None)
    args = ap.parse_args(argv)
    suffix = "-report" if args.report else ""
    data = args.data or Path(f"/tmp/hepgan-reliability{suffix}")
    output = args.output or REPO / "benchmarks" / "results" / f"reliability-flag{suffix}.json"
    model = args.model or shipped_model_path()
    config = TriageConfig()
    info = read_model_info(model)
    results = []
    for sample in samples(data, report=args.report):
        r = measure(sample, model, data / "triage", config)
        results.append(r)
        print(
            f"{r['sample']:<22} ev {r['events']:>2} hits/ev {r['hits_per_event']:>8.0f} flagged {r['flagged_fraction']:.2f} "
            + " ".join(f"{f} {v:.2f}" for f, v in r["flag_rates"].items())
            + f" | eff sur {r['surrogate']['efficiency']} acts {r['acts']['efficiency']} fake sur {r['surrogate']['fake_rate']}",
            flush=True,
        )
    ins = [r for r in results if r["kind"] == "in"]
    outs = [r for r in results if r["kind"] == "out"]

    def pooled(rs: list[dict]) -> dict:
        return metrics.rate_with_interval(sum(r["flagged"]["k"] for r in rs), sum(r["events"] for r in rs))

    doc = {
        "benchmark": "reliability flag (hepgan.triage) on in- and out-of-distribution samples",
        "command": "python benchmarks/bench_reliability_flag.py" + (" --report" if args.report else ""),
        "seeds": "report (fresh events: these rates are quoted)" if args.report
        else "tune (these events chose the thresholds: not to be quoted as rates)",
        "model": str(model),
        "model_training_hits_per_event": info.training.get("hits_per_event"),
        "triage_config": {k: getattr(config, k) for k in config.__dataclass_fields__},
        "efficiency_definition": "primary charged particles, pT > 1 GeV, |eta| < 2.5, >= 7 hits, ACTS double matching",
        "machine": machine(),
        "flagged_fraction_in_distribution": pooled(ins),
        "flagged_fraction_out_of_distribution": pooled(outs),
        "samples": results,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"in-distribution flagged {doc['flagged_fraction_in_distribution']['value']:.3f}, "
          f"out-of-distribution flagged {doc['flagged_fraction_out_of_distribution']['value']:.3f} -> {output}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
