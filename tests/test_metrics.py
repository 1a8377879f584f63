"""Tests of hepgan.perf.metrics on hand-built events whose answers are known exactly."""

from __future__ import annotations

import json
import math

import awkward as ak
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hepgan.perf import metrics as m

# --------------------------------------------------------------------------------------------
# Event builders
# --------------------------------------------------------------------------------------------


def _particle(pid, *, pt=2.0, eta=0.0, phi=0.3, q=1, primary=True, v=(0.0, 0.0, 0.0)):
    return {
        "particle_id": pid,
        "particle_q": q,
        "particle_px": pt * math.cos(phi),
        "particle_py": pt * math.sin(phi),
        "particle_pz": pt * math.sinh(eta),
        "particle_vx": v[0],
        "particle_vy": v[1],
        "particle_vz": v[2],
        "particle_primary": primary,
    }


def _build(events):
    """events: list of (hit_pids, particles (list of dicts), tracks (list of hit-index lists),
    optional dict of extra per-hit / per-track columns). Returns (hits, particles, tracks)."""
    hits = {"hit_particle_id": []}
    parts = {k: [] for k in _particle(1)}
    trks = {"track_nhits": [], "track_hit_index": []}
    extra_cols: dict[str, list] = {}
    for ev in events:
        hit_pids, plist, tlist = ev[:3]
        extra = ev[3] if len(ev) > 3 else {}
        hits["hit_particle_id"].append(list(hit_pids))
        for k in parts:
            parts[k].append([p[k] for p in plist])
        trks["track_nhits"].append([len(t) for t in tlist])
        trks["track_hit_index"].append([i for t in tlist for i in t])
        for k, v in extra.items():
            extra_cols.setdefault(k, []).append(list(v))
    hits_arr = ak.Array({**hits, **{k: v for k, v in extra_cols.items() if k.startswith("hit_")}})
    trk_arr = ak.Array({**trks, **{k: v for k, v in extra_cols.items() if k.startswith("track_")}})
    part_arr = ak.Array(parts)
    return hits_arr, part_arr, trk_arr


def _matching_events():
    """Three events: empty; the big hand-built one; a small one reusing particle id 11.

    Event 1 hits (index ranges): A=11 0-7, B=12 8-15, C=13 16-23, D=14 24-31, E=15 32-37 (6 hits),
    F=16 38-45, noise 46-51, G=17 52-59, K=21 60-67, L=22 68-75, M=23 76-83, N=24 84-91,
    O=25 92-99.
    """
    pids = []
    ranges = {}
    for pid, n in [(11, 8), (12, 8), (13, 8), (14, 8), (15, 6), (16, 8), (0, 6), (17, 8),
                   (21, 8), (22, 8), (23, 8), (24, 8), (25, 8)]:
        ranges[pid] = list(range(len(pids), len(pids) + n))
        pids += [pid] * n
    A, B, C, D, E, F, noise, G, M = (ranges[k] for k in (11, 12, 13, 14, 15, 16, 0, 17, 23))
    tracks = [
        A,                                   # T0 perfect -> A, good
        B + [A[0]],                          # T1 shares A[0] with T0 -> B, purity 8/9
        C,                                   # T2 -> C good
        C[:5],                               # T3 -> C duplicate (5 < 8 shared)
        A[1:3] + B[1:3] + D[0:2],            # T4 fake: 2/6 each, no 50% majority
        D[2:7] + noise[:3],                  # T5 noise hits: D 5/8 purity, 5/8 of D -> good
        [D[7]] + noise[3:6],                 # T6 fake: D 1/4, noise never matches
        E,                                   # T7 -> E (6 hits: not in the denominator)
        F[:4] + noise[:4],                   # T8 exactly 50% purity and 50% of F -> matches
        G[:6],                               # T9 -> G good (tie on 6 shared, lower index)
        G[2:],                               # T10 -> G duplicate
        M,                                   # T11 -> M (pT 0.7)
    ]
    particles = [
        _particle(11), _particle(12), _particle(13), _particle(14), _particle(15),
        _particle(16), _particle(17), _particle(21),
        _particle(22, primary=False),  # L: secondary
        _particle(23, pt=0.7),         # M: only in the pT > 0.5 GeV denominator
        _particle(24, eta=3.0),        # N: outside |eta| < 2.5
        _particle(25, q=0),            # O: neutral
    ]
    ev2_pids = [0, 11, 11, 11, 11, 11, 11, 11]  # particle 11 with exactly 7 hits
    ev2 = (ev2_pids, [_particle(11, pt=1.5, eta=-1.0)], [[7, 1, 2, 6, 3, 5, 4]])
    return _build([([], [], []), (pids, particles, tracks), ev2])


# --------------------------------------------------------------------------------------------
# Matching, efficiency, rates
# --------------------------------------------------------------------------------------------


def test_matching_hand_built_event():
    hits, particles, tracks = _matching_events()
    r = m.match_tracks(hits, particles, tracks)
    assert r.n_events == 3 and r.n_tracks == 13
    assert r.track_matched.tolist() == [
        [],
        [True, True, True, True, False, True, False, True, True, True, True, True],
        [True],
    ]
    assert r.track_is_duplicate.tolist()[1] == [
        False, False, False, True, False, False, False, False, False, False, True, False
    ]
    assert r.track_is_fake.tolist()[1] == [
        False, False, False, False, True, False, True, False, False, False, False, False
    ]
    assert r.track_majority_particle_id.tolist()[1] == [11, 12, 13, 13, 11, 14, 14, 15, 16, 17, 17, 23]
    assert r.track_n_shared.tolist()[1] == [8, 8, 8, 5, 2, 5, 1, 6, 4, 6, 6, 8]
    np.testing.assert_allclose(
        r.track_purity.tolist()[1], [1, 8 / 9, 1, 1, 2 / 6, 5 / 8, 1 / 4, 1, 0.5, 1, 1, 1]
    )
    np.testing.assert_allclose(
        r.track_particle_fraction.tolist()[1],
        [1, 1, 1, 5 / 8, 2 / 8, 5 / 8, 1 / 8, 1, 0.5, 6 / 8, 6 / 8, 1],
    )
    # particles: A B C D E F G K L M N O
    assert r.particle_n_matched.tolist()[1] == [1, 1, 2, 1, 1, 1, 2, 0, 0, 1, 0, 0]
    assert r.particle_best_track.tolist()[1] == [0, 1, 2, 5, 7, 8, 9, -1, -1, 11, -1, -1]
    assert r.particle_nhits.tolist()[1] == [8, 8, 8, 8, 6, 8, 8, 8, 8, 8, 8, 8]
    assert r.track_particle_index.tolist()[1] == [0, 1, 2, 2, 0, 3, 3, 4, 5, 6, 6, 9]
    # event 2: same particle id 11 as event 1, looked up within its own event
    assert r.particle_best_track.tolist()[2] == [0]
    assert r.particle_nhits.tolist()[2] == [7]


def test_efficiency_and_rates():
    hits, particles, tracks = _matching_events()
    r = m.match_tracks(hits, particles, tracks)
    # pT > 1: A B C D F G K (event 1, K unmatched) + P (event 2, 7 hits) -> 7 / 8
    e1 = m.efficiency(r, particles, pt_min=1.0)
    assert (e1.n_matched, e1.n_total) == (7, 8)
    assert e1.efficiency == pytest.approx(7 / 8)
    assert e1.error == pytest.approx(math.sqrt(7 / 8 * 1 / 8 / 8))
    # pT > 0.5 adds M (matched): 8 / 9
    e05 = m.efficiency(r, particles, pt_min=0.5)
    assert (e05.n_matched, e05.n_total) == (8, 9)
    den = m.efficiency_denominator(particles, r, pt_min=1.0).tolist()
    assert den[1] == [True, True, True, True, False, True, True, True, False, False, False, False]
    # requiring 8 hits drops event 2's particle (7 hits)
    assert m.efficiency(r, particles, pt_min=1.0, min_hits=8).n_total == 7
    assert m.fake_rate(r) == pytest.approx(2 / 13)
    assert m.duplicate_rate(r) == pytest.approx(2 / 13)


def test_efficiency_binned():
    hits, particles, tracks = _matching_events()
    r = m.match_tracks(hits, particles, tracks)
    b = m.efficiency_vs_pt(r, particles, bins=[0.5, 1.0, 5.0])
    assert b.n_total.tolist() == [1, 8] and b.n_matched.tolist() == [1, 7]
    np.testing.assert_allclose(b.efficiency, [1.0, 7 / 8])
    np.testing.assert_allclose(b.error, [0.0, math.sqrt(7 / 8 * 1 / 8 / 8)])
    b = m.efficiency_vs_eta(r, particles, bins=[-2.5, -0.5, 0.5, 2.5], pt_min=1.0)
    assert b.n_total.tolist() == [1, 7, 0] and b.n_matched.tolist() == [1, 6, 0]
    assert math.isnan(b.efficiency[2]) and math.isnan(b.error[2])
    json.dumps(b.as_dict())


def _reference_match(hit_pids, tracks):
    """Plain-python double matching (independent of the kernels) for one event."""
    count = {}
    for p in hit_pids:
        count[p] = count.get(p, 0) + 1
    out = []
    for t in tracks:
        on = {}
        for h in t:
            p = hit_pids[h]
            if p != 0:
                on[p] = on.get(p, 0) + 1
        if not on:
            out.append((0, 0, False))
            continue
        p = min(on, key=lambda k: (-on[k], count[k], k))
        c = on[p]
        out.append((p, c, 2 * c >= len(t) and 2 * c >= count[p]))
    best = {}
    for i, (p, c, ok) in enumerate(out):
        if ok and (p not in best or c > out[best[p]][1]):
            best[p] = i
    dup = [ok and best[p] != i for i, (p, c, ok) in enumerate(out)]
    return out, dup, best


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_matching_agrees_with_reference(data):
    n_part = data.draw(st.integers(1, 6))
    n_hits = data.draw(st.integers(1, 40))
    hit_pids = data.draw(st.lists(st.integers(0, n_part), min_size=n_hits, max_size=n_hits))
    tracks = data.draw(
        st.lists(st.lists(st.integers(0, n_hits - 1), min_size=0, max_size=10, unique=True), max_size=8)
    )
    particles = [_particle(p) for p in range(1, n_part + 1)]
    hits, parts, trks = _build([(hit_pids, particles, tracks)])
    r = m.match_tracks(hits, parts, trks)
    ref, dup, best = _reference_match(hit_pids, tracks)
    assert r.track_majority_particle_id.tolist()[0] == [x[0] for x in ref]
    assert r.track_n_shared.tolist()[0] == [x[1] for x in ref]
    assert r.track_matched.tolist()[0] == [x[2] for x in ref]
    assert r.track_is_duplicate.tolist()[0] == dup
    assert r.particle_best_track.tolist()[0] == [best.get(p, -1) for p in range(1, n_part + 1)]


def test_input_errors_name_the_argument():
    hits, particles, tracks = _matching_events()
    with pytest.raises(ValueError, match="hit_particle_id"):
        m.match_tracks(ak.Array({"hit_particle": hits["hit_particle_id"]}), particles, tracks)
    bad = ak.Array({"track_nhits": [[], [2], []], "track_hit_index": [[], [0, 500], []]})
    with pytest.raises(ValueError, match="track_hit_index"):
        m.match_tracks(hits, particles, bad)
    bad = ak.Array({"track_nhits": [[], [3], []], "track_hit_index": [[], [0, 1], []]})
    with pytest.raises(ValueError, match="track_nhits"):
        m.match_tracks(hits, particles, bad)
    h, p, t = _build([([5, 5], [_particle(5), _particle(5)], [[0, 1]])])
    with pytest.raises(ValueError, match="repeats a particle id"):
        m.match_tracks(h, p, t)
    with pytest.raises(ValueError, match="same events"):
        m.match_tracks(hits[:2], particles, tracks)


# --------------------------------------------------------------------------------------------
# TrackML score
# --------------------------------------------------------------------------------------------


def _trackml_event():
    """P (id 1, pT 3 GeV: pT weight 1) with 4 hits, Q (id 2, pT 0.5 GeV: pT weight 0.2) with
    5 hits, R (id 3) with 3 hits (weight 0), one noise hit.

    P's hits are stored out of order: distances from its vertex 30, 10, 40, 20 mm, so their
    order along the trajectory is 2, 0, 3, 1. Q starts at z = 5 mm; its hits are 50..90 mm away.
    """
    pids = [1, 1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 0]
    r = [30, 10, 40, 20, 50, 60, 70, 80, 90, 100, 110, 120, 130]
    z = [0, 0, 0, 0, 5, 5, 5, 5, 5, 0, 0, 0, 0]
    particles = [
        _particle(1, pt=3.0, phi=0.0),
        _particle(2, pt=0.5, phi=0.0, v=(0.0, 0.0, 5.0)),
        _particle(3, pt=5.0, phi=0.0),
    ]
    tracks = [
        [1, 3, 0, 12],   # T0: P's hits of order 0, 1, 2 + noise: 3/4 and 3/4 -> scores
        [4, 5, 6],       # T1: Q's hits of order 0, 1, 2: 3/3 and 3/5 -> scores
        [7, 8, 9, 10, 11],  # T2: R 3/5 and 3/3 -> good, but R weighs 0
        [3, 0, 2],       # T3: P's hits 1, 2, 3: also good for P, but P counts once (best: T0)
        [4, 5, 9, 10],   # T4: Q 2/4 (not > 50%) -> nothing
    ]
    extra = {"hit_tx": r, "hit_ty": [0.0] * 13, "hit_tz": z}
    return _build([(pids, particles, tracks, extra)])


def test_trackml_order_weights_by_hand():
    # 4 hits: the 9-point proposal (10 8 6 5 3 3 3 5 6) at x = 0, 3/8, ..., 3 read at 0, 1, 2, 3:
    # 10, 6 - (5 - 6) * -(0.25 / 0.375) = 16/3, 3, 6 -> sum 73/3 -> (30, 16, 9, 18) / 73
    np.testing.assert_allclose(m.trackml_order_weight([0, 1, 2, 3], [4] * 4), np.array([30, 16, 9, 18]) / 73)
    # 5 hits: proposal points 0, 2, 4, 6, 8 -> (10, 6, 3, 3, 6) / 28
    np.testing.assert_allclose(m.trackml_order_weight(range(5), [5] * 5), np.array([10, 6, 3, 3, 6]) / 28)
    assert m.trackml_order_weight([0, 1, 2], [3] * 3).tolist() == [0, 0, 0]
    assert m.trackml_order_weight([20, 21], [25, 25]).tolist() == [0, 0]  # beyond the 20th hit
    np.testing.assert_allclose(m.trackml_pt_weight([0.01, 0.3, 0.5, 1.75, 3.0, 10.0]), [0, 0.2, 0.2, 0.6, 1.0, 1.0])


def _exact_trackml_event():
    """An event for trackml-library's rules, ordered by |tz - vz| (hit_tx is set so that the
    3D distance would order P's hits the other way round).

    P (id 1, pT 3 GeV: pT weight 1, vz 0): hits 0-3 at tz 30, 10, 40, 20 -> ihit 2, 0, 3, 1.
    Q (id 2, pT 0.5 GeV: weight 0.2, vz 5): hits 4-8 at tz 55, 65, 65, 85, 95 -> distances 50,
    60, 60, 80, 90; pandas' average ranks 1, 2.5, 2.5, 4, 5 -> ihit 0, 1, 1, 3, 4.
    R (id 3, 3 hits: order weight 0): hits 9-11. Noise: hit 12. Particle 9 (not listed): hit 13.
    X (id 4, pT 0.05 GeV -> pT weight 0.2 at the edge; 4 hits at tz 1..4): hits 14-17.
    """
    pids = [1, 1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 0, 9, 4, 4, 4, 4]
    tz = [30, 10, 40, 20, 55, 65, 65, 85, 95, 0, 0, 0, 0, 0, 1, 2, 3, 4]
    tx = [10, 30, 5, 20] + [0.0] * 14
    particles = [
        _particle(1, pt=3.0, phi=0.0),
        _particle(2, pt=0.5, phi=0.0, v=(0.0, 0.0, 5.0)),
        _particle(3, pt=5.0, phi=0.0),
        _particle(4, pt=0.05, phi=0.0),
    ]
    extra = {"hit_tx": tx, "hit_ty": [0.0] * 18, "hit_tz": tz}
    return pids, particles, extra


# hand values of the order-weight rows (proposal 10 8 6 5 3 3 3 5 6 stretched, normalised)
_ROW4 = np.array([30, 16, 9, 18]) / 73
_ROW5 = np.array([10, 6, 3, 3, 6]) / 28


def _exact_weights_by_hand() -> np.ndarray:
    w = np.zeros(18)
    w[[0, 1, 2, 3]] = _ROW4[[2, 0, 3, 1]]
    w[4:9] = 0.2 * _ROW5[[0, 1, 1, 3, 4]]  # the tied hits share ihit 1; ihit 2 is nobody's
    w[14:18] = 0.2 * _ROW4  # pT 0.05 GeV: the lowest pT that still weighs 0.2
    return w


def test_trackml_weights_as_trackml_library_defines_them():
    pids, particles, extra = _exact_trackml_event()
    hits, parts, _ = _build([(pids, particles, [], extra)])
    w = np.array(m.trackml_hit_weights(hits, parts).tolist()[0])
    expect = _exact_weights_by_hand()
    np.testing.assert_allclose(w, expect / expect.sum(), rtol=1e-12)
    assert w.sum() == pytest.approx(1.0)
    # hepgan's variant orders P by the 3D distance (tx dominates here) and breaks ties by file order
    v = np.array(m.hepgan_trackml_hit_weights(hits, parts).tolist()[0])
    assert not np.allclose(v[:4] / v[:4].sum(), w[:4] / w[:4].sum())


def test_trackml_score_as_trackml_library_defines_it():
    pids, particles, extra = _exact_trackml_event()
    expect = _exact_weights_by_hand()
    total = expect.sum()
    tracks = [
        [1, 3, 0, 12],       # P ihit 0, 1, 2 + noise: 3/4 of the track, 3/4 of P -> scores
        [4, 5, 6],           # Q ihit 0, 1, 1: 3/3 and 3/5 -> scores
        [9, 10, 11, 13],     # R 3/4 and 3/3, but R weighs 0
        [14, 15, 16, 17],    # X complete -> scores 0.2 of its row
    ]
    hits, parts, trk = _build([(pids, particles, tracks, extra)])
    score = (expect[[1, 3, 0]].sum() + expect[[4, 5, 6]].sum() + expect[14:18].sum()) / total
    assert m.trackml_score(hits, parts, trk) == pytest.approx(score, rel=1e-12)
    # strictly more than half: Q's hits 4, 5 + two of R's -> 2/4 of the track: nothing
    hits, parts, trk = _build([(pids, particles, [[4, 5, 9, 10]], extra)])
    assert m.trackml_score(hits, parts, trk) == 0.0
    # and more than half of the particle: P's ihit 0, 1 alone -> 2/2 of the track, 2/4 of P: nothing
    hits, parts, trk = _build([(pids, particles, [[1, 3]], extra)])
    assert m.trackml_score(hits, parts, trk) == 0.0


def test_trackml_score_one_track_per_hit():
    """Shared hits go to the track listing most hits; the rules then apply to what is left."""
    pids, particles, extra = _exact_trackml_event()
    expect = _exact_weights_by_hand()
    # A lists P's ihit 0, 1 and X's four hits (6 hits); B lists P's ihit 0, 1, 2 (3 hits).
    # A keeps hits 1 and 3: A = X 4/6 (scores X), B = P's ihit 2 alone: 1/4 of P, nothing.
    tracks = [[1, 3, 14, 15, 16, 17], [1, 3, 0]]
    hits, parts, trk = _build([(pids, particles, tracks, extra)])
    assert m.trackml_score(hits, parts, trk) == pytest.approx(expect[14:18].sum() / expect.sum(), rel=1e-12)
    # hepgan's variant keeps the shared hits: B = P 3/3 and 3/4 scores P as well
    assert m.hepgan_trackml_score(hits, parts, trk) > m.trackml_score(hits, parts, trk)
    # a perfect submission scores 1; none scores 0; an event without weight is NaN
    perfect = [[0, 1, 2, 3], [4, 5, 6, 7, 8], [14, 15, 16, 17]]
    hits, parts, trk = _build([(pids, particles, perfect, extra), ([0, 3], [_particle(3)], [[0, 1]], {
        "hit_tx": [0.0, 0.0], "hit_ty": [0.0, 0.0], "hit_tz": [0.0, 0.0]})])
    scores = m.trackml_event_scores(hits, parts, trk)
    assert scores[0] == pytest.approx(1.0) and np.isnan(scores[1])
    assert m.trackml_score(hits, parts, trk) == pytest.approx(1.0)


def test_hepgan_trackml_variant_by_hand():
    """hepgan's own variant: 3D distance order, shared hits kept, a particle scores once."""
    hits, particles, tracks = _trackml_event()
    # Unnormalised: P hits (30, 16, 9, 18)/73 x 1 (sum 1); Q hits (10, 6, 3, 3, 6)/28 x 0.2
    # (sum 0.2); R and noise 0. Total 1.2.
    w = m.hepgan_trackml_hit_weights(hits, particles).tolist()[0]
    expect_w = np.array([9, 30, 18, 16] + [0] * 9, dtype=float) / 73
    expect_w[4:9] = 0.2 * np.array([10, 6, 3, 3, 6]) / 28
    np.testing.assert_allclose(w, expect_w / 1.2)
    # Score = (T0: (30 + 16 + 9)/73 + T1: 0.2 (10 + 6 + 3)/28) / 1.2
    #       = (55/73 + 3.8/28) / 1.2 = 0.7409491...
    expected = (55 / 73 + 0.2 * 19 / 28) / 1.2
    assert m.hepgan_trackml_score(hits, particles, tracks) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(0.7409491, abs=1e-7)
    # measured positions are used when true ones are asked for but absent
    with pytest.raises(ValueError, match="hit_x"):
        m.hepgan_trackml_score(hits, particles, tracks, position="measured")


def test_hepgan_trackml_variant_perfect_and_empty():
    hits, particles, tracks = _trackml_event()
    perfect = ak.Array({"track_nhits": [[4, 5, 3]], "track_hit_index": [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]]})
    assert m.hepgan_trackml_score(hits, particles, perfect) == pytest.approx(1.0)
    none = ak.Array({"track_nhits": [[]], "track_hit_index": [[]]})
    assert m.hepgan_trackml_score(hits, particles, none) == 0.0
    # The TrackML rule is strict (> 50%), unlike the matching (>= 50%): P's hits of order 0, 1
    # + noise hold 2/3 of the track but only 2/4 of P -> 0; P's order 0, 1, 2 with three
    # foreign hits hold 3/6 of the track -> 0.
    half = ak.Array({"track_nhits": [[3]], "track_hit_index": [[1, 3, 12]]})
    assert m.hepgan_trackml_score(hits, particles, half) == 0.0
    assert m.match_tracks(hits, particles, half).track_matched.tolist() == [[True]]
    half = ak.Array({"track_nhits": [[6]], "track_hit_index": [[1, 3, 0, 12, 4, 9]]})
    assert m.hepgan_trackml_score(hits, particles, half) == 0.0
    assert m.match_tracks(hits, particles, half).track_matched.tolist() == [[True]]


# --------------------------------------------------------------------------------------------
# Perigee parameters
# --------------------------------------------------------------------------------------------


def _rk4_perigee(pos, p, q, bfield):
    """Independent numerical check: integrate the Lorentz force in 3D path length with RK4
    and find the closest approach to the z axis nearest the start (forwards or backwards)."""
    pos = np.asarray(pos, float)
    pmag = np.linalg.norm(p)
    k = q * m.C_GEV_PER_T_MM * bfield / pmag  # dT/ds = k T x z_hat

    def f(y):
        t = y[3:]
        return np.concatenate([t, k * np.array([t[1], -t[0], 0.0])])

    def step(y, h):
        k1 = f(y)
        k2 = f(y + 0.5 * h * k1)
        k3 = f(y + 0.5 * h * k2)
        k4 = f(y + h * k3)
        return y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)

    def g(y):  # d(r_T^2 / 2)/ds: - before the closest approach, + after
        return y[0] * y[3] + y[1] * y[4]

    y0 = np.concatenate([pos, np.asarray(p, float) / pmag])
    h = 0.1
    best = None
    for sign in (1.0, -1.0):
        y = y0.copy()
        s = 0.0
        for _ in range(3000):
            yn = step(y, sign * h)
            a, b = (y, yn) if sign > 0 else (yn, y)
            if g(a) <= 0.0 < g(b):
                lo, hi = 0.0, h  # bisect within the step from a
                for _ in range(60):
                    mid = 0.5 * (lo + hi)
                    if g(step(a, mid)) <= 0:
                        lo = mid
                    else:
                        hi = mid
                ys = step(a, 0.5 * (lo + hi))
                dist = abs(s) if sign > 0 else abs(s + h)
                if best is None or dist < best[0]:
                    best = (dist, ys)
                break
            y = yn
            s += h
    assert best is not None, "no closest approach found"
    y = best[1]
    phi = math.atan2(y[4], y[3])
    d0 = -y[0] * math.sin(phi) + y[1] * math.cos(phi)  # ACTS: (-d0 sin phi, d0 cos phi)
    assert math.hypot(y[0], y[1]) == pytest.approx(abs(d0), abs=1e-9)
    return {"d0": d0, "z0": y[2], "phi": phi, "theta": math.acos(y[5]), "qop": q / pmag}


@pytest.mark.parametrize("q", [1, -1])
def test_perigee_from_origin(q):
    px, py, pz, vz = 0.8, -0.6, 1.7, 12.3
    par = m.perigee_from_vertex(0.0, 0.0, vz, px, py, pz, q)
    p = math.sqrt(px * px + py * py + pz * pz)
    assert par["d0"] == pytest.approx(0.0, abs=1e-12)
    assert par["z0"] == pytest.approx(vz, abs=1e-12)
    assert par["phi"] == pytest.approx(math.atan2(py, px), abs=1e-12)
    assert par["theta"] == pytest.approx(math.atan2(math.hypot(px, py), pz), abs=1e-12)
    assert par["qop"] == pytest.approx(q / p, rel=1e-12)


def test_perigee_sign_convention():
    # Stiff track along +x passing at y = +1 mm: perigee (0, 1) = (-d0 sin 0, d0 cos 0) -> d0 = +1
    for q in (1, -1):
        par = m.perigee_from_vertex(50.0, 1.0, 0.0, 1000.0, 0.0, 0.0, q)
        assert par["d0"] == pytest.approx(1.0, abs=1e-3)
        assert par["z0"] == pytest.approx(0.0, abs=1e-9)
    par = m.perigee_from_vertex(0.0, -2.0, 3.0, 5.0, 0.0, 1.0, 0)  # neutral: straight line
    got = tuple(float(par[k]) for k in ("d0", "z0", "phi", "qop"))
    assert got == pytest.approx((-2.0, 3.0, 0.0, 0.0), abs=1e-12)


@pytest.mark.parametrize(
    "v, p, q",
    [
        ((3.0, -4.0, 20.0), (0.4, 0.3, 1.0), 1),
        ((3.0, -4.0, 20.0), (0.4, 0.3, 1.0), -1),
        ((30.0, 20.0, -5.0), (0.12, 0.09, -0.3), 1),   # 0.15 GeV, R = 250 mm, moving outwards
        ((30.0, 20.0, -5.0), (-0.12, -0.09, 0.2), -1),  # moving inwards: perigee ahead
        ((-8.0, 1.0, 0.0), (0.05, 0.2, 0.0), 1),        # R = 344 mm, theta = pi/2
        ((0.01, -0.012, 4.0), (1.0, 2.0, -3.0), -1),    # near the beam line
    ],
)
def test_perigee_displaced_matches_numerical_propagation(v, p, q):
    bfield = 2.0
    got = m.perigee_from_vertex(*v, *p, q, bfield=bfield)
    ref = _rk4_perigee(v, p, q, bfield)
    for k in ("d0", "z0", "theta", "qop"):
        assert float(got[k]) == pytest.approx(ref[k], abs=2e-6), k
    assert float(m.wrap_phi(got["phi"] - ref["phi"])) == pytest.approx(0.0, abs=1e-7)


def test_truth_perigee_jagged_and_wrap_phi():
    hits, particles, tracks = _matching_events()
    par = m.truth_perigee(particles)
    assert ak.num(par["d0"]).tolist() == [0, 12, 1]
    np.testing.assert_allclose(ak.flatten(par["phi"]).to_numpy(), 0.3, atol=1e-6)
    np.testing.assert_allclose(m.wrap_phi([math.pi, -math.pi, 3 * math.pi / 2]), [-math.pi, -math.pi, -math.pi / 2])


# --------------------------------------------------------------------------------------------
# Residuals, resolutions, pulls
# --------------------------------------------------------------------------------------------


def _residual_event():
    """P1 (id 1) and P2 (id 2), 8 hits each; T0 good on P1, T1 good on P2, T2 duplicate of P1,
    T3 fake (2 + 2 hits). Track parameters = truth + known offsets."""
    pids = [1] * 8 + [2] * 8
    particles = [
        _particle(1, pt=2.0, eta=0.5, phi=math.pi - 0.005, v=(0.01, 0.02, 3.0)),
        _particle(2, pt=0.8, eta=-1.2, phi=-1.0, q=-1, v=(-0.5, 0.3, -7.0)),
    ]
    tracks = [list(range(8)), list(range(8, 16)), list(range(4)), [0, 1, 8, 9]]
    _, parts, _ = _build([(pids, particles, [])])
    truth = {k: ak.to_numpy(ak.flatten(v)) for k, v in m.truth_perigee(parts).items()}
    delta = {
        "d0": (0.01, -0.02), "z0": (0.05, 0.1), "phi": (0.01, -0.002), "theta": (-0.001, 0.003), "qop": (0.002, -0.004)
    }
    err = {"d0": 0.02, "z0": 0.05, "phi": 0.001, "theta": 0.002, "qop": 0.001}
    extra = {}
    for k in delta:
        # T0 on P1, T1 on P2, T2 (duplicate of P1) and T3 (fake) get P1's truth + 1
        extra[f"track_{k}"] = [truth[k][0] + delta[k][0], truth[k][1] + delta[k][1], truth[k][0] + 1, truth[k][0] + 1]
        extra[f"track_err_{k}"] = [err[k]] * 4
    return _build([(pids, particles, tracks, extra)]), delta, err


def test_residuals_and_pulls():
    (hits, particles, tracks), delta, err = _residual_event()
    r = m.match_tracks(hits, particles, tracks)
    assert r.track_is_duplicate.tolist() == [[False, False, True, False]]
    assert r.track_is_fake.tolist() == [[False, False, False, True]]
    res = m.track_residuals(tracks, particles, r)
    assert res.track.tolist() == [0, 1]
    for k in m.PERIGEE_PARAMETERS:
        # truth phi of P1 is pi - 0.005: track phi pi + 0.005 is stored unwrapped; residual wraps
        np.testing.assert_allclose(res.residual[k], delta[k], atol=2e-6, err_msg=k)
        np.testing.assert_allclose(res.pull[k], np.array(delta[k]) / err[k], rtol=1e-3, err_msg=k)
    np.testing.assert_allclose(res.particle_pt, [2.0, 0.8], rtol=1e-6)
    with_dup = m.track_residuals(tracks, particles, r, include_duplicates=True)
    assert with_dup.track.tolist() == [0, 1, 2]
    only_p2 = m.track_residuals(tracks, particles, r, particle_mask=[[False, True]])
    assert only_p2.track.tolist() == [1]
    s = m.resolution_summary(res, pt_bins=[0.5, 1.0, 10.0])
    assert [b["n"] for b in s["d0"]["bins"]] == [1, 1]
    with pytest.raises(ValueError, match="track_err_d0"):
        m.track_residuals(ak.Array({"track_d0": tracks["track_d0"]}), particles, r)


def test_core_width_of_gaussian_and_tails():
    rng = np.random.default_rng(20240611)
    x = rng.normal(0.3, 0.25, 200_000)
    assert m.core_width(x) == pytest.approx(0.25, rel=0.01)
    # 10% wide tails inflate the RMS a lot, the core width little
    y = np.concatenate([x, rng.normal(0.3, 5.0, 20_000)])
    assert np.std(y) > 1.0
    assert m.core_width(y) < 0.30
    # exact on a grid: (q84 - q16)/2 of 0..100 with linear interpolation
    assert m.core_width(np.arange(101.0)) == pytest.approx(50 * (1 - 2 * 0.158655254), rel=1e-6)
    assert math.isnan(m.core_width([]))


# --------------------------------------------------------------------------------------------
# Summary
# --------------------------------------------------------------------------------------------


def test_summarize_is_json_and_consistent():
    (hits, particles, tracks), _, _ = _residual_event()
    hits = ak.with_field(hits, ak.values_astype(ak.zeros_like(hits["hit_particle_id"]), np.float32) + 10, "hit_x")
    hits = ak.with_field(hits, hits["hit_x"], "hit_y")
    hits = ak.with_field(hits, hits["hit_x"], "hit_z")
    s = m.summarize(hits, particles, tracks, pt_min=0.5)
    text = json.dumps(s, allow_nan=False)
    assert json.loads(text) == s
    assert s["n_tracks"] == 4 and s["n_events"] == 1
    assert s["n_particles_denominator"] == 2 and s["efficiency"] == 1.0
    assert s["efficiency_pt_1.0"] == 1.0  # only P1 (2 GeV) remains
    assert s["fake_rate"] == 0.25 and s["duplicate_rate"] == 0.25
    assert s["resolutions"]["d0"]["n"] == 2
    # both particles fully found (T0, T1 pure and complete): score 1
    assert s["trackml_score"] == pytest.approx(1.0)
