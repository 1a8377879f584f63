"""The seeding kernel (numba): the triplet search over the grid of the pixel hits.

The algorithm and its cuts are described in :mod:`hepgan.reco.seeding`, which builds the
inputs (the plan of layer triplets, the grid) and calls :func:`seed_kernel`. The search is
split along the algorithm's steps, one small function each:

* :func:`_triplets_of_middle`: every layer pair (middle, doublet partner) of one middle hit;
* :func:`_doublets_in_range`: the doublets of one phi range of the partner layer;
* :func:`_third_hits`: for one doublet and one third layer, the window (:func:`_third_window`)
  and the hits in it, each scored by :func:`_triplet_chi2`;
* :func:`_add_candidate`, :func:`_confirm`, :func:`_keep_best`: the per-middle-hit choice.

Inputs are grouped in tuples, always unpacked the same way:

* ``fine`` = (x, y, z, r, phi, order, offsets, base, n_phi, uinv, n_rows): the pixel hits in
  the order of a :mod:`hepgan.reco.hit_grid` grid (rows along each layer, each sorted by phi),
  float32 mm / rad; the doublet partners and the third hits are read from it row by row;
* ``layers`` = (kind, pos, rmin, rmax, zmin, zmax, umin) per pixel layer (mm);
* ``plan`` = (pair_first, pair_third_start, pair_thirds, middle_pair_start);
* ``cuts``: a tuple of floats indexed by the ``C_*`` constants below.

Types matter for bit-identical results: hit coordinates are float32, and the doublet's
``dr`` and ``cot`` stay float32 as they always were; helpers return every value from one
``return`` so that numba does not widen them.
"""

from __future__ import annotations

import math

import numpy as np

from hepgan.reco.helix import circle_through
from hepgan.reco.hit_grid import first_in_row as _first_in_row
from hepgan.reco.hit_grid import phi_ranges as _phi_ranges
from hepgan.reco.hit_grid import rows as _rows
from hepgan.reco.jit import kernel

BARREL = 0
DISK = 1

# indices into the `cuts` tuple (built by hepgan.reco.seeding._plan)
C_Z0_MAX = 0
C_TWO_R = 1  # twice the helix radius at pt_min (mm)
C_D0_MAX = 2
C_D0_FIRST = 3
C_COT_MAX = 4
C_RES = 5
C_RES2 = 6
C_TH_XY = 7
C_TH_RZ = 8
C_WIN_XY = 9  # scattering at pT = pt_min, per mm of radial lever arm, r-phi
C_WIN_RZ = 10  # and across the track in r-z
C_NSIG = 11
C_CHI2_MAX = 12
C_PT_MIN = 13
C_PT_PER_MM = 14
C_FIRST_LAYER = 15  # innermost barrel layer (dense index), -1 if none
C_KEEP = 16
C_CONF_K = 17
C_D0_SIGMA = 18
C_D0_RPHI = 19  # 1: the chi2's r-phi residual is taken beyond what a |d0| <= the cut explains
C_CONFIRMED_COT = 20  # middle hits with |z| / r below this get seeds from confirmed candidates only
N_CUTS = 21

CAPACITY = 512  # triplet candidates held per middle hit (the worst chi2 makes way beyond)

_PI = math.pi
_TWO_PI = 2.0 * math.pi


@kernel(inline="always")
def _wrap(d):
    if d >= _PI:
        return d - _TWO_PI
    if d < -_PI:
        return d + _TWO_PI
    return d


@kernel(allocates=False)
def _line_window(la, kind, pos, rmin, rmax, zmin, zmax, rm, zm, z0_lo, z0_hi):
    """u range (z for a barrel, r for a disk) on layer `la` of the lines from (0, z0) with z0 in
    [z0_lo, z0_hi] through (rm, zm), and the smallest and largest radius there. ok=False if
    no such line reaches the layer."""
    if kind[la] == BARREL:
        r1 = rmin[la]
        r2 = rmax[la]
        u_lo = 1e30
        u_hi = -1e30
        for rr in (r1, r2):
            for z0 in (z0_lo, z0_hi):
                zz = z0 + (zm - z0) * rr / rm
                u_lo = min(u_lo, zz)
                u_hi = max(u_hi, zz)
        u_lo = max(u_lo, zmin[la])
        u_hi = min(u_hi, zmax[la])
        return u_lo <= u_hi, u_lo, u_hi, r1, r2
    zl = pos[la]
    if zl * zm <= 0.0:
        return False, 0.0, 0.0, 0.0, 0.0
    u_lo = 1e30
    u_hi = -1e30
    for zz in (zmin[la], zmax[la]):
        for z0 in (z0_lo, z0_hi):
            den = zm - z0
            if den == 0.0:
                continue
            f = (zz - z0) / den
            rr = rm * max(f, 0.0)
            u_lo = min(u_lo, rr)
            u_hi = max(u_hi, rr)
    u_lo = max(u_lo, rmin[la])
    u_hi = min(u_hi, rmax[la])
    return u_lo <= u_hi, u_lo, u_hi, u_lo, u_hi


# error_model="numpy" throughout: degenerate geometry (dr = 0) gives inf and fails the
# windows instead of raising


@kernel(error_model="numpy")
def seed_kernel(fine, layers, plan, cuts):
    """Triplets of one event (the tuples are described in the module docstring).

    Returns ((n, 3) int64 pixel-hit numbers (inner, middle, outer), grouped by middle hit in
    fine-grid order, best first; counters: first-layer candidates, doublets, third-layer
    candidates, triplets passing, confirmed seeds kept)."""
    n_hits = fine[0].shape[0]
    out = np.empty((n_hits * int(cuts[C_KEEP]), 3), np.int64)
    stats = np.zeros(5, np.int64)
    rng = np.empty(4, np.float64)
    orng = np.empty(4, np.float64)
    # per middle hit: inner hit, outer hit, inner layer, outer layer; chi2, curvature, score
    cand = (
        np.empty(CAPACITY, np.int64), np.empty(CAPACITY, np.int64), np.empty(CAPACITY, np.int64),
        np.empty(CAPACITY, np.int64), np.empty(CAPACITY, np.float64), np.empty(CAPACITY, np.float64),
        np.empty(CAPACITY, np.float64),
    )  # fmt: skip
    n_out = _search(fine, layers, plan, cuts, rng, orng, cand, out, stats)
    return out[:n_out], stats


@kernel(error_model="numpy", allocates=False)
def _search(fine, layers, plan, cuts, rng, orng, cand, out, stats):
    """The loop over middle hits, with the buffers of :func:`seed_kernel`; returns the number
    of seeds written to `out`. Apart from seed_kernel so that it runs without reference
    counting (see ``hepgan.reco.jit.kernel``)."""
    forder, f_offsets, f_base = fine[5], fine[6], fine[7]
    middle_pair_start = plan[3]
    keep = int(cuts[C_KEEP])
    n_out = 0
    for b in range(layers[0].shape[0]):
        p_lo = middle_pair_start[b]
        p_hi = middle_pair_start[b + 1]
        if p_lo == p_hi:
            continue
        # middle hits in fine-grid order (z or r rows, then phi): consecutive middle hits
        # have overlapping windows, so the grid cells they read stay in cache
        for m in range(f_offsets[f_base[b]], f_offsets[f_base[b + 1]]):
            n_cand = _triplets_of_middle(m, p_lo, p_hi, fine, layers, plan, cuts, rng, orng, cand, stats)
            if n_cand == 0:
                continue
            _confirm(cand, n_cand, cuts[C_CONF_K])
            if abs(fine[2][m]) < cuts[C_CONFIRMED_COT] * fine[3][m]:
                n_cand = _confirmed_only(cand, n_cand)
            n_out = _keep_best(cand, n_cand, keep, forder[m], out, n_out, stats)
    return n_out


@kernel(error_model="numpy", allocates=False, inline="always")
def _triplets_of_middle(m, p_lo, p_hi, fine, layers, plan, cuts, rng, orng, cand, stats):
    """Candidates of middle hit `m` (fine-grid position) over its layer pairs p_lo..p_hi;
    returns how many are in `cand`."""
    kind, pos, rmin, rmax, zmin, zmax, _ = layers
    f_offsets, f_base, f_nphi, f_uinv, f_nrows = fine[6], fine[7], fine[8], fine[9], fine[10]
    rm = fine[3][m]
    zm = fine[2][m]
    phim = fine[4][m]
    pair_first = plan[0]
    z0_max = cuts[C_Z0_MAX]
    two_r = cuts[C_TWO_R]
    res = cuts[C_RES]
    n_cand = 0
    for p in range(p_lo, p_hi):
        f = pair_first[p]
        ok, u_lo, u_hi, rf_lo, rf_hi = _line_window(f, kind, pos, rmin, rmax, zmin, zmax, rm, zm, -z0_max, z0_max)
        if not ok:
            continue
        f_outward = rf_hi > rm
        if f_outward:
            r_in = rm
            r_out = rf_hi
        else:
            r_in = max(rf_lo, 1.0)
            r_out = rm
        # widest phi difference: pt_min curvature + the d0 allowance + resolution
        # (the first layer's d0 cut applies only if it holds the inner hit)
        d0_cut = cuts[C_D0_FIRST] if (not f_outward and f == int(cuts[C_FIRST_LAYER])) else cuts[C_D0_MAX]
        dphi_win = (
            math.asin(min(r_out / two_r, 1.0)) - math.asin(min(r_in / two_r, 1.0))
            + d0_cut * (1.0 / r_in - 1.0 / r_out) + 4.0 * res / r_in
        )  # fmt: skip
        n_seg = _phi_ranges(phim - dphi_win, phim + dphi_win, rng)
        row_lo, row_hi = _rows(f, u_lo, u_hi, layers[6], f_uinv, f_nrows)
        for row in range(row_lo, row_hi + 1):
            rbase = f_base[f] + row * f_nphi
            row_end = f_offsets[rbase + f_nphi]
            for s in range(n_seg):
                j = _first_in_row(f_offsets, rbase, rng[2 * s], f_nphi)
                n_cand = _doublets_in_range(
                    m, p, f, f_outward, j, row_end, rng[2 * s], rng[2 * s + 1], u_lo, u_hi,
                    fine, layers, plan, cuts, orng, cand, n_cand, stats,
                )  # fmt: skip
    return n_cand


@kernel(error_model="numpy", allocates=False, inline="always")
def _doublets_in_range(m, p, f, f_outward, j, row_end, ph_lo, ph_hi, u_lo, u_hi,
                       fine, layers, plan, cuts, orng, cand, n_cand, stats):  # fmt: skip
    """Doublets of middle hit `m` with the partner-layer hits from grid position `j` on, up
    to `row_end` (one row), within [ph_lo, ph_hi] in phi and [u_lo, u_hi] along the layer;
    each searched for its third hits. Returns the new number of candidates."""
    fz, fr, fphi = fine[2], fine[3], fine[4]
    rm = fine[3][m]
    zm = fine[2][m]
    phim = fine[4][m]
    kind = layers[0]
    pair_third_start, pair_thirds = plan[1], plan[2]
    f_barrel = kind[f] == BARREL
    while j < row_end:
        phj = fphi[j]
        if phj > ph_hi:
            break
        h = j
        j += 1
        if phj < ph_lo:
            continue
        uj = fz[h] if f_barrel else fr[h]
        if uj < u_lo or uj > u_hi:
            continue
        stats[0] += 1
        # doublet (first-layer hit h, middle m), ordered by radius
        if f_outward:
            dr = fr[h] - rm
            cot = (fz[h] - zm) / dr
            z0 = zm - cot * rm
            dphi = _wrap(phj - phim)
        else:
            dr = rm - fr[h]
            cot = (zm - fz[h]) / dr
            z0 = zm - cot * rm
            dphi = _wrap(phim - phj)
        if dr < 1.0 or abs(cot) > cuts[C_COT_MAX] or abs(z0) > cuts[C_Z0_MAX]:
            continue
        stats[1] += 1
        slope = dphi / dr  # dphi/dr of a circle through the beam line
        sin_t = 1.0 / math.sqrt(1.0 + cot * cot)
        for q in range(pair_third_start[p], pair_third_start[p + 1]):
            n_cand = _third_hits(
                m, h, f, pair_thirds[q], f_outward, dr, cot, slope, sin_t,
                fine, layers, cuts, orng, cand, n_cand, stats,
            )  # fmt: skip
    return n_cand


@kernel(error_model="numpy", allocates=False, inline="always")
def _third_window(g, f_outward, rm, zm, phim, r_first, dr, cot, slope, sin_t, layers, cuts):
    """Window of the third hit on layer `g` along the doublet's line: (ok, o_lo, o_hi, phi_lo,
    phi_hi), o = z (barrel) or r (disk). `r_first` is the radius of the doublet's first-layer
    hit."""
    kind, pos, rmin, rmax, zmin, zmax, _ = layers
    g_barrel = kind[g] == BARREL
    if g_barrel:
        rg_lo = rmin[g]
        rg_hi = rmax[g]
        # cheap reachability test before the window (50 mm margin)
        zc = zm + cot * (pos[g] - rm)
        if zc < zmin[g] - 50.0 or zc > zmax[g] + 50.0:
            return False, 0.0, 0.0, 0.0, 0.0
    else:
        # cheap reachability test: the line must head for the disk
        if cot * pos[g] <= 0.0 or pos[g] * zm <= 0.0:
            return False, 0.0, 0.0, 0.0, 0.0
        rc = rm + (pos[g] - zm) / cot
        if rc < rmin[g] - 20.0 or rc > rmax[g] + 20.0:
            return False, 0.0, 0.0, 0.0, 0.0
        rg1 = rm + (zmin[g] - zm) / cot
        rg2 = rm + (zmax[g] - zm) / cot
        rg_lo = max(min(rg1, rg2), rmin[g])
        rg_hi = min(max(rg1, rg2), rmax[g])
    if f_outward:  # the third hit is the inner one
        rg_hi = min(rg_hi, rm - 1.0)
    else:
        rg_lo = max(rg_lo, rm + 1.0)
    if rg_lo > rg_hi or rg_lo < 1.0:
        return False, 0.0, 0.0, 0.0, 0.0
    nsig = cuts[C_NSIG]
    lever = max(abs(rg_hi - rm), abs(rg_lo - rm))
    t = lever / dr
    s_res2 = cuts[C_RES2] * (2.0 + 2.0 * t + 2.0 * t * t)
    # r-phi: the phi(r) line is a circle through the beam line, so inward a kink at the middle
    # hit moves the third hit by only about lever * r_third / r_first (the origin pins the
    # circle); the window uses half the lever at least, the chi2 the full one
    lever_xy = lever * (max(rg_hi / r_first, 0.5) if f_outward else 1.0)
    a_xy = cuts[C_WIN_XY] * lever_xy
    w_xy = nsig * math.sqrt(s_res2 + a_xy * a_xy)
    a_rz = cuts[C_WIN_RZ] * lever
    w_rz = nsig * math.sqrt(s_res2 + a_rz * a_rz)
    if g_barrel:
        zg1 = zm + cot * (rg_lo - rm)
        zg2 = zm + cot * (rg_hi - rm)
        o_lo = max(min(zg1, zg2) - w_rz / sin_t, zmin[g])
        o_hi = min(max(zg1, zg2) + w_rz / sin_t, zmax[g])
    else:
        wr = w_rz / (abs(cot) * sin_t)
        o_lo = max(rg_lo - wr, rmin[g])
        o_hi = min(rg_hi + wr, rmax[g])
    if o_lo > o_hi:
        return False, 0.0, 0.0, 0.0, 0.0
    ph1 = phim + slope * (rg_lo - rm)
    ph2 = phim + slope * (rg_hi - rm)
    wphi = w_xy / rg_lo
    return True, o_lo, o_hi, min(ph1, ph2) - wphi, max(ph1, ph2) + wphi


@kernel(error_model="numpy", allocates=False, inline="always")
def _third_hits(m, h, f, g, f_outward, dr, cot, slope, sin_t, fine, layers, cuts, orng, cand, n_cand, stats):
    """Third hits on layer `g` of the doublet (grid hit `h` on layer `f`, middle hit
    `m`), each a candidate when it passes :func:`_triplet_chi2`. Returns the new number of
    candidates."""
    fz, fr, fphi, f_offsets, f_base, f_nphi, f_uinv, f_nrows = (
        fine[2],
        fine[3],
        fine[4],
        fine[6],
        fine[7],
        fine[8],
        fine[9],
        fine[10],
    )
    xm, ym, zm, rm, phim = fine[0][m], fine[1][m], fz[m], fr[m], fphi[m]
    fx, fy, forder = fine[0], fine[1], fine[5]
    ok, o_lo, o_hi, wph_lo, wph_hi = _third_window(
        g, f_outward, rm, zm, phim, fr[h], dr, cot, slope, sin_t, layers, cuts
    )
    if not ok:
        return n_cand
    n_oseg = _phi_ranges(wph_lo, wph_hi, orng)
    orow_lo, orow_hi = _rows(g, o_lo, o_hi, layers[6], f_uinv, f_nrows)
    for orow in range(orow_lo, orow_hi + 1):
        obase = f_base[g] + orow * f_nphi
        orow_end = f_offsets[obase + f_nphi]
        for os_ in range(n_oseg):
            oph_lo = orng[2 * os_]
            oph_hi = orng[2 * os_ + 1]
            k = _first_in_row(f_offsets, obase, oph_lo, f_nphi)
            while k < orow_end:
                phk = fphi[k]
                if phk > oph_hi:
                    break
                o = k
                k += 1
                if phk < oph_lo:
                    continue
                stats[2] += 1
                # the triplet inner -> middle -> outer
                if f_outward:
                    xa, ya, xo, yo, la_in, la_out = fx[o], fy[o], fx[h], fy[h], g, f
                else:
                    xa, ya, xo, yo, la_in, la_out = fx[h], fy[h], fx[o], fy[o], f, g
                ok, chi2, kappa = _triplet_chi2(
                    phk, fr[o], fz[o], xa, ya, xm, ym, xo, yo, la_in, rm, zm, phim, fr[h], f_outward,
                    dr, cot, slope, sin_t, cuts,
                )  # fmt: skip
                if not ok:
                    continue
                stats[3] += 1
                hit_in = forder[h] if not f_outward else forder[o]
                hit_out = forder[o] if not f_outward else forder[h]
                n_cand = _add_candidate(cand, n_cand, hit_in, hit_out, la_in, la_out, chi2, kappa)
    return n_cand


@kernel(error_model="numpy", allocates=False, inline="always")
def _triplet_chi2(phk, rg, zg, xa, ya, xm, ym, xo, yo, la_in, rm, zm, phim, r_first, f_outward,
                  dr, cot, slope, sin_t, cuts):  # fmt: skip
    """Cuts of a triplet whose third hit is at (rg, phk, zg): residuals against the doublet,
    then the exact circle through (xa, ya) -> (xm, ym) -> (xo, yo) for pT and d0. Returns
    (ok, chi2 for ranking (with the d0 term), signed curvature (1/mm))."""
    nsig = cuts[C_NSIG]
    res2 = cuts[C_RES2]
    win_rz = cuts[C_WIN_RZ]
    drg = rg - rm
    # residuals of the third hit against the doublet
    res_rz = (zg - (zm + cot * drg)) * sin_t
    t_o = abs(drg) / dr
    s_res2 = res2 * (2.0 + 2.0 * t_o + 2.0 * t_o * t_o)
    ms = win_rz * abs(drg)
    if res_rz * res_rz > nsig * nsig * (s_res2 + ms * ms):
        return False, 0.0, 0.0
    res_xy = _wrap(phk - (phim + slope * drg)) * rg
    ms = cuts[C_WIN_XY] * (max(rg / r_first, 0.5) * abs(drg) if f_outward else abs(drg))
    if res_xy * res_xy > nsig * nsig * (s_res2 + ms * ms):
        return False, 0.0, 0.0
    xc, yc, radius, sense, ok = circle_through(xa, ya, xm, ym, xo, yo)
    if not ok:
        return False, 0.0, 0.0
    pt = cuts[C_PT_PER_MM] * radius
    if pt < cuts[C_PT_MIN]:
        return False, 0.0, 0.0
    d0 = abs(math.sqrt(xc * xc + yc * yc) - radius)
    if d0 > (cuts[C_D0_FIRST] if la_in == int(cuts[C_FIRST_LAYER]) else cuts[C_D0_MAX]):
        return False, 0.0, 0.0
    # chi2 with the scattering width at the seed's own pT
    ms_xy = cuts[C_TH_XY] / pt * abs(drg)
    ms_rz = cuts[C_TH_RZ] / pt * abs(drg)
    if cuts[C_D0_RPHI] > 0.0:
        # the straight phi(r) of the doublet is a circle through the beam line: a d0 bends phi
        # by d0 / r, which the third hit sees as d0 times the second difference of 1 / r
        d0_cut = cuts[C_D0_FIRST] if la_in == int(cuts[C_FIRST_LAYER]) else cuts[C_D0_MAX]
        bend = 1.0 / rg - 1.0 / rm - (1.0 / rm - 1.0 / r_first) * drg / (rm - r_first)
        res_xy = max(abs(res_xy) - d0_cut * abs(bend) * rg, 0.0)
    chi2 = res_xy * res_xy / (s_res2 + ms_xy * ms_xy) + res_rz * res_rz / (s_res2 + ms_rz * ms_rz)
    if chi2 > cuts[C_CHI2_MAX]:
        return False, 0.0, 0.0
    # rank with the d0 too: primaries' d0 is ~0.1 mm, fakes' spread
    d0_sigma = cuts[C_D0_SIGMA]
    chi2 += (d0 / d0_sigma) * (d0 / d0_sigma)
    # signed curvature: the sense of the turn from inner to outer
    return True, chi2, sense / radius


@kernel(allocates=False, inline="always")
def _add_candidate(cand, n_cand, hit_in, hit_out, la_in, la_out, chi2, kappa):
    """Store a triplet in the candidate buffer; when it is full, in place of the worst chi2 if
    that is worse. Returns the new number of candidates."""
    cand_in, cand_out, cand_lin, cand_lout, cand_chi2, cand_kappa, _ = cand
    if n_cand == CAPACITY:
        worst = 0
        for c in range(1, n_cand):
            if cand_chi2[c] > cand_chi2[worst]:
                worst = c
        if cand_chi2[worst] <= chi2:
            return n_cand
        c = worst
    else:
        c = n_cand
        n_cand += 1
    cand_in[c] = hit_in
    cand_out[c] = hit_out
    cand_lin[c] = la_in
    cand_lout[c] = la_out
    cand_chi2[c] = chi2
    cand_kappa[c] = kappa
    return n_cand


@kernel(allocates=False, inline="always")
def _confirm(cand, n_cand, conf_k):
    """Scores: chi2 - 1000 per confirming candidate (at most 2). A candidate confirms another
    when it shares the inner or the outer hit, has its third hit on another layer and the
    same curvature (a 4-hit segment)."""
    cand_in, cand_out, cand_lin, cand_lout, cand_chi2, cand_kappa, cand_score = cand
    for c in range(n_cand):
        n_conf = 0
        kc = cand_kappa[c]
        for e in range(n_cand):
            if e == c:
                continue
            same_in = cand_in[e] == cand_in[c] and cand_lout[e] != cand_lout[c]
            same_out = cand_out[e] == cand_out[c] and cand_lin[e] != cand_lin[c]
            if not (same_in or same_out):
                continue
            ke = cand_kappa[e]
            if abs(kc - ke) <= conf_k * (1.0 + 1000.0 * max(abs(kc), abs(ke))):
                n_conf += 1
        cand_score[c] = cand_chi2[c] - 1000.0 * min(n_conf, 2)


@kernel(allocates=False, inline="always")
def _confirmed_only(cand, n_cand):
    """The confirmed candidates (score < -500) moved to the front, in their order; returns how
    many."""
    cand_in, cand_out, cand_lin, cand_lout, cand_chi2, cand_kappa, cand_score = cand
    n = 0
    for c in range(n_cand):
        if cand_score[c] < -500.0:
            cand_in[n], cand_out[n], cand_lin[n], cand_lout[n] = cand_in[c], cand_out[c], cand_lin[c], cand_lout[c]
            cand_chi2[n], cand_kappa[n], cand_score[n] = cand_chi2[c], cand_kappa[c], cand_score[c]
            n += 1
    return n


@kernel(allocates=False, inline="always")
def _keep_best(cand, n_cand, keep, middle, out, n_out, stats):
    """Write `keep` seeds of the middle hit to ``out[n_out:]``: even slots the best score
    (confirmed first), odd slots the best chi2 left (so a track with only 3 pixel hits is not
    crowded out by confirmed fakes); ties: first found. Returns the new n_out."""
    cand_in, cand_out, _, _, cand_chi2, _, cand_score = cand
    for kk in range(min(keep, n_cand)):
        best = kk
        for c in range(kk + 1, n_cand):
            if kk % 2 == 0:
                if cand_score[c] < cand_score[best]:
                    best = c
            elif cand_chi2[c] < cand_chi2[best]:
                best = c
        if best != kk:
            cand_in[kk], cand_in[best] = cand_in[best], cand_in[kk]
            cand_out[kk], cand_out[best] = cand_out[best], cand_out[kk]
            cand_score[kk], cand_score[best] = cand_score[best], cand_score[kk]
            cand_chi2[kk], cand_chi2[best] = cand_chi2[best], cand_chi2[kk]
        out[n_out, 0] = cand_in[kk]
        out[n_out, 1] = middle
        out[n_out, 2] = cand_out[kk]
        if cand_score[kk] < -500.0:
            stats[4] += 1
        n_out += 1
    return n_out


@kernel()
def duplicate_seeds_kernel(x, y, seeds, n_hits, tolerance):
    """(n_seeds,) bool: True where a seed shares a pair of its hits (as the ordered pair of hit
    numbers) with an earlier kept seed whose circle through its three hits has the same
    curvature within `tolerance` (1/mm) plus 1000 mm x `tolerance` x the larger curvature;
    seeds are taken in their order. A table of the kept seeds' pairs (open addressing)."""
    n = seeds.shape[0]
    size = 1
    while size < 6 * n + 2:
        size *= 2
    keys = np.full(size, -1, np.int64)
    owner = np.empty(size, np.int64)
    kappa = np.empty(n)
    drop = np.zeros(n, np.bool_)
    for i in range(n):
        a, b, c = seeds[i, 0], seeds[i, 1], seeds[i, 2]
        _, _, radius, sense, ok = circle_through(x[a], y[a], x[b], y[b], x[c], y[c])
        kappa[i] = sense / radius if ok else 0.0
        for p, q in ((a, b), (b, c), (a, c)):
            slot = _find_pair(keys, p * n_hits + q)
            if keys[slot] >= 0:
                j = owner[slot]
                if abs(kappa[i] - kappa[j]) <= tolerance * (1.0 + 1000.0 * max(abs(kappa[i]), abs(kappa[j]))):
                    drop[i] = True
                    break
        if drop[i]:
            continue
        for p, q in ((a, b), (b, c), (a, c)):
            key = p * n_hits + q
            slot = _find_pair(keys, key)
            if keys[slot] < 0:  # the first kept seed with this pair owns it
                keys[slot] = key
                owner[slot] = i
    return drop


@kernel(allocates=False, inline="always")
def _find_pair(keys, key):
    """Slot of `key` in the open-addressing table `keys` (size a power of 2, -1: empty): its own
    slot, or the empty one where it would go."""
    mask = keys.shape[0] - 1
    slot = (key * 0x9E3779B97F4A7C15) & mask
    while keys[slot] >= 0 and keys[slot] != key:
        slot = (slot + 1) & mask
    return slot
