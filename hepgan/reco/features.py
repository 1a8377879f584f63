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

Two passes (:func:`road_features`, then :func:`fit_features` of the seeds wanted;
:func:`build_features` is both over every seed): everything but the fit block, then the fit
block, so that the engine fits only the seeds its preselection keeps.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from hepgan.errors import InputError
from hepgan.reco.features_kernel import (
    N_FIT_HEAD,
    N_HELIX,
    N_SEED_HITS,
    PER_CANDIDATE,
    SLOT_HEAD,
    fit_kernel,
    index_kernel,
    road_kernel,
)
from hepgan.reco.geometry import GENERIC_DETECTOR, Geometry

__all__ = [
    "N_FIT_HEAD",
    "N_HELIX",
    "N_SEED_HITS",
    "FeatureConfig",
    "HitIndex",
    "LayerTable",
    "Road",
    "build_features",
    "feature_names",
    "fit_features",
    "hit_polar",
    "index_hits",
    "layer_table",
    "road_features",
]

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
                msg = f"FeatureConfig.{name} must be >= 1, got {getattr(self, name)!r}"
                raise InputError(msg)
        for name in ("window", "road_scale", "material", "min_width", "max_window"):
            if not getattr(self, name) > 0:
                msg = f"FeatureConfig.{name} must be > 0, got {getattr(self, name)!r}"
                raise InputError(msg)
        for volume, x in self.material_by_volume:
            if not x > 0:
                msg = f"FeatureConfig.material_by_volume: volume {volume} has x/X0 = {x!r}, expected > 0"
                raise InputError(msg)

    @property
    def n_features(self) -> int:
        slots = self.layers * (SLOT_HEAD + PER_CANDIDATE * self.candidates)
        fit = N_FIT_HEAD + self.layers * self.candidates + (N_SEED_AGREEMENT if self.seed_agreement else 0)
        return N_HELIX + N_SEED_HITS + slots + (fit if self.fit else 0)

    @property
    def fit_offset(self) -> int:
        """First column of the fit block (== n_features when there is none)."""
        return N_HELIX + N_SEED_HITS + self.layers * (SLOT_HEAD + PER_CANDIDATE * self.candidates)

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
    x: np.ndarray, y: np.ndarray, z: np.ndarray, layer: np.ndarray, table: LayerTable, phi_bins: int,
    polar: tuple[np.ndarray, np.ndarray] | None = None,
) -> HitIndex:  # fmt: skip
    """Build the per-layer phi-binned hit index of one event (x, y, z in mm, layer dense index).
    `polar`: the hits' ``(np.hypot(x, y), np.arctan2(y, x))`` of float64 x, y when the caller
    has them (the engine computes them once per event for both passes and the completion)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    z = np.asarray(z, dtype=np.float64)
    layer = np.asarray(layer, dtype=np.int32)
    r, phi = polar if polar is not None else hit_polar(x, y)
    n_layers = len(table.position)
    order, sorted_u, bin_start = index_kernel(r, phi, z, layer, table.is_endcap, n_layers, phi_bins)
    return HitIndex(x, y, r, phi, z, layer, order, sorted_u, bin_start, phi_bins)


def hit_polar(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(r, phi) of hits at float64 (x, y): what :func:`index_hits` and
    ``hepgan.reco.completion.complete_tracks`` take as ``polar``."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    return np.hypot(x, y), np.arctan2(y, x)


@dataclass(frozen=True)
class Road:
    """The first pass of :func:`build_features` over one event's seeds (:func:`road_features`):
    ``features`` (n_seeds, F) float32 complete but the fit block (zeros), and ``candidates``;
    the rest is what :func:`fit_features` needs for the fit block."""

    features: np.ndarray
    candidates: np.ndarray
    seeds: np.ndarray  # (n_seeds, 3) int64
    config: FeatureConfig
    kernel_args: tuple  # (hits, table, road, flags) tuples of hepgan.reco.features_kernel
    state: tuple  # hepgan.reco.features_kernel's ``state``


def road_features(
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    layer: np.ndarray,
    seeds: np.ndarray,
    *,
    config: FeatureConfig,
    table: LayerTable | None = None,
    geometry: Geometry = GENERIC_DETECTOR,
    polar: tuple[np.ndarray, np.ndarray] | None = None,
) -> Road:
    """Everything of :func:`build_features` (same arguments) but the fit block, which
    :func:`fit_features` adds for the seeds wanted; `polar` as :func:`index_hits` takes it.

    Why two passes: the fit is about half of the cost, and the engine's preselection
    (``hepgan.reco.ambiguity.preselect_seeds``) reads only the road columns and the
    candidates, and keeps about one seed in five at ttbar pile-up 200.
    """
    if table is None:
        table = layer_table(geometry, config)
    seeds = np.ascontiguousarray(seeds, dtype=np.int64).reshape(-1, 3)
    n_hits = len(x)
    if len(seeds) and (seeds.min() < 0 or seeds.max() >= n_hits):
        msg = f"seed hit indices must lie in [0, {n_hits}), got [{seeds.min()}, {seeds.max()}]"
        raise ValueError(msg)
    idx = index_hits(x, y, z, layer, table, config.phi_bins, polar)
    n, n_slots, n_cand = len(seeds), config.layers, config.candidates
    out = np.zeros((n, config.n_features), dtype=np.float32)
    cand = np.full((n, n_slots, n_cand), -1, dtype=np.int32)
    state = (
        np.empty(n, np.int64), np.empty((n, 5)), np.empty((n, n_slots + 3)), np.empty((n, n_slots, 2)),
        np.empty((n, n_slots)), np.empty((n, n_slots, n_cand)),
    )  # fmt: skip
    hits = (idx.x, idx.y, idx.r, idx.phi, idx.z, idx.layer)
    layers = (table.is_endcap, table.order, table.position, table.lo, table.hi, table.half_thickness,
              table.sigma0, table.material)  # fmt: skip
    road = (float(config.bfield), float(config.window), float(config.road_scale), float(config.min_width),
            float(config.max_window), float(config.acceptance_margin))  # fmt: skip
    flags = (bool(config.path_length), bool(config.fit), bool(config.fit and config.seed_agreement))
    if n:
        if (idx.layer[seeds] < 0).any():
            msg = "every seed hit must be on a known layer (layer index >= 0)"
            raise ValueError(msg)
        index = (idx.order, idx.sorted_u, idx.bin_start, idx.phi_bins)
        road_kernel(seeds, hits, index, layers, n_slots, n_cand, road, flags, out, cand, state)
    return Road(out, cand, seeds, config, (hits, layers, road, flags), state)


def fit_features(road: Road, rows: np.ndarray | None = None) -> np.ndarray:
    """The complete features of the seeds ``rows`` (indices into ``road.seeds``; ``None``: all
    of them, filled into ``road.features`` itself and returned), each row bit-identical to
    :func:`build_features`'s."""
    if rows is None:
        rows = np.arange(len(road.seeds), dtype=np.int64)
        out = road.features
    else:
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        out = road.features[rows]
    if road.config.fit and len(rows):
        hits, layers, params, flags = road.kernel_args
        config = road.config
        fit_kernel(rows, road.seeds, hits, layers, config.layers, config.candidates, params, flags, road.state,
                   road.candidates, out)  # fmt: skip
    return out


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
    int32)`` as described in the module docstring: :func:`road_features`, then
    :func:`fit_features` of every seed.
    """
    road = road_features(x, y, z, layer, seeds, config=config, table=table, geometry=geometry)
    return fit_features(road), road.candidates
