"""Truth perigee parameters, residuals, resolutions and pulls against truth.

Perigee parameters follow ACTS: the reference line is the z axis, the point of closest approach
is ``(-d0 sin(phi), d0 cos(phi), z0)``, i.e. ``d0 > 0`` when the z axis lies to the right of
the momentum direction in the transverse plane (ACTS ``LineSurface``: the local x axis is
``z_hat x p_hat``). A positive particle in a field along +z turns clockwise seen from +z.

Resolution is the 68% core width ``(q84 - q16) / 2``, with q16 and q84 the 15.87% and 84.13%
quantiles (the exact one-sigma quantiles, so that a Gaussian gives its sigma).

Units: mm (d0, z0), rad (phi, theta), e/GeV (qop), GeV (pT), tesla (bfield).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import awkward as ak
import numpy as np

from hepgan.errors import InputError
from hepgan.io.schema import TRACK_PARAMETERS
from hepgan.perf.metrics._common import jagged, json_float, offsets, same_counts, unflatten
from hepgan.perf.metrics.efficiency import particle_kinematics
from hepgan.perf.metrics.matching import MatchResult

__all__ = [
    "C_GEV_PER_T_MM",
    "PERIGEE_PARAMETERS",
    "Residuals",
    "core_width",
    "perigee_from_vertex",
    "resolution_summary",
    "track_residuals",
    "truth_perigee",
    "wrap_phi",
]

PERIGEE_PARAMETERS: tuple[str, ...] = tuple(TRACK_PARAMETERS)

#: pT [GeV] = C * |q| [e] * B [T] * R [mm]: the speed of light in GeV / (e T mm).
C_GEV_PER_T_MM = 0.299792458e-3

# The one-sigma quantiles of a Gaussian: (q84 - q16) / 2 is then exactly sigma.
_Q16 = 0.5 * (1.0 - math.erf(1.0 / math.sqrt(2.0)))
_Q84 = 1.0 - _Q16


def wrap_phi(x):
    """Angle(s) wrapped to [-pi, pi)."""
    return np.mod(np.asarray(x, dtype=np.float64) + np.pi, 2.0 * np.pi) - np.pi


def perigee_from_vertex(vx, vy, vz, px, py, pz, q, *, bfield: float = 2.0) -> dict[str, np.ndarray]:
    """Perigee (w.r.t. the z axis) of helices from their production point and momentum.

    Args: arrays of one shape (broadcast): vertex vx, vy, vz [mm], momentum px, py, pz [GeV],
    charge q [e]; `bfield` [T] along +z.
    Returns: {'d0' [mm], 'z0' [mm], 'phi' [rad, in [-pi, pi)], 'theta' [rad], 'qop' [e/GeV]},
    float64 arrays; NaN where pT = 0.

    The transverse motion is a circle of signed curvature ``kappa = q B C / pT`` [1/mm]
    (``phi(s) = phi0 - kappa s`` with s the transverse path length: positive particles turn
    clockwise in a field along +z). The perigee is the point of the circle nearest the z axis,
    reached by turning less than half a turn forwards or backwards from the vertex. Closed forms
    that stay exact as kappa -> 0 (straight lines, neutral particles):

        d0  = -(kappa |r0|^2 + 2 r0.u) / (1 + |kappa r0 + u|),   u = (sin phi0, -cos phi0)
        phi = atan2(sin phi0 + kappa vx, cos phi0 - kappa vy)
        s   = atan2(-kappa r0.t, 1 + kappa r0.u) / kappa,         t = (cos phi0, sin phi0)
        z0  = vz + s cot(theta)

    d0 follows ACTS: the perigee point is ``(-d0 sin phi, d0 cos phi)``.
    """
    arrs = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (vx, vy, vz, px, py, pz, q)))
    vx, vy, vz, px, py, pz, q = arrs
    pt = np.hypot(px, py)
    with np.errstate(divide="ignore", invalid="ignore"):
        phi0 = np.arctan2(py, px)
        theta = np.arctan2(pt, pz)
        qop = q / np.hypot(pt, pz)
        kappa = np.where(pt > 0, q * bfield * C_GEV_PER_T_MM / pt, np.nan)
        s0, c0 = np.sin(phi0), np.cos(phi0)
        r0t = vx * c0 + vy * s0
        r0u = vx * s0 - vy * c0
        ax = s0 + kappa * vx
        ay = c0 - kappa * vy
        d0 = -(kappa * (vx * vx + vy * vy) + 2.0 * r0u) / (1.0 + np.hypot(ax, ay))
        phi = np.arctan2(ax, ay)
        dphi = np.arctan2(-kappa * r0t, 1.0 + kappa * r0u)
        s = np.where(kappa == 0, -r0t, dphi / np.where(kappa == 0, 1.0, kappa))
        z0 = vz + s * pz / pt
    bad = ~(pt > 0)
    out = {"d0": d0, "z0": z0, "phi": wrap_phi(phi), "theta": theta, "qop": qop}
    return {k: np.where(bad, np.nan, v) for k, v in out.items()}


def truth_perigee(particles, *, bfield: float = 2.0) -> dict[str, ak.Array]:
    """`perigee_from_vertex` of every particle: {'d0', 'z0', 'phi', 'theta', 'qop'} -> var * float64."""
    cols = {}
    counts = None
    for n in ("vx", "vy", "vz", "px", "py", "pz", "q"):
        cols[n], counts = jagged(particles, f"particle_{n}", "particles", np.float64)
    par = perigee_from_vertex(**cols, bfield=bfield)
    return {k: unflatten(v, counts) for k, v in par.items()}


@dataclass(frozen=True)
class Residuals:
    """Residuals (track - truth) of the selected matched tracks, all arrays (n_selected,).

    residual[p], pull[p] for p in PERIGEE_PARAMETERS (phi residual wrapped to [-pi, pi);
    pull = residual / track_err_p, NaN where the error is not > 0 or pulls were not asked for);
    particle_pt [GeV], particle_eta; event and track (index in the event) of each entry.
    """

    residual: dict[str, np.ndarray]
    pull: dict[str, np.ndarray]
    particle_pt: np.ndarray
    particle_eta: np.ndarray
    event: np.ndarray
    track: np.ndarray


def track_residuals(
    tracks,
    particles,
    match: MatchResult,
    *,
    bfield: float = 2.0,
    include_duplicates: bool = False,
    particle_mask=None,
    pulls: bool = True,
) -> Residuals:
    """Residuals and pulls of matched tracks against their particle's `truth_perigee`.

    Args:
        tracks: ``track_<p>`` and, when `pulls`, ``track_err_<p>`` for the five parameters.
        particles: as `truth_perigee`.
        match: `match_tracks` of the same events.
        include_duplicates: also use duplicate tracks (default: the good track per particle).
        particle_mask: optional var * bool per particle (e.g. `efficiency_denominator`); only
            tracks of selected particles are used.
        pulls: compute pulls (needs the ``track_err_*`` fields).
    Tracks matched to a particle id missing from `particles` are skipped (no truth).
    """
    matched = np.asarray(ak.flatten(match.track_matched), dtype=np.bool_)
    dup = np.asarray(ak.flatten(match.track_is_duplicate), dtype=np.bool_)
    pidx = np.asarray(ak.flatten(match.track_particle_index), dtype=np.int64)
    tc = np.asarray(ak.num(match.track_matched, axis=1), dtype=np.int64)
    _, p_counts = jagged(particles, "particle_id", "particles", np.int64)
    if len(p_counts) != len(tc):
        msg = f"particles must hold the same events as match; got {len(p_counts)} and {len(tc)}"
        raise InputError(msg)
    sel = matched & (pidx >= 0)
    if not include_duplicates:
        sel &= ~dup
    n_ev = len(tc)
    trk_ev = np.repeat(np.arange(n_ev), tc)
    g = offsets(p_counts)[trk_ev] + pidx
    if particle_mask is not None:
        pm = np.asarray(ak.flatten(ak.Array(particle_mask)), dtype=np.bool_)
        if len(pm) != int(p_counts.sum()):
            msg = f"particle_mask must have one entry per particle; got {len(pm)}"
            raise InputError(msg)
        sel &= np.where(pidx >= 0, pm[np.where(pidx >= 0, g, 0)], False)
    idx = np.flatnonzero(sel)
    gi = g[idx]
    truth_all = truth_perigee(particles, bfield=bfield)
    truth = {k: np.asarray(ak.flatten(v), dtype=np.float64)[gi] for k, v in truth_all.items()}
    res, pull = {}, {}
    for p in PERIGEE_PARAMETERS:
        val, c = jagged(tracks, f"track_{p}", "tracks", np.float64)
        same_counts(c, tc, f"tracks['track_{p}'] vs match")
        r = val[idx] - truth[p]
        res[p] = wrap_phi(r) if p == "phi" else r
        if pulls:
            err, _ = jagged(tracks, f"track_err_{p}", "tracks", np.float64)
            e = err[idx]
            with np.errstate(divide="ignore", invalid="ignore"):
                pull[p] = np.where(e > 0, res[p] / np.where(e > 0, e, 1.0), np.nan)
        else:
            pull[p] = np.full(len(idx), np.nan)
    pt, eta = (np.asarray(ak.flatten(a), dtype=np.float64)[gi] for a in particle_kinematics(particles))
    return Residuals(res, pull, pt, eta, trk_ev[idx], idx - offsets(tc)[trk_ev[idx]])


def core_width(x) -> float:
    """68% core width of a sample: (q84 - q16) / 2 over the finite values (NaN if none).

    For a Gaussian this is its sigma; unlike the RMS it ignores the tails."""
    x = np.asarray(x, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return float("nan")
    q16, q84 = np.quantile(x, [_Q16, _Q84])
    return float(0.5 * (q84 - q16))


def _summary(r: np.ndarray, pl: np.ndarray) -> dict:
    fin = pl[np.isfinite(pl)]
    return {
        "n": int(len(r)),
        "resolution": json_float(core_width(r)),
        "bias": json_float(float(np.median(r)) if len(r) else float("nan")),
        "pull_width": json_float(core_width(pl)),
        "pull_mean": json_float(float(np.median(fin)) if len(fin) else float("nan")),
    }


def resolution_summary(res: Residuals, *, pt_bins: Sequence[float] | None = None) -> dict:
    """Per parameter: n, resolution (`core_width` of the residuals), bias (median residual),
    pull_width (`core_width` of the pulls) and pull_mean (median pull). Units as the parameter.

    Without `pt_bins`: {param: {...}}. With `pt_bins` (edges in GeV, bins [lo, hi)):
    {param: {"pt_edges": [...], "bins": [{...} per bin]}}. JSON-serialisable (NaN -> None).
    """
    out = {}
    for p in PERIGEE_PARAMETERS:
        r, pl = res.residual[p], res.pull[p]
        if pt_bins is None:
            out[p] = _summary(r, pl)
            continue
        edges = np.asarray(pt_bins, dtype=np.float64)
        if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
            msg = f"pt_bins must be at least 2 increasing edges; got {pt_bins!r}"
            raise InputError(msg)
        bins = []
        for lo, hi in zip(edges[:-1], edges[1:], strict=True):
            m = (res.particle_pt >= lo) & (res.particle_pt < hi)
            bins.append(_summary(r[m], pl[m]))
        out[p] = {"pt_edges": [float(x) for x in edges], "bins": bins}
    return out

