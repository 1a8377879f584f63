"""Condition features of seeds: what the generator sees of a seed and of the hits along its road.

For every seed (three hit indices, inner -> outer) :func:`build_features` returns

* ``features`` (n_seeds, F) float32, F = 14 + L * (4 + 3 K) + 8 + L K + 3 (the fit block only
  with ``FeatureConfig.fit``, its last 3 only with ``seed_agreement``), laid out as
  (names in :func:`feature_names`):

  ====================  ======================================================================
  columns               content (units)
  ====================  ======================================================================
  0-4                   seed helix (``hepgan.reco.helix.estimate_seed``): d0 (mm), z0 / 100 mm,
                        phi / pi, theta - pi/2 (rad), qop (e/GeV)
  5-13                  seed hits inner, middle, outer: r / 1000 mm, phi / pi, z / 1000 mm
  per slot l < L        the l-th surface the helix crosses after the outer seed hit (in order
                        of crossing, pixel and strip layers alike, seed layers excluded):
    +0                  layer code: (dense layer index + 1) / n_layers; 0 = no surface
    +1                  path length from the outer seed hit to the crossing / 1000 mm
    +2, +3              log10 of the road widths sigma_1, sigma_2 (mm; see below)
    +4 + 3k, k < K      k-th nearest hit on that surface: residual r*dphi / sigma_1,
                        residual dz (barrel) or dr (disk) / sigma_2, mask (1 = hit present)
  fit block, 8 columns  the helix fitted over the seed hits and one candidate per surface
                        (``hepgan.reco.roadfit``), encoded as columns 0-4; log10(1 + chi^2) of its
                        transverse and longitudinal projections; hits used / (L + 3), 0 when
                        the fit failed (its helix is then the seed's); then per slot l and
                        candidate k, 1 / (1 + chi^2) of the candidate to the fitted helix
                        (hit error plus the road's scattering; 0 when absent or no fit);
                        then log10(1 + chi^2) of the inner, middle and outer seed hit to it
                        (hit error and scattering at the seed surfaces before it; 0 when no
                        fit): wide, since a seed hit of another particle lies far off
  ====================  ======================================================================

  Everything of an absent slot or candidate is 0. Residuals are hit minus prediction; the
  prediction is the crossing with the nominal surface moved linearly along the helix to the
  hit's own radius (barrel) or z (disk), since modules are planes off the nominal surface.
* ``candidates`` (n_seeds, L, K) int32: the hit index of each candidate, -1 where none; the
  engine assigns hits from these, the dataset labels them.

Road width (why this formula): the prediction error at a surface reached after path length
``D`` (3D, mm) from the outer seed hit has three parts, added in quadrature with the hit
resolution of the surface:

* the seed curvature error ``dk`` (1/mm), from the hit resolution (``10 sigma_hit / L_T^2``,
  the sagitta error of three points over transverse lever arm ``L_T``) and from multiple
  scattering at the middle hit (``2 theta0 / (L_T sin(theta))``): the circle pinned to the
  seed deviates by ``dk (D_T^2 + L_T D_T) / 2`` at transverse distance ``D_T``;
* the seed dip-angle error from the middle-hit scattering, ``theta0 D_T / (sin^2(theta) L_T)``
  along the beam (barrel) or times tan(theta) along r (disk);
* multiple scattering at every surface crossed since the outer seed hit (and at it):
  ``theta0^2 sum_j (D - D_j)^2`` (projected along z or r by 1 / sin(theta) or 1 / |cos(theta)|),

with ``theta0 = 13.6 MeV / p * sqrt(x) (1 + 0.038 ln x)`` for a material ``x`` = x/X0 per
surface (``FeatureConfig.material``). Both widths are multiplied by ``FeatureConfig.road_scale``
(fit on ACTS tracks so the normalised residuals of true hits have unit width); a hit is a
candidate when within ``FeatureConfig.window`` road widths on both axes, and the K with the
smallest ``(res_1/sigma_1)^2 + (res_2/sigma_2)^2`` are kept.

Hits are binned per layer in ``FeatureConfig.phi_bins`` phi bins and sorted by z (barrel) or
r (disk) inside a bin, so a look-up touches only the hits of the road.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numba
import numpy as np

from hepgan.reco.geometry import GENERIC_DETECTOR, Geometry
from hepgan.reco.helix import _arc_angle, crossing_barrel, crossing_endcap, estimate_seed, perigee_to_circle
from hepgan.reco.roadfit import fit_road

__all__ = [
    "N_FIT_HEAD",
    "N_HELIX",
    "N_SEED_HITS",
    "FeatureConfig",
    "HitIndex",
    "LayerTable",
    "build_features",
    "feature_names",
    "index_hits",
    "layer_table",
]

N_HELIX = 5
N_SEED_HITS = 9
_SLOT_HEAD = 4
_PER_CANDIDATE = 3
#: columns of the fit block before its per-candidate agreements (see the module docstring)
N_FIT_HEAD = 8
#: columns of the seed hits' agreements at the end of the fit block
N_SEED_AGREEMENT = 3

#: Hit resolution (mm) of the two local coordinates per volume of the generic detector
#: (= ``hepgan.acts.chain.DIGI_SMEARING_MM``, copied because inference must not import pyacts;
#: a test checks they agree): pixel 50 x 50 um, short strip 80 um x 1.2 mm, long strip
#: 120 um x 10.8 mm, each pitch / sqrt(12).
GENERIC_RESOLUTION: tuple[tuple[int, float, float], ...] = tuple(
    (v, a / math.sqrt(12), b / math.sqrt(12))
    for vols, a, b in (((7, 8, 9), 0.05, 0.05), ((12, 13, 14), 0.08, 1.2), ((16, 17, 18), 0.12, 10.8))
    for v in vols
)


@dataclass(frozen=True)
class FeatureConfig:
    """Shape and road of the condition features.

    Attributes:
        layers: L, surfaces after the outer seed hit.
        candidates: K, nearest hits per surface.
        bfield: solenoid field along z (T).
        window: a hit is a candidate within this many road widths on both axes.
        road_scale: multiplies both road widths (calibrated on ACTS tracks).
        material: x / X0 per surface crossed, for the multiple-scattering angle of the road
            and of the fit. 0.04: on the 200 x 50 validation events the fit agrees with ACTS
            in z0 to 0.0378 / 0.0351 / 0.0338 / 0.0333 mm at 0.015 / 0.025 / 0.04 / 0.06, and
            end to end z0 went from 1.22x to 1.19x ACTS's resolution at 200 x 50 (0.025 -> 0.04).
        min_width: floor of both road widths (mm), for alignment and module-edge effects.
        max_window: cap (mm) of the candidate window's half width on both axes.
        acceptance_margin: a surface counts as crossed up to this far (mm) outside its extent.
        phi_bins: phi bins per layer of the hit index.
        resolution: (volume_id, sigma_loc0, sigma_loc1) hit resolution per volume (mm);
            loc0 is r*phi, loc1 is z in a barrel and r in a disk. Volumes not listed: 1 mm.
        fit: append the fit block (``hepgan.reco.roadfit``): the helix fitted over the seed and its
            road. Models exported before it existed have none (their metadata lacks the key).
        material_by_volume: (volume_id, x/X0) per surface of the listed volumes; the others
            have ``material``. Older models: none (their metadata lacks the key).
        path_length: scale each surface's x/X0 by the track's path through it (1 / sin(theta)
            for a barrel, 1 / |cos(theta)| for a disk) as Highland's formula wants. Measured on
            the validation events (pT > 1 GeV, fit - ACTS): q/p 0.563% -> 0.528%, z0 0.0328 ->
            0.0321 mm. A per-volume table (pixels against strips) did not help. Off in older
            models (their metadata lacks the key).
        seed_agreement: with ``fit``, append each seed hit's log10(1 + chi^2) to the fitted
            helix: what tells a seed with one hit of another particle from a real one (the
            track score's hardest fakes). Older models have none (metadata lacks the key).
    """

    layers: int = 10
    candidates: int = 4
    bfield: float = 2.0
    window: float = 5.0
    road_scale: float = 1.0
    material: float = 0.04
    min_width: float = 0.05
    max_window: float = 40.0
    acceptance_margin: float = 10.0
    phi_bins: int = 128
    resolution: tuple[tuple[int, float, float], ...] = GENERIC_RESOLUTION
    fit: bool = True
    seed_agreement: bool = True
    material_by_volume: tuple[tuple[int, float], ...] = ()
    path_length: bool = True

    def __post_init__(self) -> None:
        for name in ("layers", "candidates", "phi_bins"):
            if getattr(self, name) < 1:
                msg = f"FeatureConfig.{name} must be >= 1, got {getattr(self, name)}"
                raise ValueError(msg)
        for name in ("window", "road_scale", "material", "min_width", "max_window"):
            if not getattr(self, name) > 0:
                msg = f"FeatureConfig.{name} must be > 0, got {getattr(self, name)}"
                raise ValueError(msg)
        for volume, x in self.material_by_volume:
            if not x > 0:
                msg = f"FeatureConfig.material_by_volume: volume {volume} has x/X0 = {x}, expected > 0"
                raise ValueError(msg)

    @property
    def n_features(self) -> int:
        slots = self.layers * (_SLOT_HEAD + _PER_CANDIDATE * self.candidates)
        fit = N_FIT_HEAD + self.layers * self.candidates + (N_SEED_AGREEMENT if self.seed_agreement else 0)
        return N_HELIX + N_SEED_HITS + slots + (fit if self.fit else 0)

    @property
    def fit_offset(self) -> int:
        """First column of the fit block (== n_features when there is none)."""
        return N_HELIX + N_SEED_HITS + self.layers * (_SLOT_HEAD + _PER_CANDIDATE * self.candidates)

    def to_dict(self) -> dict:
        return asdict(self)


def feature_names(config: FeatureConfig) -> list[str]:
    """Column names of the feature matrix, in order (len == config.n_features)."""
    names = ["d0", "z0", "phi", "theta", "qop"]
    for which in ("inner", "middle", "outer"):
        names += [f"{which}_r", f"{which}_phi", f"{which}_z"]
    for layer in range(config.layers):
        names += [f"l{layer}_layer", f"l{layer}_path", f"l{layer}_log_sigma1", f"l{layer}_log_sigma2"]
        for k in range(config.candidates):
            names += [f"l{layer}_c{k}_res1", f"l{layer}_c{k}_res2", f"l{layer}_c{k}_mask"]
    if config.fit:
        names += ["fit_d0", "fit_z0", "fit_phi", "fit_theta", "fit_qop", "fit_log_chi2_t", "fit_log_chi2_z", "fit_hits"]
        names += [f"l{layer}_c{k}_fit_agreement" for layer in range(config.layers) for k in range(config.candidates)]
        if config.seed_agreement:
            names += ["inner_fit_log_chi2", "middle_fit_log_chi2", "outer_fit_log_chi2"]
    return names


@dataclass(frozen=True)
class LayerTable:
    """The geometry as numba-friendly arrays, one row per layer (dense layer index)."""

    is_endcap: np.ndarray  # (n_layers,) bool
    position: np.ndarray  # (n_layers,) float64, r (barrel) or z (disk), mm
    lo: np.ndarray  # (n_layers,) float64, extent along the surface: z_min (barrel) or r_min (disk)
    hi: np.ndarray  # (n_layers,) float64, z_max or r_max
    half_thickness: np.ndarray  # (n_layers,) float64, how far hits lie off the nominal surface (mm)
    sigma0: np.ndarray  # (n_layers, 2) float64, hit resolution along r*phi and z (barrel) / r (disk)
    order: np.ndarray  # (n_layers,) int64, layers by distance from the origin (nearest first)
    material: np.ndarray  # (n_layers,) float64, x/X0 of a surface at normal incidence


def layer_table(geometry: Geometry, config: FeatureConfig) -> LayerTable:
    res = {v: (a, b) for v, a, b in config.resolution}
    n = len(geometry.layers)
    is_endcap = np.array([not x.is_barrel for x in geometry.layers], dtype=np.bool_)
    position = np.array([x.position for x in geometry.layers], dtype=np.float64)
    lo = np.array([x.r_min if not x.is_barrel else x.z_min for x in geometry.layers], dtype=np.float64)
    hi = np.array([x.r_max if not x.is_barrel else x.z_max for x in geometry.layers], dtype=np.float64)
    thick = np.array(
        [
            max(abs(x.r_max - x.position), abs(x.position - x.r_min))
            if x.is_barrel
            else max(abs(x.z_max - x.position), abs(x.position - x.z_min))
            for x in geometry.layers
        ],
        dtype=np.float64,
    )
    sigma0 = np.array([res.get(x.volume_id, (1.0, 1.0)) for x in geometry.layers], dtype=np.float64).reshape(n, 2)
    # Visiting near layers first fills the list of the L nearest crossings early, so far layers
    # are rejected by the cheap arc-length bound.
    near = np.array([x.position if x.is_barrel else math.hypot(abs(x.position), x.r_min) for x in geometry.layers])
    order = np.argsort(near, kind="stable").astype(np.int64)
    by_volume = dict(config.material_by_volume)
    material = np.array([by_volume.get(x.volume_id, config.material) for x in geometry.layers], dtype=np.float64)
    return LayerTable(is_endcap, position, lo, hi, thick, sigma0, order, material)


@dataclass(frozen=True)
class HitIndex:
    """One event's hits in cylindrical coordinates, grouped per layer and phi bin.

    ``order`` (n_sorted,) int64 hit indices sorted by (layer, phi bin, u) with u = z (barrel)
    or r (disk); ``sorted_u`` their u; ``bin_start`` (n_layers * phi_bins + 1,) offsets into
    ``order``. Hits on no known layer are left out.
    """

    x: np.ndarray  # (n_hits,) float64 mm
    y: np.ndarray  # (n_hits,) float64 mm
    r: np.ndarray  # (n_hits,) float64 mm
    phi: np.ndarray  # (n_hits,) float64 rad
    z: np.ndarray  # (n_hits,) float64 mm
    layer: np.ndarray  # (n_hits,) int32 dense layer index, -1 unknown
    order: np.ndarray
    sorted_u: np.ndarray
    bin_start: np.ndarray
    phi_bins: int


def index_hits(
    x: np.ndarray, y: np.ndarray, z: np.ndarray, layer: np.ndarray, table: LayerTable, phi_bins: int
) -> HitIndex:
    """Build the per-layer phi-binned hit index of one event (x, y, z in mm, layer dense index)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    z = np.asarray(z, dtype=np.float64)
    layer = np.asarray(layer, dtype=np.int32)
    r = np.hypot(x, y)
    phi = np.arctan2(y, x)
    n_layers = len(table.position)
    order, sorted_u, bin_start = _index_kernel(r, phi, z, layer, table.is_endcap, n_layers, phi_bins)
    return HitIndex(x, y, r, phi, z, layer, order, sorted_u, bin_start, phi_bins)


@numba.njit(cache=True)
def _phi_bin(phi: float, phi_bins: int) -> int:
    b = int((phi + math.pi) * (phi_bins / (2.0 * math.pi)))
    if b < 0:
        return 0
    if b >= phi_bins:
        return phi_bins - 1
    return b


@numba.njit(cache=True)
def _index_kernel(r, phi, z, layer, is_endcap, n_layers, phi_bins):
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
    # Insertion sort by u inside each bin: bins hold a few to a few tens of hits.
    for b in range(n_bins):
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
    return order, sorted_u, bin_start


@numba.njit(cache=True)
def _theta0(p: float, material: float) -> float:
    """Highland multiple-scattering angle (rad) for momentum p (GeV) through x/X0 = material."""
    return 0.0136 / p * math.sqrt(material) * (1.0 + 0.038 * math.log(material))


@numba.njit(cache=True, inline="always")
def _surface_theta0(p: float, material: float, endcap: bool, sin_t: float, cos_t: float, path_length: bool) -> float:
    """Highland angle at one surface of x/X0 = material at normal incidence; with
    `path_length`, through the path the track takes across it (incidence floored at 0.1)."""
    if path_length:
        incidence = abs(cos_t) if endcap else abs(sin_t)
        material = material / max(incidence, 0.1)
    return _theta0(p, material)


@numba.njit(cache=True)
def _wrap(a: float) -> float:
    if a > math.pi:
        return a - 2.0 * math.pi
    if a < -math.pi:
        return a + 2.0 * math.pi
    return a


@numba.njit(cache=True)
def _lower_bound(a, lo, hi, v):
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] < v:
            lo = mid + 1
        else:
            hi = mid
    return lo


# error_model="numpy": no zero-division checks in the hot loop (divisors are guarded).
# fastmath without reassociation and contraction: with them, the kernel freshly compiled and
# the same kernel loaded from numba's cache gave features differing in the last bits (a Dask
# worker's tracks then differed from the single process's); without them they agree, at
# 103 against 97 ms/event at 100 x 50 (none at all: 135). Nothing here relies on NaN or inf.
@numba.njit(cache=True, error_model="numpy", fastmath={"nnan", "ninf", "nsz", "arcp", "afn"})
def _features_kernel(
    seeds,
    hx,
    hy,
    hr,
    hphi,
    hz,
    hlayer,
    order,
    sorted_u,
    bin_start,
    phi_bins,
    is_endcap,
    layer_order,
    position,
    lo_ext,
    hi_ext,
    half_thick,
    sigma0,
    n_slots,
    n_cand,
    bfield,
    window,
    road_scale,
    layer_material,
    path_length,
    min_width,
    max_window,
    margin,
    with_fit,
    with_seed_agreement,
    out,
    cand,
):
    n_layers = position.shape[0]
    slot_ms = np.empty(n_slots + 1, dtype=np.float64)
    # Highland angle per fit surface: the three seed hits', then each slot's
    surf_th0 = np.empty(n_slots + 3, dtype=np.float64)
    n_fit_max = 3 + n_slots * n_cand
    fx = np.empty(n_fit_max, dtype=np.float64)
    fy = np.empty(n_fit_max, dtype=np.float64)
    fz = np.empty(n_fit_max, dtype=np.float64)
    fs0 = np.empty(n_fit_max, dtype=np.float64)
    fs1 = np.empty(n_fit_max, dtype=np.float64)
    fend = np.empty(n_fit_max, dtype=np.bool_)
    fms = np.empty(n_fit_max, dtype=np.float64)
    fsurf = np.empty(n_fit_max, dtype=np.int64)
    fchi = np.empty(n_fit_max, dtype=np.float64)
    fcol = np.empty(n_fit_max, dtype=np.int64)
    fhit_chi2 = np.empty(n_fit_max, dtype=np.float64)
    spx = np.empty(n_slots + 3, dtype=np.float64)
    spy = np.empty(n_slots + 3, dtype=np.float64)
    fsel = np.empty(n_slots + 3, dtype=np.int64)
    fit_col = N_HELIX + N_SEED_HITS + n_slots * (_SLOT_HEAD + _PER_CANDIDATE * n_cand)
    slot_s = np.empty(n_slots + 1, dtype=np.float64)
    slot_layer = np.empty(n_slots + 1, dtype=np.int64)
    slot_d = np.empty(n_slots + 1, dtype=np.float64)
    slot_pos = np.empty((n_slots + 1, 5), dtype=np.float64)
    best_chi = np.empty(n_cand, dtype=np.float64)
    best_idx = np.empty(n_cand, dtype=np.int64)
    best_r1 = np.empty(n_cand, dtype=np.float64)
    best_r2 = np.empty(n_cand, dtype=np.float64)
    width = N_HELIX + N_SEED_HITS
    per_slot = _SLOT_HEAD + _PER_CANDIDATE * n_cand
    two_pi = 2.0 * math.pi
    bin_width = two_pi / phi_bins
    for i in range(seeds.shape[0]):
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
        xb = hx[b]
        yb = hy[b]
        xo = hx[c]
        yo = hy[c]
        d0, z0, phi, theta, qop, ok = estimate_seed(xa, ya, hz[a], xb, yb, hz[b], xo, yo, hz[c], bfield)
        if not ok:
            continue
        n_fit = 0
        for h in (a, b, c):
            fx[n_fit] = hx[h]
            fy[n_fit] = hy[h]
            fz[n_fit] = hz[h]
            fs0[n_fit] = sigma0[hlayer[h], 0]
            fs1[n_fit] = sigma0[hlayer[h], 1]
            fend[n_fit] = is_endcap[hlayer[h]]
            fms[n_fit] = 0.0
            fsurf[n_fit] = n_fit
            fchi[n_fit] = 0.0
            spx[n_fit] = fx[n_fit]
            spy[n_fit] = fy[n_fit]
            n_fit += 1
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
            surf_th0[j] = _surface_theta0(p, layer_material[lay], is_endcap[lay], sin_t, cos_t, path_length)
        th0_a = surf_th0[0]
        th0 = surf_th0[1]  # the middle hit's, for the seed's own curvature and dip errors
        th0_c = surf_th0[2]
        # Seed hits' scattering variance for their agreement with the fit: kinks at the seed
        # surfaces before each (inner: none), as the road's ms2 below.
        d_ab2 = (xb - xa) ** 2 + (yb - ya) ** 2 + (hz[b] - hz[a]) ** 2
        d_ac2 = (xo - xa) ** 2 + (yo - ya) ** 2 + (hz[c] - hz[a]) ** 2
        d_bc2 = (xo - xb) ** 2 + (yo - yb) ** 2 + (hz[c] - hz[b]) ** 2
        fms[1] = th0_a * th0_a * d_ab2
        fms[2] = th0_a * th0_a * d_ac2 + th0 * th0 * d_bc2
        # Perigee point, for arc lengths of the seed hits.
        dc = math.sqrt(xc * xc + yc * yc)
        px = xc - radius * xc / dc
        py = yc - radius * yc / dc
        s_in = radius * _arc_angle(xc, yc, px, py, xa, ya, hsense)
        s_out = radius * _arc_angle(xc, yc, px, py, xo, yo, hsense)
        lever = max(s_out - s_in, 1.0)
        # Seed curvature and dip errors (see the module docstring).
        dk_hit = 10.0 * sigma0[hlayer[b], 0] / (lever * lever)
        dk_ms = 2.0 * th0 / (lever * sin_t)
        dk = math.sqrt(dk_hit * dk_hit + dk_ms * dk_ms)
        ddip = th0 / (sin_t * sin_t * lever)
        # Surfaces crossed after the outer hit, the first n_slots of them by arc length. Cheap
        # rejections first (why: this loop over all layers is the fixed cost of every seed):
        # a barrel inside the outer hit's radius was crossed before it (r grows along the
        # outward half turn), a crossing further than the n_slots-th found is not needed, and
        # an arc from the outer hit to a barrel is at least as long as their radial distance.
        n_found = 0
        la = hlayer[a]
        lb = hlayer[b]
        lc = hlayer[c]
        r_out = hr[c]
        for li in range(n_layers):
            lay = layer_order[li]
            if lay == la or lay == lb or lay == lc:
                continue
            s_max = slot_s[n_slots - 1] if n_found == n_slots else 1e300
            if is_endcap[lay]:
                s = (position[lay] - z0) / cot if cot != 0.0 else -1.0
                if s <= s_out or s >= s_max:
                    continue
                s, x, y, zz, ux, uy, good = crossing_endcap(xc, yc, radius, hsense, phi, z0, cot, position[lay], s_out)
                if good:
                    rr = math.sqrt(x * x + y * y)
                    good = lo_ext[lay] - margin <= rr <= hi_ext[lay] + margin
            else:
                if position[lay] <= r_out or s_out + position[lay] - r_out >= s_max:
                    continue
                s, x, y, zz, ux, uy, good = crossing_barrel(xc, yc, radius, hsense, phi, z0, cot, position[lay], s_out)
                if good:
                    good = lo_ext[lay] - margin <= zz <= hi_ext[lay] + margin and s < s_max
            if not good:
                continue
            # insertion into the sorted list of the n_slots nearest crossings
            k = n_found if n_found < n_slots else n_slots
            while k > 0 and slot_s[k - 1] > s:
                if k < n_slots:
                    slot_s[k] = slot_s[k - 1]
                    slot_layer[k] = slot_layer[k - 1]
                    slot_pos[k, :] = slot_pos[k - 1, :]
                k -= 1
            slot_s[k] = s
            slot_layer[k] = lay
            slot_pos[k, 0] = x
            slot_pos[k, 1] = y
            slot_pos[k, 2] = zz
            slot_pos[k, 3] = ux
            slot_pos[k, 4] = uy
            if n_found < n_slots:
                n_found += 1
        # Path lengths from the outer hit, for the scattering sum.
        for l in range(n_found):
            slot_d[l] = (slot_s[l] - s_out) / sin_t
            lay = slot_layer[l]
            surf_th0[3 + l] = _surface_theta0(p, layer_material[lay], is_endcap[lay], sin_t, cos_t, path_length)
        for l in range(n_found):
            lay = slot_layer[l]
            s = slot_s[l]
            endcap = is_endcap[lay]
            x = slot_pos[l, 0]
            y = slot_pos[l, 1]
            zz = slot_pos[l, 2]
            ux = slot_pos[l, 3]
            uy = slot_pos[l, 4]
            rr = math.sqrt(x * x + y * y)
            pphi = math.atan2(y, x)
            dist = slot_d[l]
            dt = s - s_out
            # Scattering at the outer seed hit's surface and every slot surface before this one.
            ms2 = th0_c * th0_c * dist * dist
            for m in range(l):
                ms2 += surf_th0[3 + m] * surf_th0[3 + m] * (dist - slot_d[m]) ** 2
            slot_ms[l] = ms2
            curv = dk * (dt * dt + lever * dt) / 2.0
            s1 = math.sqrt(sigma0[lay, 0] ** 2 + curv * curv + ms2)
            if endcap:
                dip = ddip * dt * abs(sin_t / cos_t)
                s2 = math.sqrt(sigma0[lay, 1] ** 2 + dip * dip + ms2 / (cos_t * cos_t))
            else:
                dip = ddip * dt
                s2 = math.sqrt(sigma0[lay, 1] ** 2 + dip * dip + ms2 / (sin_t * sin_t))
            s1 = max(s1 * road_scale, min_width)
            s2 = max(s2 * road_scale, min_width)
            base = width + l * per_slot
            out[i, base] = (lay + 1.0) / n_layers
            out[i, base + 1] = dist / 1000.0
            out[i, base + 2] = math.log10(s1)
            out[i, base + 3] = math.log10(s2)
            # Local derivatives to move the prediction from the nominal surface to a hit off it:
            # barrel: per unit r; disk: per unit z. ds/dr = 1 / (radial part of the direction).
            cr = (x * ux + y * uy) / rr
            dphi_ds = (x * uy - y * ux) / (rr * rr)
            if endcap:
                ds_dn = abs(sin_t / cos_t) * (1.0 if cos_t > 0 else -1.0)  # ds/dz
                dphi_dn = dphi_ds * ds_dn
                du_dn = cr * ds_dn  # dr/dz
            else:
                if abs(cr) < 0.05:
                    cr = 0.05 if cr >= 0 else -0.05
                dphi_dn = dphi_ds / cr
                du_dn = cot / cr  # dz/dr
            upred = rr if endcap else zz
            slack_u = abs(du_dn) * half_thick[lay]
            slack_phi = abs(dphi_dn) * half_thick[lay]
            # The cap bounds the look-up cost of seeds with a poorly known curvature (short
            # transverse lever arm, far surfaces) at the price of a few hits (measured).
            w1 = min(window * s1, max_window)
            w2 = min(window * s2, max_window)
            rmin_road = max(rr - (w2 + slack_u if endcap else 0.0), 1.0)
            dphi_win = w1 / rmin_road + slack_phi
            n_best = 0
            if dphi_win >= math.pi:
                b_lo = 0
                b_n = phi_bins
            else:
                # first bin of the window (wrapped across -pi), and enough bins to cover it
                b_lo = _phi_bin(_wrap(pphi - dphi_win), phi_bins)
                b_n = min(int(2.0 * dphi_win / bin_width) + 2, phi_bins)
            for bb in range(b_n):
                bin_ = (b_lo + bb) % phi_bins
                key = lay * phi_bins + bin_
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
                    chi = (r1 / s1) ** 2 + (r2 / s2) ** 2
                    k = n_best if n_best < n_cand else n_cand
                    if k == n_cand and chi >= best_chi[n_cand - 1]:
                        continue
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
                    if n_best < n_cand:
                        n_best += 1
            for k in range(n_best):
                q = base + _SLOT_HEAD + _PER_CANDIDATE * k
                out[i, q] = best_r1[k] / s1
                out[i, q + 1] = best_r2[k] / s2
                out[i, q + 2] = 1.0
                cand[i, l, k] = best_idx[k]
                hit = best_idx[k]
                fx[n_fit] = hx[hit]
                fy[n_fit] = hy[hit]
                fz[n_fit] = hz[hit]
                fs0[n_fit] = sigma0[lay, 0]
                fs1[n_fit] = sigma0[lay, 1]
                fend[n_fit] = endcap
                fms[n_fit] = slot_ms[l]
                fsurf[n_fit] = 3 + l
                fchi[n_fit] = best_chi[k]
                fcol[n_fit] = l * n_cand + k
                n_fit += 1
        if with_fit:
            for l in range(n_found):
                spx[3 + l] = slot_pos[l, 0]
                spy[3 + l] = slot_pos[l, 1]
            g_d0, g_z0, g_phi, g_theta, g_qop, chi2_t, chi2_z, n_used, fit_ok = fit_road(
                fx, fy, fz, fs0, fs1, fend, fms, fsurf, fchi, n_fit, spx, spy, 3 + n_found, surf_th0,
                d0, z0, phi, theta, qop, bfield, fsel, fhit_chi2,
            )
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


def build_features(
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    layer: np.ndarray,
    seeds: np.ndarray,
    *,
    config: FeatureConfig,
    table: LayerTable | None = None,
    geometry: Geometry = GENERIC_DETECTOR,
) -> tuple[np.ndarray, np.ndarray]:
    """Condition features of one event's seeds.

    x, y, z: (n_hits,) hit positions (mm); layer: (n_hits,) dense layer index of each hit in
    ``geometry.layers`` (``geometry.layer_index``; -1 = unknown, never a candidate); seeds:
    (n_seeds, 3) hit indices (inner, middle, outer). ``table`` (from :func:`layer_table`) may
    be passed to save rebuilding it per event.

    Returns ``(features (n_seeds, config.n_features) float32, candidates (n_seeds, L, K)
    int32)`` as described in the module docstring.
    """
    if table is None:
        table = layer_table(geometry, config)
    seeds = np.ascontiguousarray(seeds, dtype=np.int64).reshape(-1, 3)
    n_hits = len(x)
    if len(seeds) and (seeds.min() < 0 or seeds.max() >= n_hits):
        msg = f"seed hit indices must lie in [0, {n_hits}), got [{seeds.min()}, {seeds.max()}]"
        raise ValueError(msg)
    idx = index_hits(x, y, z, layer, table, config.phi_bins)
    out = np.zeros((len(seeds), config.n_features), dtype=np.float32)
    cand = np.full((len(seeds), config.layers, config.candidates), -1, dtype=np.int32)
    if len(seeds):
        if (idx.layer[seeds] < 0).any():
            msg = "every seed hit must be on a known layer (layer index >= 0)"
            raise ValueError(msg)
        _features_kernel(
            seeds,
            idx.x,
            idx.y,
            idx.r,
            idx.phi,
            idx.z,
            idx.layer,
            idx.order,
            idx.sorted_u,
            idx.bin_start,
            idx.phi_bins,
            table.is_endcap,
            table.order,
            table.position,
            table.lo,
            table.hi,
            table.half_thickness,
            table.sigma0,
            config.layers,
            config.candidates,
            float(config.bfield),
            float(config.window),
            float(config.road_scale),
            table.material,
            bool(config.path_length),
            float(config.min_width),
            float(config.max_window),
            float(config.acceptance_margin),
            bool(config.fit),
            bool(config.fit and config.seed_agreement),
            out,
            cand,
        )
    return out, cand
