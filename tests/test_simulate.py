"""Tests of `hepgan simulate`: real, small ACTS runs (generic detector, Fatras, CKF)."""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from hepgan.acts.simulation import SimulationConfig, _EventBuffer, pack_barcode, simulate
from hepgan.errors import InputError
from hepgan.io.schema import ACTS_TIMING, CLASSIC_TRACKS, HITS, PARTICLES

SCHEMAS = (HITS, PARTICLES, CLASSIC_TRACKS)  # ACTS's tracks: no sampled spread
GENERIC_VOLUMES = {7, 8, 9, 12, 13, 14, 16, 17, 18}
PIXEL_VOLUMES = {7, 8, 9}


def _read(path: Path) -> dict[str, ak.Array]:
    with uproot.open(path) as f:
        return {name: f[name].arrays() for name in ("hits", "particles", "tracks", "acts_timing")}


@pytest.fixture(scope="module")
def small_runs(tmp_path_factory):
    """The same 3 events of 1 x 20 pions twice, with different chunk sizes."""
    out = tmp_path_factory.mktemp("sim")
    cfg = SimulationConfig(events=3, vertices=1, particles=20, seed=7, chunk_events=2)
    summary_a = simulate(out / "a.root", cfg, progress=False)
    cfg_b = SimulationConfig(events=3, vertices=1, particles=20, seed=7, chunk_events=50)
    summary_b = simulate(out / "b.root", cfg_b, progress=False)
    return (out / "a.root", summary_a), (out / "b.root", summary_b)


@pytest.fixture(scope="module")
def small(small_runs):
    path, summary = small_runs[0]
    return _read(path), summary


def _track_hits(tracks: ak.Array, event: int) -> list[np.ndarray]:
    idx = ak.to_numpy(tracks.track_hit_index[event])
    nhits = ak.to_numpy(tracks.track_nhits[event])
    return np.split(idx, np.cumsum(nhits)[:-1]) if len(nhits) else []


def test_same_seed_gives_identical_events_whatever_the_chunking(small_runs):
    (a, _), (b, _) = small_runs
    ta, tb = _read(a), _read(b)
    for schema in SCHEMAS:
        for name in schema.names:
            assert ak.to_list(ta[schema.name][name]) == ak.to_list(tb[schema.name][name]), name
    # wall time is the one thing that may differ; the events must be the same
    assert ak.to_list(ta["acts_timing"]["event_id"]) == [0, 1, 2]


def test_different_seed_gives_different_events(small, tmp_path):
    data, _ = small
    simulate(tmp_path / "c.root", SimulationConfig(events=1, vertices=1, particles=20, seed=8), progress=False)
    other = _read(tmp_path / "c.root")
    assert not np.array_equal(ak.to_numpy(other["hits"].hit_x[0][:5]), ak.to_numpy(data["hits"].hit_x[0][:5]))


def test_branch_dtypes_match_the_schema(small_runs):
    path, _ = small_runs[0]
    with uproot.open(path) as f:
        for schema in (*SCHEMAS, ACTS_TIMING):
            arrays = f[schema.name].arrays()
            assert set(schema.names) <= set(arrays.fields)
            for branch in schema.branches:
                layout = arrays[branch.name]
                dtype = ak.flatten(layout).type.content if branch.jagged else layout.type.content
                assert np.dtype(str(dtype)) == branch.dtype, (schema.name, branch.name, dtype)
            assert len(arrays) == 3


def test_hits_are_plausible(small):
    data, _ = small
    hits = data["hits"]
    n = ak.to_numpy(ak.num(hits.hit_x))
    # 20 pions cross ~10-15 sensitive layers each
    assert np.all((n > 20 * 7) & (n < 20 * 30)), n
    vol = ak.to_numpy(ak.flatten(hits.hit_volume_id))
    assert set(np.unique(vol)) <= GENERIC_VOLUMES
    assert np.all(ak.to_numpy(ak.flatten(hits.hit_module_id)) > 0)
    # measured vs true position: pixel resolution ~14 um, long strips 3 mm along the strip
    d = np.sqrt(sum(ak.to_numpy(ak.flatten(hits[f"hit_{c}"] - hits[f"hit_t{c}"])) ** 2 for c in "xyz"))
    pixel = np.isin(vol, list(PIXEL_VOLUMES))
    assert np.median(d[pixel]) < 0.05
    assert np.max(d[pixel]) < 0.2
    assert np.max(d) < 25.0
    r = np.hypot(ak.to_numpy(ak.flatten(hits.hit_x)), ak.to_numpy(ak.flatten(hits.hit_y)))
    assert r.min() > 25.0 and r.max() < 1100.0


def test_particles_match_their_hits(small):
    data, _ = small
    hits, parts = data["hits"], data["particles"]
    for e in range(len(hits)):
        pid = ak.to_numpy(parts.particle_id[e])
        hit_pid = ak.to_numpy(hits.hit_particle_id[e])
        assert np.all(pid != 0) and len(np.unique(pid)) == len(pid)
        assert set(hit_pid) <= set(pid)  # no noise in Fatras + smearing
        counts = {p: int(np.sum(hit_pid == p)) for p in pid}
        assert ak.to_list(parts.particle_nhits[e]) == [counts[p] for p in pid]
        primary = ak.to_numpy(parts.particle_primary[e])
        assert primary.sum() == 20
        px, py, pz = (ak.to_numpy(parts[f"particle_p{c}"][e])[primary] for c in "xyz")
        pt = np.hypot(px, py)
        assert np.all((pt >= 0.5 - 1e-4) & (pt <= 10.0 + 1e-3))  # at production: no energy loss yet
        assert np.all(np.abs(np.arcsinh(pz / pt)) <= 2.5 + 1e-4)
        assert set(np.abs(ak.to_numpy(parts.particle_pdg[e])[primary])) == {211}
        assert set(ak.to_numpy(parts.particle_q[e])[primary]) <= {-1, 1}
        assert np.all(np.abs(ak.to_numpy(parts.particle_vz[e])) < 5 * 50.0)
        # the gun has no hard scatter of its own: its first vertex is flagged (primary vertex 1)
        # and no particle comes from a displaced generator vertex
        vp = ak.to_numpy(parts.particle_vertex_primary[e])
        assert set(vp) == {1}  # 1 vertex per event here
        np.testing.assert_array_equal(ak.to_numpy(parts.particle_hard_scatter[e]), vp == 1)
        assert np.all(ak.to_numpy(parts.particle_vertex_secondary[e]) == 0)


def test_tracks_hold_valid_mostly_pure_hits(small):
    data, _ = small
    hits, tracks = data["hits"], data["tracks"]
    n_tracks = 0
    for e in range(len(hits)):
        hit_pid = ak.to_numpy(hits.hit_particle_id[e])
        nhits = ak.to_numpy(tracks.track_nhits[e])
        assert nhits.sum() == len(tracks.track_hit_index[e])
        for hit_index in _track_hits(tracks, e):
            assert len(hit_index) >= 7
            assert hit_index.min() >= 0 and hit_index.max() < len(hit_pid)
            assert len(np.unique(hit_index)) == len(hit_index)
            _, counts = np.unique(hit_pid[hit_index], return_counts=True)
            assert counts.max() >= 0.5 * len(hit_index)
            n_tracks += 1
        assert np.all(ak.to_numpy(tracks.track_score[e]) == 1.0)
        assert np.all(ak.to_numpy(tracks.track_ndf[e]) == 2 * nhits)  # ACTS ndf: sum of measurement dimensions (2D hits)
        for p in ("d0", "z0", "phi", "theta", "qop"):
            err = ak.to_numpy(tracks[f"track_err_{p}"][e])
            assert np.all(np.isfinite(err) & (err > 0)), p
        assert np.all(np.abs(ak.to_numpy(tracks.track_d0[e])) < 4.0)  # CKF selection |d0| < 4 mm
        # hits are listed inside-out (true radius)
        r = np.hypot(ak.to_numpy(hits.hit_tx[e]), ak.to_numpy(hits.hit_ty[e]))  # measured r jitters by mm on strips
        assert all(np.all(np.diff(r[h]) > -1.0) for h in _track_hits(tracks, e))
    # nearly every one of the 60 pions is found
    assert n_tracks >= 50


def test_timing_is_recorded_per_event_and_stage(small):
    data, summary = small
    timing = data["acts_timing"]
    for stage in ("simulation", "digitization", "seeding", "ckf", "ambiguity"):
        assert np.all(ak.to_numpy(timing[f"acts_{stage}_ms"]) > 0), stage
        assert summary["acts_ms_per_event"][stage] > 0
    total = sum(ak.to_numpy(timing[f"acts_{s}_ms"]) for s in ("seeding", "ckf", "ambiguity"))
    np.testing.assert_allclose(ak.to_numpy(timing.acts_total_reco_ms), total)
    assert summary["events"] == 3
    assert summary["mean_particles"] >= 20
    assert 20 * 7 < summary["mean_hits"] < 20 * 30
    assert summary["mean_tracks"] > 10


def test_event_buffer_never_holds_more_than_a_chunk():
    class Writer:
        def __init__(self):
            self.sizes = []

        def write_chunk(self, tree, columns):
            if tree == "hits":
                self.sizes.append(len(columns["event_id"]))

    writer = Writer()
    buf = _EventBuffer(writer, chunk_events=2)
    event = {
        "hits": {"event_id": 0, "hit_x": np.zeros(3, np.float32)},
        "particles": {"event_id": 0, "particle_id": np.ones(1, np.int64)},
        "tracks": {"event_id": 0, "track_hit_index": np.zeros(0, np.int32)},
        "acts_timing": {"event_id": 0, "acts_ckf_ms": 1.0},
    }
    for _ in range(5):
        buf.add(event)
    buf.flush()
    assert writer.sizes == [2, 2, 1]


def test_barcode_packing():
    assert pack_barcode(1, 0, 0, 0, 0) == 1 << 52
    assert pack_barcode(1, 2, 3, 4, 5) == (1 << 52) | (2 << 40) | (3 << 24) | (4 << 16) | 5
    assert pack_barcode(2047, 4095, 65535, 255, 65535) == 2**63 - 1
    with pytest.raises(ValueError, match="vertex_primary"):
        pack_barcode(2048, 0, 0, 0, 0)


def test_config_from_toml(tmp_path):
    path = tmp_path / "sim.toml"
    path.write_text("events = 4\nvertices = 20\nparticles = 50\nseed = 3\nvertex_sigma_z = 40.0\n")
    cfg = SimulationConfig.from_toml(path, seed=9, events=None)
    assert (cfg.events, cfg.vertices, cfg.particles, cfg.seed, cfg.vertex_sigma_z) == (4, 20, 50, 9, 40.0)
    assert cfg.pt_min == 0.5 and cfg.pt_max == 10.0 and cfg.eta_max == 2.5 and cfg.threads == 1
    assert (cfg.process, cfg.pileup) == ("gun", 0)
    path.write_text('process = "ttbar"\npileup = 50\npileup_poisson = true\npythia_settings = ["Tune:pp = 14"]\n')
    cfg = SimulationConfig.from_toml(path, pileup=20)
    assert (cfg.process, cfg.pileup, cfg.pileup_poisson, cfg.pythia_settings) == ("ttbar", 20, True, ("Tune:pp = 14",))


def test_config_rejects_unknown_keys_by_name(tmp_path):
    path = tmp_path / "sim.toml"
    path.write_text("events = 4\nvertexes = 20\n")
    with pytest.raises(InputError, match="'vertexes'") as err:
        SimulationConfig.from_toml(path)
    assert "vertices" in str(err.value) and "chunk_events" in str(err.value)
    path.write_text("events = 4\n")
    with pytest.raises(InputError, match="'bogus'"):
        SimulationConfig.from_toml(path, bogus=1)


def test_config_rejects_bad_values():
    with pytest.raises(InputError, match="threads"):
        SimulationConfig(threads=2)
    with pytest.raises(InputError, match="pt_min"):
        SimulationConfig(pt_min=5.0, pt_max=1.0)
    with pytest.raises(InputError, match="events"):
        SimulationConfig(events=0)


def test_acts_reference_performance_at_20_x_50(tmp_path):
    """5 events of 20 x 50: ~12k hits/event and ACTS efficiency ~0.996 (benchmarks/results)."""
    summary = simulate(tmp_path / "big.root", SimulationConfig(events=5, vertices=20, particles=50, seed=42),
                       progress=False)
    assert 10_000 < summary["mean_hits"] < 14_000
    data = _read(tmp_path / "big.root")
    hits, parts, tracks = data["hits"], data["particles"], data["tracks"]
    found = total = pure = 0
    for e in range(len(hits)):
        hit_pid = ak.to_numpy(hits.hit_particle_id[e])
        pid = ak.to_numpy(parts.particle_id[e])
        nh = dict(zip(pid, ak.to_numpy(parts.particle_nhits[e]), strict=True))
        matched = set()
        for hit_index in _track_hits(tracks, e):
            ids, counts = np.unique(hit_pid[hit_index], return_counts=True)
            best = counts.argmax()
            if counts[best] >= 0.5 * len(hit_index):
                pure += 1
                if counts[best] >= 0.5 * nh[ids[best]]:
                    matched.add(ids[best])
        px, py, pz = (ak.to_numpy(parts[f"particle_p{c}"][e]) for c in "xyz")
        pt = np.hypot(px, py)
        sel = (
            ak.to_numpy(parts.particle_primary[e])
            & (ak.to_numpy(parts.particle_q[e]) != 0)
            & (pt > 1.0)
            & (np.abs(np.arcsinh(pz / pt)) < 2.5)
            & (ak.to_numpy(parts.particle_nhits[e]) >= 7)
        )
        total += int(sel.sum())
        found += sum(1 for p in pid[sel] if p in matched)
    n_tracks = int(ak.sum(tracks.track_nhits > 0))
    assert pure / n_tracks > 0.99
    assert found / total > 0.985, found / total
