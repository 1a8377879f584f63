"""Tracking performance: matching, efficiency, fake and duplicate rates, TrackML score,
truth perigee parameters, residuals, resolutions and pulls (DESIGN.md, "Metrics").

One module used by the tests, the benchmarks and the reports. Pure numpy plus small numba
kernels for the per-track loops; no I/O. Inputs are awkward arrays (or mappings of arrays) in the
file layout of `hepgan.io.schema`, one entry per event, with flat branch names as uproot reads them:

- ``hits``: ``hit_particle_id`` (var * int64, 0 = noise); for the TrackML score also the hit
  positions ``hit_tx, hit_ty, hit_tz`` (true) or ``hit_x, hit_y, hit_z`` (measured), mm.
- ``particles``: ``particle_id`` (var * int64), ``particle_q`` (e), ``particle_px/py/pz`` (GeV),
  ``particle_vx/vy/vz`` (mm), ``particle_primary`` (bool).
- ``tracks``: ``track_d0, track_z0, track_phi, track_theta, track_qop`` (mm, mm, rad, rad,
  e/GeV) and ``track_err_*``; ``track_nhits`` (var * int32) and ``track_hit_index``
  (var * int32: the event's hit indices of all its tracks, concatenated in track order).

Conventions (decisions recorded here, referred to by the docstrings below):

- **Matching** is ACTS double matching: a track's majority particle is the non-noise particle
  with most hits on the track (ties: the one whose own hit count is smaller, i.e. the larger
  fraction of it is on the track, then the lower particle id); the track matches it when
  ``n_shared / track_nhits >= 0.5`` (noise hits count in the track's hits, so noise lowers the
  purity but never matches) and ``n_shared / particle_hits >= 0.5``, where ``particle_hits`` is
  the number of hits in the event carrying that particle id. Per particle the matching track with
  most shared hits (ties: lower track index) is good, the other matching tracks are duplicates;
  tracks that match nothing are fakes.
- **TrackML score** follows trackml-library: hit weight = order weight x pT weight, normalised to
  sum 1 per event; a track scores the weight of its majority particle's hits when strictly more
  than half of the track's hits and strictly more than half of the particle's hits are shared.
  Hits of a particle are ordered by their 3D distance from the particle's production vertex
  (trackml-library uses |z - vz|; the 3D distance orders the hits along the trajectory also for
  particles at large |eta| and displaced vertices). Because our tracks may share hits, a particle
  scores at most once: through its best-scoring track.
- **Perigee** parameters follow ACTS: the reference line is the z axis, the point of closest
  approach is ``(-d0 sin(phi), d0 cos(phi), z0)``, i.e. ``d0 > 0`` when the z axis lies to the
  right of the momentum direction in the transverse plane (ACTS ``LineSurface``: the local x
  axis is ``z_hat x p_hat``). A positive particle in a field along +z turns clockwise seen from +z.
- **Resolution** is the 68% core width ``(q84 - q16) / 2``, with q16 and q84 the 15.87% and
  84.13% quantiles (the exact one-sigma quantiles, so that a Gaussian gives its sigma).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import awkward as ak
import numba as nb
import numpy as np

from hepgan.errors import InputError, closest
from hepgan.io.schema import TRACK_PARAMETERS

__all__ = [
    "C_GEV_PER_T_MM",
    "DEFAULT_ETA_BINS",
    "DEFAULT_PT_BINS",
    "PERIGEE_PARAMETERS",
    "TRACKML_ORDER_MATRIX",
    "BinnedEfficiency",
    "Efficiency",
    "MatchResult",
    "Residuals",
    "binned_efficiency",
    "core_width",
    "duplicate_rate",
    "efficiency",
    "efficiency_denominator",
    "efficiency_vs_eta",
    "efficiency_vs_pt",
    "fake_rate",
    "match_tracks",
    "particle_kinematics",
    "perigee_from_vertex",
    "resolution_summary",
    "summarize",
    "track_residuals",
    "trackml_event_scores",
    "trackml_hit_weights",
    "trackml_order_weight",
    "trackml_pt_weight",
    "trackml_score",
    "truth_perigee",
    "wrap_phi",
]

PERIGEE_PARAMETERS: tuple[str, ...] = tuple(TRACK_PARAMETERS)

#: pT [GeV] = C * |q| [e] * B [T] * R [mm]: the speed of light in GeV / (e T mm).
C_GEV_PER_T_MM = 0.299792458e-3

DEFAULT_PT_BINS = np.array([0.5, 0.6, 0.7, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 7.0, 10.0, 20.0, 100.0])
DEFAULT_ETA_BINS = np.linspace(-2.5, 2.5, 21)

# The one-sigma quantiles of a Gaussian: (q84 - q16) / 2 is then exactly sigma.
_Q16 = 0.5 * (1.0 - math.erf(1.0 / math.sqrt(2.0)))
_Q84 = 1.0 - _Q16


# --------------------------------------------------------------------------------------------
# Input access
# --------------------------------------------------------------------------------------------


def _fields(container, argname: str) -> list[str]:
    if isinstance(container, ak.Array):
        return list(container.fields)
    if isinstance(container, Mapping):
        return list(container.keys())
    msg = (
        f"{argname} must be an awkward Array of records or a mapping of branch name to array; "
        f"got {type(container).__name__}"
    )
    raise InputError(msg)


def _has(container, name: str, argname: str) -> bool:
    return name in _fields(container, argname)


def _get(container, name: str, argname: str) -> ak.Array:
    fields = _fields(container, argname)
    if name not in fields:
        msg = f"{argname} has no field {name!r}; {closest(name, fields)}"
        raise InputError(msg)
    arr = container[name]
    return arr if isinstance(arr, ak.Array) else ak.Array(arr)


def _jagged(container, name: str, argname: str, dtype) -> tuple[np.ndarray, np.ndarray]:
    """Flat values and per-event counts of a var * dtype field.

    Returns (flat: (n_total,) dtype, counts: (n_events,) int64).
    """
    arr = _get(container, name, argname)
    if arr.ndim != 2:
        msg = (
            f"{argname}[{name!r}] must be one list per event (var * {np.dtype(dtype).name}); "
            f"got type {arr.type}"
        )
        raise InputError(msg)
    counts = np.asarray(ak.num(arr, axis=1), dtype=np.int64)
    flat = np.asarray(ak.flatten(arr, axis=1)).astype(dtype, copy=False)
    return flat, counts


def _offsets(counts: np.ndarray) -> np.ndarray:
    out = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=out[1:])
    return out


def _same_counts(a: np.ndarray, b: np.ndarray, what: str) -> None:
    if len(a) != len(b):
        msg = f"{what}: number of events differ ({len(a)} vs {len(b)})"
        raise InputError(msg)
    bad = np.flatnonzero(a != b)
    if len(bad):
        e = int(bad[0])
        msg = f"{what}: lengths differ in event {e} ({int(a[e])} vs {int(b[e])})"
        raise InputError(msg)


def _unflatten(flat: np.ndarray, counts: np.ndarray) -> ak.Array:
    return ak.unflatten(flat, counts)


# --------------------------------------------------------------------------------------------
# Kernels (scalar-style numba loops over events, tracks and hits)
# --------------------------------------------------------------------------------------------


@nb.njit(cache=True)
def _lookup_kernel(q_off, q_pid, p_off, p_id, out):  # pragma: no cover - numba
    """out[j] = local index of particle q_pid[j] in its event's particle list, or -1.

    Returns the first event with a repeated particle id, or -1.
    """
    for e in range(len(q_off) - 1):
        ids = p_id[p_off[e] : p_off[e + 1]]
        order = np.argsort(ids, kind="mergesort")
        sids = ids[order]
        for k in range(1, len(sids)):
            if sids[k] == sids[k - 1]:
                return e
        for j in range(q_off[e], q_off[e + 1]):
            pid = q_pid[j]
            out[j] = -1
            if pid == 0 or len(sids) == 0:
                continue
            pos = np.searchsorted(sids, pid)
            if pos < len(sids) and sids[pos] == pid:
                out[j] = order[pos]
    return -1


@nb.njit(cache=True)
def _match_kernel(
    hit_off, hit_pid, trk_off, trk_start, trk_nh, thi, maj_pid, n_shared, n_phits, matched, dup
):  # pragma: no cover - numba
    """Double matching per track and best/duplicate resolution per particle id (see module)."""
    for e in range(len(hit_off) - 1):
        h0 = hit_off[e]
        spid = np.sort(hit_pid[h0 : hit_off[e + 1]])
        # unique particle ids of the event's hits and their hit counts
        nu = 0
        for k in range(len(spid)):
            if k == 0 or spid[k] != spid[k - 1]:
                nu += 1
        uniq = np.empty(nu, np.int64)
        cnt = np.zeros(nu, np.int64)
        u = -1
        for k in range(len(spid)):
            if k == 0 or spid[k] != spid[k - 1]:
                u += 1
                uniq[u] = spid[k]
            cnt[u] += 1
        best_shared = np.zeros(nu, np.int64)
        best_track = np.full(nu, -1, np.int64)
        t0 = trk_off[e]
        t1 = trk_off[e + 1]
        uidx = np.full(t1 - t0, -1, np.int64)
        for t in range(t0, t1):
            st = trk_start[t]
            n = trk_nh[t]
            bp = 0
            bc = 0
            bnp = 0
            bu = -1
            for j in range(n):
                p = hit_pid[h0 + thi[st + j]]
                if p == 0:
                    continue  # noise is never a majority particle
                seen = False
                for k in range(j):
                    if hit_pid[h0 + thi[st + k]] == p:
                        seen = True
                        break
                if seen:
                    continue
                c = 1
                for k in range(j + 1, n):
                    if hit_pid[h0 + thi[st + k]] == p:
                        c += 1
                pos = np.searchsorted(uniq, p)
                np_ = cnt[pos]
                if c > bc or (c == bc and (np_ < bnp or (np_ == bnp and p < bp))):
                    bp = p
                    bc = c
                    bnp = np_
                    bu = pos
            maj_pid[t] = bp
            n_shared[t] = bc
            n_phits[t] = bnp
            if bc > 0 and 2 * bc >= n and 2 * bc >= bnp:
                matched[t] = True
                uidx[t - t0] = bu
                # strict '>' in track order: ties go to the lower track index
                if bc > best_shared[bu]:
                    best_shared[bu] = bc
                    best_track[bu] = t
        for t in range(t0, t1):
            if matched[t] and best_track[uidx[t - t0]] != t:
                dup[t] = True


@nb.njit(cache=True)
def _particle_match_kernel(
    trk_off, p_off, trk_pidx, matched, n_shared, n_matched, best_track
):  # pragma: no cover - numba
    """Per particle: number of matching tracks and the best one (same rule as _match_kernel)."""
    for e in range(len(trk_off) - 1):
        p0 = p_off[e]
        t0 = trk_off[e]
        for t in range(t0, trk_off[e + 1]):
            i = trk_pidx[t]
            if not matched[t] or i < 0:
                continue
            g = p0 + i
            n_matched[g] += 1
            b = best_track[g]
            if b < 0 or n_shared[t] > n_shared[t0 + b]:
                best_track[g] = t - t0


@nb.njit(cache=True)
def _track_weight_kernel(
    hit_off, hit_pid, hit_w, trk_off, trk_start, trk_nh, thi, maj_pid, out
):  # pragma: no cover - numba
    """out[t] = sum of the weights of track t's hits that belong to its majority particle."""
    for e in range(len(hit_off) - 1):
        h0 = hit_off[e]
        for t in range(trk_off[e], trk_off[e + 1]):
            s = 0.0
            p = maj_pid[t]
            if p != 0:
                st = trk_start[t]
                for j in range(trk_nh[t]):
                    h = h0 + thi[st + j]
                    if hit_pid[h] == p:
                        s += hit_w[h]
            out[t] = s


@nb.njit(cache=True)
def _rank_kernel(order, sorted_key, dist, rank, nh):  # pragma: no cover - numba
    """For entries grouped by key (order sorts them by key, stably): rank[i] = position of
    entry i in its group by increasing dist (ties: lower index first), nh[i] = group size."""
    n = len(order)
    i = 0
    while i < n:
        j = i
        while j < n and sorted_key[j] == sorted_key[i]:
            j += 1
        members = order[i:j]
        o = np.argsort(dist[members], kind="mergesort")
        for k in range(j - i):
            rank[members[o[k]]] = k
            nh[members[o[k]]] = j - i
        i = j


def _lookup_particles(q_off, q_pid, p_off, p_id, argname: str) -> np.ndarray:
    out = np.empty(len(q_pid), dtype=np.int64)
    bad = _lookup_kernel(q_off, q_pid, p_off, p_id, out)
    if bad >= 0:
        msg = f"{argname}['particle_id'] repeats a particle id in event {bad}"
        raise InputError(msg)
    return out


# --------------------------------------------------------------------------------------------
# Matching
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _TrackHits:
    """Flattened hit association of the tracks (internal)."""

    hit_off: np.ndarray  # (n_events + 1,) int64
    hit_pid: np.ndarray  # (n_hits,) int64
    trk_off: np.ndarray  # (n_events + 1,) int64
    trk_start: np.ndarray  # (n_tracks,) int64: start of each track in thi
    trk_nh: np.ndarray  # (n_tracks,) int64
    thi: np.ndarray  # (sum track_nhits,) int64 local hit indices


def _track_hits(hits, tracks) -> _TrackHits:
    hit_pid, hit_counts = _jagged(hits, "hit_particle_id", "hits", np.int64)
    trk_nh, trk_counts = _jagged(tracks, "track_nhits", "tracks", np.int64)
    thi, thi_counts = _jagged(tracks, "track_hit_index", "tracks", np.int64)
    if len(hit_counts) != len(trk_counts):
        msg = (
            f"hits and tracks must hold the same events; got {len(hit_counts)} and "
            f"{len(trk_counts)} entries"
        )
        raise InputError(msg)
    if np.any(trk_nh < 0):
        msg = "tracks['track_nhits'] must be >= 0"
        raise InputError(msg)
    trk_off = _offsets(trk_counts)
    cum = _offsets(trk_nh)
    per_event_sum = cum[trk_off[1:]] - cum[trk_off[:-1]]
    _same_counts(
        per_event_sum, thi_counts,
        "tracks['track_nhits'] summed per event vs len(tracks['track_hit_index'])",
    )
    ev_of_entry = np.repeat(np.arange(len(thi_counts)), thi_counts)
    bad = (thi < 0) | (thi >= hit_counts[ev_of_entry])
    if np.any(bad):
        j = int(np.flatnonzero(bad)[0])
        e = int(ev_of_entry[j])
        msg = (
            f"tracks['track_hit_index'] must index the event's hits (0 <= i < {int(hit_counts[e])}); "
            f"got {int(thi[j])} in event {e}"
        )
        raise InputError(msg)
    trk_start = np.zeros(len(trk_nh), dtype=np.int64)
    if len(trk_nh):
        np.cumsum(trk_nh[:-1], out=trk_start[1:])
    return _TrackHits(_offsets(hit_counts), hit_pid, trk_off, trk_start, trk_nh, thi)


@dataclass(frozen=True)
class MatchResult:
    """Result of `match_tracks`. All arrays are awkward, one list per event.

    Per track (var * ...):
      track_majority_particle_id (int64, 0 when the track holds no non-noise hit),
      track_n_shared (int64, hits of the majority particle on the track),
      track_purity (float64, n_shared / track_nhits; 0 for a track without hits),
      track_particle_fraction (float64, n_shared / hits of the majority particle in the event),
      track_matched, track_is_duplicate, track_is_fake (bool; matched = good or duplicate,
      fake = not matched),
      track_particle_index (int64, the majority particle's index in the event's particle list,
      -1 when it is not listed or the track has no majority particle).
    Per particle (var * ...):
      particle_n_matched (int64, matching tracks), particle_best_track (int64, index of the good
      track in the event's tracks, -1 when none), particle_nhits (int64, hits in the event
      carrying the particle's id).
    """

    track_majority_particle_id: ak.Array
    track_n_shared: ak.Array
    track_purity: ak.Array
    track_particle_fraction: ak.Array
    track_matched: ak.Array
    track_is_duplicate: ak.Array
    track_is_fake: ak.Array
    track_particle_index: ak.Array
    particle_n_matched: ak.Array
    particle_best_track: ak.Array
    particle_nhits: ak.Array

    @property
    def n_events(self) -> int:
        return len(self.track_matched)

    @property
    def n_tracks(self) -> int:
        return int(ak.sum(ak.num(self.track_matched, axis=1)))


def match_tracks(hits, particles, tracks) -> MatchResult:
    """ACTS double matching of tracks to particles (module docstring, "Matching").

    Args:
        hits: needs ``hit_particle_id`` (var * int64, 0 = noise).
        particles: needs ``particle_id`` (var * int64, unique within an event). Tracks matching a
            particle id absent from it are still matched (not fakes); they get
            ``track_particle_index == -1``.
        tracks: needs ``track_nhits`` (var * int) and ``track_hit_index`` (var * int, hit indices
            of the event's tracks concatenated in order).
    Returns:
        `MatchResult`. A hit listed twice on one track counts twice.
    Raises:
        ValueError (`InputError`) naming the argument for missing fields, event counts that
        differ, hit indices out of range, or repeated particle ids.
    """
    th = _track_hits(hits, tracks)
    p_id, p_counts = _jagged(particles, "particle_id", "particles", np.int64)
    n_ev = len(th.hit_off) - 1
    if len(p_counts) != n_ev:
        msg = f"particles must hold the same events as hits; got {len(p_counts)} and {n_ev} entries"
        raise InputError(msg)
    p_off = _offsets(p_counts)
    n_trk = len(th.trk_nh)
    maj_pid = np.zeros(n_trk, np.int64)
    n_shared = np.zeros(n_trk, np.int64)
    n_phits = np.zeros(n_trk, np.int64)
    matched = np.zeros(n_trk, np.bool_)
    dup = np.zeros(n_trk, np.bool_)
    _match_kernel(
        th.hit_off, th.hit_pid, th.trk_off, th.trk_start, th.trk_nh, th.thi,
        maj_pid, n_shared, n_phits, matched, dup,
    )
    trk_pidx = _lookup_particles(th.trk_off, maj_pid, p_off, p_id, "particles")
    hit_pidx = _lookup_particles(th.hit_off, th.hit_pid, p_off, p_id, "particles")
    # hits per particle: count the hits that point at each (global) particle row
    hit_ev = np.repeat(np.arange(n_ev), np.diff(th.hit_off))
    ok = hit_pidx >= 0
    p_nhits = np.bincount(p_off[hit_ev[ok]] + hit_pidx[ok], minlength=len(p_id)).astype(np.int64)
    n_matched = np.zeros(len(p_id), np.int64)
    best = np.full(len(p_id), -1, np.int64)
    _particle_match_kernel(th.trk_off, p_off, trk_pidx, matched, n_shared, n_matched, best)

    with np.errstate(divide="ignore", invalid="ignore"):
        purity = np.where(th.trk_nh > 0, n_shared / np.maximum(th.trk_nh, 1), 0.0)
        pfrac = np.where(n_phits > 0, n_shared / np.maximum(n_phits, 1), 0.0)
    tc = np.diff(th.trk_off)
    return MatchResult(
        track_majority_particle_id=_unflatten(maj_pid, tc),
        track_n_shared=_unflatten(n_shared, tc),
        track_purity=_unflatten(purity, tc),
        track_particle_fraction=_unflatten(pfrac, tc),
        track_matched=_unflatten(matched, tc),
        track_is_duplicate=_unflatten(dup, tc),
        track_is_fake=_unflatten(~matched, tc),
        track_particle_index=_unflatten(trk_pidx, tc),
        particle_n_matched=_unflatten(n_matched, p_counts),
        particle_best_track=_unflatten(best, p_counts),
        particle_nhits=_unflatten(p_nhits, p_counts),
    )


def fake_rate(match: MatchResult) -> float:
    """Fake rate = fakes / all tracks (fake: matches no particle). NaN when there are no tracks."""
    n = match.n_tracks
    return float(ak.sum(match.track_is_fake)) / n if n else float("nan")


def duplicate_rate(match: MatchResult) -> float:
    """Duplicate rate = duplicates / all tracks (duplicate: matches a particle that has a better
    matching track). NaN when there are no tracks."""
    n = match.n_tracks
    return float(ak.sum(match.track_is_duplicate)) / n if n else float("nan")


# --------------------------------------------------------------------------------------------
# Efficiency
# --------------------------------------------------------------------------------------------


def particle_kinematics(particles) -> tuple[ak.Array, ak.Array]:
    """(pT [GeV], eta) of each particle, var * float64 each. eta = +-inf when pT = 0."""
    px, c = _jagged(particles, "particle_px", "particles", np.float64)
    py, _ = _jagged(particles, "particle_py", "particles", np.float64)
    pz, _ = _jagged(particles, "particle_pz", "particles", np.float64)
    pt = np.hypot(px, py)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.where(pt > 0, np.arcsinh(pz / np.where(pt > 0, pt, 1.0)), np.copysign(np.inf, pz))
    return _unflatten(pt, c), _unflatten(eta, c)


def efficiency_denominator(
    particles,
    match: MatchResult,
    *,
    pt_min: float | None = 1.0,
    eta_max: float | None = 2.5,
    min_hits: int = 7,
) -> ak.Array:
    """Particles in the efficiency denominator, var * bool.

    Primary (``particle_primary``), charged (``particle_q != 0``), at least `min_hits` hits in
    the event (counted from ``hit_particle_id``, `MatchResult.particle_nhits`), ``|eta| <
    eta_max`` and ``pT > pt_min`` [GeV]; a cut given as None is not applied.
    """
    primary, c = _jagged(particles, "particle_primary", "particles", np.bool_)
    q, _ = _jagged(particles, "particle_q", "particles", np.int64)
    nh = np.asarray(ak.flatten(match.particle_nhits), dtype=np.int64)
    if len(nh) != len(q):
        msg = f"match was computed on other particles: {len(nh)} particles there, {len(q)} here"
        raise InputError(msg)
    pt, eta = (np.asarray(ak.flatten(a), dtype=np.float64) for a in particle_kinematics(particles))
    sel = primary & (q != 0) & (nh >= min_hits)
    if eta_max is not None:
        sel &= np.abs(eta) < eta_max
    if pt_min is not None:
        sel &= pt > pt_min
    return _unflatten(sel, c)


@dataclass(frozen=True)
class Efficiency:
    """Efficiency = n_matched / n_total with its binomial error sqrt(e (1 - e) / n_total).

    NaN efficiency and error when n_total = 0.
    """

    efficiency: float
    error: float
    n_matched: int
    n_total: int

    def as_dict(self) -> dict:
        return {
            "efficiency": _json_float(self.efficiency),
            "error": _json_float(self.error),
            "n_matched": self.n_matched,
            "n_total": self.n_total,
        }


def _binomial(k: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    k = np.asarray(k, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        eff = np.where(n > 0, k / n, np.nan)
        err = np.where(n > 0, np.sqrt(eff * (1.0 - eff) / n), np.nan)
    return eff, err


def efficiency(
    match: MatchResult,
    particles,
    *,
    pt_min: float | None = 1.0,
    eta_max: float | None = 2.5,
    min_hits: int = 7,
) -> Efficiency:
    """Fraction of the denominator particles (`efficiency_denominator`) with a matching track."""
    den = np.asarray(
        ak.flatten(efficiency_denominator(particles, match, pt_min=pt_min, eta_max=eta_max, min_hits=min_hits))
    )
    found = np.asarray(ak.flatten(match.particle_n_matched)) > 0
    n = int(den.sum())
    k = int((den & found).sum())
    e, err = _binomial(np.array(k), np.array(n))
    return Efficiency(float(e), float(err), k, n)


@dataclass(frozen=True)
class BinnedEfficiency:
    """Efficiency in bins: edges (n_bins + 1,), and per bin (n_bins,) n_total, n_matched
    (int64), efficiency and binomial error (float64, NaN in empty bins)."""

    edges: np.ndarray
    n_total: np.ndarray
    n_matched: np.ndarray
    efficiency: np.ndarray
    error: np.ndarray

    def as_dict(self) -> dict:
        return {
            "edges": [float(x) for x in self.edges],
            "n_total": [int(x) for x in self.n_total],
            "n_matched": [int(x) for x in self.n_matched],
            "efficiency": [_json_float(x) for x in self.efficiency],
            "error": [_json_float(x) for x in self.error],
        }


def binned_efficiency(values, passed, bins) -> BinnedEfficiency:
    """Efficiency of `passed` (n,) bool in bins of `values` (n,) float; `bins` are increasing
    edges (as np.histogram: the last bin includes its upper edge, values outside are dropped)."""
    values = np.asarray(values, dtype=np.float64)
    passed = np.asarray(passed, dtype=np.bool_)
    edges = np.asarray(bins, dtype=np.float64)
    if values.shape != passed.shape or values.ndim != 1:
        msg = f"values and passed must be 1-d of the same length; got {values.shape} and {passed.shape}"
        raise InputError(msg)
    if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
        msg = f"bins must be at least 2 increasing edges; got {edges!r}"
        raise InputError(msg)
    n_total, _ = np.histogram(values, bins=edges)
    n_pass, _ = np.histogram(values[passed], bins=edges)
    eff, err = _binomial(n_pass, n_total)
    return BinnedEfficiency(edges, n_total.astype(np.int64), n_pass.astype(np.int64), eff, err)


def efficiency_vs_pt(
    match: MatchResult, particles, *, bins=DEFAULT_PT_BINS, eta_max: float | None = 2.5, min_hits: int = 7
) -> BinnedEfficiency:
    """Efficiency in bins of particle pT [GeV]: the denominator cuts except pT (bins set it)."""
    return _efficiency_vs(match, particles, 0, bins, pt_min=None, eta_max=eta_max, min_hits=min_hits)


def efficiency_vs_eta(
    match: MatchResult, particles, *, bins=DEFAULT_ETA_BINS, pt_min: float | None = 1.0, min_hits: int = 7
) -> BinnedEfficiency:
    """Efficiency in bins of particle eta: the denominator cuts except eta (bins set it)."""
    return _efficiency_vs(match, particles, 1, bins, pt_min=pt_min, eta_max=None, min_hits=min_hits)


def _efficiency_vs(match, particles, which, bins, **cuts) -> BinnedEfficiency:
    den = np.asarray(ak.flatten(efficiency_denominator(particles, match, **cuts)))
    var = np.asarray(ak.flatten(particle_kinematics(particles)[which]), dtype=np.float64)
    found = np.asarray(ak.flatten(match.particle_n_matched)) > 0
    return binned_efficiency(var[den], found[den], bins)


# --------------------------------------------------------------------------------------------
# TrackML score
# --------------------------------------------------------------------------------------------

_ORDER_PROPOSAL = np.array([10.0, 8.0, 6.0, 5.0, 3.0, 3.0, 3.0, 5.0, 6.0])
_ORDER_MIN_HITS = 4
_ORDER_MAX_HITS = 20


def _order_matrix() -> np.ndarray:
    # Row n: the proposal curve stretched over n hits (linear interpolation), normalised so that
    # a particle's hits sum to 1. Rows below the minimum stay 0 (particles with <= 3 hits).
    m = np.zeros((_ORDER_MAX_HITS + 1, _ORDER_MAX_HITS))
    k = len(_ORDER_PROPOSAL)
    for n in range(_ORDER_MIN_HITS, _ORDER_MAX_HITS + 1):
        x = np.arange(k) * (n - 1) / (k - 1)
        w = np.interp(np.arange(n), x, _ORDER_PROPOSAL)
        m[n, :n] = w / w.sum()
    return m


#: (21, 20): weight of the i-th hit (column) of a particle with n hits (row), trackml-library.
TRACKML_ORDER_MATRIX = _order_matrix()


def trackml_order_weight(ihit, nhits) -> np.ndarray:
    """Order weight of hit number `ihit` (0 = nearest the vertex) of a particle with `nhits` hits.

    Zero for nhits <= 3; particles with more than 20 hits use the 20-hit row and their hits
    beyond the 20th get weight 0 (as trackml-library). Arrays of the same shape, int.
    """
    ihit = np.asarray(ihit, dtype=np.int64)
    nhits = np.asarray(nhits, dtype=np.int64)
    if np.any((ihit < 0) | ((nhits > 0) & (ihit >= nhits))):
        msg = "ihit must satisfy 0 <= ihit < nhits"
        raise InputError(msg)
    n = np.clip(nhits, 0, _ORDER_MAX_HITS)
    inside = (ihit < _ORDER_MAX_HITS) & (nhits >= _ORDER_MIN_HITS)
    return np.where(inside, TRACKML_ORDER_MATRIX[n, np.minimum(ihit, _ORDER_MAX_HITS - 1)], 0.0)


def trackml_pt_weight(pt) -> np.ndarray:
    """pT weight [pT in GeV]: 0.2 from 0.05 to 0.5 GeV, rising linearly to 1 at 3 GeV, 1 above;
    0 below 0.05 GeV (trackml-library)."""
    return np.interp(np.asarray(pt, dtype=np.float64), [0.05, 0.5, 3.0], [0.2, 0.2, 1.0], left=0.0, right=1.0)


def _positions(hits, position: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if position not in ("auto", "true", "measured"):
        msg = f"position must be 'auto', 'true' or 'measured'; got {position!r}"
        raise InputError(msg)
    true_names = ("hit_tx", "hit_ty", "hit_tz")
    if position == "true" or (position == "auto" and all(_has(hits, n, "hits") for n in true_names)):
        names = true_names
    else:
        names = ("hit_x", "hit_y", "hit_z")
    return tuple(_jagged(hits, n, "hits", np.float64)[0] for n in names)


def _hit_weights_flat(hits, particles, position: str) -> tuple[np.ndarray, np.ndarray]:
    """(weights (n_hits,) float64 normalised per event, per-event total before normalising)."""
    hit_pid, hit_counts = _jagged(hits, "hit_particle_id", "hits", np.int64)
    p_id, p_counts = _jagged(particles, "particle_id", "particles", np.int64)
    if len(p_counts) != len(hit_counts):
        msg = f"particles must hold the same events as hits; got {len(p_counts)} and {len(hit_counts)}"
        raise InputError(msg)
    hx, hy, hz = _positions(hits, position)
    vx, _ = _jagged(particles, "particle_vx", "particles", np.float64)
    vy, _ = _jagged(particles, "particle_vy", "particles", np.float64)
    vz, _ = _jagged(particles, "particle_vz", "particles", np.float64)
    pt = np.asarray(ak.flatten(particle_kinematics(particles)[0]), dtype=np.float64)
    hit_off, p_off = _offsets(hit_counts), _offsets(p_counts)
    n_ev = len(hit_counts)
    hit_ev = np.repeat(np.arange(n_ev), hit_counts)
    local = _lookup_particles(hit_off, hit_pid, p_off, p_id, "particles")
    known = local >= 0  # noise and hits of unlisted particles weigh 0 (no pT known)
    g = np.where(known, p_off[hit_ev] + local, -1)
    w = np.zeros(len(hit_pid))
    idx = np.flatnonzero(known)
    if len(idx):
        gi = g[idx]
        dist = np.sqrt((hx[idx] - vx[gi]) ** 2 + (hy[idx] - vy[gi]) ** 2 + (hz[idx] - vz[gi]) ** 2)
        # order hits per particle by distance from its vertex (ties: file order)
        by_particle = np.argsort(gi, kind="stable")
        rank = np.empty(len(idx), np.int64)
        nh = np.empty(len(idx), np.int64)
        _rank_kernel(by_particle, gi[by_particle], dist, rank, nh)
        w[idx] = trackml_order_weight(rank, nh) * trackml_pt_weight(pt[gi])
    total = np.bincount(hit_ev, weights=w, minlength=n_ev)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(total[hit_ev] > 0, w / np.where(total > 0, total, 1.0)[hit_ev], 0.0)
    return w, total


def trackml_hit_weights(hits, particles, *, position: str = "auto") -> ak.Array:
    """TrackML hit weights, var * float64 (module docstring, "TrackML score").

    Each event's weights sum to 1 (all 0 in an event without weighted hits). `position`:
    'true' (``hit_tx..``), 'measured' (``hit_x..``) or 'auto' (true when present) for ordering
    the hits of a particle by their distance from its production vertex (``particle_v*``).
    """
    w, _ = _hit_weights_flat(hits, particles, position)
    _, c = _jagged(hits, "hit_particle_id", "hits", np.int64)
    return _unflatten(w, c)


def trackml_event_scores(
    hits, particles, tracks, *, match: MatchResult | None = None, position: str = "auto"
) -> np.ndarray:
    """TrackML score per event, (n_events,) float64 in [0, 1]; NaN for an event whose hits all
    weigh 0. `match` (from `match_tracks` on the same inputs) saves recomputing it."""
    if match is None:
        match = match_tracks(hits, particles, tracks)
    th = _track_hits(hits, tracks)
    w, total = _hit_weights_flat(hits, particles, position)
    maj = np.asarray(ak.flatten(match.track_majority_particle_id), dtype=np.int64)
    if len(maj) != len(th.trk_nh):
        msg = f"match was computed on other tracks: {len(maj)} tracks there, {len(th.trk_nh)} here"
        raise InputError(msg)
    tw = np.empty(len(maj))
    _track_weight_kernel(th.hit_off, th.hit_pid, w, th.trk_off, th.trk_start, th.trk_nh, th.thi, maj, tw)
    n_sh = np.asarray(ak.flatten(match.track_n_shared), dtype=np.int64)
    frac = np.asarray(ak.flatten(match.track_particle_fraction), dtype=np.float64)
    # strict double majority (trackml-library): > 50% of the track and > 50% of the particle
    good = (2 * n_sh > th.trk_nh) & (frac > 0.5) & (maj != 0)
    n_ev = len(th.hit_off) - 1
    trk_ev = np.repeat(np.arange(n_ev), np.diff(th.trk_off))
    ev, pid, val = trk_ev[good], maj[good], tw[good]
    # a particle scores once, through its best track (our tracks may share hits)
    order = np.lexsort((-val, pid, ev))
    ev, pid, val = ev[order], pid[order], val[order]
    first = np.r_[True, (ev[1:] != ev[:-1]) | (pid[1:] != pid[:-1])] if len(ev) else np.zeros(0, bool)
    scores = np.bincount(ev[first], weights=val[first], minlength=n_ev)
    return np.where(total > 0, scores, np.nan)


def trackml_score(
    hits, particles, tracks, *, match: MatchResult | None = None, position: str = "auto"
) -> float:
    """Mean of `trackml_event_scores` over the events where it is defined (NaN if none)."""
    s = trackml_event_scores(hits, particles, tracks, match=match, position=position)
    s = s[np.isfinite(s)]
    return float(s.mean()) if len(s) else float("nan")


# --------------------------------------------------------------------------------------------
# Perigee parameters, residuals, resolutions
# --------------------------------------------------------------------------------------------


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
        cols[n], counts = _jagged(particles, f"particle_{n}", "particles", np.float64)
    par = perigee_from_vertex(**cols, bfield=bfield)
    return {k: _unflatten(v, counts) for k, v in par.items()}


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
    _, p_counts = _jagged(particles, "particle_id", "particles", np.int64)
    if len(p_counts) != len(tc):
        msg = f"particles must hold the same events as match; got {len(p_counts)} and {len(tc)}"
        raise InputError(msg)
    sel = matched & (pidx >= 0)
    if not include_duplicates:
        sel &= ~dup
    n_ev = len(tc)
    trk_ev = np.repeat(np.arange(n_ev), tc)
    g = _offsets(p_counts)[trk_ev] + pidx
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
        val, c = _jagged(tracks, f"track_{p}", "tracks", np.float64)
        _same_counts(c, tc, f"tracks['track_{p}'] vs match")
        r = val[idx] - truth[p]
        res[p] = wrap_phi(r) if p == "phi" else r
        if pulls:
            err, _ = _jagged(tracks, f"track_err_{p}", "tracks", np.float64)
            e = err[idx]
            with np.errstate(divide="ignore", invalid="ignore"):
                pull[p] = np.where(e > 0, res[p] / np.where(e > 0, e, 1.0), np.nan)
        else:
            pull[p] = np.full(len(idx), np.nan)
    pt, eta = (np.asarray(ak.flatten(a), dtype=np.float64)[gi] for a in particle_kinematics(particles))
    return Residuals(res, pull, pt, eta, trk_ev[idx], idx - _offsets(tc)[trk_ev[idx]])


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
        "resolution": _json_float(core_width(r)),
        "bias": _json_float(float(np.median(r)) if len(r) else float("nan")),
        "pull_width": _json_float(core_width(pl)),
        "pull_mean": _json_float(float(np.median(fin)) if len(fin) else float("nan")),
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


# --------------------------------------------------------------------------------------------
# Summary
# --------------------------------------------------------------------------------------------


def _json_float(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def summarize(
    hits,
    particles,
    tracks,
    *,
    pt_min: float = 1.0,
    eta_max: float = 2.5,
    min_hits: int = 7,
    bfield: float = 2.0,
    position: str = "auto",
) -> dict:
    """Headline figures as a plain JSON-serialisable dict (NaN written as None).

    Keys: n_events, n_tracks, n_particles, n_particles_denominator, n_particles_matched,
    pt_min, eta_max, efficiency, efficiency_error, efficiency_pt_0.5, efficiency_pt_1.0
    (denominator with pT > 0.5 and > 1 GeV), fake_rate (fakes / all tracks), duplicate_rate
    (duplicates / all tracks), n_fakes, n_duplicates, trackml_score, resolutions
    (`resolution_summary` of the good tracks of the denominator particles with pT > pt_min).
    """
    match = match_tracks(hits, particles, tracks)
    eff = efficiency(match, particles, pt_min=pt_min, eta_max=eta_max, min_hits=min_hits)
    den = efficiency_denominator(particles, match, pt_min=pt_min, eta_max=eta_max, min_hits=min_hits)
    res = track_residuals(tracks, particles, match, bfield=bfield, particle_mask=den)
    out = {
        "n_events": match.n_events,
        "n_tracks": match.n_tracks,
        "n_particles": int(ak.sum(ak.num(match.particle_n_matched, axis=1))),
        "n_particles_denominator": eff.n_total,
        "n_particles_matched": eff.n_matched,
        "pt_min": float(pt_min),
        "eta_max": float(eta_max),
        "efficiency": _json_float(eff.efficiency),
        "efficiency_error": _json_float(eff.error),
    }
    for cut in (0.5, 1.0):
        e = efficiency(match, particles, pt_min=cut, eta_max=eta_max, min_hits=min_hits)
        out[f"efficiency_pt_{cut}"] = _json_float(e.efficiency)
    out.update(
        {
            "fake_rate": _json_float(fake_rate(match)),
            "duplicate_rate": _json_float(duplicate_rate(match)),
            "n_fakes": int(ak.sum(match.track_is_fake)),
            "n_duplicates": int(ak.sum(match.track_is_duplicate)),
            "trackml_score": _json_float(trackml_score(hits, particles, tracks, match=match, position=position)),
            "resolutions": resolution_summary(res),
        }
    )
    return out
