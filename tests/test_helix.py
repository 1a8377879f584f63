"""Seed helix estimate and surface crossings: against a numeric integration of the equation of
motion, and against ACTS CKF tracks."""

from __future__ import annotations

import math

import awkward as ak
import numpy as np
import pytest

from hepgan.io.events import read_events
from hepgan.reco.geometry import GENERIC_DETECTOR
from hepgan.reco.helix import (
    PT_PER_TESLA_METRE,
    circle_through,
    crossing_barrel,
    crossing_endcap,
    estimate_seed,
    estimate_seeds,
    helix_position,
    perigee_to_circle,
)

B = 2.0


def integrate(d0, z0, phi, theta, qop, *, step=0.5, until):
    """RK4 of d(dir)/dl = kappa dir x z_hat (l = 3D path, mm), from the ACTS perigee point
    (-d0 sin phi, d0 cos phi, z0). Yields positions until `until(pos)` is true."""
    pos = np.array([-d0 * math.sin(phi), d0 * math.cos(phi), z0])
    u = np.array([math.cos(phi) * math.sin(theta), math.sin(phi) * math.sin(theta), math.cos(theta)])
    kappa = PT_PER_TESLA_METRE * B * qop * 1e-3  # 1/mm, q/p in e/GeV

    def f(state):
        d = state[3:]
        return np.concatenate([d, kappa * np.array([d[1], -d[0], 0.0])])

    state = np.concatenate([pos, u])
    path = [state.copy()]
    for _ in range(200_000):
        k1 = f(state)
        k2 = f(state + 0.5 * step * k1)
        k3 = f(state + 0.5 * step * k2)
        k4 = f(state + step * k3)
        state = state + step / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        path.append(state.copy())
        if until(state[:3]):
            return np.array(path)
    msg = "integration did not reach the stop condition"
    raise AssertionError(msg)


def first_crossing(path, g):
    """Linear interpolation of the first sign change of g along the path: (pos, dir)."""
    vals = np.array([g(p[:3]) for p in path])
    i = int(np.flatnonzero(np.sign(vals[1:]) != np.sign(vals[:-1]))[0])
    t = vals[i] / (vals[i] - vals[i + 1])
    return path[i, :3] + t * (path[i + 1, :3] - path[i, :3]), path[i, 3:] + t * (path[i + 1, 3:] - path[i, 3:])


CASES = [
    # d0, z0, phi, theta, q, pT
    (0.0, 0.0, 0.3, 1.2, +1, 0.5),
    (0.0, 10.0, -2.0, 2.0, -1, 0.5),
    (1.5, -20.0, 2.9, 0.9, +1, 1.0),
    (-2.0, 35.0, -0.7, 1.7, -1, 2.0),
    (0.8, 5.0, 1.1, 0.5, +1, 10.0),
    (-0.5, -60.0, -3.0, 2.6, -1, 10.0),
    (2.5, 0.0, 0.0, 1.5, -1, 3.0),
]


@pytest.mark.parametrize(("d0", "z0", "phi", "theta", "q", "pt"), CASES)
def test_estimate_matches_integrated_helix(d0, z0, phi, theta, q, pt):
    qop = q * math.sin(theta) / pt
    radii = (32.0, 72.0, 116.0)
    path = integrate(d0, z0, phi, theta, qop, until=lambda p: math.hypot(p[0], p[1]) > 120.0)
    pts = [first_crossing(path, lambda p, r=r: math.hypot(p[0], p[1]) - r)[0] for r in radii]
    est = estimate_seed(*pts[0], *pts[1], *pts[2], B)
    assert est[5]
    got_d0, got_z0, got_phi, got_theta, got_qop, _ = est
    assert got_d0 == pytest.approx(d0, abs=2e-3)
    assert got_z0 == pytest.approx(z0, abs=2e-3)
    assert math.remainder(got_phi - phi, 2 * math.pi) == pytest.approx(0.0, abs=1e-5)
    assert got_theta == pytest.approx(theta, abs=1e-5)
    assert got_qop == pytest.approx(qop, rel=1e-3)


@pytest.mark.parametrize(("d0", "z0", "phi", "theta", "q", "pt"), CASES)
def test_crossings_match_integrated_helix(d0, z0, phi, theta, q, pt):
    qop = q * math.sin(theta) / pt
    xc, yc, radius, h = perigee_to_circle(d0, phi, theta, qop, B)
    cot = math.cos(theta) / math.sin(theta)
    # barrel at r = 500 (reachable for every case: 2 R > 500 + |d0| at pT >= 0.5 GeV, 2 T)
    path = integrate(d0, z0, phi, theta, qop, step=1.0, until=lambda p: math.hypot(p[0], p[1]) > 505.0)
    pos, direction = first_crossing(path, lambda p: math.hypot(p[0], p[1]) - 500.0)
    s, x, y, z, ux, uy, ok = crossing_barrel(xc, yc, radius, h, phi, z0, cot, 500.0, 0.0)
    assert ok
    np.testing.assert_allclose([x, y, z], pos, atol=2e-3)
    st = math.hypot(direction[0], direction[1])
    np.testing.assert_allclose([ux, uy], direction[:2] / st, atol=1e-4)
    np.testing.assert_allclose(helix_position(d0, z0, phi, theta, qop, B, s)[:3], pos, atol=2e-3)
    # not reached again beyond s: the outward crossing is unique
    assert not crossing_barrel(xc, yc, radius, h, phi, z0, cot, 500.0, s + 1.0)[6]
    # endcap plane in the direction of flight
    zl = z0 + math.copysign(300.0, cot)
    path = integrate(d0, z0, phi, theta, qop, step=1.0, until=lambda p: abs(p[2] - z0) > 305.0)
    pos, direction = first_crossing(path, lambda p: p[2] - zl)
    s, x, y, z, ux, uy, ok = crossing_endcap(xc, yc, radius, h, phi, z0, cot, zl, 0.0)
    assert ok
    np.testing.assert_allclose([x, y, z], pos, atol=2e-3)
    np.testing.assert_allclose([ux, uy], direction[:2] / math.hypot(*direction[:2]), atol=1e-4)
    # the plane behind the perigee is never crossed
    assert not crossing_endcap(xc, yc, radius, h, phi, z0, cot, z0 - math.copysign(300.0, cot), 0.0)[6]


def test_barrel_out_of_reach():
    # pT = 0.5 GeV at 2 T: R = 834 mm, the circle through the origin reaches r <= 2 R
    xc, yc, radius, h = perigee_to_circle(0.0, 0.0, 1.0, math.sin(1.0) / 0.5, B)
    assert not crossing_barrel(xc, yc, radius, h, 0.0, 0.0, 1.0, 2 * radius + 10.0, 0.0)[6]


def _pixel_seeds_of_tracks(path):
    """Stand-in seeds: per ACTS track, its 3 hits nearest the origin on distinct pixel layers."""
    ev = read_events(path, trees=("hits", "tracks"))
    rows = []
    for hits, tracks in zip(ev["hits"], ev["tracks"], strict=True):
        x, y, z = (ak.to_numpy(hits[k]).astype(np.float64) for k in ("hit_x", "hit_y", "hit_z"))
        vol = ak.to_numpy(hits["hit_volume_id"])
        layer = GENERIC_DETECTOR.layer_index(vol, ak.to_numpy(hits["hit_layer_id"]))
        per_track = ak.unflatten(tracks["track_hit_index"], tracks["track_nhits"])
        ref = np.stack([ak.to_numpy(tracks[f"track_{p}"]) for p in ("d0", "z0", "phi", "theta", "qop")], 1)
        for t, idx in enumerate(per_track):
            idx = ak.to_numpy(idx)
            idx = idx[np.argsort(np.sqrt(x[idx] ** 2 + y[idx] ** 2 + z[idx] ** 2))]
            chosen, seen = [], set()
            for j in idx:
                if vol[j] in GENERIC_DETECTOR.pixel_volumes and layer[j] not in seen:
                    chosen.append(j)
                    seen.add(layer[j])
            if len(chosen) >= 3:
                est, ok = estimate_seeds(x, y, z, np.array([chosen[:3]]), B)
                assert ok.all()
                rows.append(np.concatenate([est[0], ref[t]]))
    return np.array(rows)


def test_seed_estimate_agrees_with_acts_ckf(sim_20x50):
    rows = _pixel_seeds_of_tracks(sim_20x50)
    assert len(rows) > 3000
    est, ref = rows[:, :5], rows[:, 5:]
    diff = est - ref
    diff[:, 2] = np.remainder(diff[:, 2] + np.pi, 2 * np.pi) - np.pi
    core = lambda v: np.percentile(np.abs(v), 68)  # noqa: E731
    # Measured (5 events, 20 x 50): core widths d0 0.05 mm, z0 0.06 mm, phi 2e-3, theta 3e-4,
    # q/p 12 % (three pixel hits against the full CKF fit); the bounds leave ~2x room.
    assert core(diff[:, 0]) < 0.1
    assert core(diff[:, 1]) < 0.15
    assert core(diff[:, 2]) < 4e-3
    assert core(diff[:, 3]) < 1e-3
    assert core(diff[:, 4] / ref[:, 4]) < 0.25
    # Charge from the turning direction and the sign of d0 follow ACTS's conventions.
    assert np.mean(np.sign(est[:, 4]) == np.sign(ref[:, 4])) > 0.995
    displaced = np.abs(ref[:, 0]) > 0.2
    assert displaced.sum() >= 20
    assert np.mean(np.sign(est[displaced, 0]) == np.sign(ref[displaced, 0])) > 0.9


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_circle_through_three_points(dtype):
    """The one circle fit (the seed estimate and the seeder's triplet cuts): centre, radius
    and sense of rotation of points on a known circle, in both orders; float32 points (as the
    seeder passes them) to float32 precision; collinear points are refused."""
    xc, yc, radius = 300.0, -400.0, 500.0
    angles = (2.0, 2.1, 2.25)  # counter-clockwise
    pts = [(dtype(xc + radius * math.cos(a)), dtype(yc + radius * math.sin(a))) for a in angles]
    tol = 1e-9 if dtype == np.float64 else 2e-3
    for order, sense in ((pts, 1.0), (pts[::-1], -1.0)):
        got_x, got_y, got_r, h, ok = circle_through(*order[0], *order[1], *order[2])
        assert ok and h == sense
        assert got_x == pytest.approx(xc, rel=tol) and got_y == pytest.approx(yc, rel=tol)
        assert got_r == pytest.approx(radius, rel=tol)
    line = [dtype(v) for v in (0.0, 0.0, 10.0, 20.0, 30.0, 60.0)]
    assert not circle_through(*line)[4]
