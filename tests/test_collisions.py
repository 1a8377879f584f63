"""`hepgan simulate --process ttbar --pileup N`: real Pythia 8 -> HepMC3 -> ACTS runs, small."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from hepgan.acts.collisions import pileup_events_needed
from hepgan.acts.config import ChainConfig
from hepgan.acts.pythia import HARD_PROCESSES, PythiaSource, pythia_seed
from hepgan.acts.simulation import SimulationConfig, simulate
from hepgan.errors import InputError
from hepgan.io.events import read_events
from hepgan.io.schema import PARTICLES
from hepgan.perf.metrics import efficiency, efficiency_denominator, match_tracks

TREES = ("hits", "particles", "tracks")


def _read(path: Path) -> dict[str, ak.Array]:
    with uproot.open(path) as f:
        return {name: f[name].arrays() for name in TREES}


@pytest.fixture(scope="module")
def ttbar_runs(tmp_path_factory):
    """2 ttbar events without pile-up, twice (different chunking), and 2 at pile-up 5."""
    out = tmp_path_factory.mktemp("collisions")
    a = SimulationConfig(events=2, process="ttbar", seed=101, chunk_events=1)
    simulate(out / "a.root", a, progress=False)
    simulate(out / "b.root", SimulationConfig(events=2, process="ttbar", seed=101), progress=False)
    pu = simulate(out / "pu5.root", SimulationConfig(events=2, process="ttbar", pileup=5, seed=101), progress=False)
    return out, pu


def test_same_seed_gives_identical_collisions(ttbar_runs):
    out, _ = ttbar_runs
    a, b = _read(out / "a.root"), _read(out / "b.root")
    for tree in TREES:
        assert a[tree].fields == b[tree].fields
        for name in a[tree].fields:
            assert ak.to_list(a[tree][name]) == ak.to_list(b[tree][name]), (tree, name)
    assert len(a["hits"]) == 2


def test_pileup_adds_collisions_on_top_of_the_same_hard_scatter(ttbar_runs):
    out, summary = ttbar_runs
    hard, pu = _read(out / "a.root")["particles"], _read(out / "pu5.root")["particles"]
    assert summary["events"] == 2 and summary["pythia_ms_per_event"] > 0
    for e in range(2):
        vp = ak.to_numpy(pu.particle_vertex_primary[e])
        hs = ak.to_numpy(pu.particle_hard_scatter[e])
        np.testing.assert_array_equal(hs, vp == 1)
        # the hard scatter is read first: the same particles whatever the pile-up
        n_hs = int(np.sum(ak.to_numpy(hard.particle_vertex_primary[e]) == 1))
        assert int(hs.sum()) == n_hs > 50
        assert np.all(ak.to_numpy(hard.particle_hard_scatter[e]))
        # up to 5 pile-up collisions (elastic / diffractive ones may leave no selected particle)
        ids = np.unique(vp)
        assert ids[0] == 1 and 3 <= len(ids) <= 6 and ids.max() <= 6
        # each collision at its own point of the 50 mm beam spot
        prompt = ak.to_numpy(pu.particle_primary[e]) & (ak.to_numpy(pu.particle_vertex_secondary[e]) == 0)
        vz = ak.to_numpy(pu.particle_vz[e])
        z = np.array([np.median(vz[prompt & (vp == v)]) for v in ids if np.any(prompt & (vp == v))])
        assert np.min(np.diff(np.sort(z))) > 0.01
        for v in ids:
            sel = prompt & (vp == v)
            assert np.ptp(vz[sel]) < 1e-3 if sel.any() else True  # one point per collision


def test_truth_marks_displaced_decays_and_fatras_secondaries(ttbar_runs):
    out, _ = ttbar_runs
    parts = _read(out / "a.root")["particles"]
    vs = ak.to_numpy(ak.flatten(parts.particle_vertex_secondary))
    primary = ak.to_numpy(ak.flatten(parts.particle_primary))
    vx, vy = (ak.to_numpy(ak.flatten(parts[f"particle_v{c}"])) for c in "xy")
    r = np.hypot(vx, vy)
    displaced = primary & (vs > 0)
    # b and c hadron decays: generator-level particles from vertices 0.1 mm to a few mm out
    assert displaced.sum() >= 10
    assert np.sum(displaced & (r > 0.1) & (r < 10.0)) >= 5
    # prompt generator particles start at the beam line
    prompt = primary & (vs == 0)
    assert np.all(r[prompt] < 0.1)
    # generator-level selection as ACTS's ttbar examples: produced inside r < 24 mm, pT > 150 MeV
    assert np.all(r[primary] < 24.0)
    pt = np.hypot(*(ak.to_numpy(ak.flatten(parts[f"particle_p{c}"])) for c in "xy"))
    assert np.all(pt[primary] > 0.15 - 1e-4)
    assert (~primary).sum() > 0  # Fatras secondaries (conversions, ...) are kept too


def test_acts_efficiency_on_collisions_is_sane(ttbar_runs):
    out, _ = ttbar_runs
    for name in ("a.root", "pu5.root"):
        data = _read(out / name)
        match = match_tracks(data["hits"], data["particles"], data["tracks"])
        eff = efficiency(match, data["particles"], pt_min=1.0)
        assert eff.n_total > 50, name
        assert eff.efficiency > 0.9, (name, eff)
        den = ak.to_numpy(ak.flatten(efficiency_denominator(data["particles"], match, pt_min=1.0)))
        hs = den & ak.to_numpy(ak.flatten(data["particles"].particle_hard_scatter))
        found = ak.to_numpy(ak.flatten(match.particle_n_matched)) > 0
        assert hs.sum() > 50 and (found & hs).sum() / hs.sum() > 0.9, name


def test_new_truth_branches_are_read_and_optional(ttbar_runs, tmp_path):
    out, _ = ttbar_runs
    chunk = read_events(out / "a.root", trees=("particles",), truth=True)
    assert {"particle_hard_scatter", "particle_vertex_primary", "particle_vertex_secondary"} <= set(
        chunk["particles"].fields
    )
    assert set(PARTICLES.names) - set(PARTICLES.required().names) == {
        "particle_hard_scatter", "particle_vertex_primary", "particle_vertex_secondary",
    }
    # a file without them (older files, imports) still reads
    with uproot.open(out / "a.root") as f:
        hits = f["hits"].arrays()
        parts = f["particles"].arrays(filter_name=list(PARTICLES.required().names))
    from hepgan.io.events import HITS, RootEventWriter

    old = tmp_path / "old.root"
    with RootEventWriter(old, [HITS, PARTICLES.required()]) as w:
        w.write_chunk("hits", {n: hits[n] for n in HITS.names})
        w.write_chunk("particles", {n: parts[n] for n in PARTICLES.required().names})
    chunk = read_events(old, trees=("particles",), truth=True)
    assert "particle_hard_scatter" not in chunk["particles"].fields
    assert len(chunk["particles"]) == 2


def test_pythia_record_is_what_acts_reads():
    source = PythiaSource(HARD_PROCESSES["ttbar"], pythia_seed(7, "hard"), "hard scatter")
    event = source.next_event()
    roots = [v for v in event.vertices if all(p.status == 4 for p in v.particles_in) and v.particles_in]
    assert len(roots) == 1 and len(roots[0].particles_in) == 2
    final = [p for p in event.particles if p.status == 1]
    decayed = [p for p in event.particles if p.status == 2]
    assert len(final) > 100
    assert all(p.end_vertex is None for p in final)
    assert all(p.end_vertex is not None and len(p.end_vertex.particles_out) > 0 for p in decayed)
    # b hadrons decay at a displaced vertex (c tau ~ 0.5 mm)
    b_decays = [p.end_vertex.position for p in decayed if (abs(p.pid) // 100) % 10 == 5 or (abs(p.pid) // 1000) == 5]
    assert b_decays and max(np.hypot(v.x, v.y) for v in b_decays) > 0.01


def test_pythia_seeds_are_streams_of_the_master_seed():
    assert pythia_seed(1, "hard") == pythia_seed(1, "hard")
    assert len({pythia_seed(1, "hard"), pythia_seed(1, "pileup"), pythia_seed(2, "hard")}) == 3
    assert all(1 <= pythia_seed(s, "pileup") <= 900_000_000 for s in range(50))


def test_enough_pileup_is_generated():
    assert pileup_events_needed(10, 0, False) == 0
    assert pileup_events_needed(10, 200, False) == 2000
    # Poisson: mean + 6 sigma + 10
    assert pileup_events_needed(10, 200, True) == int(np.ceil(2000 + 6 * np.sqrt(2000) + 10))
    assert pileup_events_needed(3, 0, True) == 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"process": "tbar"}, "unknown process 'tbar'.*'ttbar'"),
        ({"process": "ttbar", "pileup": -1}, "pileup must be an integer from 0 to 1000"),
        ({"process": "ttbar", "pileup": 1001}, "pileup must be an integer from 0 to 1000"),
        ({"process": "gun", "pileup": 5}, "pileup applies to the Pythia processes"),
        ({"process": "ttbar", "pythia_settings": "Top:all = on"}, "list of strings"),
    ],
)
def test_config_rejects_bad_collision_options(kwargs, match):
    with pytest.raises(InputError, match=match):
        SimulationConfig(**kwargs)


def test_one_definition_of_the_chain_options():
    chain_fields = set(ChainConfig.__dataclass_fields__)
    sim_only = set(SimulationConfig.__dataclass_fields__) - chain_fields
    assert sim_only == {"events", "chunk_events", "threads"}
    cfg = SimulationConfig(process="ttbar", pileup=3, seed=5, events=2)
    assert cfg.chain_config() == ChainConfig(process="ttbar", pileup=3, seed=5)


def _hepgan(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    cmd = [sys.executable, "-m", "hepgan.cli", *args]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_rejected_pythia_setting_is_one_line_and_no_file(tmp_path):
    out = tmp_path / "x.root"
    proc = _hepgan("simulate", "-o", str(out), "--process", "ttbar", "--events", "1",
                   "--pythia-setting", "Top:nonsense = on")
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 2, stderr
    # one error line; "hepgan: ..." narration lines (what is being done) are not errors
    lines = [ln for ln in stderr.strip().splitlines() if not ln.startswith("hepgan: ") or ln.startswith("hepgan: error:")]
    assert len(lines) == 1 and "'Top:nonsense = on'" in lines[0], stderr
    assert stdout == ""
    assert list(tmp_path.iterdir()) == []


def test_interrupted_simulation_leaves_no_file(tmp_path):
    out = tmp_path / "x.root"
    proc = _hepgan("simulate", "-o", str(out), "--process", "ttbar", "--pileup", "20", "--events", "20")
    deadline = time.monotonic() + 60
    while not any(tmp_path.glob(".x.root.*.tmp")) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # inside Pythia's initialisation or generation
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert list(tmp_path.iterdir()) == []
