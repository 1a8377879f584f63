"""Input access shared by the metrics modules (internal): jagged fields as flat arrays and
per-event counts, offsets, particle-id lookup, and JSON-safe floats.

Inputs are awkward arrays (or mappings of arrays) in the file layout of `hepgan.io.schema`,
one entry per event, with flat branch names as uproot reads them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import awkward as ak
import numba as nb
import numpy as np

from hepgan.errors import InputError, closest


def fields_of(container, argname: str) -> list[str]:
    if isinstance(container, ak.Array):
        return list(container.fields)
    if isinstance(container, Mapping):
        return list(container.keys())
    msg = (
        f"{argname} must be an awkward Array of records or a mapping of branch name to array; "
        f"got {type(container).__name__}"
    )
    raise InputError(msg)


def has_field(container, name: str, argname: str) -> bool:
    return name in fields_of(container, argname)


def get_field(container, name: str, argname: str) -> ak.Array:
    fields = fields_of(container, argname)
    if name not in fields:
        msg = f"{argname} has no field {name!r}; {closest(name, fields)}"
        raise InputError(msg)
    arr = container[name]
    return arr if isinstance(arr, ak.Array) else ak.Array(arr)


def jagged(container, name: str, argname: str, dtype) -> tuple[np.ndarray, np.ndarray]:
    """Flat values and per-event counts of a var * dtype field.

    Returns (flat: (n_total,) dtype, counts: (n_events,) int64).
    """
    arr = get_field(container, name, argname)
    if arr.ndim != 2:
        msg = (
            f"{argname}[{name!r}] must be one list per event (var * {np.dtype(dtype).name}); "
            f"got type {arr.type}"
        )
        raise InputError(msg)
    counts = np.asarray(ak.num(arr, axis=1), dtype=np.int64)
    flat = np.asarray(ak.flatten(arr, axis=1)).astype(dtype, copy=False)
    return flat, counts


def offsets(counts: np.ndarray) -> np.ndarray:
    out = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=out[1:])
    return out


def same_counts(a: np.ndarray, b: np.ndarray, what: str) -> None:
    if len(a) != len(b):
        msg = f"{what}: number of events differ ({len(a)} vs {len(b)})"
        raise InputError(msg)
    bad = np.flatnonzero(a != b)
    if len(bad):
        e = int(bad[0])
        msg = f"{what}: lengths differ in event {e} ({int(a[e])} vs {int(b[e])})"
        raise InputError(msg)


def unflatten(flat: np.ndarray, counts: np.ndarray) -> ak.Array:
    return ak.unflatten(flat, counts)


def json_float(x) -> float | None:
    """JSON-friendly float: NaN and infinities become None (JSON has no NaN)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


@nb.njit(cache=True)
def lookup_kernel(q_off, q_pid, p_off, p_id, out):  # pragma: no cover - numba
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



def lookup_particles(q_off, q_pid, p_off, p_id, argname: str) -> np.ndarray:
    out = np.empty(len(q_pid), dtype=np.int64)
    bad = lookup_kernel(q_off, q_pid, p_off, p_id, out)
    if bad >= 0:
        msg = f"{argname}['particle_id'] repeats a particle id in event {bad}"
        raise InputError(msg)
    return out



@dataclass(frozen=True)
class TrackHits:
    """Flattened hit association of the tracks (internal)."""

    hit_off: np.ndarray  # (n_events + 1,) int64
    hit_pid: np.ndarray  # (n_hits,) int64
    trk_off: np.ndarray  # (n_events + 1,) int64
    trk_start: np.ndarray  # (n_tracks,) int64: start of each track in thi
    trk_nh: np.ndarray  # (n_tracks,) int64
    thi: np.ndarray  # (sum track_nhits,) int64 local hit indices


def track_hits(hits, tracks) -> TrackHits:
    hit_pid, hit_counts = jagged(hits, "hit_particle_id", "hits", np.int64)
    trk_nh, trk_counts = jagged(tracks, "track_nhits", "tracks", np.int64)
    thi, thi_counts = jagged(tracks, "track_hit_index", "tracks", np.int64)
    if len(hit_counts) != len(trk_counts):
        msg = (
            f"hits and tracks must hold the same events; got {len(hit_counts)} and "
            f"{len(trk_counts)} entries"
        )
        raise InputError(msg)
    if np.any(trk_nh < 0):
        msg = "tracks['track_nhits'] must be >= 0"
        raise InputError(msg)
    trk_off = offsets(trk_counts)
    cum = offsets(trk_nh)
    per_event_sum = cum[trk_off[1:]] - cum[trk_off[:-1]]
    same_counts(
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
    return TrackHits(offsets(hit_counts), hit_pid, trk_off, trk_start, trk_nh, thi)



def histogram_dict(values, edges: np.ndarray) -> dict:
    """{edges, counts, underflow, overflow} of the finite values (JSON lists)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    counts, _ = np.histogram(v, bins=edges)
    return {
        "edges": [float(x) for x in edges],
        "counts": [int(c) for c in counts],
        "underflow": int((v < edges[0]).sum()),
        "overflow": int((v > edges[-1]).sum()),
    }
