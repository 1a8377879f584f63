"""Agreement of a surrogate's tracks with the classic (ACTS) tracks of the same events.

An ACTS track is reproduced when one surrogate track holds at least 75% of its hits (the
surrogate track with most shared hits is its partner). The fraction of ACTS tracks reproduced
is quoted beside every efficiency (docs/metrics.md). For reproduced pairs the pull
(ACTS parameter - surrogate mean) / surrogate spread per parameter measures the calibration of
the surrogate's sampled spread against the classic answer: width 1 when calibrated.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import awkward as ak
import numpy as np

from hepgan.errors import InputError
from hepgan.perf.metrics._common import histogram_dict, json_float
from hepgan.perf.metrics.resolution import PERIGEE_PARAMETERS, core_width, wrap_phi

__all__ = ["AGREEMENT_FRACTION", "agreement"]

#: An ACTS track is reproduced when one surrogate track holds >= this fraction of its hits.
AGREEMENT_FRACTION = 0.75
_N_HIST_BINS = 40
_PULL_RANGE = 5.0


def _spread_name(tracks: Mapping[str, Any], p: str) -> str:
    # the sampled spread is moving from track_err_* to its own name, track_spread_*
    fields = tracks.fields if isinstance(tracks, ak.Array) else tracks.keys()
    return f"track_spread_{p}" if f"track_spread_{p}" in fields else f"track_err_{p}"


def agreement(
    acts_tracks: Mapping[str, Any],
    sur_tracks: Mapping[str, Any],
    *,
    fraction: float = AGREEMENT_FRACTION,
) -> dict:
    """How well the surrogate reproduces ACTS's tracks on the same events (module docstring).

    Args:
        acts_tracks, sur_tracks: mappings with ``track_nhits``, ``track_hit_index`` and
            ``track_<p>``, one list per event; the surrogate also ``track_spread_<p>`` (or,
            in files from before that branch, ``track_err_<p>``).
        fraction: the share of an ACTS track's hits its partner must hold.

    Returns:
        ``fraction``, ``n_acts_tracks``, ``n_surrogate_tracks``, ``n_reproduced``,
        ``fraction_reproduced``; ``pull_width`` and ``pull_mean`` (median) per parameter;
        ``pull_hist`` per parameter ({edges, counts, underflow, overflow}).
    """
    a_nh = ak.to_numpy(ak.flatten(acts_tracks["track_nhits"])).astype(np.int64)
    a_cnt = ak.to_numpy(ak.num(acts_tracks["track_nhits"], axis=1)).astype(np.int64)
    a_hi = acts_tracks["track_hit_index"]
    s_nh = ak.to_numpy(ak.flatten(sur_tracks["track_nhits"])).astype(np.int64)
    s_cnt = ak.to_numpy(ak.num(sur_tracks["track_nhits"], axis=1)).astype(np.int64)
    s_hi = sur_tracks["track_hit_index"]
    if len(a_cnt) != len(s_cnt):
        msg = f"agreement: ACTS and surrogate tracks hold {len(a_cnt)} and {len(s_cnt)} events"
        raise InputError(msg)
    partner = np.full(len(a_nh), -1, dtype=np.int64)  # global surrogate track index
    a_off = np.concatenate([[0], np.cumsum(a_cnt)])
    s_off = np.concatenate([[0], np.cumsum(s_cnt)])
    for ev in range(len(a_cnt)):
        na, ns = a_cnt[ev], s_cnt[ev]
        if na == 0 or ns == 0:
            continue
        # (hit, track) pairs of both; join them on the hit to count shared hits per pair.
        a_track = np.repeat(np.arange(na), a_nh[a_off[ev] : a_off[ev + 1]])
        s_track = np.repeat(np.arange(ns), s_nh[s_off[ev] : s_off[ev + 1]])
        a_hits = ak.to_numpy(a_hi[ev]).astype(np.int64)
        s_hits = ak.to_numpy(s_hi[ev]).astype(np.int64)
        order = np.argsort(s_hits, kind="stable")
        s_sorted = s_hits[order]
        lo = np.searchsorted(s_sorted, a_hits, side="left")
        hi = np.searchsorted(s_sorted, a_hits, side="right")
        n_per = hi - lo
        if n_per.sum() == 0:
            continue
        rows = np.repeat(a_track, n_per)
        pos = np.repeat(lo - np.cumsum(n_per) + n_per, n_per) + np.arange(n_per.sum())
        cols = s_track[order[pos]]
        pair, shared = np.unique(rows * ns + cols, return_counts=True)
        pa, ps = pair // ns, pair % ns
        # best partner per ACTS track: most shared hits (ties: lower surrogate index, np.lexsort stable)
        best = np.lexsort((ps, -shared, pa))
        first = np.ones(len(best), dtype=bool)
        first[1:] = pa[best][1:] != pa[best][:-1]
        bi = best[first]
        ok = shared[bi] >= fraction * a_nh[a_off[ev] + pa[bi]]
        partner[a_off[ev] + pa[bi][ok]] = s_off[ev] + ps[bi][ok]
    rep = partner >= 0
    out: dict[str, Any] = {
        "fraction": fraction,
        "n_acts_tracks": int(len(a_nh)),
        "n_surrogate_tracks": int(len(s_nh)),
        "n_reproduced": int(rep.sum()),
        "fraction_reproduced": json_float(rep.mean()) if len(rep) else None,
        "pull_width": {},
        "pull_mean": {},
        "pull_hist": {},
    }
    edges = np.linspace(-_PULL_RANGE, _PULL_RANGE, _N_HIST_BINS + 1)
    for p in PERIGEE_PARAMETERS:
        av = ak.to_numpy(ak.flatten(acts_tracks[f"track_{p}"])).astype(np.float64)[rep]
        sv = ak.to_numpy(ak.flatten(sur_tracks[f"track_{p}"])).astype(np.float64)[partner[rep]]
        se = ak.to_numpy(ak.flatten(sur_tracks[_spread_name(sur_tracks, p)])).astype(np.float64)[partner[rep]]
        d = av - sv
        if p == "phi":
            d = wrap_phi(d)
        with np.errstate(divide="ignore", invalid="ignore"):
            pull = np.where(se > 0, d / np.where(se > 0, se, 1.0), np.nan)
        fin = pull[np.isfinite(pull)]
        out["pull_width"][p] = json_float(core_width(fin))
        out["pull_mean"][p] = json_float(np.median(fin)) if len(fin) else None
        out["pull_hist"][p] = histogram_dict(fin, edges)
    return out

