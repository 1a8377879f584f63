"""The feature kernels (numba): the per-event hit index and the features of every seed.

What the columns mean, and why the road widths are what they are, is in
:mod:`hepgan.reco.features`, which prepares the inputs and calls the two passes:
:func:`road_kernel` for every seed, then :func:`fit_kernel` for the seeds wanted. Pass one,
per seed (:func:`_seed_road`): its helix, then the surfaces its helix crosses
(:func:`_find_slots`), then per surface the road (:func:`_road_widths`,
:func:`_local_derivatives`) and the nearest hits in it (:func:`_nearest_hits`). Pass two
(:func:`_seed_fit`): the fit over the seed and those hits (:func:`_fit_block`, with
``hepgan.reco.roadfit``), from what pass one left in ``state``.

Inputs are grouped in tuples, always unpacked the same way:

* ``hits`` = (x, y, r, phi, z, layer): the event's hits (mm, rad; dense layer index);
* ``index`` = (order, sorted_u, bin_start, phi_bins): :func:`index_kernel`'s output;
* ``table`` = (is_endcap, order, position, lo, hi, half_thickness, sigma0, material): the
  columns of ``hepgan.reco.features.LayerTable``;
* ``road`` = (bfield, window, road_scale, min_width, max_window, margin): floats of
  ``FeatureConfig``; ``flags`` = (path_length, with_fit, with_seed_agreement);
* ``state`` = (n_found (n,) int64, -1 without a seed helix; helix (n, 5) d0, z0, phi, theta,
  qop; th0 (n, L + 3) Highland angle per fit surface; xy (n, L, 2) each slot's crossing;
  ms2 (n, L) each slot's scattering variance; chi2 (n, L, K) each candidate's to the seed),
  float64 as pass one computed them, so that pass two's fit is the same to the bit;
* ``fit``, ``slots``, ``best``: scratch arrays allocated once per call (see
  :func:`road_kernel`, :func:`fit_kernel`).
"""

from __future__ import annotations

import math

import numpy as np

from hepgan.reco.helix import _arc_angle, crossing_barrel, crossing_endcap, estimate_seed, perigee_to_circle
from hepgan.reco.jit import kernel
from hepgan.reco.roadfit import fit_road

N_HELIX = 5
N_SEED_HITS = 9
SLOT_HEAD = 4
PER_CANDIDATE = 3
#: columns of the fit block before its per-candidate agreements
N_FIT_HEAD = 8

# error_model="numpy": no zero-division checks in the hot loop (divisors are guarded).
# fastmath without reassociation and contraction: with them, the kernel freshly compiled and
# the same kernel loaded from numba's cache gave features differing in the last bits (a Dask
# worker's tracks then differed from the single process's); without them they agree, at
# 103 against 97 ms/event at 100 x 50 (none at all: 135). Nothing here relies on NaN or inf.
# Every helper of the feature kernel has the same flags, so that splitting it changed no bit;
# the ones it shares keep their own (hepgan.reco.jit.kernel): hepgan.reco.helix's, the fit's
# (hepgan.reco.roadfit, without fastmath's no-NaN assumption: its guards test for NaN) and
# _phi_bin (the index's too).
_FAST = {"nnan", "ninf", "nsz", "arcp", "afn"}
#: slack (mm) of _find_slots' bounds on a crossing before it is computed
_SLACK = 1e-3


@kernel()
def _phi_bin(phi: float, phi_bins: int) -> int:
    b = int((phi + math.pi) * (phi_bins / (2.0 * math.pi)))
    if b < 0:
        return 0
    if b >= phi_bins:
        return phi_bins - 1
    return b


@kernel()
def index_kernel(r, phi, z, layer, is_endcap, n_layers, phi_bins):
    """(order, sorted_u, bin_start) of ``hepgan.reco.features.HitIndex``."""
    n = r.shape[0]
    n_bins = n_layers * phi_bins
    counts = np.zeros(n_bins + 1, dtype=np.int64)
    key = np.empty(n, dtype=np.int64)
    for i in range(n):
        if layer[i] < 0:
            key[i] = -1
            continue
        key[i] = layer[i] * phi_bins + _phi_bin(phi[i], phi_bins)
        counts[key[i] + 1] += 1
    for b in range(n_bins):
        counts[b + 1] += counts[b]
    bin_start = counts.copy()
    fill = counts[:-1].copy()
    total = bin_start[n_bins]
    order = np.empty(total, dtype=np.int64)
    for i in range(n):
        if key[i] >= 0:
            order[fill[key[i]]] = i
            fill[key[i]] += 1
    sorted_u = np.empty(total, dtype=np.float64)
    for j in range(total):
        i = order[j]
        sorted_u[j] = r[i] if is_endcap[layer[i]] else z[i]
    _sort_bins(order, sorted_u, bin_start)
    return order, sorted_u, bin_start


@kernel(allocates=False)
def _sort_bins(order, sorted_u, bin_start):
    """Insertion sort by u inside each bin: bins hold a few to a few tens of hits."""
    for b in range(bin_start.shape[0] - 1):
        lo = bin_start[b]
        hi = bin_start[b + 1]
        for j in range(lo + 1, hi):
            u = sorted_u[j]
            o = order[j]
            k = j - 1
            while k >= lo and sorted_u[k] > u:
                sorted_u[k + 1] = sorted_u[k]
                order[k + 1] = order[k]
                k -= 1
            sorted_u[k + 1] = u
            order[k + 1] = o


@kernel(error_model="numpy", fastmath=_FAST)
def theta0(p: float, material: float) -> float:
    """Highland multiple-scattering angle (rad) for momentum p (GeV) through x/X0 = material."""
    return 0.0136 / p * math.sqrt(material) * (1.0 + 0.038 * math.log(material))


@kernel(inline="always")
def surface_theta0(p: float, material: float, endcap: bool, sin_t: float, cos_t: float, path_length: bool) -> float:
    """Highland angle at one surface of x/X0 = material at normal incidence; with
    `path_length`, through the path the track takes across it (incidence floored at 0.1)."""
    if path_length:
        incidence = abs(cos_t) if endcap else abs(sin_t)
        material = material / max(incidence, 0.1)
    return theta0(p, material)


@kernel(error_model="numpy", fastmath=_FAST)
def _wrap(a: float) -> float:
    if a > math.pi:
        return a - 2.0 * math.pi
    if a < -math.pi:
        return a + 2.0 * math.pi
    return a


@kernel(error_model="numpy", fastmath=_FAST, allocates=False)
def _lower_bound(a, lo, hi, v):
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] < v:
            lo = mid + 1
        else:
            hi = mid
    return lo


@kernel(error_model="numpy", fastmath=_FAST)
def road_kernel(seeds, hits, index, table, n_slots, n_cand, road, flags, out, cand, state):
    """Pass one over all seeds: fill ``out`` (n_seeds, F) but the fit block and ``cand``
    (n_seeds, L, K) (zeros and -1 on entry), and ``state``, what the fit of each seed needs
    from its road (see :func:`fit_kernel`)."""
    # the surfaces crossed: arc length, layer, path length, (x, y, z, ux, uy); Highland
    # angle per fit surface (the three seed hits', then each slot's)
    slots = (
        np.empty(n_slots + 1, dtype=np.float64), np.empty(n_slots + 1, dtype=np.int64),
        np.empty(n_slots + 1, dtype=np.float64), np.empty((n_slots + 1, 5), dtype=np.float64),
        np.empty(n_slots + 3, dtype=np.float64),
    )  # fmt: skip
    # the nearest hits of one surface: chi2, hit, residuals
    best = (
        np.empty(n_cand, dtype=np.float64), np.empty(n_cand, dtype=np.int64),
        np.empty(n_cand, dtype=np.float64), np.empty(n_cand, dtype=np.float64),
    )  # fmt: skip
    _road_all(seeds, hits, index, table, n_slots, n_cand, road, flags, slots, best, out, cand, state)


@kernel(error_model="numpy", fastmath=_FAST, allocates=False)
def _road_all(seeds, hits, index, table, n_slots, n_cand, road, flags, slots, best, out, cand, state):
    # apart from road_kernel so that it runs without reference counting (hepgan.reco.jit)
    bin_width = 2.0 * math.pi / index[3]
    for i in range(seeds.shape[0]):
        _seed_road(i, seeds, hits, index, table, n_slots, n_cand, road, flags, slots, best, bin_width, out, cand, state)


@kernel(error_model="numpy", fastmath=_FAST)
def fit_kernel(rows, seeds, hits, table, n_slots, n_cand, road, flags, state, cand, out):
    """Pass two: the fit block of seeds ``rows`` into rows 0, 1, ... of ``out`` (zeros there on
    entry), from :func:`road_kernel`'s ``state`` and ``cand``.

    Why apart: the fit is about half of the features' cost, and the engine's preselection,
    which needs the road of every seed but no fit, keeps about one seed in five."""
    n_fit_max = 3 + n_slots * n_cand
    # the fit's hits: position, resolutions, endcap, scattering variance, surface, road chi2,
    # feature column, chi2 to the fit; then per surface a point on it, the chosen hit and
    # the Highland angle
    fit = (
        np.empty(n_fit_max, dtype=np.float64), np.empty(n_fit_max, dtype=np.float64),
        np.empty(n_fit_max, dtype=np.float64), np.empty(n_fit_max, dtype=np.float64),
        np.empty(n_fit_max, dtype=np.float64), np.empty(n_fit_max, dtype=np.bool_),
        np.empty(n_fit_max, dtype=np.float64), np.empty(n_fit_max, dtype=np.int64),
        np.empty(n_fit_max, dtype=np.float64), np.empty(n_fit_max, dtype=np.int64),
        np.empty(n_fit_max, dtype=np.float64), np.empty(n_slots + 3, dtype=np.float64),
        np.empty(n_slots + 3, dtype=np.float64), np.empty(n_slots + 3, dtype=np.int64),
        np.empty(n_slots + 3, dtype=np.float64),
    )  # fmt: skip
    _fit_rows(rows, seeds, hits, table, n_slots, n_cand, road, flags, state, cand, fit, out)


@kernel(error_model="numpy", fastmath=_FAST, allocates=False)
def _fit_rows(rows, seeds, hits, table, n_slots, n_cand, road, flags, state, cand, fit, out):
    for j in range(rows.shape[0]):
        _seed_fit(j, rows[j], seeds, hits, table, n_slots, n_cand, road, flags, state, cand, fit, out)


@kernel(error_model="numpy", fastmath=_FAST, allocates=False, inline="always")
def _seed_road(i, seeds, hits, index, table, n_slots, n_cand, road, flags, slots, best, bin_width, out, cand, state):
    """All columns of seed i but the fit block, and its row of ``state``."""
    hx, hy, hr, hphi, hz, hlayer = hits
    is_endcap, sigma0, layer_material = table[0], table[6], table[7]
    bfield = road[0]
    path_length = flags[0]
    slot_s, slot_layer, slot_d, slot_pos, surf_th0 = slots
    st_found, st_helix, st_th0, st_xy, _, _ = state
    st_found[i] = -1
    a = seeds[i, 0]
    b = seeds[i, 1]
    c = seeds[i, 2]
    for j in range(3):
        h = seeds[i, j]
        out[i, N_HELIX + 3 * j] = hr[h] / 1000.0
        out[i, N_HELIX + 3 * j + 1] = hphi[h] / math.pi
        out[i, N_HELIX + 3 * j + 2] = hz[h] / 1000.0
    xa = hx[a]
    ya = hy[a]
    xo = hx[c]
    yo = hy[c]
    d0, z0, phi, theta, qop, ok = estimate_seed(xa, ya, hz[a], hx[b], hy[b], hz[b], xo, yo, hz[c], bfield)
    if not ok:
        return
    out[i, 0] = d0
    out[i, 1] = z0 / 100.0
    out[i, 2] = phi / math.pi
    out[i, 3] = theta - 0.5 * math.pi
    out[i, 4] = qop
    xc, yc, radius, hsense = perigee_to_circle(d0, phi, theta, qop, bfield)
    sin_t = math.sin(theta)
    cos_t = math.cos(theta)
    cot = cos_t / sin_t
    p = 1.0 / abs(qop)
    for j in range(3):
        lay = hlayer[seeds[i, j]]
        surf_th0[j] = surface_theta0(p, layer_material[lay], is_endcap[lay], sin_t, cos_t, path_length)
    th0 = surf_th0[1]  # the middle hit's, for the seed's own curvature and dip errors
    # Perigee point, for arc lengths of the seed hits.
    dc = math.sqrt(xc * xc + yc * yc)
    px = xc - radius * xc / dc
    py = yc - radius * yc / dc
    s_in = radius * _arc_angle(xc, yc, px, py, xa, ya, hsense)
    s_out = radius * _arc_angle(xc, yc, px, py, xo, yo, hsense)
    lever = max(s_out - s_in, 1.0)
    # Seed curvature and dip errors (see hepgan.reco.features).
    dk_hit = 10.0 * sigma0[hlayer[b], 0] / (lever * lever)
    dk_ms = 2.0 * th0 / (lever * sin_t)
    dk = math.sqrt(dk_hit * dk_hit + dk_ms * dk_ms)
    ddip = th0 / (sin_t * sin_t * lever)
    n_found = _find_slots(hlayer[a], hlayer[b], hlayer[c], hr[c], table, road, xc, yc, radius, hsense, phi, z0, cot, s_out, n_slots, slots)
    # Path lengths from the outer hit, for the scattering sum.
    for sl in range(n_found):
        slot_d[sl] = (slot_s[sl] - s_out) / sin_t
        lay = slot_layer[sl]
        surf_th0[3 + sl] = surface_theta0(p, layer_material[lay], is_endcap[lay], sin_t, cos_t, path_length)
    for sl in range(n_found):
        _slot_features(
            i, sl, s_out, surf_th0[2], dk, lever, ddip, sin_t, cos_t, cot,
            hits, index, table, n_cand, road, slots, best, bin_width, state, out, cand,
        )  # fmt: skip
    st_found[i] = n_found
    st_helix[i, 0] = d0
    st_helix[i, 1] = z0
    st_helix[i, 2] = phi
    st_helix[i, 3] = theta
    st_helix[i, 4] = qop
    for m in range(3 + n_found):
        st_th0[i, m] = surf_th0[m]
    for sl in range(n_found):
        st_xy[i, sl, 0] = slot_pos[sl, 0]
        st_xy[i, sl, 1] = slot_pos[sl, 1]


@kernel(error_model="numpy", fastmath=_FAST, allocates=False, inline="always")
def _seed_fit(j, i, seeds, hits, table, n_slots, n_cand, road, flags, state, cand, fit, out):
    """The fit block of seed i into row j of ``out``: its hits (the seed's, then each slot's
    candidates, nearest first) gathered from ``state`` and ``cand``."""
    hx, hy, _, _, hz, hlayer = hits
    is_endcap, sigma0 = table[0], table[6]
    fx, fy, fz, fs0, fs1, fend, fms, fsurf, fchi, fcol, _, spx, spy, _, fth0 = fit
    st_found, st_helix, st_th0, st_xy, st_ms, st_chi = state
    n_found = st_found[i]
    if n_found < 0:  # no seed helix: no fit either
        return
    n_fit = 0
    for h in (seeds[i, 0], seeds[i, 1], seeds[i, 2]):
        fx[n_fit] = hx[h]
        fy[n_fit] = hy[h]
        fz[n_fit] = hz[h]
        fs0[n_fit] = sigma0[hlayer[h], 0]
        fs1[n_fit] = sigma0[hlayer[h], 1]
        fend[n_fit] = is_endcap[hlayer[h]]
        fsurf[n_fit] = n_fit
        fchi[n_fit] = 0.0
        spx[n_fit] = fx[n_fit]
        spy[n_fit] = fy[n_fit]
        n_fit += 1
    for m in range(3 + n_found):
        fth0[m] = st_th0[i, m]
    # Seed hits' scattering variance for their agreement with the fit: kinks at the seed
    # surfaces before each (inner: none), as the road's ms2 in _slot_features.
    th0_a = fth0[0]
    th0 = fth0[1]
    d_ab2 = (fx[1] - fx[0]) ** 2 + (fy[1] - fy[0]) ** 2 + (fz[1] - fz[0]) ** 2
    d_ac2 = (fx[2] - fx[0]) ** 2 + (fy[2] - fy[0]) ** 2 + (fz[2] - fz[0]) ** 2
    d_bc2 = (fx[2] - fx[1]) ** 2 + (fy[2] - fy[1]) ** 2 + (fz[2] - fz[1]) ** 2
    fms[0] = 0.0
    fms[1] = th0_a * th0_a * d_ab2
    fms[2] = th0_a * th0_a * d_ac2 + th0 * th0 * d_bc2
    for sl in range(n_found):
        spx[3 + sl] = st_xy[i, sl, 0]
        spy[3 + sl] = st_xy[i, sl, 1]
        for k in range(n_cand):
            hit = cand[i, sl, k]
            if hit < 0:
                break
            # a candidate lies on its slot's layer (the hit index is per layer)
            lay = hlayer[hit]
            fx[n_fit] = hx[hit]
            fy[n_fit] = hy[hit]
            fz[n_fit] = hz[hit]
            fs0[n_fit] = sigma0[lay, 0]
            fs1[n_fit] = sigma0[lay, 1]
            fend[n_fit] = is_endcap[lay]
            fms[n_fit] = st_ms[i, sl]
            fsurf[n_fit] = 3 + sl
            fchi[n_fit] = st_chi[i, sl, k]
            fcol[n_fit] = sl * n_cand + k
            n_fit += 1
    _fit_block(
        j, n_fit, n_found, st_helix[i, 0], st_helix[i, 1], st_helix[i, 2], st_helix[i, 3], st_helix[i, 4],
        road[0], n_slots, n_cand, flags[2], fit, out,
    )  # fmt: skip


@kernel(error_model="numpy", fastmath=_FAST, allocates=False, inline="always")
def _find_slots(la, lb, lc, r_out, table, road, xc, yc, radius, hsense, phi, z0, cot, s_out, n_slots, slots):
    """Surfaces crossed after the outer seed hit (at radius r_out, arc length s_out), the first
    n_slots of them by arc length, into ``slots`` (arc length, layer, position and direction);
    returns how many. la, lb, lc: the seed hits' layers, skipped.

    Cheap rejections first (why: this loop over all layers is the fixed cost of every seed):
    a barrel inside the outer hit's radius was crossed before it (r grows along the outward
    half turn), a crossing further than the n_slots-th found is not needed, and an arc from
    the outer hit to a barrel is at least as long as their radial distance, so z there is at
    least that far along; a disk crossing lies on the circle, between |dc - R| and dc + R
    from the beam. The last two bounds have 1 um of slack against rounding, so that they
    reject only what the exact extent test after the crossing would (measured: no feature
    changed, and the road pass 11% faster at ttbar pile-up 200)."""
    is_endcap, layer_order, position, lo_ext, hi_ext = table[0], table[1], table[2], table[3], table[4]
    margin = road[5]
    slot_s = slots[0]
    n_found = 0
    dc = math.sqrt(xc * xc + yc * yc)
    r_far = dc + radius
    r_near = abs(dc - radius)
    for li in range(position.shape[0]):
        lay = layer_order[li]
        if lay in (la, lb, lc):
            continue
        s_max = slot_s[n_slots - 1] if n_found == n_slots else 1e300
        if is_endcap[lay]:
            s = (position[lay] - z0) / cot if cot != 0.0 else -1.0
            if s <= s_out or s >= s_max:
                continue
            if r_far < lo_ext[lay] - margin - _SLACK or r_near > hi_ext[lay] + margin + _SLACK:
                continue
            s, x, y, zz, ux, uy, good = crossing_endcap(xc, yc, radius, hsense, phi, z0, cot, position[lay], s_out)
            if good:
                rr = math.sqrt(x * x + y * y)
                good = lo_ext[lay] - margin <= rr <= hi_ext[lay] + margin
        else:
            s_near = s_out + position[lay] - r_out
            if position[lay] <= r_out or s_near >= s_max:
                continue
            z_near = z0 + s_near * cot
            if (cot > 0.0 and z_near > hi_ext[lay] + margin + _SLACK) or (cot < 0.0 and z_near < lo_ext[lay] - margin - _SLACK):
                continue
            s, x, y, zz, ux, uy, good = crossing_barrel(xc, yc, radius, hsense, phi, z0, cot, position[lay], s_out)
            if good:
                good = lo_ext[lay] - margin <= zz <= hi_ext[lay] + margin and s < s_max
        if not good:
            continue
        _insert_slot(slots, n_found, n_slots, s, lay, x, y, zz, ux, uy)
        if n_found < n_slots:
            n_found += 1
    return n_found


@kernel(error_model="numpy", fastmath=_FAST, allocates=False, inline="always")
def _insert_slot(slots, n_found, n_slots, s, lay, x, y, zz, ux, uy):
    """Insertion of a crossing into the list of the n_slots nearest, sorted by arc length."""
    slot_s, slot_layer, _, slot_pos, _ = slots
    k = n_found if n_found < n_slots else n_slots
    while k > 0 and slot_s[k - 1] > s:
        if k < n_slots:
            slot_s[k] = slot_s[k - 1]
            slot_layer[k] = slot_layer[k - 1]
            for t in range(5):
                slot_pos[k, t] = slot_pos[k - 1, t]
        k -= 1
    slot_s[k] = s
    slot_layer[k] = lay
    slot_pos[k, 0] = x
    slot_pos[k, 1] = y
    slot_pos[k, 2] = zz
    slot_pos[k, 3] = ux
    slot_pos[k, 4] = uy


@kernel(error_model="numpy", fastmath=_FAST, allocates=False, inline="always")
def _slot_features(i, sl, s_out, th0_c, dk, lever, ddip, sin_t, cos_t, cot,
                   hits, index, table, n_cand, road, slots, best, bin_width, state, out, cand):  # fmt: skip
    """Columns of slot `sl` of seed i: layer, path, road widths and the nearest hits, whose
    chi2 and the scattering variance go to the fit's ``state``."""
    is_endcap, half_thick, sigma0 = table[0], table[5], table[6]
    _, window, road_scale, min_width, max_window, _ = road
    slot_s, slot_layer, slot_d, slot_pos, surf_th0 = slots
    best_chi, best_idx, best_r1, best_r2 = best
    st_ms, st_chi = state[4], state[5]
    lay = slot_layer[sl]
    s = slot_s[sl]
    endcap = is_endcap[lay]
    x = slot_pos[sl, 0]
    y = slot_pos[sl, 1]
    zz = slot_pos[sl, 2]
    ux = slot_pos[sl, 3]
    uy = slot_pos[sl, 4]
    rr = math.sqrt(x * x + y * y)
    pphi = math.atan2(y, x)
    dist = slot_d[sl]
    dt = s - s_out
    # Scattering at the outer seed hit's surface and every slot surface before this one.
    ms2 = th0_c * th0_c * dist * dist
    for m in range(sl):
        ms2 += surf_th0[3 + m] * surf_th0[3 + m] * (dist - slot_d[m]) ** 2
    st_ms[i, sl] = ms2
    s1, s2 = _road_widths(sigma0[lay, 0], sigma0[lay, 1], ms2, dk, ddip, lever, dt, sin_t, cos_t, endcap, road_scale, min_width)
    n_per_slot = SLOT_HEAD + PER_CANDIDATE * n_cand
    base = N_HELIX + N_SEED_HITS + sl * n_per_slot
    out[i, base] = (lay + 1.0) / is_endcap.shape[0]
    out[i, base + 1] = dist / 1000.0
    out[i, base + 2] = math.log10(s1)
    out[i, base + 3] = math.log10(s2)
    dphi_dn, du_dn = _local_derivatives(x, y, ux, uy, rr, sin_t, cos_t, cot, endcap)
    upred = rr if endcap else zz
    slack_u = abs(du_dn) * half_thick[lay]
    slack_phi = abs(dphi_dn) * half_thick[lay]
    # The cap bounds the look-up cost of seeds with a poorly known curvature (short
    # transverse lever arm, far surfaces) at the price of a few hits (measured).
    w1 = min(window * s1, max_window)
    w2 = min(window * s2, max_window)
    rmin_road = max(rr - (w2 + slack_u if endcap else 0.0), 1.0)
    dphi_win = w1 / rmin_road + slack_phi
    n_best = _nearest_hits(
        lay, endcap, rr, zz, pphi, upred, w1, w2, s1, s2, slack_u, dphi_win, dphi_dn, du_dn,
        hits, index, bin_width, n_cand, best,
    )  # fmt: skip
    for k in range(n_best):
        q = base + SLOT_HEAD + PER_CANDIDATE * k
        out[i, q] = best_r1[k] / s1
        out[i, q + 1] = best_r2[k] / s2
        out[i, q + 2] = 1.0
        cand[i, sl, k] = best_idx[k]
        st_chi[i, sl, k] = best_chi[k]


@kernel(error_model="numpy", fastmath=_FAST, allocates=False, inline="always")
def _road_widths(sigma_1, sigma_2, ms2, dk, ddip, lever, dt, sin_t, cos_t, endcap, road_scale, min_width):
    """Road widths (sigma_1 across, sigma_2 along the surface; mm) at arc distance dt from the
    outer seed hit: hit resolution, seed curvature and dip errors, scattering variance ms2."""
    curv = dk * (dt * dt + lever * dt) / 2.0
    s1 = math.sqrt(sigma_1**2 + curv * curv + ms2)
    if endcap:
        dip = ddip * dt * abs(sin_t / cos_t)
        s2 = math.sqrt(sigma_2**2 + dip * dip + ms2 / (cos_t * cos_t))
    else:
        dip = ddip * dt
        s2 = math.sqrt(sigma_2**2 + dip * dip + ms2 / (sin_t * sin_t))
    return max(s1 * road_scale, min_width), max(s2 * road_scale, min_width)


@kernel(error_model="numpy", fastmath=_FAST, allocates=False, inline="always")
def _local_derivatives(x, y, ux, uy, rr, sin_t, cos_t, cot, endcap):
    """(dphi/dn, du/dn) at the crossing (x, y) with transverse direction (ux, uy), to move the
    prediction from the nominal surface to a hit off it: n = r for a barrel (u = z), n = z for
    a disk (u = r). ds/dr = 1 / (radial part of the direction)."""
    cr = (x * ux + y * uy) / rr
    dphi_ds = (x * uy - y * ux) / (rr * rr)
    if endcap:
        ds_dn = abs(sin_t / cos_t) * (1.0 if cos_t > 0 else -1.0)  # ds/dz
        return dphi_ds * ds_dn, cr * ds_dn
    if abs(cr) < 0.05:
        cr = 0.05 if cr >= 0 else -0.05
    return dphi_ds / cr, cot / cr


@kernel(error_model="numpy", fastmath=_FAST, allocates=False, inline="always")
def _nearest_hits(lay, endcap, rr, zz, pphi, upred, w1, w2, s1, s2, slack_u, dphi_win, dphi_dn, du_dn,
                  hits, index, bin_width, n_cand, best):  # fmt: skip
    """The n_cand hits of layer `lay` nearest the crossing (rr, pphi, zz) within w1, w2 of it,
    by chi2 in road widths s1, s2, into ``best``; returns how many."""
    hr, hphi, hz = hits[2], hits[3], hits[4]
    order, sorted_u, bin_start, phi_bins = index
    n_best = 0
    if dphi_win >= math.pi:
        b_lo = 0
        b_n = phi_bins
    else:
        # first bin of the window (wrapped across -pi), and enough bins to cover it
        b_lo = _phi_bin(_wrap(pphi - dphi_win), phi_bins)
        b_n = min(int(2.0 * dphi_win / bin_width) + 2, phi_bins)
    for bb in range(b_n):
        key = lay * phi_bins + (b_lo + bb) % phi_bins
        j0 = bin_start[key]
        j1 = bin_start[key + 1]
        if j0 == j1:
            continue
        j = _lower_bound(sorted_u, j0, j1, upred - w2 - slack_u)
        while j < j1 and sorted_u[j] <= upred + w2 + slack_u:
            hit = order[j]
            j += 1
            off = hz[hit] - zz if endcap else hr[hit] - rr
            r1 = hr[hit] * _wrap(hphi[hit] - pphi - dphi_dn * off)
            r2 = sorted_u[j - 1] - upred - du_dn * off
            if abs(r1) > w1 or abs(r2) > w2:
                continue
            n_best = _insert_best(best, n_best, n_cand, (r1 / s1) ** 2 + (r2 / s2) ** 2, hit, r1, r2)
    return n_best


@kernel(error_model="numpy", fastmath=_FAST, allocates=False, inline="always")
def _insert_best(best, n_best, n_cand, chi, hit, r1, r2):
    """Insertion into the n_cand best by chi (a worse one than all n_cand is dropped);
    returns the new count."""
    best_chi, best_idx, best_r1, best_r2 = best
    k = n_best if n_best < n_cand else n_cand
    if k == n_cand and chi >= best_chi[n_cand - 1]:
        return n_best
    while k > 0 and best_chi[k - 1] > chi:
        if k < n_cand:
            best_chi[k] = best_chi[k - 1]
            best_idx[k] = best_idx[k - 1]
            best_r1[k] = best_r1[k - 1]
            best_r2[k] = best_r2[k - 1]
        k -= 1
    best_chi[k] = chi
    best_idx[k] = hit
    best_r1[k] = r1
    best_r2[k] = r2
    return n_best + 1 if n_best < n_cand else n_best


@kernel(error_model="numpy", fastmath=_FAST, allocates=False, inline="always")
def _fit_block(i, n_fit, n_found, d0, z0, phi, theta, qop, bfield, n_slots, n_cand, with_seed_agreement, fit, out):
    """The fit block into row i: ``fit_road`` over the seed and its n_fit - 3 candidates."""
    fx, fy, fz, fs0, fs1, fend, fms, fsurf, fchi, fcol, fhit_chi2, spx, spy, fsel, surf_th0 = fit
    g_d0, g_z0, g_phi, g_theta, g_qop, chi2_t, chi2_z, n_used, fit_ok = fit_road(
        fx, fy, fz, fs0, fs1, fend, fms, fsurf, fchi, n_fit, spx, spy, 3 + n_found, surf_th0,
        d0, z0, phi, theta, qop, bfield, fsel, fhit_chi2,
    )  # fmt: skip
    fit_col = N_HELIX + N_SEED_HITS + n_slots * (SLOT_HEAD + PER_CANDIDATE * n_cand)
    out[i, fit_col] = g_d0
    out[i, fit_col + 1] = g_z0 / 100.0
    out[i, fit_col + 2] = g_phi / math.pi
    out[i, fit_col + 3] = g_theta - 0.5 * math.pi
    out[i, fit_col + 4] = g_qop
    out[i, fit_col + 5] = math.log10(1.0 + chi2_t)
    out[i, fit_col + 6] = math.log10(1.0 + chi2_z)
    out[i, fit_col + 7] = n_used / (3.0 + n_slots) if fit_ok else 0.0
    for j in range(3, n_fit):
        if fhit_chi2[j] >= 0.0:
            out[i, fit_col + N_FIT_HEAD + fcol[j]] = 1.0 / (1.0 + fhit_chi2[j])
    if with_seed_agreement:
        for j in range(3):
            if fhit_chi2[j] >= 0.0:
                out[i, fit_col + N_FIT_HEAD + n_slots * n_cand + j] = math.log10(1.0 + fhit_chi2[j])
