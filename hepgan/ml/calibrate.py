"""Calibrate a model's sampled spread against the classic tracks of held-out events.

Why a calibration after training: the generator learns the spread of the classic answer per
seed, over every seed of the training set, duplicates and seeds with a wrong hit included.
The engine reports the spread of the track that survives hit assignment and ambiguity
resolution, the cleanest seed of its particle, whose classic answer lies closer. Measured for
the shipped model: core pull widths (ACTS - mean) / spread of d0 0.83-0.87, z0 0.69-0.71,
theta 0.74-0.76, phi 0.92-0.99 and q/p 1.0-1.1 at 20 x 50 to 200 x 50 (seed level: 0.97-1.14).
The factors do not depend on pile-up, so one factor per parameter, measured end to end on
held-out events, calibrates them (`spread_scale` in the model's metadata, applied by the
engine to ``track_spread_*``). It never changes the tracks or their parameters; the errors
against the truth (``track_err_*``) are `hepgan.ml.error_model`'s.

The width of a pull scales as 1 / spread, so one pass is exact: the new factor is the old one
times the measured core width.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import awkward as ak
import numpy as np

from hepgan.errors import InputError
from hepgan.io.events import iterate_chunks
from hepgan.io.schema import TRACK_PARAMETERS

__all__ = ["calibrate_spread", "reconstruct_chunks"]

log = logging.getLogger(__name__)

#: Fewer reproduced tracks than this measure a pull width to worse than 2%.
MIN_TRACKS = 1000


def reconstruct_chunks(engine, inputs: Sequence[str | os.PathLike], *, trees: Sequence[str], truth: bool = False,
                       max_events: int = 0, quality: bool = False) -> Iterator[tuple[dict[str, ak.Array], list[dict]]]:  # fmt: skip
    """Run `engine` over the events of `inputs`, at most `max_events` (0: all): per chunk, the
    chunk's `trees` cut to the events reconstructed and the engine's tracks of each event (with
    the error model's quality variable when `quality`, `Engine.reconstruct_event`)."""
    n_events = 0
    for path in inputs:
        for chunk in iterate_chunks(path, trees=trees, truth=truth, step_events=50):
            hits = chunk.arrays["hits"]
            n = len(hits) if not max_events else min(len(hits), max_events - n_events)
            if n <= 0:
                return
            cols = ("hit_x", "hit_y", "hit_z", "hit_volume_id", "hit_layer_id")
            ours = [engine.reconstruct_event(*(ak.to_numpy(hits[k][i]) for k in cols), event_id=int(hits["event_id"][i]),
                                             quality=quality)[0]
                    for i in range(n)]  # fmt: skip
            n_events += n
            yield {name: arr[:n] for name, arr in chunk.arrays.items()}, ours


def calibrate_spread(model: str | os.PathLike, inputs: Sequence[str | os.PathLike], *, max_events: int = 0,
                     seed: int = 0, dry_run: bool = False, output: str | os.PathLike | None = None) -> dict:  # fmt: skip
    """Measure the pull widths of `model` on the events of `inputs` (files with hits and the
    classic ``tracks``) and write the model with ``spread_scale`` in its metadata to `output`
    (default: `model` itself; atomically: a temporary file renamed over it), unless `dry_run`.

    Returns a dict with ``pull_width_before`` and ``spread_scale`` per parameter, the events
    and tracks used.
    """
    from hepgan.perf.metrics import agreement
    from hepgan.reco.engine import Engine
    from hepgan.reco.model_file import read_model_info, write_model_metadata

    model = Path(model)
    info = read_model_info(model)
    engine = Engine(model, threads=1, seed=seed)
    acts_parts: list[dict] = []
    sur_parts: list[dict] = []
    n_events = 0
    for arrays, ours in reconstruct_chunks(engine, inputs, trees=("hits", "tracks"), max_events=max_events):
        tracks = arrays["tracks"]
        acts_parts += [{k: tracks[k][i] for k in tracks.fields} for i in range(len(ours))]
        sur_parts += ours
        n_events += len(ours)
    if not n_events:
        msg = f"{', '.join(map(str, inputs))}: no events; expected files with hits and the classic tracks"
        raise InputError(msg)
    acts = {k: ak.Array([e[k] for e in acts_parts]) for k in acts_parts[0]}
    ours = {k: ak.Array([e[k] for e in sur_parts]) for k in sur_parts[0]}
    ag = agreement(acts, ours)
    if ag["n_reproduced"] < MIN_TRACKS:
        msg = (f"{', '.join(map(str, inputs))}: only {ag['n_reproduced']} classic tracks reproduced in {n_events} "
               f"events; expected >= {MIN_TRACKS} to measure pull widths")  # fmt: skip
        raise InputError(msg)
    before = {p: ag["pull_width"][p] for p in TRACK_PARAMETERS}
    bad = {p: w for p, w in before.items() if w is None or not 0 < w < np.inf}
    if bad:
        msg = f"{model}: pull widths {bad} on {', '.join(map(str, inputs))} are not positive finite numbers; nothing written"
        raise InputError(msg)
    scale = [float(info.spread_scale[j] * before[p]) for j, p in enumerate(TRACK_PARAMETERS)]
    result = {
        "pull_width_before": before,
        "spread_scale": dict(zip(TRACK_PARAMETERS, scale, strict=True)),
        "events": n_events,
        "tracks": int(ag["n_reproduced"]),
        "inputs": [str(p) for p in inputs],
    }
    if dry_run:
        return result
    calibration = {k: v for k, v in result.items() if k != "spread_scale"}
    target = write_model_metadata(model, {"spread_scale": scale, "spread_calibration": calibration}, output=output)
    log.info("calibrated %s -> %s: spread scale %s", model, target, np.round(scale, 3).tolist())
    return result
