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

Outward: each track continued from its last hit over the surfaces further out, as ACTS's CKF
goes on to the last one (:mod:`hepgan.reco.outward`), after the inner layers and before the
overlaps, so that its new hits get their partners too.

The searches read the event's hits through :mod:`hepgan.reco.hit_grid`, as the seeder does:
the inner one per pixel layer sorted by phi, the outward and overlap ones in rows along each
layer (10 mm, on the long-strip layers 20 sigma of their long axis), so that a window short
along the layer reads only its rows. Measured at pile-up 200 (seed 5200): the same tracks, to
the bit, as the per-layer phi sort this replaced, in about the same time. The per-hit and
per-layer look-ups (:func:`_partner_of`, :func:`_nearest_on_layer`, and the outward search's)
take a dozen arrays each and run 50k times per event there: they are compiled without
reference counting (``allocates=False``, see :func:`hepgan.reco.jit.kernel`), which took the
overlap search from 21 to 17 ms/event, the same tracks.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from hepgan.reco.features import hit_polar
from hepgan.reco.helix import _arc_angle, crossing_barrel, crossing_endcap, perigee_to_circle
from hepgan.reco.hit_grid import build_grid, layout, phi_ranges, row_run, row_span
from hepgan.reco.jit import kernel
from hepgan.reco.outward import outward_kernel

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


@kernel(allocates=False)
def _partner_of(i, xi, yi, zi, idx, grid, rng, la, ux, uy, uz, barrel, w_phi0, w_long0, leak, r_lo, r_hi, z_span):
    """Position in `idx` of the unused hit of layer `la` that best continues hit i (at xi, yi, zi)
    on an overlapping module, -1 when none: the line from i along the track's direction u is taken
    to the other hit's radius (barrel) or z (disk), and the residuals there, along r*phi and
    along the module's long axis (z on a barrel, r on a disk), must be within PARTNER_N sigma
    of the two hits' resolution, the direction's error over the distance and, on a disk, the
    long axis leaking into r*phi (see PARTNER_* above). r_lo, r_hi: the layer's hits' radial
    extent; z_span: their z extent (mm), for the bounds below; `rng`: scratch (4,)."""
    order, phi_sorted, xs, ys, zs, used_s, rs = idx
    offsets, base, n_phi, umin, uinv, n_rows = grid
    r = math.hypot(xi, yi)
    dphi = _OVERLAP_REACH / max(r, 1.0)
    phi_i = math.atan2(yi, xi)
    ut = math.hypot(ux, uy)
    dr_max = max(r - r_lo, r_hi - r)
    w_long_max = PARTNER_N * math.sqrt(w_long0 * w_long0 + (PARTNER_BETA * PARTNER_REACH) ** 2)
    rad = (xi * ux + yi * uy) / max(r, 1e-9)  # d r / d t along the line
    # Why: the phi window spans the layer's whole length (thousands of hits on the innermost
    # layer at pile-up 200). q = i + t u + residual, with t fixed by r_q (barrel) or z_q (disk),
    # so |t| <= t_max from the layer's radial extent (z extent) and PARTNER_REACH, and then
    # |z_q - z_i| (|r_q - r_i|) <= t_max |u_z| (t_max |u_t|) + the long-axis window: necessary
    # conditions (with a rounding slack) that drop only hits the windows would reject; only
    # the grid rows within them are read.
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
    ui, u_bound = (zi, z_bound) if barrel else (r, r_bound)
    row_lo, row_hi = row_span(la, ui - u_bound, ui + u_bound, umin, uinv, n_rows)
    n_seg = phi_ranges(phi_i - dphi, phi_i + dphi, rng)
    best, best_d = -1, 1.0
    for row in range(row_lo, row_hi + 1):
        for g in range(n_seg):
            start, stop = row_run(offsets, base, n_phi, la, row, rng[2 * g], rng[2 * g + 1], phi_sorted)
            for k in range(start, stop):
                if abs(zs[k] - zi) > z_bound or abs(rs[k] - r) > r_bound:
                    continue
                if used_s[k] or order[k] == i:
                    continue
                if barrel:
                    if abs(rad) < 1e-3 * ut:
                        continue
                    t = (rs[k] - r) / rad
                else:
                    if abs(uz) < 1e-9:
                        continue
                    t = (zs[k] - zi) / uz
                if abs(t) > PARTNER_REACH:
                    continue
                px, py, pz = xi + t * ux, yi + t * uy, zi + t * uz
                rp = math.hypot(px, py)
                res_phi = ((ys[k] - py) * px - (xs[k] - px) * py) / rp
                res_long = zs[k] - pz if barrel else rs[k] - rp
                bt = PARTNER_BETA * t
                w_phi = PARTNER_N * math.sqrt(w_phi0 * w_phi0 + bt * bt + leak * leak)
                w_long = PARTNER_N * math.sqrt(w_long0 * w_long0 + bt * bt)
                d = (res_phi / w_phi) ** 2 + (res_long / w_long) ** 2
                if abs(res_phi) < w_phi and abs(res_long) < w_long and d < best_d:
                    best, best_d = k, d
    return best


@kernel()
def _partner_kernel(xf, yf, zf, lf, idx, grid, layer_r_lo, layer_r_hi, layer_z_span, barrel, sig_phi, sig_long,
                    flat, nhits, d0, phi, theta, qop, bfield):  # fmt: skip
    """Every hit of every track gets its overlapping-module partner (if any), inserted after it.
    xf, yf, zf, lf: the position and layer of each hit of `flat`, gathered beforehand (why: read
    through `flat`, each costs a cache miss at pile-up, a third of the search's time)."""
    n_tracks = len(nhits)
    partner = np.full(len(flat), -1, dtype=np.int64)
    rng = np.empty(4)
    start = 0
    for t in range(n_tracks):
        xc, yc, radius, h = perigee_to_circle(d0[t], phi[t], theta[t], qop[t], bfield)
        st, ct = math.sin(theta[t]), math.cos(theta[t])
        for s in range(nhits[t]):
            i = flat[start + s]
            lay = lf[start + s]
            if lay < 0:
                continue
            xi, yi = xf[start + s], yf[start + s]
            # tangent of the circle at the hit, in the direction of flight
            ux = -(yi - yc) / (h * radius) * st
            uy = (xi - xc) / (h * radius) * st
            w_phi0 = math.sqrt(2.0) * sig_phi[lay]
            w_long0 = math.sqrt(2.0) * sig_long[lay]
            leak = 0.0 if barrel[lay] else PARTNER_LEAK * sig_long[lay]
            q = _partner_of(i, xi, yi, zf[start + s], idx, grid, rng, lay, ux, uy, ct, barrel[lay], w_phi0, w_long0,
                            leak, layer_r_lo[lay], layer_r_hi[lay], layer_z_span[lay])  # fmt: skip
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


@kernel(allocates=False)
def _nearest_on_layer(lay_lo, lay_hi, pix, cx, cy, xc, yc, radius, h, px, py, z0, cot, win_t, win_z):
    """Position in `pix` of the unused hit of one layer block nearest the helix, within the
    windows; -1 when none."""
    order, phi_sorted, xs, ys, zs, used_s, _ = pix
    r = math.hypot(cx, cy)
    dphi = _INNER_REACH / max(r, 1.0)
    phi_c = math.atan2(cy, cx)
    best, best_d = -1, 1.0
    # the transverse test on squared distances first, with a relative slack of 1e-9 that only
    # lets through what the exact test after it may reject: the phi window spans the layer's
    # whole length (~120 hits a look-up at ttbar pile-up 200) and hypot costs ~20 ns a hit
    d2_hi = (radius + win_t) ** 2 * (1.0 + 1e-9)
    d2_lo = (radius - win_t) ** 2 * (1.0 - 1e-9) if radius > win_t else -1.0
    for wrap in (-2.0 * math.pi, 0.0, 2.0 * math.pi):
        a = np.searchsorted(phi_sorted[lay_lo:lay_hi], phi_c + wrap - dphi) + lay_lo
        b = np.searchsorted(phi_sorted[lay_lo:lay_hi], phi_c + wrap + dphi) + lay_lo
        for q in range(a, b):
            if used_s[q]:
                continue
            dx = xs[q] - xc
            dy = ys[q] - yc
            d2 = dx * dx + dy * dy
            if d2 > d2_hi or d2 < d2_lo:
                continue
            # the transverse distance before the angle: two hits in three go here
            rt = abs(math.hypot(dx, dy) - radius) / win_t
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
def _inward_kernel(x, y, xf, yf, lf, pix, block_lo, block_hi, pix_layers, pix_barrel, pix_pos, flat, nhits, d0, z0,
                   phi, theta, qop, err_d0, err_z0, err_phi, err_theta, bfield, n_seed):  # fmt: skip
    """Hits on the pixel layers each track's helix crosses before its last seed hit and holds no
    hit on (inside the seed, or skipped between its hits); the track's first hits (these and
    the seed's) come out ordered along the helix. Returns (flat, nhits). xf, yf, lf: x, y and
    the layer of each hit of `flat`, gathered beforehand (see _partner_kernel)."""
    n_tracks = len(nhits)
    n_layers = len(pix_layers)
    found = np.full(n_tracks * n_layers, -1, dtype=np.int64)
    n_found = np.zeros(n_tracks, dtype=np.int64)
    # held_by[lay] == t: track t has a hit on layer lay (one pass over its hits, not one per layer)
    held_by = np.full(pix_layers.max() + 1 if n_layers else 0, -1, dtype=np.int64)
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
            s_last = max(s_last, _arc_length(xf[start + k], yf[start + k], xc, yc, radius, h, px, py))
        for k in range(nhits[t]):
            lay = lf[start + k]
            if 0 <= lay < held_by.shape[0]:
                held_by[lay] = t
        st = math.sin(theta[t])
        # Why the bounds below: most pixel layers are not crossed before the last seed hit, and
        # a crossing (trigonometry) costs more than the look-up. Arc length to a barrel of radius
        # pos >= the chord from the perigee point >= pos - |perigee|; to a disk it is (pos - z0)
        # / cot. Each with a slack against rounding, so that they skip only layers the exact test
        # `s >= s_last - 1` after the crossing would.
        s_stop = (s_last - 1.0) * (1.0 + 1e-9) + 1e-9
        r_peri = abs(dc - radius)
        for m in range(n_layers):
            lay = pix_layers[m]
            if held_by[lay] == t:
                continue
            if pix_barrel[m]:
                if pix_pos[m] - r_peri > s_stop:
                    continue
            elif cot == 0.0 or (pix_pos[m] - z0[t]) / cot > s_stop:
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


@functools.lru_cache(maxsize=16)
def _layer_arrays(geometry) -> tuple:
    """Per-geometry arrays the kernels read (once per geometry, not per event): the pixel layers'
    indices, barrel flags and positions; every layer's barrel flag, position and extents."""
    pix = [i for i, la in enumerate(geometry.layers) if la.volume_id in geometry.pixel_volumes]
    barrel = np.asarray([la.is_barrel for la in geometry.layers], np.bool_)
    per_layer = [np.asarray([getattr(la, k) for la in geometry.layers], np.float64) for k in _EXTENTS]
    return np.asarray(pix, np.int64), barrel[pix], per_layer[0][pix], barrel, *per_layer


_EXTENTS = ("position", "r_min", "r_max", "z_min", "z_max")


#: the outward and overlap searches' hit grid: rows of _ROW_MM along each layer, or _ROW_SIGMAS
#: of its long-axis resolution where that is wider (the long strips: 62 mm), _N_PHI columns; the
#: inner search's blocks: _BLOCK_N_PHI columns (where a phi look-up starts)
_ROW_MM = 10.0
_ROW_SIGMAS = 20.0
_N_PHI = 64
_BLOCK_N_PHI = 1024


@functools.lru_cache(maxsize=16)
def _grid_layouts(geometry, long_sigma: tuple) -> tuple:
    """(umin, rows layout, blocks layout) of the completion's two hit grids
    (``hepgan.reco.hit_grid.layout``), once per geometry and resolution."""
    lo = np.asarray([la.z_min if la.is_barrel else la.r_min for la in geometry.layers], np.float64)
    hi = np.asarray([la.z_max if la.is_barrel else la.r_max for la in geometry.layers], np.float64)
    hi = np.maximum(hi, lo + 1e-3)  # a degenerate extent still gets one row
    row_width = np.maximum(_ROW_MM, _ROW_SIGMAS * np.asarray(long_sigma, np.float64))
    return lo, layout(lo, hi, row_width, _N_PHI), layout(lo, hi, None, _BLOCK_N_PHI)


def complete_tracks(
    x, y, z, layer, flat, nhits, params, errors, *, geometry, bfield: float, resolution, n_seed: int = 3, polar=None
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
        polar: the hits' (r, phi) when the caller has them (``hepgan.reco.features.hit_polar``).

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
    umin, rows_layout, blocks_layout = _grid_layouts(geometry, tuple(res[:, 1]))
    p = np.asarray(params, np.float64).reshape(-1, 5)
    e = np.nan_to_num(np.asarray(errors, np.float64).reshape(-1, 5), nan=0.0)
    flat64, nhits64 = np.asarray(flat, np.int64), np.asarray(nhits, np.int64)
    used = np.zeros(len(x64), dtype=np.bool_)
    used[flat64] = True
    # every hit on a known layer, in grid order; the scans read the coordinates and use flags
    # in that order instead of jumping through the event's arrays (a cache miss per hit)
    known = np.flatnonzero(layer >= 0)
    r_all, phi_all = polar if polar is not None else hit_polar(x64, y64)
    k_layer, k_phi, k_r = layer[known], phi_all[known], r_all[known]
    k_u = np.where(barrel[k_layer], z64[known], k_r)

    def in_grid(sel, grid_layout):
        uinv, n_rows, base, n_phi = grid_layout
        g, offsets = build_grid(k_layer[sel], k_phi[sel], k_u[sel], k_r[sel], umin, uinv, n_rows, base, n_phi)
        g = sel[g]
        order = known[g]
        idx = (order, k_phi[g], x64[order], y64[order], z64[order], used[order], k_r[g])
        return idx, (offsets, base, n_phi, umin, uinv, n_rows)

    # the inner search: each pixel layer one block sorted by phi
    pix, blocks = in_grid(np.flatnonzero(np.isin(k_layer, pix_layers)), blocks_layout)
    block_lo, block_hi = blocks[0][blocks[1][:-1]], blocks[0][blocks[1][1:]]
    cols = [p[:, k].copy() for k in range(5)]
    flat64, nhits64 = _inward_kernel(
        x64, y64, x64[flat64], y64[flat64], layer[flat64], pix, block_lo, block_hi, pix_layers, pix_barrel, pix_pos,
        flat64, nhits64, *cols,
        e[:, 0].copy(), e[:, 1].copy(), e[:, 2].copy(), e[:, 3].copy(), float(bfield), int(n_seed),
    )  # fmt: skip
    used[flat64] = True
    # the outward and overlap searches: every layer in rows along it
    idx, grid = in_grid(np.arange(len(known)), rows_layout)
    # each layer's hits' radial and z extent (see _partner_of)
    lo, hi = grid[0][grid[1][:-1]], grid[0][grid[1][1:]]
    filled = hi > lo
    layer_r_lo, layer_r_hi, layer_z_span = np.zeros(n_layers), np.zeros(n_layers), np.zeros(n_layers)
    if filled.any():
        rs, zs = idx[6], idx[4]
        layer_r_lo[filled] = np.minimum.reduceat(rs, lo[filled])
        layer_r_hi[filled] = np.maximum.reduceat(rs, lo[filled])
        layer_z_span[filled] = np.maximum.reduceat(zs, lo[filled]) - np.minimum.reduceat(zs, lo[filled])
    flat64, nhits64 = outward_kernel(
        x64, y64, z64, layer, idx, grid, barrel, lay_pos, lay_rmin, lay_rmax, lay_zmin, lay_zmax,
        res[:, 0].copy(), res[:, 1].copy(), flat64, nhits64, cols[3], cols[4], e[:, 3].copy(),
    )  # fmt: skip
    out, counts = _partner_kernel(
        x64[flat64], y64[flat64], z64[flat64], layer[flat64], idx, grid, layer_r_lo, layer_r_hi, layer_z_span,
        barrel, res[:, 0].copy(), res[:, 1].copy(), flat64, nhits64,
        cols[0], cols[2], cols[3], cols[4], float(bfield),
    )  # fmt: skip
    return out.astype(np.asarray(flat).dtype), counts.astype(np.asarray(nhits).dtype)
