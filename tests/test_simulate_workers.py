"""`hepgan simulate --workers N` / `--scheduler`: the same events whatever runs them, bad input refused.

Small on purpose (CI: 2 cores): a few gun events, a few ttbar events without pile-up (no
minimum-bias generator to initialise, 7 s each).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import awkward as ak
import pytest
import uproot

from hepgan.acts import simulation
from hepgan.acts.simulation import BLOCK_EVENTS, SimulationConfig, block_seed, event_ranges, simulate, simulate_range

pytest.importorskip("distributed")

REPO = Path(__file__).resolve().parents[1]
TREES = ("hits", "particles", "tracks")


def _read(path: Path) -> dict[str, ak.Array]:
    with uproot.open(path) as f:
        trees = {name: f[name].arrays() for name in TREES}
        trees["event_id"] = f["acts_timing"]["event_id"].array()
        trees["metadata"] = str(f["hepgan_metadata"])
    return trees


def assert_same_events(a: Path, b: Path) -> None:
    """Every branch of hits, particles and tracks, the event ids and the metadata are equal
    (acts_timing's times are wall times)."""
    ta, tb = _read(a), _read(b)
    assert ak.to_list(ta["event_id"]) == ak.to_list(tb["event_id"])
    assert ta["metadata"] == tb["metadata"]
    for tree in TREES:
        assert ta[tree].fields == tb[tree].fields
        for name in ta[tree].fields:
            assert ak.array_equal(ta[tree][name], tb[tree][name], equal_nan=True), (tree, name)


def hepgan(*args: str | Path, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    cmd = [sys.executable, "-m", "hepgan.cli", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=300, check=False, **kw)


def error_lines(stderr: str) -> list[str]:
    """stderr without hepgan's narration ("hepgan: simulating ...")."""
    return [ln for ln in stderr.splitlines() if ln.strip() and (not ln.startswith("hepgan: ") or ln.startswith("hepgan: error:"))]


# ---------------------------------------------------------------------------------------
# How the events are cut (no ACTS)
# ---------------------------------------------------------------------------------------


def test_event_ranges_cover_the_run_in_order():
    gun = SimulationConfig(events=4)
    assert event_ranges(gun) == [(0, 4)]
    assert event_ranges(gun, pieces=2) == [(0, 2), (2, 4)]
    assert event_ranges(gun, pieces=8) == [(0, 1), (1, 2), (2, 3), (3, 4)]
    assert event_ranges(SimulationConfig(events=250), max_events=50) == [(i, i + 50) for i in range(0, 250, 50)]
    # collisions: never across a stream block, in this process too
    tt = SimulationConfig(events=250, process="ttbar")
    assert event_ranges(tt) == [(0, 100), (100, 200), (200, 250)]
    ranges = event_ranges(tt, pieces=3, max_events=60)
    assert ranges[0][0] == 0 and ranges[-1][1] == 250
    assert all(a < b and b - a <= 60 for a, b in ranges)
    assert all(b == c for (_, b), (c, _) in zip(ranges[:-1], ranges[1:], strict=True))
    assert all(a // BLOCK_EVENTS == (b - 1) // BLOCK_EVENTS for a, b in ranges)
    # Poisson pile-up cannot be skipped by ACTS's reader: whole blocks
    poisson = SimulationConfig(events=250, process="ttbar", pileup=5, pileup_poisson=True)
    assert event_ranges(poisson, pieces=4, max_events=10) == [(0, 100), (100, 200), (200, 250)]


def test_block_seeds():
    assert block_seed(42, 0) == 42  # block 0: the events a run has always made
    seeds = {block_seed(42, k) for k in range(1, 50)} | {block_seed(43, 1)}
    assert len(seeds) == 50 and 42 not in seeds
    assert all(0 <= s < 2**63 for s in seeds)
    assert block_seed(42, 3) == block_seed(42, 3)


def test_workers_are_not_part_of_the_config():
    names = SimulationConfig.field_names()
    assert "workers" not in names and "scheduler" not in names


# ---------------------------------------------------------------------------------------
# The same events whatever the number of workers
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gun_runs(tmp_path_factory):
    """4 events of 1 x 20 pions: in this process, and on 2 local Dask workers."""
    out = tmp_path_factory.mktemp("gun_workers")
    cfg = SimulationConfig(events=4, particles=20, seed=21)
    serial = simulate(out / "serial.root", cfg, progress=False)
    dask = simulate(out / "dask.root", cfg, progress=False, workers=2)
    return out, serial, dask


def test_gun_events_do_not_depend_on_the_workers(gun_runs):
    out, serial, dask = gun_runs
    assert_same_events(out / "serial.root", out / "dask.root")
    assert serial["executor"] == "serial" and dask["executor"] == "dask LocalCluster of 2 workers"
    for key in ("events", "mean_hits", "mean_particles", "mean_tracks"):
        assert serial[key] == dask[key], key
    assert set(dask["acts_ms_per_event"]) == set(serial["acts_ms_per_event"])
    assert dask["wall_s"] > 0


def test_ttbar_events_do_not_depend_on_the_workers(tmp_path):
    """4 ttbar events on a running cluster (--scheduler) in 2 ranges: the second skips 2
    Pythia events (reader skip inside the stream block)."""
    distributed = pytest.importorskip("distributed")
    cfg = SimulationConfig(events=4, process="ttbar", seed=22)
    serial = simulate(tmp_path / "serial.root", cfg, progress=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=50) as cluster:  # fmt: skip
        dask = simulate(tmp_path / "dask.root", cfg, progress=False, scheduler=cluster.scheduler_address)
    assert_same_events(tmp_path / "serial.root", tmp_path / "dask.root")
    assert dask["executor"].startswith("dask scheduler tcp://")
    assert serial["mean_hits"] == dask["mean_hits"] and dask["pythia_ms_per_event"] > 0


def test_stream_blocks_after_the_first_are_seeded_from_seed_and_block(tmp_path, monkeypatch):
    """Blocks of 2 events (in this process): block 0 is the run of today, block 1 the events 0
    and 1 of block_seed(seed, 1) renumbered 2 and 3, and a range inside block 1 (event 3 alone,
    the reader skipping event 2's collision) equals it."""
    cfg = SimulationConfig(events=4, process="ttbar", seed=23)
    simulate(tmp_path / "one_block.root", cfg, progress=False)
    monkeypatch.setattr(simulation, "BLOCK_EVENTS", 2)
    simulate(tmp_path / "blocks.root", cfg, progress=False)
    one, blocks = _read(tmp_path / "one_block.root"), _read(tmp_path / "blocks.root")
    assert ak.to_list(blocks["event_id"]) == [0, 1, 2, 3]
    for name in one["hits"].fields:
        assert ak.array_equal(one["hits"][name][:2], blocks["hits"][name][:2]), name
    assert not ak.array_equal(one["hits"]["hit_x"][2:], blocks["hits"]["hit_x"][2:])
    block1 = SimulationConfig(events=2, process="ttbar", seed=block_seed(23, 1))
    simulate(tmp_path / "block1.root", block1, progress=False)
    b1 = _read(tmp_path / "block1.root")
    assert ak.to_list(b1["event_id"]) == [0, 1]
    for tree in TREES:
        for name in b1[tree].fields:
            if name != "event_id":
                assert ak.array_equal(b1[tree][name], blocks[tree][name][2:], equal_nan=True), (tree, name)
    part = simulate_range(cfg, 3, 4)
    chunks = dict(part.chunks)
    for tree in TREES:
        assert list(chunks[tree]["event_id"]) == [3]
        for name in chunks[tree]:  # the columns written (the file adds counters: nhit, ...)
            if name != "event_id":
                assert ak.array_equal(chunks[tree][name], blocks[tree][name][3:], equal_nan=True), (tree, name)


# ---------------------------------------------------------------------------------------
# Bad input, failures, interruptions: one line, no file
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--workers", "0"], "workers must be >= 1, got 0"),
        (["--workers=-2"], "workers must be >= 1, got -2"),
        (["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "not both"),
        (["--scheduler", "tcp://127.0.0.1:1"], "cannot connect to the Dask scheduler at 'tcp://127.0.0.1:1'"),
    ],
)
def test_bad_workers_or_scheduler_is_one_line_exit_2_and_no_file(tmp_path, args, needle):
    out = tmp_path / "x.root"
    proc = hepgan("simulate", "-o", out, "--events", "2", *args, env={"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "1s"})
    assert proc.returncode == 2, proc.stderr
    lines = error_lines(proc.stderr)
    assert len(lines) == 1 and lines[0].startswith("hepgan: error: ") and needle in lines[0], proc.stderr
    assert proc.stdout == ""
    assert list(tmp_path.iterdir()) == []


def test_failing_worker_is_one_line_and_no_file(tmp_path):
    """Pythia refuses a setting inside the workers: the task's error, once, and nothing written."""
    out = tmp_path / "x.root"
    proc = hepgan("simulate", "-o", out, "--process", "ttbar", "--events", "2", "--workers", "2",
                  "--pythia-setting", "Top:nonsense = on")  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    lines = error_lines(proc.stderr)
    assert len(lines) == 1 and "'Top:nonsense = on'" in lines[0], proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_interrupted_run_on_workers_leaves_no_file(tmp_path):
    out = tmp_path / "x.root"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "hepgan.cli", "simulate", "-o", str(out), "--events", "400", "--workers", "2"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not any(tmp_path.glob(".x.root.*.tmp")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(1.0)  # the workers are simulating
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode != 0, stderr
    assert list(tmp_path.iterdir()) == []
