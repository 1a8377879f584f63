"""Track seeds: hit triplets on the pixel layers, found by a numba kernel.

A seed is three hits (inner, middle, outer) on three different pixel layers, ordered outward
along the track, that a helix from the luminous region can pass through: transverse momentum
``>= pt_min``, ``|z0| <= z0_max``, ``|d0| <= d0_max``, and a third hit where the first two
predict it within the multiple-scattering allowance. Seeds are the input of everything
downstream (features, network, hit assignment), so this module is shared by training and
inference and never reads truth.

Algorithm (all numbers in mm, rad, GeV, tesla):

1. *Layer triplets from the geometry.* Straight lines in r-z from ``|z0| <= z0_max`` with
   ``|eta| <= eta_max`` are traced through the pixel layers (a helix with pT >= 0.5 GeV is a
   straight line in r-z to a good approximation at r < 200 mm). Each line crosses an ordered
   list of layers; every three consecutive layers give a triplet, plus the variants that skip
   one layer (module gaps, dead areas): (a, b, d) and (a, c, d) for crossings a, b, c, d.
   This is computed once per (geometry, config) and cached.
2. *Grids.* The pixel hits are counting-sorted twice into flat arrays: per layer by phi
   ("coarse" grid, for the wide doublet windows) and into z (barrel) / r (disk) rows of
   15 mm x 128 phi columns ("fine" grid, for the small third-hit windows); each row is
   sorted by phi, so a window is a few contiguous slices. Ties are broken by the
   coordinates, so the order does not depend on the input order of the hits.
3. *Doublets from the middle hit.* For every middle hit and each triplet through its layer,
   the doublet partner is the inner or the outer layer, whichever has the smaller expected
   window (from the traced lines): z (r) from the z0 range, phi from the pt_min curvature
   and the d0 allowance. A doublet must point to ``|z0| <= z0_max`` with
   ``|cot theta| <= sinh(eta_max)``.
4. *Predicted third hit.* The doublet is extrapolated as a straight line in r-z and linearly
   in (r, phi) (a circle through the beam line), outward or inward; the third layer is
   searched in a window of ``window_sigma`` residual widths (resolution + scattering at
   pt_min).
5. *Triplet cuts and choice.* The exact circle through the 3 hits gives pT >= pt_min and the
   d0 cut; the chi2 of the third hit's residuals (r-phi, and across the track in r-z)
   against the scattering width at the triplet's own pT cuts. Per middle hit, triplets
   sharing a hit and agreeing in curvature with a triplet on another layer are
   "confirmed" (a 4-hit segment); the ``max_seeds_per_middle`` kept are alternately the best
   by (confirmed first, chi2 + (d0/d0_sigma)^2) and by that chi2 alone.

Cost: the number of doublets grows as hits x density (hits^2 at fixed geometry), and so
does the third-hit search; at 200 x 50 it dominates (see benchmarks/bench_seeding.py).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numba
import numpy as np

from hepgan.reco.geometry import Geometry

__all__ = ["SeedingConfig", "find_seeds", "layer_triplets"]

_BARREL = 0
_DISK = 1
#: pT [GeV] = _PT_PER_MM_TESLA * B [T] * R [mm]   (0.3 GeV / (T m))
_PT_PER_MM_TESLA = 0.299792458e-3


@dataclass(frozen=True)
class SeedingConfig:
    """Cuts of the seeder, in physical units.

    Attributes:
        pt_min: minimum transverse momentum of the seed's helix (GeV); sets the phi windows.
        b_field: solenoid field (T).
        z0_max: half length of the luminous region along z (mm): the seed's r-z line must
            cross the beam line within ``|z0| <= z0_max``. 200 = 4 sigma of the 50 mm beam
            spot; 250 gives 19% more doublets and no more efficiency (-0.1%, at 100 x 50 and
            200 x 50; benchmarks/results/ablation-seeding.json).
        d0_max: maximum transverse impact parameter of the 3-point circle (mm). Primaries
            (what the efficiency counts) have tens of microns; 3 mm gives 12% more doublets
            and the same efficiency (ablation-seeding.json).
        d0_max_first_layer: the same when the inner hit is on the innermost barrel layer (mm);
            tighter because there d0 drives the inner phi window (d0 / r) and so the
            combinatorics; primaries have d0 of tens of microns.
        eta_max: maximum |pseudorapidity| of the seed's r-z line (the reconstructable range is
            |eta| < 2.5; the margin covers the vertex spread and resolution).
        hit_resolution: position resolution of a pixel hit (mm), both directions (ACTS generic
            digitisation: 15 microns).
        scattering_rphi, scattering_rz: effective multiple-scattering angle (rad) for
            pT = 1 GeV, scaled as 1/pT, of the third hit's residual against the line of the
            other two, in r-phi and across the track in r-z. Measured on ACTS generic-detector
            events (68% quantiles 0.0056 and 0.0025; r-phi is wider and has longer tails).
        window_sigma: half width of the third-hit search window, in units of the predicted
            residual width at pt_min (so 2 sigma at pt_min is 4 sigma at 2 pt_min). Measured
            on 100 x 50 / 200 x 50: 2 gives the same or better efficiency than 4 (fewer fakes
            compete for the per-middle slots) in 70% of the time.
        chi2_max: cut on the third hit's chi2 (2 residuals) with the width at the seed's own pT.
        max_seeds_per_middle: seeds kept per middle hit, confirmed first, then by chi2.
            A track has a seed at each of its middle hits already: 2 instead of 1 doubles
            the seeds into the features, +20% engine time, for +0.35% (100 x 50) and +0.6%
            (200 x 50) efficiency (ablation-seeding.json).
        confirmation_curvature: two triplets with the same middle hit that share their inner
            or outer hit and whose third hits are on different layers confirm each other
            when their curvatures (1/mm) agree within this plus 15% (a 4-hit track segment);
            confirmed seeds rank before unconfirmed ones, which suppresses fakes at pile-up.
        d0_sigma: ranking only: ``(d0 / d0_sigma)**2`` is added to the chi2 (mm); the 68%
            quantile of true seeds' d0 is 0.1 mm, fakes' median 0.4 mm.
        layer_margin: tolerance on the layer extents along the layer (mm) when tracing layer
            triplets and searching windows; across the layer 0.5 mm.
    """

    pt_min: float = 0.5
    b_field: float = 2.0
    z0_max: float = 200.0
    d0_max: float = 1.0
    d0_max_first_layer: float = 0.5
    eta_max: float = 2.7
    hit_resolution: float = 0.015
    scattering_rphi: float = 0.006
    scattering_rz: float = 0.003
    window_sigma: float = 2.0
    chi2_max: float = 25.0
    max_seeds_per_middle: int = 1
    confirmation_curvature: float = 0.00005
    d0_sigma: float = 0.1
    layer_margin: float = 5.0

    def __post_init__(self) -> None:
        for name in ("pt_min", "b_field", "z0_max", "d0_max", "d0_max_first_layer", "eta_max",
                     "hit_resolution", "scattering_rphi", "scattering_rz", "window_sigma", "chi2_max",
                     "confirmation_curvature", "d0_sigma"):  # fmt: skip
            if not getattr(self, name) > 0:
                raise ValueError(f"SeedingConfig.{name} must be > 0, got {getattr(self, name)!r}")
        if not 1 <= self.max_seeds_per_middle <= 16:
            raise ValueError(f"SeedingConfig.max_seeds_per_middle must be in 1..16, got {self.max_seeds_per_middle!r}")
        if self.layer_margin < 0:
            raise ValueError(f"SeedingConfig.layer_margin must be >= 0, got {self.layer_margin!r}")


# --------------------------------------------------------------------------- layer triplets
@functools.lru_cache(maxsize=16)
def _pixel_layers(geometry: Geometry) -> tuple:
    """Pixel layers of `geometry` as (geometry layer indices, Layer objects)."""
    index = [i for i, la in enumerate(geometry.layers) if la.volume_id in geometry.pixel_volumes]
    if not index:
        raise ValueError(f"geometry {geometry.name!r} has no pixel layers (pixel_volumes={geometry.pixel_volumes})")
    return tuple(index), tuple(geometry.layers[i] for i in index)


def _traced_triplets(geometry: Geometry, config: SeedingConfig) -> dict:
    """{(inner, middle, outer) geometry layer indices: [(r, z) of the 3 crossings per line]}."""
    return _trace(geometry, config.z0_max, config.eta_max, config.layer_margin)


@functools.lru_cache(maxsize=16)
def _trace(geometry: Geometry, z0_max: float, eta_max: float, m: float) -> dict:
    index, layers = _pixel_layers(geometry)
    z0, eta = np.meshgrid(np.linspace(-z0_max, z0_max, 41), np.linspace(-eta_max, eta_max, 541), indexing="ij")
    z0, cot = z0.ravel(), np.sinh(eta.ravel())
    n_lines, n_layers = z0.size, len(layers)
    r = np.full((n_lines, n_layers), np.inf)
    z = np.zeros((n_lines, n_layers))
    with np.errstate(divide="ignore", invalid="ignore"):
        for k, la in enumerate(layers):
            if la.is_barrel:
                zz = z0 + cot * la.position
                ok = (zz >= la.z_min - m) & (zz <= la.z_max + m)
                r[ok, k] = la.position
                z[:, k] = zz
            else:
                rr = (la.position - z0) / cot
                ok = (cot != 0.0) & (rr > 0.0) & (rr >= la.r_min - m) & (rr <= la.r_max + m)
                r[ok, k] = rr[ok]
                z[:, k] = la.position
    order = np.argsort(r, axis=1, kind="stable")
    n_cross = np.isfinite(r).sum(axis=1)
    found: dict[tuple[int, int, int], list] = {}
    for i in range(n_lines):
        seq = [(float(r[i, k]), float(z[i, k]), index[k]) for k in order[i, : n_cross[i]]]
        variants = []
        for k in range(len(seq) - 2):
            variants.append((seq[k], seq[k + 1], seq[k + 2]))
            if k + 3 < len(seq):
                variants.append((seq[k], seq[k + 1], seq[k + 3]))
                variants.append((seq[k], seq[k + 2], seq[k + 3]))
        for a_, b_, c_ in variants:
            found.setdefault((a_[2], b_[2], c_[2]), []).append((a_[:2], b_[:2], c_[:2]))
    return found


def layer_triplets(geometry: Geometry, config: SeedingConfig = SeedingConfig()) -> tuple[tuple[int, int, int], ...]:
    """Allowed (inner, middle, outer) pixel-layer triplets, as indices into ``geometry.layers``.

    Traced with straight lines in r-z from z0 in [-z0_max, z0_max] at |eta| <= eta_max: for
    each line, the pixel layers it crosses (within the extents +- layer_margin) in the order
    it crosses them; consecutive triplets and one-layer-skip variants are kept. Sorted.
    """
    return tuple(sorted(_traced_triplets(geometry, config)))


def _window_cost(layer, r_first: float, rm: float, zm: float, config: SeedingConfig) -> float:
    """Expected share of `layer`'s hits in the doublet window of a middle hit at (rm, zm)."""
    two_r = 2.0 * config.pt_min / (_PT_PER_MM_TESLA * config.b_field)
    lo, hi = sorted((r_first, rm))
    dphi = abs(math.asin(min(hi / two_r, 1.0)) - math.asin(min(lo / two_r, 1.0))) + config.d0_max * (1 / lo - 1 / hi)
    if layer.is_barrel:
        span = abs(config.z0_max * (1.0 - layer.position / rm)) * 2.0
        extent = min(layer.z_max - layer.z_min, 2.0 * (layer.position * math.sinh(config.eta_max) + config.z0_max))
    else:
        f1 = (layer.position + config.z0_max) / (zm + config.z0_max) if zm != -config.z0_max else 0.0
        f2 = (layer.position - config.z0_max) / (zm - config.z0_max) if zm != config.z0_max else 0.0
        span = abs(rm * (f1 - f2))
        extent = layer.r_max - layer.r_min
    return dphi / math.pi * min(span / extent, 1.0)


@functools.lru_cache(maxsize=16)
def _plan(geometry: Geometry, config: SeedingConfig) -> dict:
    """Flat arrays the kernel needs: pixel-layer table, grid shape, triplet plan, parameters.

    Each layer triplet is searched from its middle layer: first the doublet with the layer
    (inner or outer) whose window holds the smaller expected share of hits, then the third.
    """
    index, layers = _pixel_layers(geometry)
    n_layers = len(layers)
    dense = {gi: k for k, gi in enumerate(index)}
    to_pixel = np.full(len(geometry.layers), -1, np.int32)
    for gi, k in dense.items():
        to_pixel[gi] = k
    # extents: the margin along the layer (module edges, misalignment), 0.5 mm across it
    m = config.layer_margin
    kind = np.array([_BARREL if la.is_barrel else _DISK for la in layers], np.int32)
    pos = np.array([la.position for la in layers], np.float64)
    across = np.where(kind == _BARREL, 0.5, m)
    along = np.where(kind == _BARREL, m, 0.5)
    rmin = np.array([la.r_min for la in layers], np.float64) - across
    rmax = np.array([la.r_max for la in layers], np.float64) + across
    zmin = np.array([la.z_min for la in layers], np.float64) - along
    zmax = np.array([la.z_max for la in layers], np.float64) + along
    # two grids of the same hits: "coarse" (one row per layer, 1024 phi columns: each layer
    # sorted by phi) for the wide doublet windows, "fine" (rows of 15 mm in z for barrels, in
    # r for disks; 128 phi columns) for the small third-hit windows
    umin = np.where(kind == _BARREL, zmin, rmin)
    umax = np.where(kind == _BARREL, zmax, rmax)
    grids = {}
    for name, row_width, n_phi in (("coarse", None, 1024), ("fine", 15.0, 128)):
        if row_width is None:
            n_rows = np.ones(n_layers, np.int64)
        else:
            n_rows = np.maximum(1, np.ceil((umax - umin) / row_width)).astype(np.int64)
        base = np.zeros(n_layers + 1, np.int64)
        base[1:] = np.cumsum(n_rows * n_phi)
        grids[name] = (n_rows / (umax - umin), n_rows, base, n_phi)
    first = -1
    if any(la.is_barrel for la in layers):
        first = int(np.argmin([la.position if la.is_barrel else np.inf for la in layers]))
    # (middle, first, third): first = the doublet partner with the smaller expected window
    # (re-using doublet sets shared with other triplets was tried: it lost efficiency)
    choice = {}
    for (a, b, c), lines in sorted(_traced_triplets(geometry, config).items()):
        cost_in = sum(_window_cost(geometry.layers[a], pa[0], pb[0], pb[1], config) for pa, pb, _ in lines)
        cost_out = sum(_window_cost(geometry.layers[c], pc[0], pb[0], pb[1], config) for _, pb, pc in lines)
        choice[(a, b, c)] = (b, a, c) if cost_in <= cost_out else (b, c, a)
    plan = {(dense[b], dense[f], dense[g]) for b, f, g in choice.values()}
    pairs: list[tuple[int, int]] = []
    thirds: list[list[int]] = []
    for b, f, g in sorted(plan):
        if not pairs or pairs[-1] != (b, f):
            pairs.append((b, f))
            thirds.append([])
        thirds[-1].append(g)
    pair_middle = np.array([p[0] for p in pairs], np.int32)
    pair_first = np.array([p[1] for p in pairs], np.int32)
    pair_third_start = np.zeros(len(pairs) + 1, np.int32)
    pair_third_start[1:] = np.cumsum([len(o) for o in thirds])
    pair_thirds = np.array([c for o in thirds for c in o], np.int32)
    middle_pair_start = np.searchsorted(pair_middle, np.arange(n_layers + 1)).astype(np.int32)
    r_min_curv = config.pt_min / (_PT_PER_MM_TESLA * config.b_field)  # helix radius at pt_min (mm)
    params = np.array(
        [
            config.z0_max,  # 0
            r_min_curv,  # 1
            config.d0_max,  # 2
            config.d0_max_first_layer,  # 3
            math.sinh(config.eta_max),  # 4 max |cot theta|
            config.hit_resolution,  # 5
            config.scattering_rphi,  # 6
            config.scattering_rz,  # 7
            config.window_sigma,  # 8
            config.chi2_max,  # 9
            config.pt_min,  # 10
            _PT_PER_MM_TESLA * config.b_field,  # 11 GeV per mm of radius
            float(first),  # 12 innermost barrel layer (dense index), -1 if none
            float(config.max_seeds_per_middle),  # 13
            config.confirmation_curvature,  # 14
            config.d0_sigma,  # 15
        ],
        np.float64,
    )
    return {
        "to_pixel": to_pixel, "kind": kind, "pos": pos, "rmin": rmin, "rmax": rmax, "zmin": zmin,
        "zmax": zmax, "umin": umin, "grids": grids,
        "pair_first": pair_first, "pair_third_start": pair_third_start, "pair_thirds": pair_thirds,
        "middle_pair_start": middle_pair_start, "params": params,
    }  # fmt: skip


# --------------------------------------------------------------------------- numba kernels
_PI = math.pi
_TWO_PI = 2.0 * math.pi


@numba.njit(cache=True, inline="always")
def _wrap(d):
    if d >= _PI:
        return d - _TWO_PI
    if d < -_PI:
        return d + _TWO_PI
    return d


@numba.njit(cache=True)
def _build_grid(layer, phi, u, r, umin, uinv, n_rows, base, n_phi):
    """Counting sort of the pixel hits into cells (layer, row, phi column), then insertion sort
    by (phi, u, r) inside each cell, so each row is sorted by phi. Returns (order,
    cell_offsets): hit ``order[j]`` is the j-th in grid order and cell c holds
    ``order[cell_offsets[c]:cell_offsets[c + 1]]``."""
    n = layer.shape[0]
    n_cells = base[base.shape[0] - 1]
    cell = np.empty(n, np.int64)
    counts = np.zeros(n_cells + 1, np.int64)
    inv_phi = n_phi / _TWO_PI
    for i in range(n):
        la = layer[i]
        row = int((u[i] - umin[la]) * uinv[la])
        row = min(max(row, 0), n_rows[la] - 1)
        col = int((phi[i] + _PI) * inv_phi)
        col = min(max(col, 0), n_phi - 1)
        c = base[la] + row * n_phi + col
        cell[i] = c
        counts[c + 1] += 1
    for c in range(n_cells):
        counts[c + 1] += counts[c]
    offsets = counts.copy()
    fill = counts[:n_cells].copy()
    order = np.empty(n, np.int64)
    for i in range(n):
        c = cell[i]
        order[fill[c]] = i
        fill[c] += 1
    for c in range(n_cells):
        lo = offsets[c]
        hi = offsets[c + 1]
        for j in range(lo + 1, hi):
            h = order[j]
            k = j - 1
            while k >= lo:
                g = order[k]
                if phi[g] < phi[h] or (phi[g] == phi[h] and (u[g] < u[h] or (u[g] == u[h] and r[g] <= r[h]))):
                    break
                order[k + 1] = g
                k -= 1
            order[k + 1] = h
    return order, offsets


@numba.njit(cache=True, inline="always")
def _phi_ranges(phi_lo, phi_hi, rng):
    """[phi_lo, phi_hi] (may cross -pi/pi) as up to 2 ranges within [-pi, pi] in ``rng``;
    returns the number of ranges."""
    if phi_hi - phi_lo >= _TWO_PI:
        rng[0] = -_PI
        rng[1] = _PI
        return 1
    if phi_lo < -_PI:
        rng[0] = phi_lo + _TWO_PI
        rng[1] = _PI
        rng[2] = -_PI
        rng[3] = phi_hi
        return 2
    if phi_hi >= _PI:
        rng[0] = phi_lo
        rng[1] = _PI
        rng[2] = -_PI
        rng[3] = phi_hi - _TWO_PI
        return 2
    rng[0] = phi_lo
    rng[1] = phi_hi
    return 1


@numba.njit(cache=True, inline="always")
def _rows(la, u_lo, u_hi, umin, uinv, n_rows):
    lo = int(math.floor((u_lo - umin[la]) * uinv[la]))
    hi = int(math.floor((u_hi - umin[la]) * uinv[la]))
    return max(lo, 0), min(hi, n_rows[la] - 1)


@numba.njit(cache=True, inline="always")
def _first_in_row(offsets, row_base, phi, n_phi):
    """Grid position of the first cell of the row whose column holds `phi`."""
    col = int((phi + _PI) * (n_phi / _TWO_PI))
    col = min(max(col, 0), n_phi - 1)
    return offsets[row_base + col]


@numba.njit(cache=True)
def _line_window(la, kind, pos, rmin, rmax, zmin, zmax, rm, zm, z0_lo, z0_hi):
    """u range (z for a barrel, r for a disk) on layer `la` of the lines from (0, z0) with z0 in
    [z0_lo, z0_hi] through (rm, zm), and the smallest and largest radius there. ok=False if
    no such line reaches the layer."""
    if kind[la] == _BARREL:
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


_CAPACITY = 512  # triplet candidates held per middle hit (the worst chi2 makes way beyond)


@numba.njit(cache=True, error_model="numpy")  # degenerate geometry (dr = 0) gives inf and fails the windows instead of raising
def _seed_kernel(cx, cy, cz, cr, cphi, corder, c_offsets, c_base, c_nphi,
                 fz, fr, fphi, fx, fy, forder, f_offsets, f_base, f_nphi, f_uinv, f_nrows,
                 kind, pos, rmin, rmax, zmin, zmax, umin,
                 pair_first, pair_third_start, pair_thirds, middle_pair_start, params):  # fmt: skip
    """Triplets. ``c*`` are the pixel hits in coarse-grid order (each layer sorted by phi),
    ``f*`` in fine-grid order; ``corder``/``forder`` map grid positions to pixel-hit numbers.

    Returns ((n, 3) int64 pixel-hit numbers (inner, middle, outer), grouped by middle hit in
    fine-grid order, best first; counters: first-layer candidates, doublets, third-layer
    candidates, triplets passing, confirmed seeds kept)."""
    z0_max = params[0]
    r_curv = params[1]
    d0_max = params[2]
    d0_first = params[3]
    cot_max = params[4]
    res = params[5]
    th_xy = params[6]
    th_rz = params[7]
    nsig = params[8]
    chi2_max = params[9]
    pt_min = params[10]
    pt_per_mm = params[11]
    first_layer = int(params[12])
    keep = int(params[13])
    conf_k = params[14]
    d0_sigma = params[15]
    n_layers = kind.shape[0]
    n_hits = cx.shape[0]
    out = np.empty((n_hits * keep, 3), np.int64)
    n_out = 0
    stats = np.zeros(5, np.int64)
    rng = np.empty(4, np.float64)
    orng = np.empty(4, np.float64)
    # per-middle candidate buffer
    cand_in = np.empty(_CAPACITY, np.int64)
    cand_out = np.empty(_CAPACITY, np.int64)
    cand_lin = np.empty(_CAPACITY, np.int64)  # layer of the inner hit
    cand_lout = np.empty(_CAPACITY, np.int64)  # layer of the outer hit
    cand_chi2 = np.empty(_CAPACITY, np.float64)
    cand_kappa = np.empty(_CAPACITY, np.float64)
    cand_score = np.empty(_CAPACITY, np.float64)
    two_r = 2.0 * r_curv
    res2 = res * res
    win_xy = th_xy / pt_min  # scattering at pT = pt_min, per mm of radial lever arm
    win_rz = th_rz / pt_min
    for b in range(n_layers):
        p_lo = middle_pair_start[b]
        p_hi = middle_pair_start[b + 1]
        if p_lo == p_hi:
            continue
        # middle hits in fine-grid order (z or r rows, then phi): consecutive middle hits
        # have overlapping windows, so the grid cells they read stay in cache
        for m in range(f_offsets[f_base[b]], f_offsets[f_base[b + 1]]):
            xm = fx[m]
            ym = fy[m]
            zm = fz[m]
            rm = fr[m]
            phim = fphi[m]
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
                d0_cut = d0_first if (not f_outward and f == first_layer) else d0_max
                dphi_win = (
                    math.asin(min(r_out / two_r, 1.0)) - math.asin(min(r_in / two_r, 1.0))
                    + d0_cut * (1.0 / r_in - 1.0 / r_out) + 4.0 * res / r_in
                )
                n_seg = _phi_ranges(phim - dphi_win, phim + dphi_win, rng)
                f_barrel = kind[f] == _BARREL
                row_end = c_offsets[c_base[f + 1]]
                for s in range(n_seg):
                    ph_lo = rng[2 * s]
                    ph_hi = rng[2 * s + 1]
                    j = _first_in_row(c_offsets, c_base[f], ph_lo, c_nphi)
                    while j < row_end:
                        phj = cphi[j]
                        if phj > ph_hi:
                            break
                        h = j
                        j += 1
                        if phj < ph_lo:
                            continue
                        uj = cz[h] if f_barrel else cr[h]
                        if uj < u_lo or uj > u_hi:
                            continue
                        stats[0] += 1
                        # doublet (first-layer hit h, middle m), ordered by radius
                        if f_outward:
                            dr = cr[h] - rm
                            cot = (cz[h] - zm) / dr
                            z0 = zm - cot * rm
                            dphi = _wrap(phj - phim)
                        else:
                            dr = rm - cr[h]
                            cot = (zm - cz[h]) / dr
                            z0 = zm - cot * rm
                            dphi = _wrap(phim - phj)
                        if dr < 1.0 or abs(cot) > cot_max or abs(z0) > z0_max:
                            continue
                        stats[1] += 1
                        slope = dphi / dr  # dphi/dr of a circle through the beam line
                        sin_t = 1.0 / math.sqrt(1.0 + cot * cot)
                        for q in range(pair_third_start[p], pair_third_start[p + 1]):
                            g = pair_thirds[q]
                            # ---- window of the third hit along the doublet's line
                            g_barrel = kind[g] == _BARREL
                            if g_barrel:
                                rg_lo = rmin[g]
                                rg_hi = rmax[g]
                                # cheap reachability test before the window (50 mm margin)
                                zc = zm + cot * (pos[g] - rm)
                                if zc < zmin[g] - 50.0 or zc > zmax[g] + 50.0:
                                    continue
                            else:
                                # cheap reachability test: the line must head for the disk
                                if cot * pos[g] <= 0.0 or pos[g] * zm <= 0.0:
                                    continue
                                rc = rm + (pos[g] - zm) / cot
                                if rc < rmin[g] - 20.0 or rc > rmax[g] + 20.0:
                                    continue
                                rg1 = rm + (zmin[g] - zm) / cot
                                rg2 = rm + (zmax[g] - zm) / cot
                                rg_lo = max(min(rg1, rg2), rmin[g])
                                rg_hi = min(max(rg1, rg2), rmax[g])
                            if f_outward:  # the third hit is the inner one
                                rg_hi = min(rg_hi, rm - 1.0)
                            else:
                                rg_lo = max(rg_lo, rm + 1.0)
                            if rg_lo > rg_hi or rg_lo < 1.0:
                                continue
                            lever = max(abs(rg_hi - rm), abs(rg_lo - rm))
                            t = lever / dr
                            s_res2 = res2 * (2.0 + 2.0 * t + 2.0 * t * t)
                            # r-phi: the phi(r) line is a circle through the beam line, so inward
                            # a kink at the middle hit moves the third hit by only about
                            # lever * r_third / r_first (the origin pins the circle); the window
                            # uses half the lever at least, the chi2 below the full one
                            lever_xy = lever * (max(rg_hi / cr[h], 0.5) if f_outward else 1.0)
                            a_xy = win_xy * lever_xy
                            w_xy = nsig * math.sqrt(s_res2 + a_xy * a_xy)
                            a_rz = win_rz * lever
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
                                continue
                            ph1 = phim + slope * (rg_lo - rm)
                            ph2 = phim + slope * (rg_hi - rm)
                            wphi = w_xy / rg_lo
                            n_oseg = _phi_ranges(min(ph1, ph2) - wphi, max(ph1, ph2) + wphi, orng)
                            orow_lo, orow_hi = _rows(g, o_lo, o_hi, umin, f_uinv, f_nrows)
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
                                        rg = fr[o]
                                        drg = rg - rm
                                        # residuals of the third hit against the doublet
                                        res_rz = (fz[o] - (zm + cot * drg)) * sin_t
                                        t_o = abs(drg) / dr
                                        s_res2 = res2 * (2.0 + 2.0 * t_o + 2.0 * t_o * t_o)
                                        ms = win_rz * abs(drg)
                                        if res_rz * res_rz > nsig * nsig * (s_res2 + ms * ms):
                                            continue
                                        res_xy = _wrap(phk - (phim + slope * drg)) * rg
                                        ms = win_xy * (max(rg / cr[h], 0.5) * abs(drg) if f_outward else abs(drg))
                                        if res_xy * res_xy > nsig * nsig * (s_res2 + ms * ms):
                                            continue
                                        if f_outward:
                                            xa = fx[o]
                                            ya = fy[o]
                                            xo = cx[h]
                                            yo = cy[h]
                                            la_in = g
                                            la_out = f
                                        else:
                                            xa = cx[h]
                                            ya = cy[h]
                                            xo = fx[o]
                                            yo = fy[o]
                                            la_in = f
                                            la_out = g
                                        # exact circle through the three hits
                                        bx = xm - xa
                                        by = ym - ya
                                        ex = xo - xa
                                        ey = yo - ya
                                        det = 2.0 * (bx * ey - by * ex)
                                        if det == 0.0:
                                            continue
                                        b2 = bx * bx + by * by
                                        e2 = ex * ex + ey * ey
                                        ux = (ey * b2 - by * e2) / det
                                        uy = (bx * e2 - ex * b2) / det
                                        radius = math.sqrt(ux * ux + uy * uy)
                                        pt = pt_per_mm * radius
                                        if pt < pt_min:
                                            continue
                                        d0 = abs(math.sqrt((xa + ux) * (xa + ux) + (ya + uy) * (ya + uy)) - radius)
                                        if d0 > (d0_first if la_in == first_layer else d0_max):
                                            continue
                                        # chi2 with the scattering width at the seed's own pT
                                        ms_xy = th_xy / pt * abs(drg)
                                        ms_rz = th_rz / pt * abs(drg)
                                        chi2 = res_xy * res_xy / (s_res2 + ms_xy * ms_xy) + res_rz * res_rz / (s_res2 + ms_rz * ms_rz)
                                        if chi2 > chi2_max:
                                            continue
                                        # rank with the d0 too: primaries' d0 is ~0.1 mm, fakes' spread
                                        chi2 += (d0 / d0_sigma) * (d0 / d0_sigma)
                                        stats[3] += 1
                                        if n_cand == _CAPACITY:  # full: replace the worst if worse
                                            worst = 0
                                            for c in range(1, n_cand):
                                                if cand_chi2[c] > cand_chi2[worst]:
                                                    worst = c
                                            if cand_chi2[worst] <= chi2:
                                                continue
                                            c = worst
                                        else:
                                            c = n_cand
                                            n_cand += 1
                                        cand_in[c] = corder[h] if not f_outward else forder[o]
                                        cand_out[c] = forder[o] if not f_outward else corder[h]
                                        cand_lin[c] = la_in
                                        cand_lout[c] = la_out
                                        cand_chi2[c] = chi2
                                        # signed curvature: sign of the turn from inner to outer
                                        cand_kappa[c] = (1.0 / radius) if det > 0.0 else (-1.0 / radius)
            if n_cand == 0:
                continue
            # ---- confirmation: another triplet of this middle hit sharing the inner or the
            # outer hit, its third hit on another layer, with the same curvature
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
            # ---- keep `keep` seeds: even slots the best score (confirmed first), odd slots the
            # best chi2 left (so a track with only 3 pixel hits is not crowded out by
            # confirmed fakes); ties: first found
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
                out[n_out, 1] = forder[m]
                out[n_out, 2] = cand_out[kk]
                if cand_score[kk] < -500.0:
                    stats[4] += 1
                n_out += 1
    return out[:n_out], stats


# --------------------------------------------------------------------------- public API
def find_seeds(
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    volume_id: np.ndarray,
    layer_id: np.ndarray,
    *,
    geometry: Geometry,
    config: SeedingConfig = SeedingConfig(),
    layer: np.ndarray | None = None,
) -> np.ndarray:
    """Seeds of one event.

    Args:
        x, y, z: (n_hits,) hit positions (mm), float32 or float64.
        volume_id, layer_id: (n_hits,) int32 ids; hits outside the geometry's pixel layers are
            ignored.
        geometry: the detector (pixel layers = layers of ``geometry.pixel_volumes``).
        config: the cuts.
        layer: (n_hits,) ``geometry.layer_index(volume_id, layer_id)`` when the caller has it
            already (the engine needs it for the features too): saves recomputing it.

    Returns:
        (n_seeds, 3) int32 indices into the input hits (inner, middle, outer), on three
        different pixel layers with increasing radius. Deterministic: the order depends only
        on the hit coordinates (grouped by middle layer, then middle hit in grid order, best
        seed first), so permuting the input hits permutes the indices and nothing else.
    """
    x = np.asarray(x)
    n = x.shape[0]
    for name, arr in (("y", y), ("z", z), ("volume_id", volume_id), ("layer_id", layer_id)):
        if np.shape(arr) != (n,):
            raise ValueError(f"find_seeds: {name} has shape {np.shape(arr)}, expected ({n},) like x")
    plan = _plan(geometry, config)
    gl = geometry.layer_index(volume_id, layer_id) if layer is None else np.asarray(layer)
    if gl.shape != (n,):
        raise ValueError(f"find_seeds: layer has shape {gl.shape}, expected ({n},) like x")
    pl = plan["to_pixel"][np.where(gl >= 0, gl, 0)]
    pl = np.where(gl >= 0, pl, -1)
    sel = np.flatnonzero(pl >= 0)
    if sel.size < 3:
        return np.empty((0, 3), np.int32)
    layer = pl[sel].astype(np.int64)
    # coordinates in float64 for the arithmetic, stored float32 in the grids (half the memory
    # traffic; 1e-7 relative is far below the 15 micron resolution)
    px = np.asarray(x, np.float64)[sel]
    py = np.asarray(y, np.float64)[sel]
    pz = np.asarray(z, np.float64)[sel]
    pr = np.sqrt(px * px + py * py)
    pphi = np.arctan2(py, px)
    u = np.where(plan["kind"][layer] == _BARREL, pz, pr)
    sorted_hits = []
    for name in ("coarse", "fine"):
        uinv, n_rows, base, n_phi = plan["grids"][name]
        order, offsets = _build_grid(layer, pphi, u, pr, plan["umin"], uinv, n_rows, base, n_phi)
        sorted_hits.append((order, offsets, base, n_phi, uinv, n_rows))
    (corder, c_off, c_base, c_nphi, _, _), (forder, f_off, f_base, f_nphi, f_uinv, f_nrows) = sorted_hits
    f4 = np.float32
    trip, _ = _seed_kernel(
        px[corder].astype(f4), py[corder].astype(f4), pz[corder].astype(f4), pr[corder].astype(f4),
        pphi[corder].astype(f4), corder, c_off, c_base, c_nphi,
        pz[forder].astype(f4), pr[forder].astype(f4), pphi[forder].astype(f4), px[forder].astype(f4),
        py[forder].astype(f4), forder, f_off, f_base, f_nphi,
        f_uinv, f_nrows, plan["kind"], plan["pos"], plan["rmin"], plan["rmax"], plan["zmin"],
        plan["zmax"], plan["umin"], plan["pair_first"], plan["pair_third_start"], plan["pair_thirds"],
        plan["middle_pair_start"], plan["params"],
    )  # fmt: skip
    return sel[trip].astype(np.int32).reshape(-1, 3)
