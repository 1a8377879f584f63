"""Complete tracks: the hits the network's slots never see, collected as ACTS's CKF does.

Why: the network's slots are the surfaces crossed after the seed, one candidate list each.
Two kinds of the particle's hits lay outside them: the second hit where modules of a seed layer
overlap, and hits on pixel layers inside the seed's innermost hit (a seed may start on the second
or third layer); and on the slots' surfaces the network often takes only one of two overlapping
modules' hits. On tuning events (seed 3011, 20 x 50) these were 85% of the hits the surrogate
missed against ACTS on the particles both found.

Inner and skipped layers: the chosen track's helix is crossed with every pixel layer it holds no
hit on, before its last seed hit (a seed may start on the second layer, or skip one); the unused hit of that layer nearest the crossing is taken when its distance to the helix is
within 4 sigma transversely (sigma^2 = err_d0^2 + (s err_phi)^2 + (0.01 mm)^2 at arc length s)
and along z (err_z0^2 + (s err_theta / sin^2 theta)^2 + (0.05 mm)^2), the errors being the
track's own (`hepgan.reco.uncertainty`). Measured on the same
events: 99.2% of the particle's hits kept, none of 1200 other hits.

Overlaps: every hit of a chosen track (pixel and strip) gets the unused hit of the same layer
that continues it on an overlapping module, if any: the track's straight tangent at the hit
(over the few centimetres between overlapping modules the helix's sagitta is below 0.1 mm even
at 0.5 GeV) is taken to the other hit's radius (barrel) or z (disk), and the residuals there,
along r*phi and along the module's long axis, must be within PARTNER_N sigma: both hits'
resolution, the direction's error and scattering over the distance (PARTNER_BETA per mm) and,
on a disk, a share of the long axis seen along r*phi away from the module's centre line
(PARTNER_LEAK). Chosen on tuning events: on 20 x 50 guns (seed 3011, 10 events) the true
partners' residuals sit within 0.05 mm (pixel), 0.26 mm (short strips) and 0.6 mm (long-strip
disks) along r*phi at their 99% quantile, other hits' beyond 0.17-1.2 mm at their 1% quantile;
the TrackML score went from 0.986 to 0.993 with the tracks' hit purity unchanged; at ttbar
pile-up 200 (seed 5200, 4 events) from 0.473 to 0.479 (purity 0.9551 -> 0.9549, fakes 0.57% ->
0.52%), at pile-up 50 (seed 5050) from 0.514 to 0.518; 3 or 5 sigma changed these by at most
0.001. A hit already on another track is never taken, so no hit becomes shared here.

Outward: the network's slots end L surfaces after the seed (10 for the shipped model), and a
hit it scores below the threshold ends the track there; a forward track crosses more disks than
that. As ACTS's CKF goes on to the last surface, each track is continued from its last hit: the
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
"""

from __future__ import annotations

import functools
import math

import numpy as np

from hepgan.reco.helix import _arc_angle, circle_through, crossing_barrel, crossing_endcap, perigee_to_circle
from hepgan.reco.jit import kernel

__all__ = ["complete_tracks"]

#: inner layers: windows in sigmas of the track's own transverse and z errors, and the hit
#: resolution added to them (mm)
N_SIGMA = 4.0
_HIT_T = 0.01
_HIT_Z = 0.05
#: how far (mm, in the transverse plane) an overlapping module's hit lies from the other hit of
#: the particle on that layer: at most 3.0 mm among 3117 pixel pairs, 3.6 mm among strip pairs
#: (r*phi; seed 3011), 4 kept; the
#: inner-layer search looks as far from the layer's nominal crossing (modules staggered in r).
#: Why it matters: every hit inside the reach is examined, and the innermost layer at pile-up
#: 200 holds thousands (12 mm cost 100 ms/event there).
_OVERLAP_REACH = 4.0
_INNER_REACH = 5.0
#: partner windows, in sigmas (see _partner_of)
PARTNER_N = 4.0
#: direction error and scattering between the two hits, per mm between them (rad)
PARTNER_BETA = 0.003
#: how far along the track a partner may be (mm)
PARTNER_REACH = 30.0
#: share of a disk module's long-axis resolution seen along r*phi away from its centre line
PARTNER_LEAK = 0.1


@kernel()
def _partner_of(i, x, y, z, idx, lo, hi, ux, uy, uz, barrel, w_phi0, w_long0, leak, r_lo, r_hi, z_span):
    """Position in `idx` of the unused hit of the layer block [lo, hi) that best continues hit i
    on an overlapping module, -1 when none: the line from i along the track's direction u is
    taken to the other hit's radius (barrel) or z (disk), and the residuals there, along r*phi
    and along the module's long axis (z on a barrel, r on a disk), must be within
    PARTNER_N sigma of the two hits' resolution, the direction's error over the distance and,
    on a disk, the long axis leaking into r*phi (see PARTNER_* above). r_lo, r_hi: the block's
    hits' radial extent; z_span: their z extent (mm), for the bounds below."""
    order, phi_sorted, xs, ys, zs, used_s, rs = idx
    r = math.hypot(x[i], y[i])
    dphi = _OVERLAP_REACH / max(r, 1.0)
    phi_i = math.atan2(y[i], x[i])
    ut = math.hypot(ux, uy)
    dr_max = max(r - r_lo, r_hi - r)
    w_long_max = PARTNER_N * math.sqrt(w_long0 * w_long0 + (PARTNER_BETA * PARTNER_REACH) ** 2)
    rad = (x[i] * ux + y[i] * uy) / max(r, 1e-9)  # d r / d t along the line
    # Why: the phi window spans the layer's whole length (thousands of hits on the innermost
    # layer at pile-up 200). q = i + t u + residual, with t fixed by r_q (barrel) or z_q (disk),
    # so |t| <= t_max from the block's radial extent (z extent) and PARTNER_REACH, and then
    # |z_q - z_i| (|r_q - r_i|) <= t_max |u_z| (t_max |u_t|) + the long-axis window: necessary
    # conditions (with a rounding slack) that drop only hits the windows would reject.
    if barrel:
        t_max = min(PARTNER_REACH, dr_max / abs(rad)) if rad != 0.0 else PARTNER_REACH
        z_bound = t_max * abs(uz) + w_long_max
        r_bound = 1e300
    else:
        t_max = min(PARTNER_REACH, z_span / abs(uz)) if uz != 0.0 else PARTNER_REACH
        z_bound = 1e300
        r_bound = t_max * ut + w_long_max
    z_bound = z_bound * (1.0 + 1e-9) + 1e-9
    r_bound = r_bound * (1.0 + 1e-9) + 1e-9
    best, best_d = -1, 1.0
    for wrap in (-2.0 * math.pi, 0.0, 2.0 * math.pi):
        if phi_i + wrap + dphi < -math.pi or phi_i + wrap - dphi > math.pi:
            continue  # the range lies outside [-pi, pi]: nothing there
        a = np.searchsorted(phi_sorted[lo:hi], phi_i + wrap - dphi) + lo
        b = np.searchsorted(phi_sorted[lo:hi], phi_i + wrap + dphi) + lo
        for q in range(a, b):
            if abs(zs[q] - z[i]) > z_bound or abs(rs[q] - r) > r_bound:
                continue
            if used_s[q] or order[q] == i:
                continue
            if barrel:
                if abs(rad) < 1e-3 * ut:
                    continue
                t = (rs[q] - r) / rad
            else:
                if abs(uz) < 1e-9:
                    continue
                t = (zs[q] - z[i]) / uz
            if abs(t) > PARTNER_REACH:
                continue
            px, py, pz = x[i] + t * ux, y[i] + t * uy, z[i] + t * uz
            rp = math.hypot(px, py)
            res_phi = ((ys[q] - py) * px - (xs[q] - px) * py) / rp
            res_long = zs[q] - pz if barrel else rs[q] - rp
            bt = PARTNER_BETA * t
            w_phi = PARTNER_N * math.sqrt(w_phi0 * w_phi0 + bt * bt + leak * leak)
            w_long = PARTNER_N * math.sqrt(w_long0 * w_long0 + bt * bt)
            d = (res_phi / w_phi) ** 2 + (res_long / w_long) ** 2
            if abs(res_phi) < w_phi and abs(res_long) < w_long and d < best_d:
                best, best_d = q, d
    return best


@kernel()
def _partner_kernel(x, y, z, idx, block_lo, block_hi, block_r_lo, block_r_hi, block_z_span, layer, barrel, sig_phi,
                    sig_long, flat, nhits, d0, phi, theta, qop, bfield):  # fmt: skip
    """Every hit of every track gets its overlapping-module partner (if any), inserted after it."""
    n_tracks = len(nhits)
    partner = np.full(len(flat), -1, dtype=np.int64)
    start = 0
    for t in range(n_tracks):
        xc, yc, radius, h = perigee_to_circle(d0[t], phi[t], theta[t], qop[t], bfield)
        st, ct = math.sin(theta[t]), math.cos(theta[t])
        for s in range(nhits[t]):
            i = flat[start + s]
            lay = layer[i]
            if lay < 0:
                continue
            # tangent of the circle at the hit, in the direction of flight
            ux = -(y[i] - yc) / (h * radius) * st
            uy = (x[i] - xc) / (h * radius) * st
            w_phi0 = math.sqrt(2.0) * sig_phi[lay]
            w_long0 = math.sqrt(2.0) * sig_long[lay]
            leak = 0.0 if barrel[lay] else PARTNER_LEAK * sig_long[lay]
            q = _partner_of(i, x, y, z, idx, block_lo[lay], block_hi[lay], ux, uy, ct, barrel[lay], w_phi0, w_long0, leak,
                            block_r_lo[lay], block_r_hi[lay], block_z_span[lay])  # fmt: skip
            if q >= 0:
                idx[5][q] = True
                partner[start + s] = idx[0][q]
        start += nhits[t]
    added = np.zeros(n_tracks, dtype=np.int64)
    out = np.empty(len(flat) + (partner >= 0).sum(), dtype=flat.dtype)
    pos, start = 0, 0
    for t in range(n_tracks):
        for s in range(nhits[t]):
            out[pos] = flat[start + s]
            pos += 1
            if partner[start + s] >= 0:
                out[pos] = partner[start + s]
                pos += 1
                added[t] += 1
        start += nhits[t]
    return out, nhits + added


@kernel()
def _nearest_on_layer(lay_lo, lay_hi, pix, cx, cy, xc, yc, radius, h, px, py, z0, cot, win_t, win_z):
    """Position in `pix` of the unused hit of one layer block nearest the helix, within the
    windows; -1 when none."""
    order, phi_sorted, xs, ys, zs, used_s, _ = pix
    r = math.hypot(cx, cy)
    dphi = _INNER_REACH / max(r, 1.0)
    phi_c = math.atan2(cy, cx)
    best, best_d = -1, 1.0
    for wrap in (-2.0 * math.pi, 0.0, 2.0 * math.pi):
        a = np.searchsorted(phi_sorted[lay_lo:lay_hi], phi_c + wrap - dphi) + lay_lo
        b = np.searchsorted(phi_sorted[lay_lo:lay_hi], phi_c + wrap + dphi) + lay_lo
        for q in range(a, b):
            if used_s[q]:
                continue
            # the transverse distance first: it rejects nearly every hit, without the angle
            rt = abs(math.hypot(xs[q] - xc, ys[q] - yc) - radius) / win_t
            if rt >= 1.0:
                continue
            ang = _arc_angle(xc, yc, px, py, xs[q], ys[q], h)
            if ang < 0.0:
                ang += 2.0 * math.pi
            rz = abs(zs[q] - (z0 + ang * radius * cot)) / win_z
            d = rt * rt + rz * rz
            if rt < 1.0 and rz < 1.0 and d < best_d:
                best, best_d = q, d
    return best


@kernel()
def _arc_length(x, y, xc, yc, radius, h, px, py):
    ang = _arc_angle(xc, yc, px, py, x, y, h)
    return (ang + 2.0 * math.pi if ang < 0.0 else ang) * radius


@kernel()
def _inward_kernel(x, y, layer, pix, block_lo, block_hi, pix_layers, pix_barrel, pix_pos, flat, nhits, d0, z0, phi,
                   theta, qop, err_d0, err_z0, err_phi, err_theta, bfield, n_seed):  # fmt: skip
    """Hits on the pixel layers each track's helix crosses before its last seed hit and holds no
    hit on (inside the seed, or skipped between its hits); the track's first hits (these and
    the seed's) come out ordered along the helix. Returns (flat, nhits)."""
    n_tracks = len(nhits)
    n_layers = len(pix_layers)
    found = np.full(n_tracks * n_layers, -1, dtype=np.int64)
    n_found = np.zeros(n_tracks, dtype=np.int64)
    start = 0
    for t in range(n_tracks):
        xc, yc, radius, h = perigee_to_circle(d0[t], phi[t], theta[t], qop[t], bfield)
        dc = math.hypot(xc, yc)
        n_s = min(n_seed, nhits[t])
        if n_s == 0 or dc == 0.0:
            start += nhits[t]
            continue
        px, py = xc - radius * xc / dc, yc - radius * yc / dc
        cot = math.cos(theta[t]) / math.sin(theta[t])
        s_last = 0.0
        for k in range(n_s):
            s_last = max(s_last, _arc_length(x[flat[start + k]], y[flat[start + k]], xc, yc, radius, h, px, py))
        st = math.sin(theta[t])
        for m in range(n_layers):
            lay = pix_layers[m]
            held = False
            for k in range(nhits[t]):
                if layer[flat[start + k]] == lay:
                    held = True
                    break
            if held:
                continue
            if pix_barrel[m]:
                s, cx, cy, _cz, _ux, _uy, ok = crossing_barrel(xc, yc, radius, h, phi[t], z0[t], cot, pix_pos[m], 0.0)
            else:
                s, cx, cy, _cz, _ux, _uy, ok = crossing_endcap(xc, yc, radius, h, phi[t], z0[t], cot, pix_pos[m], 0.0)
            if not ok or s >= s_last - 1.0:
                continue
            # the track's error carried to the crossing (correlations left out: wider, not narrower)
            win_t = N_SIGMA * math.sqrt(err_d0[t] ** 2 + (s * err_phi[t]) ** 2 + _HIT_T**2)
            win_z = N_SIGMA * math.sqrt(err_z0[t] ** 2 + (s * err_theta[t] / (st * st)) ** 2 + _HIT_Z**2)
            q = _nearest_on_layer(block_lo[lay], block_hi[lay], pix, cx, cy, xc, yc, radius, h, px, py, z0[t], cot,
                                  win_t, win_z)  # fmt: skip
            if q >= 0:
                pix[5][q] = True
                found[t * n_layers + n_found[t]] = pix[0][q]
                n_found[t] += 1
        start += nhits[t]
    out = np.empty(len(flat) + n_found.sum(), dtype=flat.dtype)
    pos, start = 0, 0
    for t in range(n_tracks):
        n_s = min(n_seed, nhits[t])
        first = np.empty(n_found[t] + n_s, dtype=np.int64)
        for m in range(n_found[t]):
            first[m] = found[t * n_layers + m]
        for k in range(n_s):
            first[n_found[t] + k] = flat[start + k]
        if n_found[t] > 0:
            xc, yc, radius, h = perigee_to_circle(d0[t], phi[t], theta[t], qop[t], bfield)
            dc = math.hypot(xc, yc)
            px, py = xc - radius * xc / dc, yc - radius * yc / dc
            s_first = np.empty(len(first))
            for k in range(len(first)):
                s_first[k] = _arc_length(x[first[k]], y[first[k]], xc, yc, radius, h, px, py)
            first = first[np.argsort(s_first)]
        for k in range(len(first)):
            out[pos] = first[k]
            pos += 1
        for k in range(n_s, nhits[t]):
            out[pos] = flat[start + k]
            pos += 1
        start += nhits[t]
    return out, nhits + n_found


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


@kernel()
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
def _outward_kernel(x, y, z, layer, idx, block_lo, block_hi, lay_barrel, lay_pos, lay_rmin, lay_rmax, lay_zmin,
                    lay_zmax, sig_phi, sig_long, flat, nhits, theta, qop, err_theta):  # fmt: skip
    """Hits on the surfaces each track crosses after its last hit, as a CKF continues it: the
    circle through the track's last three hits (transverse) and its cot theta from the last
    hit (r-z) are crossed with every layer further out, in order; the unused hit nearest the
    crossing within the windows is taken and the circle moves on to it; the search stops after
    OUTWARD_HOLES crossings in a row without a hit. Returns (flat, nhits), the new hits after
    each track's."""
    n_tracks = len(nhits)
    n_layers = len(lay_pos)
    order, phi_sorted, xs, ys, zs, used_s, rs = idx
    found = np.full(n_tracks * n_layers, -1, dtype=np.int64)
    n_found = np.zeros(n_tracks, dtype=np.int64)
    cross_s = np.empty(n_layers)
    cross_l = np.empty(n_layers, dtype=np.int64)
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
        # the surfaces beyond the last hit, in crossing order (the order stays when the circle
        # moves on; each crossing is recomputed then)
        n_cross = 0
        for lay in range(n_layers):
            if block_hi[lay] == block_lo[lay]:
                continue
            ok, s, cx, cy, cz = _crossing(xc, yc, radius, h, x[ia], y[ia], z[ia], cot, lay_barrel[lay], lay_pos[lay])
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
            ok, s, cx, cy, cz = _crossing(xc, yc, radius, h, x[ia], y[ia], z[ia], cot, lay_barrel[lay], lay_pos[lay])
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
            q = _nearest_crossing(
                block_lo[lay], block_hi[lay], idx, cx, cy, cz, xc, yc, radius, lay_barrel[lay], w_t, w_l
            )
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
def _crossing(xc, yc, radius, h, xa, ya, za, cot, barrel, pos):
    """Crossing of the circle (from the hit a onward, in the direction h) with a barrel of
    radius `pos` or the disk at z = `pos`: (ok, s from a, x, y, z), z along cot from a."""
    ang0 = math.atan2(ya - yc, xa - xc)
    if barrel:
        d = math.hypot(xc, yc)
        if d == 0.0 or d > radius + pos or d < abs(radius - pos) or pos <= math.hypot(xa, ya) + 1.0:
            return False, 0.0, 0.0, 0.0, 0.0
        # the two points at distance pos from the origin on the circle: angle around the centre
        cos_b = (radius * radius + d * d - pos * pos) / (2.0 * radius * d)
        beta = math.acos(min(max(cos_b, -1.0), 1.0))
        base = math.atan2(-yc, -xc)  # direction from the centre to the origin
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


@kernel()
def _within(lay, cx, cy, cz, lay_barrel, lay_rmin, lay_rmax, lay_zmin, lay_zmax):
    if lay_barrel[lay]:
        return lay_zmin[lay] - _OUTWARD_MARGIN <= cz <= lay_zmax[lay] + _OUTWARD_MARGIN
    r = math.hypot(cx, cy)
    return lay_rmin[lay] - _OUTWARD_MARGIN <= r <= lay_rmax[lay] + _OUTWARD_MARGIN


@kernel()
def _nearest_crossing(lo, hi, idx, cx, cy, cz, xc, yc, radius, barrel, w_t, w_l):
    """Position in `idx` of the unused hit of the layer block [lo, hi) nearest the crossing
    (cx, cy, cz) within w_t of the circle and w_l along the module's long axis; -1 when none."""
    order, phi_sorted, xs, ys, zs, used_s, rs = idx
    rc = max(math.hypot(cx, cy), 1.0)
    dphi = (w_t + 1.0) / rc
    phi_c = math.atan2(cy, cx)
    best, best_d = -1, 1.0
    for wrap in (-2.0 * math.pi, 0.0, 2.0 * math.pi):
        if phi_c + wrap + dphi < -math.pi or phi_c + wrap - dphi > math.pi:
            continue
        a = np.searchsorted(phi_sorted[lo:hi], phi_c + wrap - dphi) + lo
        b = np.searchsorted(phi_sorted[lo:hi], phi_c + wrap + dphi) + lo
        for q in range(a, b):
            if used_s[q]:
                continue
            dl = (zs[q] - cz) / w_l if barrel else (rs[q] - rc) / w_l
            if abs(dl) >= 1.0:
                continue
            dt = (math.hypot(xs[q] - xc, ys[q] - yc) - radius) / w_t
            d = dt * dt + dl * dl
            if abs(dt) < 1.0 and d < best_d:
                best, best_d = q, d
    return best


@functools.lru_cache(maxsize=16)
def _layer_arrays(geometry) -> tuple:
    """Per-geometry arrays the kernels read (once per geometry, not per event): the pixel layers'
    indices, barrel flags and positions; every layer's barrel flag, position and extents."""
    pix = [i for i, la in enumerate(geometry.layers) if la.volume_id in geometry.pixel_volumes]
    barrel = np.asarray([la.is_barrel for la in geometry.layers], np.bool_)
    per_layer = [np.asarray([getattr(la, k) for la in geometry.layers], np.float64) for k in _EXTENTS]
    return np.asarray(pix, np.int64), barrel[pix], per_layer[0][pix], barrel, *per_layer


_EXTENTS = ("position", "r_min", "r_max", "z_min", "z_max")


def complete_tracks(
    x, y, z, layer, flat, nhits, params, errors, *, geometry, bfield: float, resolution, n_seed: int = 3
):
    """Tracks with their inner-layer hits prepended, their hits on the surfaces beyond their last
    hit appended, and the overlapping-module partner of each of their hits inserted after it.

    Args:
        x, y, z: (n_hits,) float positions (mm); layer: (n_hits,) int index into
            ``geometry.layers`` (-1: unknown).
        flat: the tracks' hit indices concatenated, each track's `n_seed` seed hits first;
            nhits: (n_tracks,) int their counts.
        params: (n_tracks, 5) perigee (d0, z0, phi, theta, qop); errors: (n_tracks, 5) their
            errors against the truth (NaN, a model without an error model: windows of the hit
            resolution alone).
        geometry: `hepgan.reco.geometry.Geometry`; bfield: tesla.
        resolution: (n_layers, 2) hit resolution (mm) per layer of `geometry`, along r*phi and
            along the module's long axis (``hepgan.reco.features.LayerTable.sigma0``).

    Returns:
        ``(flat, nhits)`` completed (same dtypes). No hit already on a track is taken.
    """
    x64, y64, z64 = (np.asarray(a, np.float64) for a in (x, y, z))
    layer = np.asarray(layer, np.int64)
    n_layers = len(geometry.layers)
    res = np.asarray(resolution, np.float64)
    if res.shape != (n_layers, 2):
        msg = f"complete_tracks: resolution has shape {res.shape}, expected ({n_layers}, 2): one row per layer"
        raise ValueError(msg)
    pix_layers, pix_barrel, pix_pos, barrel, lay_pos, lay_rmin, lay_rmax, lay_zmin, lay_zmax = _layer_arrays(geometry)
    # every hit on a known layer, per layer sorted by phi (the inner search reads the pixel
    # layers' blocks, the partner search every layer's)
    candidates = np.flatnonzero(layer >= 0)
    cand_phi = np.arctan2(y64[candidates], x64[candidates])
    # (layer, phi) order in one sort: phi + pi < 8 keeps the layers apart
    by_layer = np.argsort(layer[candidates] * 8.0 + (cand_phi + np.pi), kind="stable")
    order, phi_sorted = candidates[by_layer], cand_phi[by_layer]
    sorted_layer = layer[order]
    block_lo = np.searchsorted(sorted_layer, np.arange(n_layers), side="left")
    block_hi = np.searchsorted(sorted_layer, np.arange(n_layers), side="right")
    p = np.asarray(params, np.float64).reshape(-1, 5)
    e = np.nan_to_num(np.asarray(errors, np.float64).reshape(-1, 5), nan=0.0)
    flat64, nhits64 = np.asarray(flat, np.int64), np.asarray(nhits, np.int64)
    used = np.zeros(len(x64), dtype=np.bool_)
    used[flat64] = True
    # the searched hits' coordinates and use flags in search order: the scans read them in
    # sequence instead of jumping through the event's arrays (a cache miss per hit)
    xs, ys, zs = x64[order], y64[order], z64[order]
    rs = np.hypot(xs, ys)
    idx = (order, phi_sorted, xs, ys, zs, used[order], rs)
    # each layer block's radial and z extent (see _partner_of)
    filled = block_hi > block_lo
    block_r_lo, block_r_hi, block_z_span = np.zeros(n_layers), np.zeros(n_layers), np.zeros(n_layers)
    if filled.any():
        starts = block_lo[filled]
        block_r_lo[filled] = np.minimum.reduceat(rs, starts)
        block_r_hi[filled] = np.maximum.reduceat(rs, starts)
        block_z_span[filled] = np.maximum.reduceat(zs, starts) - np.minimum.reduceat(zs, starts)
    cols = [p[:, k].copy() for k in range(5)]
    flat64, nhits64 = _inward_kernel(
        x64, y64, layer, idx, block_lo, block_hi, pix_layers, pix_barrel, pix_pos, flat64, nhits64, *cols,
        e[:, 0].copy(), e[:, 1].copy(), e[:, 2].copy(), e[:, 3].copy(), float(bfield), int(n_seed),
    )  # fmt: skip
    flat64, nhits64 = _outward_kernel(
        x64, y64, z64, layer, idx, block_lo, block_hi, barrel, lay_pos, lay_rmin, lay_rmax, lay_zmin, lay_zmax,
        res[:, 0].copy(), res[:, 1].copy(), flat64, nhits64, cols[3], cols[4], e[:, 3].copy(),
    )  # fmt: skip
    out, counts = _partner_kernel(
        x64, y64, z64, idx, block_lo, block_hi, block_r_lo, block_r_hi, block_z_span, layer, barrel, res[:, 0].copy(),
        res[:, 1].copy(), flat64, nhits64,
        cols[0], cols[2], cols[3], cols[4], float(bfield),
    )  # fmt: skip
    return out.astype(np.asarray(flat).dtype), counts.astype(np.asarray(nhits).dtype)
