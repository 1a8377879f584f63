"""Physics quality of the shipped model against ACTS on fresh simulated events (fixed seed).

The samples (``sim_20x50``: 5 events of 20 x 50 pions, seed 42; for the track score, 2 events
of 100 x 50, seed 77, where fake seeds are common) were never used in training (training seeds
1001-1013). Margins: the design's targets, so that a regression of the model, the seeder, the
road fit or the track building fails here.
"""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np
import pytest
from _fake_model import SHIPPED

from hepgan.io.events import read_events
from hepgan.perf.metrics import agreement, summarize
from hepgan.perf.metrics import auc as _auc
from hepgan.reco.engine import Engine

pytestmark = pytest.mark.skipif(not SHIPPED.exists(), reason="no shipped model")


@pytest.fixture(scope="module")
def figures(sim_20x50: Path) -> dict:
    data = read_events(sim_20x50, trees=("hits", "particles", "tracks"), truth=True)
    hits, particles, acts = data["hits"], data["particles"], data["tracks"]
    engine = Engine(SHIPPED, threads=1)
    per_event = []
    for i in range(len(hits)):
        cols = [ak.to_numpy(hits[k][i]) for k in ("hit_x", "hit_y", "hit_z", "hit_volume_id", "hit_layer_id")]
        tracks, _ = engine.reconstruct_event(*cols, event_id=int(hits["event_id"][i]))
        per_event.append(tracks)
    ours = {k: ak.Array([t[k] for t in per_event]) for k in per_event[0]}
    ours["event_id"] = hits["event_id"]
    return {
        "hits": hits,
        "particles": particles,
        "acts_tracks": acts,
        "tracks": ak.Array(ours),
        "surrogate": summarize(hits, particles, ak.Array(ours), pt_min=1.0, eta_max=2.5),
        "acts": summarize(hits, particles, acts, pt_min=1.0, eta_max=2.5),
        "agreement": agreement({k: acts[k] for k in acts.fields}, ours),
    }


def test_efficiency_fakes_and_duplicates(figures: dict) -> None:
    sur, acts = figures["surrogate"], figures["acts"]
    assert sur["n_particles_denominator"] == acts["n_particles_denominator"] > 3000
    # design target at 20 x 50: within 0.5% of ACTS (measured: -0.31% on the benchmark's sample)
    assert sur["efficiency"] >= acts["efficiency"] - 0.005, (sur["efficiency"], acts["efficiency"])
    assert sur["fake_rate"] <= 0.01 and sur["duplicate_rate"] <= 0.01


def test_resolutions_against_acts(figures: dict) -> None:
    sur, acts = figures["surrogate"]["resolutions"], figures["acts"]["resolutions"]
    ratio = {p: sur[p]["resolution"] / acts[p]["resolution"] for p in ("d0", "z0", "phi", "theta", "qop")}
    # design target: within 20% of ACTS on every parameter (measured on the benchmark's
    # 20 x 50 sample: 0.98, 1.10, 1.01, 1.06, 1.11)
    for p, r in ratio.items():
        assert r <= 1.2, (p, ratio)


def test_sampled_spread_is_calibrated(figures: dict) -> None:
    """(ACTS - sampled mean) / sampled spread has a core width within 0.8-1.2."""
    ag = figures["agreement"]
    # ACTS tracks with >= 75% of their hits on one surrogate track (design target 0.9; measured
    # 0.955 on tuning events; 0.74 before the assignment took both overlapping modules)
    assert ag["fraction_reproduced"] >= 0.9, ag["fraction_reproduced"]
    for p, width in ag["pull_width"].items():
        assert 0.8 <= width <= 1.2, (p, width)


@pytest.fixture(scope="module")
def seed_scores(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Score and truth split of every seed of 2 fresh 100 x 50 events."""
    from hepgan.acts.simulation import SimulationConfig, simulate
    from hepgan.ml.dataset import DatasetConfig, _event_arrays, process_event
    from hepgan.reco.features import layer_table

    path = tmp_path_factory.mktemp("dense") / "dense_100x50.root"
    simulate(path, SimulationConfig(events=2, vertices=100, particles=50, seed=77), progress=False)
    engine = Engine(SHIPPED, threads=1)
    cfg = DatasetConfig(features=engine.info.feature_config, seeding=engine.info.seeding_config)
    geometry = engine.info.geometry
    table = layer_table(geometry, cfg.features)
    data = read_events(path, trees=("hits", "tracks"), truth=True)
    score, same = [], []
    for i in range(len(data["hits"])):
        hits = data["hits"][i]
        r = process_event(_event_arrays(hits, data["tracks"][i], geometry), config=cfg, geometry=geometry, table=table)
        net = engine.run_network(r["features"], engine.noise(int(hits["event_id"]), len(r["features"])))
        p = ak.to_numpy(hits["hit_particle_id"])[r["seeds"].astype("int64")]
        pairs = (p[:, 0] == p[:, 1]).astype(int) + (p[:, 1] == p[:, 2]) + (p[:, 0] == p[:, 2])
        same.append(pairs)  # 3: one particle, 1: one wrong hit, 0: combinatorial
        score.append(net["score"])
    return {"score": np.concatenate(score), "same": np.concatenate(same)}


def test_score_separates_real_from_fake_seeds(seed_scores: dict) -> None:
    """Real seeds (three hits of one particle) against fakes: combinatorial ones almost
    perfectly, all fakes within what seeds with one wrong hit allow (that hit mostly differs
    from the particle's own along z, which z0 absorbs; benchmarks/score_truth.py). Measured on
    this sample: combinatorial 0.9999, two hits of one particle against none 0.9998, all fakes
    0.969."""
    score, same = seed_scores["score"], seed_scores["same"]
    real = same == 3
    assert real.sum() > 20000 and (same == 0).sum() > 300 and (same == 1).sum() > 50
    comb = real | (same == 0)
    auc_comb = _auc(score[comb], real[comb].astype(float))
    auc_all = _auc(score, real.astype(float))
    majority = _auc(score, (same >= 1).astype(float))
    assert auc_comb >= 0.99, (auc_comb, auc_all, majority)
    assert majority >= 0.99, (auc_comb, auc_all, majority)
    assert auc_all >= 0.95, (auc_comb, auc_all, majority)


def test_errors_are_errors_against_the_truth(figures: dict) -> None:
    """track_err_* describe (track - truth): pull core widths 0.9-1.1 over the denominator's
    particles (they were 3.6-6.7 when track_err_* held the spread around ACTS's answer), no
    bin of pT x |eta| off by more than 15%, and q/p within 0.9-1.1 in every bin: the error
    model's quality term (issue 16; measured 0.966 overall, 0.94-0.98 per bin; without it 0.891
    and 0.85-0.90, the sparse guns' errors set by the dense events' ambiguous roads)."""
    from hepgan.ml.error_model import pull_table
    from hepgan.perf import metrics

    for p, r in figures["surrogate"]["resolutions"].items():
        assert 0.9 <= r["pull_width"] <= 1.1, (p, r["pull_width"])
    match = metrics.match_tracks(figures["hits"], figures["particles"], figures["tracks"])
    res = metrics.track_residuals(figures["tracks"], figures["particles"], match)
    errors = {p: res.residual[p] / res.pull[p] for p in res.pull}
    table = pull_table(res.residual, errors, res.particle_pt, res.particle_eta,
                       pt_edges=(0.5, 1.0, 3.0, 100.0), eta_edges=(0.0, 1.25, 2.5))  # fmt: skip
    for p in res.pull:
        widths = [w for row in table[p] for w in row if w is not None]
        lo, hi = (0.9, 1.1) if p == "qop" else (0.85, 1.15)
        assert len(widths) >= 5 and all(lo <= w <= hi for w in widths), (p, table[p])


def test_tracks_hold_the_hits_acts_finds(figures: dict) -> None:
    """Hits per track against ACTS's on the particles both reconstruct (one hit per crossed
    surface held 80% of ACTS's; with the completion, hepgan.reco.completion, 99%)."""
    from hepgan.perf import metrics

    hits, particles = figures["hits"], figures["particles"]
    ours = metrics.match_tracks(hits, particles, figures["tracks"])
    acts = metrics.match_tracks(hits, particles, figures["acts_tracks"])
    both = (ours.particle_best_track >= 0) & (acts.particle_best_track >= 0)
    n_ours = ak.to_numpy(ak.flatten(figures["tracks"]["track_nhits"][ours.particle_best_track[both]]))
    n_acts = ak.to_numpy(ak.flatten(figures["acts_tracks"]["track_nhits"][acts.particle_best_track[both]]))
    assert len(n_ours) > 3000
    assert n_ours.sum() / n_acts.sum() >= 0.95, (n_ours.mean(), n_acts.mean())
