"""hepgan.perf.metrics: intervals, efficiency categories, paired counts and the ROC AUC on
cases whose answers are known in closed form."""

from __future__ import annotations

import math

import awkward as ak
import numpy as np
import pytest

from hepgan.errors import InputError
from hepgan.perf import metrics as m


def test_clopper_pearson_closed_forms():
    # k = n: lower = (alpha / 2)^(1/n); k = 0: upper = 1 - (alpha / 2)^(1/n); alpha = 1 - cl
    for n in (1, 7, 100, 5000):
        for cl in (m.ONE_SIGMA_CL, 0.95):
            a = 1.0 - cl
            lo, hi = m.clopper_pearson(n, n, cl=cl)
            assert float(lo) == pytest.approx((a / 2) ** (1 / n), rel=1e-9) and float(hi) == 1.0
            lo, hi = m.clopper_pearson(0, n, cl=cl)
            assert float(lo) == 0.0 and float(hi) == pytest.approx(1 - (a / 2) ** (1 / n), rel=1e-9)
    # k = 1 of n = 2: the bounds solve p^2 = alpha/2 ... by symmetry lower = 1 - upper
    lo, hi = m.clopper_pearson(1, 2, cl=0.9)
    assert float(lo) == pytest.approx(1 - float(hi), abs=1e-10)
    # lower bound of 1 of 2 solves 1 - (1 - p)^2 = 0.05
    assert float(lo) == pytest.approx(1 - math.sqrt(0.95), rel=1e-9)
    # arrays, empty bins
    lo, hi = m.clopper_pearson([0, 3, 0], [0, 10, 5])
    assert np.isnan(lo[0]) and np.isnan(hi[0]) and lo[1] < 0.3 < hi[1] and lo[2] == 0.0
    with pytest.raises(InputError, match="0 <= k <= n"):
        m.clopper_pearson(5, 4)
    with pytest.raises(InputError, match="cl"):
        m.clopper_pearson(1, 4, cl=1.0)


def test_clopper_pearson_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    a = 1.0 - m.ONE_SIGMA_CL
    for k, n in ((3, 10), (935, 1000), (99_990, 100_000), (7, 8), (50, 51)):
        lo, hi = m.clopper_pearson(k, n)
        assert float(lo) == pytest.approx(stats.beta.ppf(a / 2, k, n - k + 1), abs=1e-9)
        assert float(hi) == pytest.approx(stats.beta.ppf(1 - a / 2, k + 1, n - k), abs=1e-9)


def test_mcnemar_and_rate_dict():
    # 3 vs 10 discordant: 2 * P(X <= 3 | 13, 1/2) = 2 * (1 + 13 + 78 + 286) / 8192
    assert m.mcnemar_p_value(3, 10) == pytest.approx(2 * 378 / 8192)
    assert m.mcnemar_p_value(0, 0) == 1.0 and m.mcnemar_p_value(4, 4) == 1.0
    r = m.rate_with_interval(0, 0)
    assert r["value"] is None and r["lower"] is None and r["n"] == 0
    r = m.rate_with_interval(1, 4)
    assert r["value"] == 0.25 and r["lower"] < 0.25 < r["upper"]


def _collision_event(*, with_truth_categories: bool = True):
    """One event, 4 particles of 8 hits each: hard-scatter prompt (1), hard-scatter displaced
    (2), pile-up prompt (3), pile-up prompt (4). Collection A finds 1, 2, 3; B finds 1, 3, 4."""
    pids = [p for p in (1, 2, 3, 4) for _ in range(8)]
    z = [[float(i % 8) for i in range(32)]]
    hits = ak.Array({"hit_particle_id": [pids], "hit_x": z, "hit_y": z, "hit_z": z})
    cols = {
        "particle_id": [[1, 2, 3, 4]], "particle_q": [[1, -1, 1, 1]],
        "particle_px": [[2.0, 2.0, 2.0, 0.7]], "particle_py": [[0.0] * 4], "particle_pz": [[0.0] * 4],
        "particle_vx": [[0.0] * 4], "particle_vy": [[0.0] * 4], "particle_vz": [[0.0] * 4],
        "particle_primary": [[True] * 4],
    }  # fmt: skip
    if with_truth_categories:
        cols["particle_hard_scatter"] = [[1, 1, 0, 0]]
        cols["particle_vertex_secondary"] = [[0, 3, 0, 0]]
    particles = ak.Array(cols)

    def tracks(found):
        idx = [i for p in found for i in range((p - 1) * 8, p * 8)]
        params = {f"track_{k}{q}": [[0.1] * len(found)] for k in ("", "err_") for q in m.PERIGEE_PARAMETERS}
        return ak.Array({"track_nhits": [[8] * len(found)], "track_hit_index": [idx], **params})

    return hits, particles, tracks([1, 2, 3]), tracks([1, 3, 4])


def test_efficiency_categories_and_paired_counts():
    hits, particles, a, b = _collision_event()
    ma, mb = m.match_tracks(hits, particles, a), m.match_tracks(hits, particles, b)
    assert m.available_categories(particles) == ["all", "hard_scatter", "prompt", "displaced"]
    e = {c: m.efficiency(ma, particles, pt_min=0.5, category=c) for c in m.available_categories(particles)}
    assert [(e[c].n_matched, e[c].n_total) for c in e] == [(3, 4), (2, 2), (2, 3), (1, 1)]
    assert e["all"].lower < 0.75 < e["all"].upper
    assert m.efficiency(ma, particles, pt_min=1.0).n_total == 3  # particle 4 has pT 0.7
    p = m.paired_counts(ma, mb, particles, pt_min=0.5)
    assert (p["n_total"], p["both"], p["only_a"], p["only_b"], p["neither"]) == (4, 2, 1, 1, 0)
    assert p["mcnemar_p_value"] == 1.0
    s = m.summarize(hits, particles, a, pt_min=0.5)
    assert s["efficiency_categories"]["displaced"]["k"] == 1
    assert s["efficiency_interval"]["value"] == 0.75
    assert s["fake_rate_interval"]["k"] == 0 and s["fake_rate_interval"]["upper"] > 0
    # an old file: no such branches, no such categories, and asking names the branch
    hits, particles, a, _ = _collision_event(with_truth_categories=False)
    ma = m.match_tracks(hits, particles, a)
    assert m.available_categories(particles) == ["all"]
    assert list(m.summarize(hits, particles, a)["efficiency_categories"]) == ["all"]
    with pytest.raises(InputError, match="particle_hard_scatter"):
        m.efficiency(ma, particles, category="hard_scatter")
    with pytest.raises(InputError, match="unknown"):
        m.efficiency(ma, particles, category="b_jets")


def test_auc_by_hand():
    # positives 0.9, 0.4; negatives 0.5, 0.1: pairs won 1 + 1 + 0 + 1 of 4 -> 0.75
    assert m.auc(np.array([0.9, 0.4, 0.5, 0.1]), np.array([1.0, 1.0, 0.0, 0.0])) == 0.75
    # a tie counts one half
    assert m.auc(np.array([0.5, 0.5]), np.array([1.0, 0.0])) == 0.5
    assert math.isnan(m.auc(np.array([0.3]), np.array([1.0])))
