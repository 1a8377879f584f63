"""The embedded default job (`hepgan demo`): a small simulated sample, end to end.

Pythia 8 and ACTS simulate a small collision sample (ttbar with pile-up; or a pion gun), reused
when it exists; then ACTS (``hepgan reco --engine
acts``: measurements, seeding, CKF, ambiguity resolution from the file's hits) and the shipped
surrogate reconstruct the same events, `repeats` times each, interleaved, 1 thread each, in this
process. Both are scored against truth with `hepgan.perf.metrics`; their speed is the median
of the runs measured now, with the spread of the ratio over the runs. Nothing is taken from
the timings stored in the sample. Reading and writing files are left out of both sides' times,
and so are one-off start-up costs (model loading, kernel compilation, building the detector),
which are shown apart.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

__all__ = ["format_demo", "run_demo"]

log = logging.getLogger(__name__)

_FIGURES = ("efficiency", "fake_rate", "duplicate_rate", "trackml_score")

#: Stages each side's reconstruction time covers, as the bench's (reading and writing files
#: excluded): ACTS's seeding includes forming space points from measurements; building the
#: measurements from a file's hits stands in for clustering and is left out; the
#: surrogate reads global positions.
_TIMED = {
    "acts": ("seeding", "ckf", "ambiguity"),
    "surrogate": ("seeding", "features", "network", "assignment", "ambiguity"),
}


def run_demo(
    output: Path,
    *,
    events: int = 3,
    process: str = "ttbar",
    pileup: int = 50,
    vertices: int = 20,
    particles: int = 50,
    seed: int = 1,
    model: Path | None = None,
    repeats: int = 3,
    progress: bool = False,
) -> dict[str, Any]:
    """Simulate `events` of `process` (ttbar or minbias with `pileup` collisions, or a gun of
    `vertices` x `particles` pions) into `output` (or reuse that sample), reconstruct them with
    ACTS and the surrogate `repeats` times each, and compare.

    Returns the figures of merit per side (pT > 1 GeV), ms/event per stage of each side's
    median run, the speed-up of every run pair and their median, and each side's start-up.
    """
    from hepgan.acts.simulation import SimulationConfig, simulate
    from hepgan.io.events import read_events
    from hepgan.perf import metrics
    from hepgan.reco.driver import reconstruct_files

    output = Path(output)
    what = f"{vertices}x{particles}" if process == "gun" else f"{process}_pu{pileup}"
    sample = output / f"events_{what}_n{events}_s{seed}.root"
    reused = sample.exists()
    if reused:
        log.info("reusing the sample %s (its stored ACTS timings are not used)", sample)
    else:
        shape = {"vertices": vertices, "particles": particles} if process == "gun" else {"pileup": pileup}
        simulate(sample, SimulationConfig(events=events, process=process, seed=seed, **shape), progress=progress)
    runs: dict[str, list[dict[str, Any]]] = {"acts": [], "surrogate": []}
    for _ in range(repeats):  # interleaved: a slow spell of a shared machine hits both sides
        runs["acts"].append(reconstruct_files([sample], output / "acts", engine="acts", progress=False, resume=False))
        runs["surrogate"].append(
            reconstruct_files([sample], output / "surrogate", model=model, threads=1, progress=False, resume=False)
        )
    data = read_events(sample, trees=("hits", "particles"), truth=True)
    summary: dict[str, Any] = {
        "sample": str(sample), "sample_reused": reused, "events": len(data["hits"]), "repeats": repeats, "what": what,
        "hits_per_event": float(np.mean(ak.num(data["hits"]["hit_x"], axis=1))),
    }  # fmt: skip
    totals = {}
    tracks = {side: read_events(output / side / sample.name, trees=("tracks",))["tracks"] for side in runs}
    agreement = metrics.agreement({k: tracks["acts"][k] for k in tracks["acts"].fields},
                                  {k: tracks["surrogate"][k] for k in tracks["surrogate"].fields})  # fmt: skip
    for side in ("acts", "surrogate"):
        figures = metrics.summarize(data["hits"], data["particles"], tracks[side], pt_min=1.0)
        summary[side] = {k: figures[k] for k in _FIGURES}
        summary[side]["agreement"] = 1.0 if side == "acts" else agreement["fraction_reproduced"]
        summary[side]["tracks_per_event"] = figures["n_tracks"] / max(figures["n_events"], 1)
        totals[side] = np.array([sum(r["ms_per_event"][s] for s in _TIMED[side]) for r in runs[side]])
        median_run = runs[side][int(np.argsort(totals[side])[len(totals[side]) // 2])]
        summary[side]["ms_per_event"] = {s: float(median_run["ms_per_event"][s]) for s in _TIMED[side]}
        summary[side]["ms_per_event_runs"] = totals[side].tolist()
        summary[side]["startup_s"] = runs[side][0]["startup_s"]
    ratios = totals["acts"] / np.maximum(totals["surrogate"], 1e-9)
    summary["speedup_runs"] = ratios.tolist()
    summary["speedup_median"] = float(np.median(totals["acts"]) / max(float(np.median(totals["surrogate"])), 1e-9))
    return summary


def format_demo(summary: dict[str, Any]) -> str:
    """The demo's summary as an aligned table for people."""
    acts, sur = summary["acts"], summary["surrogate"]
    made = "reused" if summary["sample_reused"] else "simulated now"
    lines = [
        f"demo: {summary['events']} events of {summary.get('what', 'the sample')}, "
        f"{summary['hits_per_event']:,.0f} hits per event ({made}: {summary['sample']})",
        "",
        f"  {'pT > 1 GeV':<24}{'ACTS':>12}{'surrogate':>12}",
    ]
    names = {"efficiency": "efficiency", "fake_rate": "fake rate", "duplicate_rate": "duplicate rate",
             "trackml_score": "TrackML score", "tracks_per_event": "tracks per event",
             "agreement": "ACTS tracks reproduced"}  # fmt: skip
    for key, label in names.items():
        fmt = "{:>12,.1f}" if key == "tracks_per_event" else "{:>12.3f}"
        lines.append(f"  {label:<24}" + fmt.format(acts[key]) + fmt.format(sur[key]))
    a_ms, s_ms = sum(acts["ms_per_event"].values()), sum(sur["ms_per_event"].values())
    lines.append(f"  {'ms per event (median)':<24}{a_ms:>12,.1f}{s_ms:>12,.1f}")
    ratios = summary["speedup_runs"]
    lines += [
        "",
        f"  speed-up, measured now: {summary['speedup_median']:.1f}x (median of {summary['repeats']} interleaved runs; "
        f"per run {', '.join(f'{r:.1f}' for r in ratios)}), 1 thread each",
        "  times cover reconstruction from hits: ACTS " + " + ".join(acts["ms_per_event"])
        + "; surrogate " + " + ".join(sur["ms_per_event"]) + "; reading and writing files excluded",
        "  start-up, once per process, not in the times: ACTS "
        + ", ".join(f"{k.replace('_', ' ')} {v:.1f} s" for k, v in acts["startup_s"].items())
        + "; surrogate " + ", ".join(f"{k.replace('_', ' ')} {v:.1f} s" for k, v in sur["startup_s"].items()),
    ]  # fmt: skip
    return "\n".join(lines)
