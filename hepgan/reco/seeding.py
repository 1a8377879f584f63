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
2. *Grid.* The pixel hits are counting-sorted into a flat array: into z (barrel) / r (disk)
   rows of 15 mm x 128 phi columns (512 in dense events, ``GRID_PHI_COLUMNS``); each row is
   sorted by phi, so a window (the doublets' wide in phi, the third hits' small) is a few
   contiguous slices. Ties are broken by the coordinates, so the order does not depend on the
   input order of the hits.
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
   against the scattering width at the triplet's own pT cuts (with ``d0_in_rphi_chi2``, the
   r-phi residual beyond what a d0 within the cut explains). Per middle hit, triplets
   sharing a hit and agreeing in curvature with a triplet on another layer are
   "confirmed" (a 4-hit segment); the ``max_seeds_per_middle`` kept are alternately the best
   by (confirmed first, chi2 + (d0/d0_sigma)^2) and by that chi2 alone, from the confirmed
   ones only at middle hits of |eta| < ``confirmed_eta_max``.

Cost: the number of doublets grows as hits x density (hits^2 at fixed geometry), and so
does the third-hit search; at 200 x 50 it dominates (see benchmarks/bench_seeding.py).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from hepgan.errors import InputError
from hepgan.reco import hit_grid
from hepgan.reco import seeding_kernel as sk
from hepgan.reco.geometry import Geometry

__all__ = ["DUPLICATE_CURVATURE", "SeedingConfig", "drop_duplicate_seeds", "find_seeds", "layer_triplets"]

_BARREL = sk.BARREL
_DISK = sk.DISK
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
        d0_in_rphi_chi2: the third hit's r-phi residual enters the chi2 only beyond what a d0
            within the d0 cut explains (d0 bends phi(r) by d0 / r; the doublet's straight
            phi(r) goes through the beam line). Why: with the scattering width of a high-pT
            seed the plain residual allowed a d0 of a few tens of microns, far below the d0
            cut, so decay products of pT > 1 GeV with |d0| of 0.5-3 mm found no seed at all.
            On tuning events (ttbar 5001 / 5050 / 5200, shipped network unchanged) displaced
            efficiency (pT > 1 GeV) 276 -> 280 of 283 at pile-up 0, 131 -> 134 of 139 at 200,
            overall 1526 -> 1530 of 1534 at pile-up 0, fakes 0.52% -> 0.52% at 200, the
            guns unchanged. Off by default so that models keep the seeder they were made with
            (training/set_inference_seeding.py turns it on).
        confirmed_eta_max: middle hits with |eta| (seen from the origin) below this get seeds
            from confirmed triplets only (see ``confirmation_curvature``: a 4-hit segment); 0:
            none. At pile-up 200 a confirmed triplet is a true one 15 times in 16, an
            unconfirmed one 1 time in 7; 78% of the true ones are confirmed. Beyond |eta| 1.5,
            in the barrel-to-disk transition, a track's only triplets are often unconfirmed
            (tuning, seed 5200). Used by the engine's first pass
            (``hepgan.reco.assignment.AssignmentConfig.prompt_confirmed_eta_max``).
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
    d0_in_rphi_chi2: bool = False
    confirmed_eta_max: float = 0.0

    def __post_init__(self) -> None:
        for name in ("pt_min", "b_field", "z0_max", "d0_max", "d0_max_first_layer", "eta_max",
                     "hit_resolution", "scattering_rphi", "scattering_rz", "window_sigma", "chi2_max",
                     "confirmation_curvature", "d0_sigma"):  # fmt: skip
            if not getattr(self, name) > 0:
                msg = f"SeedingConfig.{name} must be > 0, got {getattr(self, name)!r}"
                raise InputError(msg)
        if not self.confirmed_eta_max >= 0:
            msg = f"SeedingConfig.confirmed_eta_max must be >= 0, got {self.confirmed_eta_max!r}"
            raise InputError(msg)
        if not 1 <= self.max_seeds_per_middle <= 16:
            msg = f"SeedingConfig.max_seeds_per_middle must be in 1..16, got {self.max_seeds_per_middle!r}"
            raise InputError(msg)
        if self.layer_margin < 0:
            msg = f"SeedingConfig.layer_margin must be >= 0, got {self.layer_margin!r}"
            raise InputError(msg)


# --------------------------------------------------------------------------- layer triplets
@functools.lru_cache(maxsize=16)
def _pixel_layers(geometry: Geometry) -> tuple:
    """Pixel layers of `geometry` as (geometry layer indices, Layer objects)."""
    index = [i for i, la in enumerate(geometry.layers) if la.volume_id in geometry.pixel_volumes]
    if not index:
        msg = f"geometry {geometry.name!r} has no pixel layers (pixel_volumes={geometry.pixel_volumes})"
        raise ValueError(msg)
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
    # the hits' grid: rows of 15 mm in z for barrels, in r for disks, GRID_PHI_COLUMNS phi
    # columns (where a row's phi look-up starts), by the event's pixel hits. Why one grid for
    # both searches: the doublet windows are wide in phi but short along the layer; a per-layer
    # phi sort (the doublets' grid until December 2026) scanned 3.7 times the hits in the window
    # at ttbar pile-up 200, and reading the rows they touch took the seeder 0.87x the time, the
    # same seeds (tuning seed 5200).
    umin = np.where(kind == _BARREL, zmin, rmin)
    umax = np.where(kind == _BARREL, zmax, rmax)
    grids = {n_phi: hit_grid.layout(umin, umax, 15.0, n_phi) for _, n_phi in GRID_PHI_COLUMNS}
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
    cuts = [0.0] * sk.N_CUTS
    cuts[sk.C_Z0_MAX] = config.z0_max
    cuts[sk.C_TWO_R] = 2.0 * r_min_curv
    cuts[sk.C_D0_MAX] = config.d0_max
    cuts[sk.C_D0_FIRST] = config.d0_max_first_layer
    cuts[sk.C_COT_MAX] = math.sinh(config.eta_max)
    cuts[sk.C_RES] = config.hit_resolution
    cuts[sk.C_RES2] = config.hit_resolution * config.hit_resolution
    cuts[sk.C_TH_XY] = config.scattering_rphi
    cuts[sk.C_TH_RZ] = config.scattering_rz
    cuts[sk.C_WIN_XY] = config.scattering_rphi / config.pt_min
    cuts[sk.C_WIN_RZ] = config.scattering_rz / config.pt_min
    cuts[sk.C_NSIG] = config.window_sigma
    cuts[sk.C_CHI2_MAX] = config.chi2_max
    cuts[sk.C_PT_MIN] = config.pt_min
    cuts[sk.C_PT_PER_MM] = _PT_PER_MM_TESLA * config.b_field  # GeV per mm of radius
    cuts[sk.C_FIRST_LAYER] = first
    cuts[sk.C_KEEP] = config.max_seeds_per_middle
    cuts[sk.C_CONF_K] = config.confirmation_curvature
    cuts[sk.C_D0_SIGMA] = config.d0_sigma
    cuts[sk.C_D0_RPHI] = 1.0 if config.d0_in_rphi_chi2 else 0.0
    cuts[sk.C_CONFIRMED_COT] = math.sinh(config.confirmed_eta_max)
    return {
        "to_pixel": to_pixel, "kind": kind, "pos": pos, "rmin": rmin, "rmax": rmax, "zmin": zmin,
        "zmax": zmax, "umin": umin, "grids": grids,
        "pair_first": pair_first, "pair_third_start": pair_third_start, "pair_thirds": pair_thirds,
        "middle_pair_start": middle_pair_start, "cuts": tuple(float(c) for c in cuts),
    }  # fmt: skip


#: phi columns of the seeder's grid: (least pixel hits of the event, columns), densest first.
#: Why two: more columns shorten the scan from a column's first hit to a window in dense
#: events (the seeder 0.93x the time at ttbar pile-up 200, 60k pixel hits, and on guns 100 x 50,
#: 26k), but every cell costs in the grid's counting sort, which made small events slower
#: (pile-up 0: 1.0 against 0.7 ms); at pile-up 50 (17k) they are even. The seeds are the same.
GRID_PHI_COLUMNS = ((20_000, 512), (0, 128))


# --------------------------------------------------------------------------- public API
#: curvature tolerance of :func:`drop_duplicate_seeds` (1/mm; plus 5% of the curvature)
DUPLICATE_CURVATURE = 5e-5


def drop_duplicate_seeds(x: np.ndarray, y: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """The seeds without those that share two hits and the curvature with an earlier one.

    Why: a track gets a seed at each of its middle hits, two per middle hit, and each seed
    costs a road (the features' largest part). A seed that shares a pair of hits with an
    earlier kept seed and whose three-hit circle has the same curvature (within
    DUPLICATE_CURVATURE plus 5%) is the same track segment. Dropped before the engine's first
    pass alone it lost tracks (tuning seed 5200: pT > 0.5 GeV 8733 -> 8720-8726 of 8930), whose
    hits the leftover pass seeds again: with it, on tuning events (seeds 5200, 5050, 5001, 3011,
    3100) 33-62% of the seeds go and the efficiency, fakes and TrackML score stay within one or
    two tracks of keeping them (pile-up 200: pT > 0.5 8818 against 8820 of 8930, TrackML 0.5456
    against 0.5466), for 10-22% less time. The engine drops them by default
    (``AssignmentConfig.drop_duplicate_seeds``); the shipped model's error model is fitted on the
    tracks it then makes.

    Args:
        x, y: (n_hits,) hit positions (mm); seeds: (n_seeds, 3) hit indices, in the order
            :func:`find_seeds` gives them (best first per middle hit).
    """
    seeds = np.asarray(seeds)
    if len(seeds) == 0:
        return seeds
    drop = sk.duplicate_seeds_kernel(
        np.asarray(x, np.float64), np.asarray(y, np.float64), seeds.astype(np.int64), len(x), DUPLICATE_CURVATURE
    )
    return seeds[~drop]


#: the kernel find_seeds calls (benchmarks/ablation_seeding.py wraps this name to count)
_seed_kernel = sk.seed_kernel


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
            msg = f"find_seeds: {name} has shape {np.shape(arr)}, expected ({n},) like x"
            raise ValueError(msg)
    plan = _plan(geometry, config)
    gl = geometry.layer_index(volume_id, layer_id) if layer is None else np.asarray(layer)
    if gl.shape != (n,):
        msg = f"find_seeds: layer has shape {gl.shape}, expected ({n},) like x"
        raise ValueError(msg)
    pl = plan["to_pixel"][np.where(gl >= 0, gl, 0)]
    pl = np.where(gl >= 0, pl, -1)
    sel = np.flatnonzero(pl >= 0)
    if sel.size < 3:
        return np.empty((0, 3), np.int32)
    layer = pl[sel].astype(np.int64)
    # coordinates in float64 for the arithmetic, stored float32 in the grid (half the memory
    # traffic; 1e-7 relative is far below the 15 micron resolution)
    px = np.asarray(x, np.float64)[sel]
    py = np.asarray(y, np.float64)[sel]
    pz = np.asarray(z, np.float64)[sel]
    pr = np.sqrt(px * px + py * py)
    pphi = np.arctan2(py, px)
    u = np.where(plan["kind"][layer] == _BARREL, pz, pr)
    uinv, n_rows, base, n_phi = plan["grids"][next(n for least, n in GRID_PHI_COLUMNS if sel.size >= least)]
    order, offsets = hit_grid.build_grid(layer, pphi, u, pr, plan["umin"], uinv, n_rows, base, n_phi)
    # coordinates in grid order, float32 (see above)
    coords = tuple(c[order].astype(np.float32) for c in (px, py, pz, pr, pphi))
    grid = (*coords, order, offsets, base, n_phi, uinv, n_rows)
    layers = tuple(plan[k] for k in ("kind", "pos", "rmin", "rmax", "zmin", "zmax", "umin"))
    pairs = tuple(plan[k] for k in ("pair_first", "pair_third_start", "pair_thirds", "middle_pair_start"))
    trip, _ = _seed_kernel(grid, layers, pairs, plan["cuts"])
    return sel[trip].astype(np.int32).reshape(-1, 3)
