"""Tracks continued outward from their last hit, as ACTS's CKF continues them.

Why: the network's slots end L surfaces after the seed (10 for the shipped model), and a hit it
scores below the threshold ends the track there; a forward track crosses more disks than that.
As ACTS's CKF goes on to the last surface, each track is continued from its last hit: the
circle through its last three hits (OUTWARD_SEP apart) and the network's theta from the last hit
are crossed with every layer further out in crossing order; the unused hit nearest the crossing
within the windows (the three hits' r-phi resolution growing with the distance over their lever
arm, the last and the new hit's long axis, theta's error, scattering at the track's momentum,
OUTWARD_BETA per mm) is taken and the circle moves on to it; OUTWARD_HOLES crossings in a row
without a hit end the search. On tuning events, of the found particles' hits beyond the track's
last one at ttbar pile-up 200 (seed 5200, 2 events) 1626 were missing, 969 after; TrackML score
0.4788 -> 0.4812 (4 events), pile-up 50 (5050) 0.5183 -> 0.5205, pile-up 0 (5001) 0.6863 ->
0.6877, guns 20 x 50 (3011) 0.9929 -> 0.9933; hit purity 0.9554 -> 0.9544 at pile-up 200 (83% of
the added hits are the particle's), 0.9837 -> 0.9832 at 50, unchanged on guns; efficiency and
fakes unchanged; about 7 ms/event at pile-up 200. 3 or 5 sigma, half or double the scattering,
1 or 3 holes moved the score by at most 0.0009. (Replacing a track's hit by an unused one that
fits the circle through its neighbours better was tried too: +0.0003, not kept.)

Called by :func:`hepgan.reco.completion.complete_tracks` after the inner-layer search and
before the overlap partners (so the new hits get their partners too).
"""

from __future__ import annotations

import math

import numpy as np

from hepgan.reco.helix import circle_through
from hepgan.reco.hit_grid import phi_ranges, row_run, row_span
from hepgan.reco.jit import kernel

__all__ = ["outward_kernel"]

#: outward: the hits of the circle (the track's last three) at least this far apart, transverse (mm)
OUTWARD_SEP = 20.0
#: outward windows, in sigmas: across the track, and along the module's long axis, where the
#: direction is the network's theta at the perigee, whose error leaves out the scattering up to
#: the last hit (4 sigma there brought back 87% of the particle's hits beyond cut tracks on the
#: guns of tests/test_completion.py, 10 brings back 93%, none of other particles)
OUTWARD_N = 4.0
OUTWARD_LONG_N = 10.0
#: scattering between the last hit and the next surface, rad GeV (per mm, divided by p)
OUTWARD_BETA = 0.003
#: the outward search stops after this many crossed surfaces in a row without a hit
OUTWARD_HOLES = 2
#: surfaces whose extent the crossing misses by less than this are still searched (mm)
_OUTWARD_MARGIN = 5.0


@kernel(allocates=False)
def _anchor(x, y, flat, lo, hi):
    """The last hit of flat[lo:hi] and two before it, each at least OUTWARD_SEP (transverse) from the
    next: positions in flat (-1 when the track is too short)."""
    a = hi - 1
    b = -1
    for k in range(a - 1, lo - 1, -1):
        if math.hypot(x[flat[k]] - x[flat[a]], y[flat[k]] - y[flat[a]]) > OUTWARD_SEP:
            b = k
            break
    c = -1
    if b >= 0:
        for k in range(b - 1, lo - 1, -1):
            if math.hypot(x[flat[k]] - x[flat[b]], y[flat[k]] - y[flat[b]]) > OUTWARD_SEP:
                c = k
                break
    return a, b, c


@kernel()
def outward_kernel(x, y, z, layer, idx, grid, lay_barrel, lay_pos, lay_rmin, lay_rmax, lay_zmin, lay_zmax,
                   sig_phi, sig_long, flat, nhits, theta, qop, err_theta):  # fmt: skip
    """Hits on the surfaces each track crosses after its last hit, as a CKF continues it: the
    circle through the track's last three hits (transverse) and its cot theta from the last
    hit (r-z) are crossed with every layer further out, in order; the unused hit nearest the
    crossing within the windows is taken and the circle moves on to it; the search stops after
    OUTWARD_HOLES crossings in a row without a hit. `idx` and `grid`: the event's hits in
    :mod:`hepgan.reco.hit_grid` order (see ``hepgan.reco.completion.complete_tracks``).
    Returns (flat, nhits), the new hits after each track's."""
    n_tracks = len(nhits)
    n_layers = len(lay_pos)
    order, used_s = idx[0], idx[5]
    offsets, base = grid[0], grid[1]
    found = np.full(n_tracks * n_layers, -1, dtype=np.int64)
    n_found = np.zeros(n_tracks, dtype=np.int64)
    cross_s = np.empty(n_layers)
    cross_l = np.empty(n_layers, dtype=np.int64)
    rng = np.empty(4)
    start = 0
    for t in range(n_tracks):
        lo, hi = start, start + nhits[t]
        start = hi
        if hi - lo < 3 or qop[t] == 0.0:
            continue
        a, b, c = _anchor(x, y, flat, lo, hi)
        if c < 0:
            continue
        ia, ib, ic = flat[a], flat[b], flat[c]
        st = math.sin(theta[t])
        cot = math.cos(theta[t]) / st
        p = 1.0 / abs(qop[t])
        xc, yc, radius, h, ok = circle_through(x[ic], y[ic], x[ib], y[ib], x[ia], y[ia])
        if not ok:
            continue
        angles = _circle_angles(xc, yc, x[ia], y[ia])
        # the surfaces beyond the last hit, in crossing order (the order stays when the circle
        # moves on; each crossing is recomputed then)
        n_cross = 0
        for lay in range(n_layers):
            if offsets[base[lay + 1]] == offsets[base[lay]]:
                continue  # no hit on the layer
            ok, s, cx, cy, cz = _crossing(xc, yc, radius, h, angles, z[ia], cot, lay_barrel[lay], lay_pos[lay])
            if not ok or not _within(lay, cx, cy, cz, lay_barrel, lay_rmin, lay_rmax, lay_zmin, lay_zmax):
                continue
            k = n_cross
            while k > 0 and cross_s[k - 1] > s:
                cross_s[k] = cross_s[k - 1]
                cross_l[k] = cross_l[k - 1]
                k -= 1
            cross_s[k] = s
            cross_l[k] = lay
            n_cross += 1
        holes = 0
        for j in range(n_cross):
            lay = cross_l[j]
            ok, s, cx, cy, cz = _crossing(xc, yc, radius, h, angles, z[ia], cot, lay_barrel[lay], lay_pos[lay])
            if not ok:
                continue
            la_a = layer[ia]
            # the anchor's own errors carried to the crossing: the circle's (three hits' r-phi
            # resolution, growing with the distance over the lever arm), the last hit's long axis
            # (z on a barrel; on a disk its r, which moves the crossing along the track),
            # scattering over the distance
            lever = max(math.hypot(x[ia] - x[ic], y[ia] - y[ic]), 1.0)
            grow = 1.0 + s / lever
            s_circle = math.sqrt(sig_phi[la_a] ** 2 + sig_phi[layer[ib]] ** 2 + sig_phi[layer[ic]] ** 2) * grow * grow
            # scattering at the circle's hits: its direction, and its curvature (over the lever arm)
            ms = OUTWARD_BETA / p * s * (1.0 + s / lever)
            s_za = sig_long[la_a] if lay_barrel[la_a] else sig_long[la_a] * abs(cot)
            w_t = OUTWARD_N * math.sqrt(sig_phi[lay] ** 2 + s_circle**2 + ms * ms)
            s_dir = (ms + s * err_theta[t]) / (st * st)
            if lay_barrel[lay]:
                w_l = OUTWARD_LONG_N * math.sqrt(sig_long[lay] ** 2 + s_za * s_za + s_dir * s_dir)
            else:
                w_l = OUTWARD_LONG_N * math.sqrt(
                    sig_long[lay] ** 2 + (s_za * s_za + s_dir * s_dir) / max(cot * cot, 1e-6)
                )
                # a disk hit's long axis (about radial) shifts it across the track where the
                # track is not radial
                rc = max(math.hypot(cx, cy), 1.0)
                sin_a = abs((cx - xc) * cx + (cy - yc) * cy) / (radius * rc)
                w_t = math.sqrt(w_t * w_t + (OUTWARD_N * sig_long[lay] * sin_a) ** 2)
            q = _nearest_crossing(lay, idx, grid, rng, cx, cy, cz, xc, yc, radius, lay_barrel[lay], w_t, w_l)
            if q < 0:
                holes += 1
                if holes >= OUTWARD_HOLES:
                    break
                continue
            holes = 0
            used_s[q] = True
            i_new = order[q]
            found[t * n_layers + n_found[t]] = i_new
            n_found[t] += 1
            # the circle moves on to the new hit when it is far enough from the last
            if math.hypot(x[i_new] - x[ia], y[i_new] - y[ia]) > OUTWARD_SEP:
                nxc, nyc, nr, nh, ok = circle_through(x[ib], y[ib], x[ia], y[ia], x[i_new], y[i_new])
                if ok and nh == h:
                    xc, yc, radius = nxc, nyc, nr
                    ic, ib, ia = ib, ia, i_new
                    angles = _circle_angles(xc, yc, x[ia], y[ia])
    out = np.empty(len(flat) + n_found.sum(), dtype=flat.dtype)
    pos, start = 0, 0
    for t in range(n_tracks):
        for k in range(nhits[t]):
            out[pos] = flat[start + k]
            pos += 1
        for m in range(n_found[t]):
            out[pos] = found[t * n_layers + m]
            pos += 1
        start += nhits[t]
    return out, nhits + n_found


@kernel()
def _circle_angles(xc, yc, xa, ya):
    """What :func:`_crossing` needs of the circle and its hit a, the same for every surface
    (why apart: the atan2 and hypot cost more than the rest of a crossing, and the outward
    search crosses each track's circle with every layer): the angle of a around the centre,
    the centre's distance from the beam line and direction to it, a's radius."""
    return math.atan2(ya - yc, xa - xc), math.hypot(xc, yc), math.atan2(-yc, -xc), math.hypot(xa, ya)


@kernel()
def _crossing(xc, yc, radius, h, angles, za, cot, barrel, pos):
    """Crossing of the circle (from the hit a onward, in the direction h) with a barrel of
    radius `pos` or the disk at z = `pos`: (ok, s from a, x, y, z), z along cot from a;
    `angles`: :func:`_circle_angles` of the circle and a."""
    ang0, d, base, ra = angles
    if barrel:
        if d == 0.0 or d > radius + pos or d < abs(radius - pos) or pos <= ra + 1.0:
            return False, 0.0, 0.0, 0.0, 0.0
        # the two points at distance pos from the origin on the circle: angle around the centre
        # (base: the direction from the centre to the origin)
        cos_b = (radius * radius + d * d - pos * pos) / (2.0 * radius * d)
        beta = math.acos(min(max(cos_b, -1.0), 1.0))
        best = 1e30
        for sign in (-1.0, 1.0):
            dang = h * (base + sign * beta - ang0)
            dang -= 2.0 * math.pi * math.floor(dang / (2.0 * math.pi))
            best = min(best, dang)
        if best > math.pi:
            return False, 0.0, 0.0, 0.0, 0.0
        s = best * radius
    else:
        if cot == 0.0:
            return False, 0.0, 0.0, 0.0, 0.0
        s = (pos - za) / cot
        if s <= 1.0 or s > math.pi * radius:
            return False, 0.0, 0.0, 0.0, 0.0
    ang = ang0 + h * s / radius
    return True, s, xc + radius * math.cos(ang), yc + radius * math.sin(ang), za + s * cot


@kernel(allocates=False)
def _within(lay, cx, cy, cz, lay_barrel, lay_rmin, lay_rmax, lay_zmin, lay_zmax):
    if lay_barrel[lay]:
        return lay_zmin[lay] - _OUTWARD_MARGIN <= cz <= lay_zmax[lay] + _OUTWARD_MARGIN
    r = math.hypot(cx, cy)
    return lay_rmin[lay] - _OUTWARD_MARGIN <= r <= lay_rmax[lay] + _OUTWARD_MARGIN


@kernel(allocates=False)
def _nearest_crossing(lay, idx, grid, rng, cx, cy, cz, xc, yc, radius, barrel, w_t, w_l):
    """Position in `idx` of the unused hit of layer `lay` nearest the crossing (cx, cy, cz)
    within w_t of the circle and w_l along the module's long axis; -1 when none. Only the grid
    rows within w_l of the crossing along the layer are read; `rng`: scratch (4,) for the phi
    ranges."""
    order, phi_sorted, xs, ys, zs, used_s, rs = idx
    offsets, base, n_phi, umin, uinv, n_rows = grid
    rc = max(math.hypot(cx, cy), 1.0)
    dphi = (w_t + 1.0) / rc
    phi_c = math.atan2(cy, cx)
    uc = cz if barrel else rc
    row_lo, row_hi = row_span(lay, uc - w_l, uc + w_l, umin, uinv, n_rows)
    n_seg = phi_ranges(phi_c - dphi, phi_c + dphi, rng)
    best, best_d = -1, 1.0
    # squared distances before hypot, as in hepgan.reco.completion._nearest_on_layer
    d2_hi = (radius + w_t) ** 2 * (1.0 + 1e-9)
    d2_lo = (radius - w_t) ** 2 * (1.0 - 1e-9) if radius > w_t else -1.0
    for row in range(row_lo, row_hi + 1):
        for g in range(n_seg):
            start, stop = row_run(offsets, base, n_phi, lay, row, rng[2 * g], rng[2 * g + 1], phi_sorted)
            for k in range(start, stop):
                if used_s[k]:
                    continue
                dl = (zs[k] - cz) / w_l if barrel else (rs[k] - rc) / w_l
                if abs(dl) >= 1.0:
                    continue
                dx = xs[k] - xc
                dy = ys[k] - yc
                d2 = dx * dx + dy * dy
                if d2 > d2_hi or d2 < d2_lo:
                    continue
                dt = (math.hypot(dx, dy) - radius) / w_t
                d = dt * dt + dl * dl
                if abs(dt) < 1.0 and d < best_d:
                    best, best_d = k, d
    return best
