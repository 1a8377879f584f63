"""The TrackML score exactly as trackml-library defines it, and hepgan's older variant.

**TrackML score** (``trackml/weights.py`` and ``trackml/score.py`` of LAL/trackml-library):

- *Hit weights.* The hits of a particle are ranked by ``|tz - vz|``, the distance along z of
  the hit's true position from the particle's production vertex (pandas' ``rank()``: tied hits
  share their average rank, which ``- 1`` then truncates to an integer ``ihit``). A particle's
  ``nhits`` counts all its hits in the event (0 for noise, particle id 0). The order weight is
  ``ORDER_MATRIX[min(nhits, 20), ihit]``: the proposal curve 10 8 6 5 3 3 3 5 6 stretched over
  the hits and normalised to 1 per particle, 0 for ``nhits < 4`` and for ``ihit >= 20``. The
  pT weight is 0.2 from 0.05 to 0.5 GeV, rising linearly to 1 at 3 GeV, 1 above, 0 below
  0.05 GeV and for hits of particles not listed. Weight = order x pT weight, normalised to sum
  1 over the event.
- *One track per hit.* A submission gives every hit at most one track. hepgan's tracks (ACTS's
  and the surrogate's) may share hits; a hit listed by several tracks is given to the track
  that lists most hits (ties: the lower track index), and each track's hit count is the count
  after that assignment. Hits of no track score nothing (as single-hit tracks would).
- *Double majority.* A track's majority particle is the particle id, noise included, with most
  of the track's hits (ties: the lower particle id). The track scores the weight of its
  majority particle's hits on it when strictly more than half of the track's hits and strictly
  more than half of the particle's hits in the event are shared. The event score is the sum;
  :func:`trackml_score` averages the event scores.

**hepgan's variant** (``hepgan_trackml_*``, the definition hepgan used before) differs in three
rules: hits are ordered by their 3D distance from the production vertex; noise is never the
majority particle (the matching's rule, :mod:`hepgan.perf.metrics.matching`); tracks keep
their shared hits and a particle scores once, through its best-scoring track.

Positions: `position` 'true' (``hit_tx, hit_ty, hit_tz``), 'measured' (``hit_x, hit_y,
hit_z``) or 'auto' (true when present), mm.
"""

from __future__ import annotations

import awkward as ak
import numba as nb
import numpy as np

from hepgan.errors import InputError
from hepgan.perf.metrics._common import (
    has_field,
    jagged,
    lookup_particles,
    offsets,
    track_hits,
    unflatten,
)
from hepgan.perf.metrics.efficiency import particle_kinematics
from hepgan.perf.metrics.matching import MatchResult, match_tracks

__all__ = [
    "TRACKML_ORDER_MATRIX",
    "hepgan_trackml_event_scores",
    "hepgan_trackml_hit_weights",
    "hepgan_trackml_score",
    "trackml_event_scores",
    "trackml_hit_weights",
    "trackml_order_weight",
    "trackml_pt_weight",
    "trackml_score",
]


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


def _positions(hits, position: str, axes: str = "xyz") -> tuple[np.ndarray, ...]:
    """The hits' true or measured coordinates `axes`, flat float64 mm (module docstring)."""
    if position not in ("auto", "true", "measured"):
        msg = f"position must be 'auto', 'true' or 'measured'; got {position!r}"
        raise InputError(msg)
    true_names = tuple(f"hit_t{a}" for a in axes)
    if position == "true" or (position == "auto" and all(has_field(hits, n, "hits") for n in true_names)):
        names = true_names
    else:
        names = tuple(f"hit_{a}" for a in axes)
    return tuple(jagged(hits, n, "hits", np.float64)[0] for n in names)



def _particles_of_hits(hits, particles) -> tuple:
    """Per hit: event index, particle id, the particle's global row (-1: noise or unlisted);
    and the hit offsets per event."""
    hit_pid, hit_counts = jagged(hits, "hit_particle_id", "hits", np.int64)
    p_id, p_counts = jagged(particles, "particle_id", "particles", np.int64)
    if len(p_counts) != len(hit_counts):
        msg = f"particles must hold the same events as hits; got {len(p_counts)} and {len(hit_counts)}"
        raise InputError(msg)
    hit_off, p_off = offsets(hit_counts), offsets(p_counts)
    hit_ev = np.repeat(np.arange(len(hit_counts)), hit_counts)
    local = lookup_particles(hit_off, hit_pid, p_off, p_id, "particles")
    g = np.where(local >= 0, p_off[hit_ev] + local, -1)
    return hit_ev, hit_pid, g, hit_off


def _starts(order: np.ndarray, *keys: np.ndarray) -> np.ndarray:
    """In `order` (sorted by `keys` first), True where a new group of equal keys starts."""
    start = np.zeros(len(order), dtype=bool)
    if len(order):
        start[0] = True
        for k in keys:
            ks = k[order]
            start[1:] |= ks[1:] != ks[:-1]
    return start


def _first_per(order: np.ndarray, key: np.ndarray) -> np.ndarray:
    """The first element of `order` for each value of `key` (order sorts by key first)."""
    ks = key[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = ks[1:] != ks[:-1]
    return order[first]


def _exact_weights(hits, particles, position: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Exact trackml-library weights (module docstring).

    Returns (weights (n_hits,) normalised per event, per-event total before normalising,
    hit event index (n_hits,), hits of each hit's particle id in its event (n_hits,), noise
    included)."""
    hit_ev, hit_pid, g, hit_off = _particles_of_hits(hits, particles)
    (hz,) = _positions(hits, position, "z")
    vz, _ = jagged(particles, "particle_vz", "particles", np.float64)
    pt = np.asarray(ak.flatten(particle_kinematics(particles)[0]), dtype=np.float64)
    known = g >= 0
    safe = np.where(known, g, 0)
    w_pt = np.where(known, trackml_pt_weight(pt[safe] if len(pt) else np.zeros(len(g))), 0.0)
    # unlisted particles: pandas ranks their NaN distance as 0; they weigh 0 anyway
    dist = np.where(known, np.abs(hz - (vz[safe] if len(vz) else 0.0)), 0.0)
    order = np.lexsort((dist, hit_pid, hit_ev))
    new_group = _starts(order, hit_ev, hit_pid)
    group_id = np.cumsum(new_group) - 1
    group_start = np.flatnonzero(new_group)
    group_size = np.diff(np.r_[group_start, len(order)])
    # ties in distance share pandas' average rank: (first + last) / 2, truncated
    d_sorted = dist[order]
    new_run = new_group.copy()
    new_run[1:] |= d_sorted[1:] != d_sorted[:-1]
    run_id = np.cumsum(new_run) - 1
    run_start = np.flatnonzero(new_run)
    run_last = np.r_[run_start[1:], len(order)] - 1
    first = run_start[run_id] - group_start[group_id]
    last = run_last[run_id] - group_start[group_id]
    ihit = np.empty(len(order), np.int64)
    ihit[order] = (first + last) // 2
    size = np.empty(len(order), np.int64)
    size[order] = group_size[group_id]
    nhits = np.where(hit_pid == 0, 0, size)
    w = w_pt * trackml_order_weight(ihit, nhits)
    n_ev = len(hit_off) - 1
    total = np.bincount(hit_ev, weights=w, minlength=n_ev)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(total[hit_ev] > 0, w / np.where(total > 0, total, 1.0)[hit_ev], 0.0)
    return w, total, hit_ev, size


def trackml_hit_weights(hits, particles, *, position: str = "auto") -> ak.Array:
    """trackml-library's hit weights, var * float64 (module docstring).

    Each event's weights sum to 1 (all 0 in an event without weighted hits). Needs
    ``hit_particle_id`` and the hit z (`position`); ``particle_id, particle_px, particle_py,
    particle_vz``.
    """
    w, _, _, _ = _exact_weights(hits, particles, position)
    _, c = jagged(hits, "hit_particle_id", "hits", np.int64)
    return unflatten(w, c)


def _one_track_per_hit(th, n_hits: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(track, global hit) of each hit on a track, every hit on one track only: the track that
    lists most (distinct) hits, ties the lower index. Also the number of hits taken from a
    track that listed them."""
    n_trk = len(th.trk_nh)
    trk_ev = np.repeat(np.arange(len(th.trk_off) - 1), np.diff(th.trk_off))
    t = np.repeat(np.arange(n_trk, dtype=np.int64), th.trk_nh)
    h = th.hit_off[trk_ev[t]] + th.thi if len(t) else np.zeros(0, np.int64)
    pair = np.unique(t * max(n_hits, 1) + h)  # a hit listed twice on one track counts once
    t, h = pair // max(n_hits, 1), pair % max(n_hits, 1)
    listed = np.bincount(t, minlength=n_trk)
    keep = _first_per(np.lexsort((t, -listed[t], h)), h)
    return t[keep], h[keep], int(len(t) - len(keep))


def trackml_event_scores(hits, particles, tracks, *, position: str = "auto") -> np.ndarray:
    """trackml-library's score per event, (n_events,) float64 in [0, 1] (module docstring);
    NaN for an event whose hits all weigh 0."""
    w, total, _, size = _exact_weights(hits, particles, position)
    th = track_hits(hits, tracks)
    hit_pid = th.hit_pid
    n_ev = len(th.hit_off) - 1
    t, h, _ = _one_track_per_hit(th, len(hit_pid))
    nh = np.bincount(t, minlength=len(th.trk_nh))
    pid = hit_pid[h]
    # (track, particle) groups: their hit counts and weights
    order = np.lexsort((pid, t))
    start = _starts(order, t, pid)
    gi = np.flatnonzero(start)
    g_t, g_pid = t[order][gi], pid[order][gi]
    g_n = np.diff(np.r_[gi, len(order)])
    g_w = np.add.reduceat(w[h][order], gi) if len(gi) else np.zeros(0)
    g_size = size[h][order][gi]  # hits of that particle id in the event (noise included)
    # majority per track: most hits, ties the lower particle id
    best = _first_per(np.lexsort((g_pid, -g_n, g_t)), g_t)
    maj_n, maj_w, maj_size, bt = g_n[best], g_w[best], g_size[best], g_t[best]
    good = (2 * maj_n > nh[bt]) & (2 * maj_n > maj_size)
    trk_ev = np.repeat(np.arange(n_ev), np.diff(th.trk_off))
    scores = np.bincount(trk_ev[bt[good]], weights=maj_w[good], minlength=n_ev)
    return np.where(total > 0, scores, np.nan)


def trackml_score(hits, particles, tracks, *, position: str = "auto") -> float:
    """Mean of `trackml_event_scores` over the events where it is defined (NaN if none)."""
    s = trackml_event_scores(hits, particles, tracks, position=position)
    s = s[np.isfinite(s)]
    return float(s.mean()) if len(s) else float("nan")


# --------------------------------------------------------------------------------------------
# hepgan's variant (module docstring)
# --------------------------------------------------------------------------------------------
def _hepgan_hit_weights_flat(hits, particles, position: str) -> tuple[np.ndarray, np.ndarray]:
    """(weights (n_hits,) float64 normalised per event, per-event total before normalising)."""
    hit_pid, hit_counts = jagged(hits, "hit_particle_id", "hits", np.int64)
    p_id, p_counts = jagged(particles, "particle_id", "particles", np.int64)
    if len(p_counts) != len(hit_counts):
        msg = f"particles must hold the same events as hits; got {len(p_counts)} and {len(hit_counts)}"
        raise InputError(msg)
    hx, hy, hz = _positions(hits, position)
    vx, _ = jagged(particles, "particle_vx", "particles", np.float64)
    vy, _ = jagged(particles, "particle_vy", "particles", np.float64)
    vz, _ = jagged(particles, "particle_vz", "particles", np.float64)
    pt = np.asarray(ak.flatten(particle_kinematics(particles)[0]), dtype=np.float64)
    hit_off, p_off = offsets(hit_counts), offsets(p_counts)
    n_ev = len(hit_counts)
    hit_ev = np.repeat(np.arange(n_ev), hit_counts)
    local = lookup_particles(hit_off, hit_pid, p_off, p_id, "particles")
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


def hepgan_trackml_hit_weights(hits, particles, *, position: str = "auto") -> ak.Array:
    """hepgan's variant of the TrackML hit weights, var * float64 (module docstring).

    Each event's weights sum to 1 (all 0 in an event without weighted hits). `position`:
    'true' (``hit_tx..``), 'measured' (``hit_x..``) or 'auto' (true when present) for ordering
    the hits of a particle by their distance from its production vertex (``particle_v*``).
    """
    w, _ = _hepgan_hit_weights_flat(hits, particles, position)
    _, c = jagged(hits, "hit_particle_id", "hits", np.int64)
    return unflatten(w, c)


def hepgan_trackml_event_scores(
    hits, particles, tracks, *, match: MatchResult | None = None, position: str = "auto"
) -> np.ndarray:
    """hepgan's variant of the TrackML score per event, (n_events,) float64 in [0, 1]; NaN for
    an event whose hits all weigh 0. `match` (from `match_tracks` on the same inputs) saves recomputing it."""
    if match is None:
        match = match_tracks(hits, particles, tracks)
    th = track_hits(hits, tracks)
    w, total = _hepgan_hit_weights_flat(hits, particles, position)
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


def hepgan_trackml_score(
    hits, particles, tracks, *, match: MatchResult | None = None, position: str = "auto"
) -> float:
    """Mean of `hepgan_trackml_event_scores` over the events where it is defined (NaN if none)."""
    s = hepgan_trackml_event_scores(hits, particles, tracks, match=match, position=position)
    s = s[np.isfinite(s)]
    return float(s.mean()) if len(s) else float("nan")

