"""The embedded default job (`hepgan demo`): a small simulated sample, end to end.

ACTS simulates and reconstructs a small sample (its per-algorithm time measured in this
process); the shipped surrogate model reconstructs the same events from their hits alone; both
are scored against truth with `hepgan.perf.metrics`, and their speed compared, 1 thread each.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

__all__ = ["run_demo"]

log = logging.getLogger(__name__)

_FIGURES = ("efficiency", "fake_rate", "duplicate_rate", "trackml_score")


def run_demo(
    output: Path,
    *,
    events: int = 3,
    vertices: int = 20,
    particles: int = 50,
    seed: int = 1,
    model: Path | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Simulate `events` of `vertices` x `particles` pions into `output`, reconstruct them with
    the surrogate, and compare with ACTS. A re-run with the same arguments reuses the finished
    files (the simulation and the reconstruction are both resumable)."""
    from hepgan.acts.simulation import SimulationConfig, simulate
    from hepgan.io.events import read_events
    from hepgan.perf import metrics
    from hepgan.reco.driver import reconstruct_files

    output = Path(output)
    sample = output / f"events_{vertices}x{particles}_n{events}_s{seed}.root"
    if sample.exists():
        log.info("reusing %s", sample)
    else:
        simulate(sample, SimulationConfig(events=events, vertices=vertices, particles=particles, seed=seed), progress=progress)
    # A first pass compiles the numba kernels (or loads them from the cache) and builds the
    # per-geometry tables: one-off costs of a process, timed apart from the per-event ones.
    warm = reconstruct_files([sample], output / "warm-up", model=model, threads=1, progress=False, resume=False)
    reco = reconstruct_files([sample], output / "surrogate", model=model, threads=1, progress=progress, resume=False)
    data = read_events(sample, trees=("hits", "particles", "tracks", "acts_timing"), truth=True)
    surrogate = read_events(output / "surrogate" / sample.name, trees=("tracks",))["tracks"]

    summary: dict[str, Any] = {"sample": str(sample), "events": len(data["hits"])}
    summary["hits_per_event"] = float(np.mean(ak.num(data["hits"]["hit_x"], axis=1)))
    for name, tracks in (("acts", data["tracks"]), ("surrogate", surrogate)):
        figures = metrics.summarize(data["hits"], data["particles"], tracks, pt_min=1.0)
        summary[f"{name} pT>1 GeV"] = {k: figures[k] for k in _FIGURES}
        summary[f"{name} tracks/event"] = figures["n_tracks"] / max(figures["n_events"], 1)
    timing = data["acts_timing"]
    acts_ms = {s: float(np.median(ak.to_numpy(timing[f"acts_{s}_ms"]))) for s in ("seeding", "ckf", "ambiguity", "total_reco")}
    summary["acts ms/event"] = acts_ms
    summary["surrogate ms/event"] = {k: float(v) for k, v in reco["ms_per_event"].items()}
    summary["surrogate first pass ms/event"] = float(warm["ms_per_event"].get("total", float("nan")))
    total = reco["ms_per_event"].get("total")
    if total:
        summary["speed-up (1 thread)"] = acts_ms["total_reco"] / float(total)
    return summary
