"""The embedded default job (`hepgan demo`): a small simulated sample, end to end.

Until the surrogate lands this is the part that exists for real: ACTS simulates and reconstructs
a small sample, the file is read back through the validating reader, and the classic tracks are
scored with `hepgan.metrics` against truth, next to ACTS's time per algorithm.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

__all__ = ["run_demo"]

log = logging.getLogger(__name__)


def run_demo(
    output: Path, *, events: int = 3, vertices: int = 20, particles: int = 50, seed: int = 1, progress: bool = False
) -> dict[str, Any]:
    """Simulate `events` of `vertices` x `particles` pions into `output`/events.root and score
    ACTS's tracks. A re-run with the same arguments reuses the finished file."""
    from hepgan import metrics
    from hepgan.io import read_events
    from hepgan.simulate import SimulationConfig, simulate

    output = Path(output)
    sample = output / f"events_{vertices}x{particles}_n{events}_s{seed}.root"
    if sample.exists():
        log.info("reusing %s", sample)
    else:
        cfg = SimulationConfig(events=events, vertices=vertices, particles=particles, seed=seed)
        simulate(sample, cfg, progress=progress)
    data = read_events(sample, trees=("hits", "particles", "tracks", "acts_timing"), truth=True)
    summary: dict[str, Any] = {"sample": str(sample), "events": len(data["hits"])}
    summary["hits_per_event"] = float(np.mean(ak.num(data["hits"]["hit_x"], axis=1)))
    for pt_min in (1.0, 0.5):
        figures = metrics.summarize(data["hits"], data["particles"], data["tracks"], pt_min=pt_min)
        summary[f"acts_pt>{pt_min:g}"] = {
            k: figures[k] for k in ("efficiency", "fake_rate", "duplicate_rate") if k in figures
        }
    figures = metrics.summarize(data["hits"], data["particles"], data["tracks"], pt_min=1.0)
    if "trackml_score" in figures:
        summary["acts_trackml_score"] = float(figures["trackml_score"])
    timing = data["acts_timing"]
    summary["acts_ms_per_event"] = {
        stage: float(np.median(ak.to_numpy(timing[f"acts_{stage}_ms"]))) for stage in ("seeding", "ckf", "ambiguity", "total_reco")
    }
    return summary
