"""ACTS double matching of tracks to particles; fake and duplicate rates.

A track's majority particle is the non-noise particle with most hits on the track (ties: the
one whose own hit count is smaller, i.e. the larger fraction of it is on the track, then the
lower particle id); the track matches it when ``n_shared / track_nhits >= 0.5`` (noise hits
count in the track's hits, so noise lowers the purity but never matches) and
``n_shared / particle_hits >= 0.5``, where ``particle_hits`` is the number of hits in the event
carrying that particle id. Per particle the matching track with most shared hits (ties: lower
track index) is good, the other matching tracks are duplicates; tracks that match nothing are
fakes.

Inputs: ``hits`` with ``hit_particle_id`` (var * int64, 0 = noise); ``particles`` with
``particle_id`` (var * int64); ``tracks`` with ``track_nhits`` (var * int) and
``track_hit_index`` (var * int: the event's hit indices of all its tracks, concatenated in
track order).
"""

from __future__ import annotations

from dataclasses import dataclass

import awkward as ak
import numba as nb
import numpy as np

from hepgan.errors import InputError
from hepgan.perf.metrics._common import jagged, lookup_particles, offsets, track_hits, unflatten

__all__ = ["MatchResult", "duplicate_rate", "fake_rate", "match_tracks"]


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
    th = track_hits(hits, tracks)
    p_id, p_counts = jagged(particles, "particle_id", "particles", np.int64)
    n_ev = len(th.hit_off) - 1
    if len(p_counts) != n_ev:
        msg = f"particles must hold the same events as hits; got {len(p_counts)} and {n_ev} entries"
        raise InputError(msg)
    p_off = offsets(p_counts)
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
    trk_pidx = lookup_particles(th.trk_off, maj_pid, p_off, p_id, "particles")
    hit_pidx = lookup_particles(th.hit_off, th.hit_pid, p_off, p_id, "particles")
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
        track_majority_particle_id=unflatten(maj_pid, tc),
        track_n_shared=unflatten(n_shared, tc),
        track_purity=unflatten(purity, tc),
        track_particle_fraction=unflatten(pfrac, tc),
        track_matched=unflatten(matched, tc),
        track_is_duplicate=unflatten(dup, tc),
        track_is_fake=unflatten(~matched, tc),
        track_particle_index=unflatten(trk_pidx, tc),
        particle_n_matched=unflatten(n_matched, p_counts),
        particle_best_track=unflatten(best, p_counts),
        particle_nhits=unflatten(p_nhits, p_counts),
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

