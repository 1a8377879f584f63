"""Physics of the shipped model on fresh ttbar events at pile-up 50 (seed 7, 3 events), against
truth and against ACTS on the same events; and the generator's determinism.

Margins: the design's targets (efficiency at least ACTS's within the statistical reach of three
events, fakes and duplicates <= 1%, >= 90% of ACTS's tracks reproduced, pulls near 1), so that
a regression of the model, the seeder, the completion or the error model fails here.
"""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np
import pytest
from _fake_model import SHIPPED

from hepgan.io.events import read_events
from hepgan.perf import metrics
from hepgan.reco.engine import Engine

pytestmark = pytest.mark.skipif(not SHIPPED.exists(), reason="no shipped model")

_COLUMNS = ("hit_x", "hit_y", "hit_z", "hit_volume_id", "hit_layer_id")


def _reconstruct(engine: Engine, hits) -> ak.Array:
    per = []
    for i in range(len(hits)):
        cols = [ak.to_numpy(hits[k][i]) for k in _COLUMNS]
        per.append(engine.reconstruct_event(*cols, event_id=int(hits["event_id"][i]))[0])
    return ak.Array({k: [t[k] for t in per] for k in per[0]})


def _found(hits, particles, tracks, pt_min: float, displaced: np.ndarray) -> tuple[int, int, int, int]:
    """Particles of the efficiency denominator found by `tracks`, all and displaced, and the two
    denominators."""
    match = metrics.match_tracks(hits, particles, tracks)
    hit = ak.to_numpy(ak.flatten(match.particle_n_matched)) > 0
    den = ak.to_numpy(ak.flatten(metrics.efficiency_denominator(particles, match, pt_min=pt_min, eta_max=2.5)))
    return int((hit & den).sum()), int((hit & den & displaced).sum()), int(den.sum()), int((den & displaced).sum())


@pytest.fixture(scope="module")
def events(ttbar_pu50_sample: Path) -> dict:
    data = read_events(ttbar_pu50_sample, trees=("hits", "particles", "tracks"), truth=True)
    data["surrogate"] = _reconstruct(Engine(SHIPPED, threads=1), data["hits"])
    return data


@pytest.mark.parametrize("pt_min", [1.0, 0.5])
def test_efficiency_fakes_duplicates_against_acts(events: dict, pt_min: float) -> None:
    hits, particles = events["hits"], events["particles"]
    ours = metrics.summarize(hits, particles, events["surrogate"], pt_min=pt_min, eta_max=2.5)
    acts = metrics.summarize(hits, particles, events["tracks"], pt_min=pt_min, eta_max=2.5)
    assert ours["n_particles_denominator"] > 300
    # three events: one particle is 0.1-0.3% of the denominator; 0.01 below ACTS is a real loss
    assert ours["efficiency"] >= acts["efficiency"] - 0.01, (pt_min, ours["efficiency"], acts["efficiency"])
    assert ours["efficiency"] >= (0.98 if pt_min == 1.0 else 0.96), ours["efficiency"]
    assert ours["fake_rate"] <= 0.01 and ours["duplicate_rate"] <= 0.01


def test_acts_tracks_reproduced_and_their_hits_held(events: dict) -> None:
    acts, ours = events["tracks"], events["surrogate"]
    ag = metrics.agreement({k: acts[k] for k in acts.fields}, {k: ours[k] for k in ours.fields})
    assert ag["fraction_reproduced"] >= 0.9, ag["fraction_reproduced"]
    hits, particles = events["hits"], events["particles"]
    mo, ma = metrics.match_tracks(hits, particles, ours), metrics.match_tracks(hits, particles, acts)
    both = (mo.particle_best_track >= 0) & (ma.particle_best_track >= 0)
    n_ours = ak.sum(ours["track_nhits"][mo.particle_best_track[both]])
    n_acts = ak.sum(acts["track_nhits"][ma.particle_best_track[both]])
    assert n_ours / n_acts >= 0.95, (n_ours, n_acts)


def test_pulls_against_truth(events: dict) -> None:
    hits, particles = events["hits"], events["particles"]
    match = metrics.match_tracks(hits, particles, events["surrogate"])
    den = metrics.efficiency_denominator(particles, match, pt_min=1.0, eta_max=2.5)
    res = metrics.track_residuals(events["surrogate"], particles, match, particle_mask=den)
    for p, pull in res.pull.items():
        assert 0.85 <= metrics.core_width(pull) <= 1.15, (p, metrics.core_width(pull))


def test_generator_is_deterministic(events: dict) -> None:
    """Two engines (fresh sessions) give bit-identical tracks for the same events: the noise
    is seeded by the event id, onnxruntime runs one thread."""
    hits = events["hits"][:1]
    a, b = (_reconstruct(Engine(SHIPPED, threads=1), hits) for _ in range(2))
    for field in a.fields:
        assert np.array_equal(ak.to_numpy(ak.flatten(a[field])), ak.to_numpy(ak.flatten(b[field])), equal_nan=True), field


def test_displaced_decay_products_are_found(ttbar_pu0_sample: Path) -> None:
    """Decay products of pT > 1 GeV (|d0| up to a few mm) on 30 ttbar events without pile-up:
    the shipped seeder (its r-phi chi2 allows for the d0 within the cut) finds them about as
    ACTS does, and the plain chi2 of the training seeder loses some. Measured: 302 and 295 of
    306 (ACTS 306); all particles 1553 and 1546 of 1557 (ACTS 1555)."""
    import dataclasses

    data = read_events(ttbar_pu0_sample, trees=("hits", "particles", "tracks"), truth=True)
    parts = data["particles"]
    displaced = ak.to_numpy(ak.flatten(parts.particle_vertex_secondary)) > 0
    engine = Engine(SHIPPED, threads=1)
    assert engine.seeding_config.d0_in_rphi_chi2

    def found(tracks) -> tuple[int, int, int, int]:
        return _found(data["hits"], parts, tracks, 1.0, displaced)

    ours_all, ours, n_all, n_displaced = found(_reconstruct(engine, data["hits"]))
    acts_all, acts, _, _ = found(data["tracks"])
    engine.seeding_config = dataclasses.replace(engine.seeding_config, d0_in_rphi_chi2=False)
    plain_all, plain, _, _ = found(_reconstruct(engine, data["hits"]))
    assert n_displaced >= 200, n_displaced
    assert ours >= 0.97 * n_displaced and ours >= acts - 0.02 * n_displaced, (ours, acts, n_displaced)
    assert ours >= plain + 4, (ours, plain)
    assert ours_all >= acts_all - 0.005 * n_all and ours_all > plain_all, (ours_all, acts_all, plain_all, n_all)


def test_leftover_pass_adds_tracks_on_the_hits_left_over(events: dict) -> None:
    """The engine's second pass over the hits no track took (seeded down to 0.3 GeV): the first
    pass's tracks come out unchanged, the pass takes none of their hits, and it finds what
    the first pass lost (pile-up 50 tuning events, seed 5050: efficiency pT > 0.5 GeV 0.991
    -> 0.996, TrackML score 0.520 -> 0.587) without fakes above the budget."""
    from hepgan.reco.assignment import AssignmentConfig

    hits, particles = events["hits"], events["particles"]
    two = events["surrogate"]
    # one pass with the first pass's seeder (|d0| narrowed to AssignmentConfig.prompt_d0_max)
    single = Engine(SHIPPED, threads=1, assignment=AssignmentConfig(leftover_pt_min=0.0))
    single.seeding_config = Engine(SHIPPED, threads=1).pass_seeding()[0]
    one = _reconstruct(single, hits)
    for e in range(len(hits)):
        n_one = len(one["track_nhits"][e])
        assert len(two["track_nhits"][e]) > n_one
        first = ak.to_numpy(two["track_hit_index"][e])[: int(ak.sum(one["track_nhits"][e]))]
        assert np.array_equal(first, ak.to_numpy(one["track_hit_index"][e]))
        left = ak.to_numpy(two["track_hit_index"][e])[len(first) :]
        assert not np.isin(left, first).any()
    s_one = metrics.summarize(hits, particles, one, pt_min=0.5, eta_max=2.5)
    s_two = metrics.summarize(hits, particles, two, pt_min=0.5, eta_max=2.5)
    # measured: pT > 0.5 GeV 2067 -> 2080 of 2088 particles, TrackML 0.523 -> 0.583
    assert s_two["efficiency"] >= s_one["efficiency"] + 0.003, (s_two["efficiency"], s_one["efficiency"])
    assert s_two["trackml_score"] >= s_one["trackml_score"] + 0.03, (s_two["trackml_score"], s_one["trackml_score"])
    assert s_two["fake_rate"] <= 0.01 and s_two["duplicate_rate"] <= 0.01


def test_prompt_first_pass_leaves_the_displaced_to_the_leftover_pass(events: dict) -> None:
    """The first pass seeds |d0| < AssignmentConfig.prompt_d0_max (1 mm) and the leftover pass,
    with the model's 5 mm / 2.5 mm, the rest: fewer doublets and seeds in the first pass, and
    the same particles found as with the model's cuts in both passes (tuning events at pile-up
    200, seed 5200: 3085 of 3095 at pT > 1 GeV either way, displaced 134 of 139)."""
    import dataclasses

    from hepgan.reco.assignment import AssignmentConfig
    from hepgan.reco.seeding import find_seeds

    hits, particles = events["hits"], events["particles"]
    engine = Engine(SHIPPED, threads=1)
    first, leftover = engine.pass_seeding()
    assert first.d0_max == first.d0_max_first_layer == 1.0
    assert leftover is not None and leftover.d0_max == engine.seeding_config.d0_max and leftover.pt_min == 0.3
    cols = [ak.to_numpy(hits[k][0]) for k in _COLUMNS]
    layer = engine.geometry.layer_index(cols[3], cols[4])
    n_prompt = len(find_seeds(*cols, geometry=engine.geometry, config=first, layer=layer))
    n_wide = len(find_seeds(*cols, geometry=engine.geometry, config=engine.seeding_config, layer=layer))
    assert n_prompt <= 0.95 * n_wide, (n_prompt, n_wide)
    wide = _reconstruct(Engine(SHIPPED, threads=1, assignment=AssignmentConfig(prompt_d0_max=0.0)), hits)
    assert Engine(SHIPPED, assignment=AssignmentConfig(leftover_pt_min=0.0)).pass_seeding()[0] == engine.seeding_config
    displaced = ak.to_numpy(ak.flatten(particles.particle_vertex_secondary)) > 0
    for pt_min in (1.0, 0.5):
        counts = [_found(hits, particles, tracks, pt_min, displaced) for tracks in (events["surrogate"], wide)]
        (ours, ours_displaced, _, _), (theirs, theirs_displaced, _, _) = counts
        assert ours >= theirs - 2 and ours_displaced >= theirs_displaced - 1, (pt_min, counts)
    # the first pass differs from the model's seeder in the d0 cuts and the confirmed seeds only
    model = engine.seeding_config
    assert first.confirmed_eta_max == 1.5 and model.confirmed_eta_max == leftover.confirmed_eta_max == 0.0
    assert dataclasses.replace(first, d0_max=model.d0_max, d0_max_first_layer=model.d0_max_first_layer,
                               confirmed_eta_max=0.0) == model  # fmt: skip
