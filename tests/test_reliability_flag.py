"""The triage reliability flag with the shipped model on real ACTS events: rarely on events like
the training data, always on events unlike it (30% noise hits added; an occupancy far outside
the training range). The rates over more samples are in benchmarks/results/reliability-flag.json
(benchmarks/bench_reliability_flag.py)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from hepgan.io.events import read_events
from hepgan.perf.samples import add_noise_hits
from hepgan.reco.model_file import read_model_info, shipped_model_path
from hepgan.triage import FLAGS, triage_files


def _flags(path: Path, out: Path) -> tuple[dict[str, np.ndarray], list[dict[str, str]]]:
    summary = triage_files([path], out, select="ntracks >= 0", progress=False, plots=False)
    with (out / "events.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    flags = {f: np.array([int(r[f"flag_{f}"]) for r in rows], bool) for f in FLAGS}
    flagged = np.zeros(len(rows), bool)
    for v in flags.values():
        flagged |= v
    assert summary["flagged_events"] == int(flagged.sum())
    listed = (out / "send_to_classic.txt").read_text().splitlines()
    assert len(listed) == int(flagged.sum())
    return {"any": flagged, **flags}, rows


@pytest.fixture(scope="module")
def model() -> Path:
    path = shipped_model_path()
    assert read_model_info(path).training.get("hits_per_event"), "the shipped model must carry its training occupancy"
    return path


def test_flag_rarely_fires_in_distribution_and_fires_with_noise(sim_20x50: Path, tmp_path: Path, model: Path) -> None:
    flags, rows = _flags(sim_20x50, tmp_path / "clean")
    assert len(rows) == 5
    assert flags["any"].mean() <= 0.2, rows  # 20 x 50 at 2 T, no noise: like the training set
    assert not flags["unassigned"].any() and not flags["occupancy"].any() and not flags["unknown_layers"].any()

    noisy = add_noise_hits(sim_20x50, tmp_path / "noisy.root", 0.30, seed=30)
    clean_hits = read_events(sim_20x50, trees=("hits",))["hits"]
    noisy_hits = read_events(noisy, trees=("hits",))["hits"]
    added = np.asarray([len(n) - len(c) for n, c in zip(noisy_hits["hit_x"], clean_hits["hit_x"], strict=True)])
    assert np.allclose(added / np.asarray([len(c) for c in clean_hits["hit_x"]]), 0.30, atol=1e-3)
    flags_noisy, rows_noisy = _flags(noisy, tmp_path / "noisy")
    assert flags_noisy["any"].all(), rows_noisy
    assert flags_noisy["unassigned"].all()
    # the same events: the noise alone raised the share of hits on no track
    clean_u = np.array([float(r["unassigned_fraction"]) for r in rows])
    noisy_u = np.array([float(r["unassigned_fraction"]) for r in rows_noisy])
    assert (noisy_u > clean_u + 0.1).all()


def test_flag_fires_on_occupancy_far_outside_training(small_sim: Path, tmp_path: Path, model: Path) -> None:
    lo = read_model_info(model).training["hits_per_event"]["min"]
    flags, rows = _flags(small_sim, tmp_path / "small")  # 2 x 20 pions: ~500 hits/event
    # below the training range less the flag's margin: the least busy training events are
    # ttbar without pile-up (~640 hits), no longer the 20 x 50 guns (~12k)
    assert all(int(r["nhits"]) < lo * 0.9 for r in rows)
    assert flags["occupancy"].all() and flags["any"].all(), rows
