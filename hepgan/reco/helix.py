"""Helices in a solenoid field along z: the seed estimate from three space points, and the
crossings of a helix with barrel cylinders and endcap planes.

Conventions (ACTS perigee w.r.t. the origin, the beam line):

* ``d0`` (mm), ``z0`` (mm), ``phi`` (rad, direction of the transverse momentum at the
  perigee), ``theta`` (rad, polar angle in (0, pi)), ``qop`` = q / p (e / GeV).
* The perigee point is ``(-d0 sin(phi), d0 cos(phi), z0)``: d0 is positive when the origin
  lies to the right of the transverse direction of flight at the perigee (the perigee point
  is to its left). Checked against ACTS tracks in ``tests/test_helix.py``.
* With the field B along +z a positive particle turns clockwise seen from +z (the Lorentz
  force q v x B points to the right of v). We write the sense of rotation as
  ``h = -sign(q B)``: +1 counter-clockwise, -1 clockwise.
* ``s`` is the transverse arc length along the helix from the perigee (mm): the transverse
  direction there is ``phi(s) = phi + h s / R`` and ``z(s) = z0 + s cot(theta)``.

All kernels are scalar-style numba functions (``hepgan.reco.jit.kernel``) so that the feature
builder calls them per seed without temporaries; the array wrappers loop over seeds. Their
flags are their own, whoever calls them (``hepgan.reco.jit.kernel``): fastmath that assumes
no NaN or inf (``hepgan.reco.jit.NAN_SAFE_FASTMATH``), since callers test for them, and
``error_model="numpy"``, so a degenerate input gives inf or NaN instead of raising in the
middle of an event.
"""

from __future__ import annotations

import math

import numpy as np

from hepgan.reco.jit import NAN_SAFE_FASTMATH, kernel

__all__ = [
    "PT_PER_TESLA_METRE",
    "circle_through",
    "crossing_barrel",
    "crossing_endcap",
    "estimate_seed",
    "estimate_seeds",
    "helix_position",
    "perigee_to_circle",
]

#: pT (GeV) = PT_PER_TESLA_METRE * B (T) * R (m), for a unit charge.
PT_PER_TESLA_METRE = 0.299792458

_TWO_PI = 2.0 * math.pi


@kernel(inline="always")
def circle_through(x1: float, y1: float, x2: float, y2: float, x3: float, y3: float):
    """Centre (xc, yc), radius R and sense of rotation h (+1 ccw, -1 cw) of the circle through
    three points visited in order 1 -> 2 -> 3; ok = False when they are collinear.

    The one circle fit of hepgan: the seed estimate here and the seeder's triplet cuts
    (``hepgan.reco.seeding_kernel``, which calls it with float32 coordinates: the differences
    stay float32 there, the centre and radius are float64 either way).
    """
    # Work relative to point 1 to keep the determinant well conditioned far from the origin.
    ax = x2 - x1
    ay = y2 - y1
    bx = x3 - x1
    by = y3 - y1
    det = 2.0 * (ax * by - ay * bx)
    if det == 0.0:
        return 0.0, 0.0, 0.0, 0.0, False
    a2 = ax * ax + ay * ay
    b2 = bx * bx + by * by
    cx = (by * a2 - ay * b2) / det
    cy = (ax * b2 - bx * a2) / det
    radius = math.sqrt(cx * cx + cy * cy)
    # Turning direction: det / 2 is z of (p2 - p1) x (p3 - p1) = (p2 - p1) x (p3 - p2).
    h = 1.0 if det > 0.0 else -1.0
    return x1 + cx, y1 + cy, radius, h, True


@kernel(error_model="numpy", fastmath=NAN_SAFE_FASTMATH, allocates=False)
def _arc_angle(xc: float, yc: float, ax: float, ay: float, bx: float, by: float, h: float) -> float:
    """Signed turning angle (rad, in (-pi, pi]) from point a to point b around the centre, positive
    in the direction of motion h."""
    ux = ax - xc
    uy = ay - yc
    vx = bx - xc
    vy = by - yc
    return h * math.atan2(ux * vy - uy * vx, ux * vx + uy * vy)


@kernel(error_model="numpy", fastmath=NAN_SAFE_FASTMATH, allocates=False)
def estimate_seed(
    x1: float, y1: float, z1: float, x2: float, y2: float, z2: float, x3: float, y3: float, z3: float, bfield: float
):
    """Helix through three space points (mm) visited in order 1 -> 2 -> 3, field `bfield` (T)
    along z.

    Transverse: the exact circle through the three points gives R, the sense of rotation
    (hence the charge sign) and the perigee (closest approach to the origin). Longitudinal:
    least-squares line z = z0 + s cot(theta) through the three (s, z), s the transverse arc
    length from the perigee (exact for a helix, unlike z vs r).

    Returns ``(d0, z0, phi, theta, qop, ok)``: mm, mm, rad, rad, e/GeV; ok False for collinear
    points (infinite momentum) or a zero field, the parameters then being zeros.
    """
    xc, yc, radius, h, ok = circle_through(x1, y1, x2, y2, x3, y3)
    if not ok or bfield == 0.0 or radius == 0.0:
        return 0.0, 0.0, 0.0, 0.0, 0.0, False
    # h = -sign(q B)  =>  q = -h sign(B)
    q = -h if bfield > 0.0 else h
    dc = math.sqrt(xc * xc + yc * yc)
    # Perigee point: the point of the circle closest to the origin (origin -> centre direction).
    if dc > 0.0:
        px = xc - radius * xc / dc
        py = yc - radius * yc / dc
    else:  # origin at the centre: every point is a perigee, take the one nearest hit 1
        px = x1
        py = y1
    # Direction of motion at the perigee: h * z x (p - c) / R.
    tx = -h * (py - yc) / radius
    ty = h * (px - xc) / radius
    phi = math.atan2(ty, tx)
    d0 = -px * math.sin(phi) + py * math.cos(phi)
    s1 = radius * _arc_angle(xc, yc, px, py, x1, y1, h)
    s2 = radius * _arc_angle(xc, yc, px, py, x2, y2, h)
    s3 = radius * _arc_angle(xc, yc, px, py, x3, y3, h)
    sm = (s1 + s2 + s3) / 3.0
    zm = (z1 + z2 + z3) / 3.0
    sxx = (s1 - sm) ** 2 + (s2 - sm) ** 2 + (s3 - sm) ** 2
    sxz = (s1 - sm) * (z1 - zm) + (s2 - sm) * (z2 - zm) + (s3 - sm) * (z3 - zm)
    if sxx == 0.0:
        return 0.0, 0.0, 0.0, 0.0, 0.0, False
    cot = sxz / sxx
    z0 = zm - cot * sm
    theta = math.atan2(1.0, cot)
    pt = PT_PER_TESLA_METRE * abs(bfield) * radius * 1e-3
    p = pt / math.sin(theta)
    return d0, z0, phi, theta, q / p, True


@kernel(error_model="numpy", fastmath=NAN_SAFE_FASTMATH, allocates=False)
def perigee_to_circle(d0: float, phi: float, theta: float, qop: float, bfield: float):
    """Transverse circle of a helix: ``(xc, yc, R, h)`` (mm, mm, mm, +-1)."""
    pt = abs(math.sin(theta) / qop) if qop != 0.0 else 1e12
    radius = pt / (PT_PER_TESLA_METRE * abs(bfield) * 1e-3)
    q = 1.0 if qop > 0.0 else -1.0
    h = -q if bfield > 0.0 else q
    # Perigee p0 = (-d0 sin phi, d0 cos phi); centre = p0 + h R (-sin phi, cos phi).
    k = d0 + h * radius
    return -k * math.sin(phi), k * math.cos(phi), radius, h


@kernel(error_model="numpy", fastmath=NAN_SAFE_FASTMATH, allocates=False)
def helix_position(d0: float, z0: float, phi: float, theta: float, qop: float, bfield: float, s: float):
    """Position and unit direction at transverse arc length s (mm) from the perigee:
    ``(x, y, z, ux, uy, uz)``."""
    xc, yc, radius, h = perigee_to_circle(d0, phi, theta, qop, bfield)
    phis = phi + h * s / radius
    x = xc + h * radius * math.sin(phis)
    y = yc - h * radius * math.cos(phis)
    st = math.sin(theta)
    return x, y, z0 + s * math.cos(theta) / st, math.cos(phis) * st, math.sin(phis) * st, math.cos(theta)


@kernel(error_model="numpy", fastmath=NAN_SAFE_FASTMATH, allocates=False)
def crossing_barrel(
    xc: float, yc: float, radius: float, h: float, phi: float, z0: float, cot: float, r_layer: float, s_min: float
):
    """First outward crossing of the helix with the cylinder of radius `r_layer` (mm) at arc
    length s > s_min.

    The helix is given by its circle (``perigee_to_circle``), ``phi`` and ``z0`` at the perigee
    and ``cot`` = cot(theta). From the perigee the distance to the beam line grows for half a
    turn, so the outward crossing is the one at turning angle in [0, pi].

    Returns ``(s, x, y, z, ux, uy, ok)``: arc length (mm), position (mm) and transverse unit
    direction; ok False when the circle never reaches r_layer or the crossing is at s <= s_min.
    """
    d = math.sqrt(xc * xc + yc * yc)
    if d == 0.0 or d > radius + r_layer or d < abs(radius - r_layer):
        return 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, False
    # The two intersections of |p| = r_layer and |p - c| = R lie at a * c/d +- b * perp(c)/d.
    a = (r_layer * r_layer - radius * radius + d * d) / (2.0 * d)
    b2 = r_layer * r_layer - a * a
    b = math.sqrt(b2) if b2 > 0.0 else 0.0
    ex = xc / d
    ey = yc / d
    # Perigee point: c - R c/d; angles of the intersections from it, measured around the centre.
    px = xc - radius * ex
    py = yc - radius * ey
    best = -1.0
    bx = 0.0
    by = 0.0
    for sign in (-1.0, 1.0):
        x = a * ex - sign * b * ey
        y = a * ey + sign * b * ex
        ang = _arc_angle(xc, yc, px, py, x, y, h)
        if ang < 0.0:
            ang += _TWO_PI
        if ang <= math.pi + 1e-12:
            best = ang
            bx = x
            by = y
            break
    if best < 0.0:
        return 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, False
    s = best * radius
    if s <= s_min:
        return 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, False
    phis = phi + h * best
    return s, bx, by, z0 + s * cot, math.cos(phis), math.sin(phis), True


@kernel(error_model="numpy", fastmath=NAN_SAFE_FASTMATH, allocates=False)
def crossing_endcap(
    xc: float, yc: float, radius: float, h: float, phi: float, z0: float, cot: float, z_layer: float, s_min: float
):
    """Crossing of the helix with the plane z = `z_layer` (mm) at arc length s > s_min.

    Returns ``(s, x, y, z, ux, uy, ok)`` as :func:`crossing_barrel`; ok False when the helix
    moves away from the plane or reaches it only at s <= s_min.
    """
    if cot == 0.0:
        return 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, False
    s = (z_layer - z0) / cot
    if s <= s_min:
        return 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, False
    phis = phi + h * s / radius
    x = xc + h * radius * math.sin(phis)
    y = yc - h * radius * math.cos(phis)
    return s, x, y, z_layer, math.cos(phis), math.sin(phis), True


@kernel(error_model="numpy", fastmath=NAN_SAFE_FASTMATH)
def _estimate_seeds_kernel(x, y, z, seeds, bfield, out, ok):
    for i in range(seeds.shape[0]):
        a = seeds[i, 0]
        b = seeds[i, 1]
        c = seeds[i, 2]
        d0, z0, phi, theta, qop, good = estimate_seed(x[a], y[a], z[a], x[b], y[b], z[b], x[c], y[c], z[c], bfield)
        out[i, 0] = d0
        out[i, 1] = z0
        out[i, 2] = phi
        out[i, 3] = theta
        out[i, 4] = qop
        ok[i] = good


def estimate_seeds(
    x: np.ndarray, y: np.ndarray, z: np.ndarray, seeds: np.ndarray, bfield: float
) -> tuple[np.ndarray, np.ndarray]:
    """Helix estimates of many seeds.

    x, y, z: (n_hits,) hit positions (mm); seeds: (n_seeds, 3) int hit indices (inner, middle,
    outer); bfield: T along z. Returns (params (n_seeds, 5) float64 = d0, z0, phi, theta, qop in
    mm, mm, rad, rad, e/GeV; ok (n_seeds,) bool).
    """
    seeds = np.ascontiguousarray(seeds, dtype=np.int64).reshape(-1, 3)
    out = np.zeros((len(seeds), 5), dtype=np.float64)
    ok = np.zeros(len(seeds), dtype=np.bool_)
    _estimate_seeds_kernel(
        np.ascontiguousarray(x, dtype=np.float64),
        np.ascontiguousarray(y, dtype=np.float64),
        np.ascontiguousarray(z, dtype=np.float64),
        seeds,
        float(bfield),
        out,
        ok,
    )
    return out, ok
