"""Complete tracks: the hits the network's slots never see, collected as ACTS's CKF does.

Why: the network's slots are the surfaces crossed after the seed, one candidate list each.
Two kinds of the particle's hits lay outside them: the second hit where modules of a seed layer
overlap, and hits on pixel layers inside the seed's innermost hit (a seed may start on the second
or third layer). On tuning events (seed 3011, 20 x 50) these were 85% of the hits the surrogate
missed against ACTS on the particles both found.

Inner and skipped layers: the chosen track's helix is crossed with every pixel layer it holds no
hit on, before its last seed hit (a seed may start on the second layer, or skip one); the unused hit of that layer nearest the crossing is taken when its distance to the helix is
within 4 sigma transversely (sigma^2 = err_d0^2 + (s err_phi)^2 + (0.01 mm)^2 at arc length s)
and along z (err_z0^2 + (s err_theta / sin^2 theta)^2 + (0.05 mm)^2), the errors being the
track's own (`hepgan.reco.uncertainty`). Measured on the same
events: 99.2% of the particle's hits kept, none of 1200 other hits.

Overlaps: for each of the first hits (inner and seed) of a chosen track, the unused hits of the same layer within a few
millimetres are compared with the track's straight-line tangent at that hit (over the few
millimetres between overlapping modules the helix's sagitta is below 0.02 mm even at 0.5 GeV):
the distance off that line, split into its transverse and z parts, must be within the windows.
Measured on the same tuning events (3360 true partners, 185910 other hits of the layers): 0.1 mm
and 0.5 mm keep 99.8% of the partners and admit 4 other hits. A hit already on another track
is never taken, so no hit becomes shared here.
"""

from __future__ import annotations

import math

import numpy as np

from hepgan.reco.helix import _arc_angle, crossing_barrel, crossing_endcap, perigee_to_circle
from hepgan.reco.jit import kernel

__all__ = ["complete_tracks"]

#: transverse and z windows (mm) on the distance off the track's tangent line
WINDOW_T = 0.1
WINDOW_Z = 0.5
#: inner layers: windows in sigmas of the track's own transverse and z errors, and the hit
#: resolution added to them (mm)
N_SIGMA = 4.0
_HIT_T = 0.01
_HIT_Z = 0.05
#: how far (mm, in the transverse plane) an overlapping module's hit lies from the other hit of
#: the particle on that layer: at most 3.0 mm among 3117 pixel pairs (seed 3011), 4 kept; the
#: inner-layer search looks as far from the layer's nominal crossing (modules staggered in r).
#: Why it matters: every hit inside the reach is examined, and the innermost layer at pile-up
#: 200 holds thousands (12 mm cost 100 ms/event there).
_OVERLAP_REACH = 4.0
_INNER_REACH = 5.0


@kernel()
def _best_partner(i, x, y, z, pix, lo, hi, ux, uy, uz, r_lo, r_hi, z_span):
    """Position in `pix` of the unused hit of the layer block [lo, hi) nearest the tangent line
    through hit i, within the windows; -1 when none. r_lo, r_hi, z_span: the block's hits'
    radial extent and z span (mm), for the bounds below."""
    order, phi_sorted, xs, ys, zs, used_s, rs = pix
    r = math.hypot(x[i], y[i])
    dphi = _OVERLAP_REACH / max(r, 1.0)
    phi_i = math.atan2(y[i], x[i])
    # Why: the phi window spans the whole layer along z (r on a disk), thousands of hits on the
    # innermost layer at pile-up 200. A hit within the windows (|w_t| < WINDOW_T, |w_z| <
    # WINDOW_Z off the line of direction u) is at most |along| |u_z| + WINDOW_Z away in z, and
    # |along| |u_t| <= |d_t| + WINDOW_T bounds its distance along the line by the transverse
    # distance d_t, at most (radial extent, r dphi) within the window; on a disk the same in
    # reverse bounds |r_q - r_i| by the z span. Both are necessary conditions (with a
    # rounding slack), so these cheap tests drop only hits the windows would reject.
    ut = math.hypot(ux, uy)
    auz = abs(uz)
    dr_max = max(r - r_lo, r_hi - r)
    d_t = math.sqrt(dr_max * dr_max + r * r_hi * dphi * dphi)
    z_bound = (d_t + WINDOW_T) * auz / ut + WINDOW_Z if ut > 0.0 else 1e300
    r_bound = (z_span + WINDOW_Z) * ut / auz + WINDOW_T if auz > 0.0 else 1e300
    z_bound = z_bound * (1.0 + 1e-9) + 1e-9
    r_bound = r_bound * (1.0 + 1e-9) + 1e-9
    best, best_d = -1, 1.0
    for wrap in (-2.0 * math.pi, 0.0, 2.0 * math.pi):
        a = np.searchsorted(phi_sorted[lo:hi], phi_i + wrap - dphi) + lo
        b = np.searchsorted(phi_sorted[lo:hi], phi_i + wrap + dphi) + lo
        for q in range(a, b):
            if abs(zs[q] - z[i]) > z_bound or abs(rs[q] - r) > r_bound:
                continue
            if used_s[q] or order[q] == i:
                continue
            dx, dy, dz = xs[q] - x[i], ys[q] - y[i], zs[q] - z[i]
            along = dx * ux + dy * uy + dz * uz
            wx, wy, wz = dx - along * ux, dy - along * uy, dz - along * uz
            d = (wx * wx + wy * wy) / (WINDOW_T * WINDOW_T) + wz * wz / (WINDOW_Z * WINDOW_Z)
            if math.hypot(wx, wy) < WINDOW_T and abs(wz) < WINDOW_Z and d < best_d:
                best, best_d = q, d
    return best


@kernel()
def _overlap_kernel(x, y, z, pix, block_lo, block_hi, block_r_lo, block_r_hi, block_z_span, layer, flat, nhits, d0, phi,
                    theta, qop, bfield, n_first):  # fmt: skip
    n_tracks = len(nhits)
    n_seed = max(n_first.max(), 1) if n_tracks else 1
    partner = np.full(n_tracks * n_seed, -1, dtype=np.int64)
    start = 0
    for t in range(n_tracks):
        xc, yc, radius, h = perigee_to_circle(d0[t], phi[t], theta[t], qop[t], bfield)
        st, ct = math.sin(theta[t]), math.cos(theta[t])
        for s in range(min(n_first[t], nhits[t])):
            i = flat[start + s]
            lay = layer[i]
            if lay < 0:
                continue
            # tangent of the circle at the hit, in the direction of flight
            ux = -(y[i] - yc) / (h * radius) * st
            uy = (x[i] - xc) / (h * radius) * st
            q = _best_partner(i, x, y, z, pix, block_lo[lay], block_hi[lay], ux, uy, ct, block_r_lo[lay], block_r_hi[lay],
                              block_z_span[lay])  # fmt: skip
            if q >= 0:
                pix[5][q] = True
                partner[t * n_seed + s] = pix[0][q]
        start += nhits[t]
    added = np.zeros(n_tracks, dtype=np.int64)
    for t in range(n_tracks):
        for s in range(n_seed):
            if partner[t * n_seed + s] >= 0:
                added[t] += 1
    out = np.empty(len(flat) + added.sum(), dtype=flat.dtype)
    pos, start = 0, 0
    for t in range(n_tracks):
        for s in range(nhits[t]):
            out[pos] = flat[start + s]
            pos += 1
            if s < n_seed and partner[t * n_seed + s] >= 0:
                out[pos] = partner[t * n_seed + s]
                pos += 1
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
    the seed's) come out ordered along the helix. Returns (flat, nhits, n_first)."""
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
    return out, nhits + n_found, n_found + np.minimum(nhits, n_seed)


def complete_tracks(x, y, z, layer, flat, nhits, params, errors, *, geometry, bfield: float, n_seed: int = 3):
    """Tracks with their inner-layer hits prepended and the overlapping-module partners of their
    first hits inserted after them.

    Args:
        x, y, z: (n_hits,) float positions (mm); layer: (n_hits,) int index into
            ``geometry.layers`` (-1: unknown).
        flat: the tracks' hit indices concatenated, each track's `n_seed` seed hits first;
            nhits: (n_tracks,) int their counts.
        params: (n_tracks, 5) perigee (d0, z0, phi, theta, qop); errors: (n_tracks, 5) their
            errors against the truth (NaN, a model without an error model: windows of the hit
            resolution alone).
        geometry: `hepgan.reco.geometry.Geometry`; bfield: tesla.

    Returns:
        ``(flat, nhits)`` completed (same dtypes). No hit already on a track is taken.
    """
    x64, y64, z64 = (np.asarray(a, np.float64) for a in (x, y, z))
    layer = np.asarray(layer, np.int64)
    n_layers = len(geometry.layers)
    pix = [i for i, la in enumerate(geometry.layers) if la.volume_id in geometry.pixel_volumes]
    pix_layers = np.asarray(pix, np.int64)
    # Both searches look on pixel layers only (seed hits and inner hits are pixel hits), so only
    # the pixel hits are indexed: per layer, sorted by phi.
    candidates = np.flatnonzero(np.isin(layer, pix_layers))
    cand_phi = np.arctan2(y64[candidates], x64[candidates])
    by_layer = np.lexsort((cand_phi, layer[candidates]))
    order, phi_sorted = candidates[by_layer], cand_phi[by_layer]
    sorted_layer = layer[order]
    block_lo = np.searchsorted(sorted_layer, np.arange(n_layers), side="left")
    block_hi = np.searchsorted(sorted_layer, np.arange(n_layers), side="right")
    pix_barrel = np.asarray([geometry.layers[i].is_barrel for i in pix], np.bool_)
    pix_pos = np.asarray([geometry.layers[i].position for i in pix], np.float64)
    p = np.asarray(params, np.float64).reshape(-1, 5)
    e = np.nan_to_num(np.asarray(errors, np.float64).reshape(-1, 5), nan=0.0)
    flat64, nhits64 = np.asarray(flat, np.int64), np.asarray(nhits, np.int64)
    used = np.zeros(len(x64), dtype=np.bool_)
    used[flat64] = True
    # the searched hits' coordinates and use flags in search order: the scans read them in
    # sequence instead of jumping through the event's arrays (a cache miss per hit)
    xs, ys, zs = x64[order], y64[order], z64[order]
    rs = np.hypot(xs, ys)
    pix = (order, phi_sorted, xs, ys, zs, used[order], rs)
    # each layer block's radial extent and z span (see _best_partner)
    filled = block_hi > block_lo
    starts = block_lo[filled]
    block_r_lo = np.zeros(n_layers)
    block_r_hi = np.zeros(n_layers)
    block_z_span = np.zeros(n_layers)
    if len(starts):
        block_r_lo[filled] = np.minimum.reduceat(rs, starts)
        block_r_hi[filled] = np.maximum.reduceat(rs, starts)
        block_z_span[filled] = np.maximum.reduceat(zs, starts) - np.minimum.reduceat(zs, starts)
    cols = [p[:, k].copy() for k in range(5)]
    flat64, nhits64, n_first = _inward_kernel(
        x64, y64, layer, pix, block_lo, block_hi, pix_layers, pix_barrel, pix_pos, flat64, nhits64, *cols,
        e[:, 0].copy(), e[:, 1].copy(), e[:, 2].copy(), e[:, 3].copy(), float(bfield), int(n_seed),
    )  # fmt: skip
    out, counts = _overlap_kernel(
        x64, y64, z64, pix, block_lo, block_hi, block_r_lo, block_r_hi, block_z_span, layer, flat64, nhits64, cols[0], cols[2], cols[3], cols[4],
        float(bfield), n_first,
    )  # fmt: skip
    return out.astype(np.asarray(flat).dtype), counts.astype(np.asarray(nhits).dtype)
