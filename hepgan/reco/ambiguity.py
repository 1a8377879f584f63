"""Ambiguity resolution: keep the best of track candidates that share hits.

Several seeds of one particle give several candidates with nearly the same hits. The greedy
resolver visits the candidates best first (highest score, then most hits, then candidate
order, so the result is deterministic) and accepts a candidate unless it shares more than
``max_shared_hits`` hits, or more than ``max_shared_fraction`` of its own hits, with tracks
already accepted. Cost: one pass over the candidates' hits (numba), O(total hits).

>>> import numpy as np
>>> hits = np.array([0, 1, 2, 3,   0, 1, 2, 4,   5, 6, 7])   # three candidates, flattened
>>> keep = resolve(hits, np.array([4, 4, 3]), np.array([0.9, 0.8, 0.7]), n_hits=8,
...                config=AmbiguityConfig(max_shared_hits=1))
>>> keep.tolist()       # the second shares 3 hits with the first: dropped
[0, 2]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hepgan.errors import InputError
from hepgan.reco.jit import kernel

__all__ = ["AmbiguityConfig", "preselect_seeds", "resolve"]


@dataclass(frozen=True)
class AmbiguityConfig:
    """Cuts of the greedy resolver.

    Attributes:
        max_shared_hits: a candidate sharing more hits than this with accepted tracks is
            dropped (ACTS's greedy solver in ``hepgan.acts.chain`` uses 3).
        max_shared_fraction: a candidate sharing more than this fraction of its own hits with
            accepted tracks is dropped (1.0 disables the cut).
    """

    max_shared_hits: int = 3
    max_shared_fraction: float = 0.5

    def __post_init__(self) -> None:
        if self.max_shared_hits < 0:
            msg = f"AmbiguityConfig.max_shared_hits must be >= 0, got {self.max_shared_hits!r}"
            raise InputError(msg)
        if not 0.0 <= self.max_shared_fraction <= 1.0:
            msg = f"AmbiguityConfig.max_shared_fraction must be in [0, 1], got {self.max_shared_fraction!r}"
            raise InputError(msg)


@kernel()
def _greedy_kernel(hits, start, order, n_hits, max_shared, max_fraction, keep):
    used = np.zeros(n_hits, dtype=np.bool_)
    n_keep = 0
    for o in range(order.shape[0]):
        t = order[o]
        lo = start[t]
        hi = start[t + 1]
        shared = 0
        for j in range(lo, hi):
            if used[hits[j]]:
                shared += 1
        if shared > max_shared or shared > max_fraction * (hi - lo):
            continue
        for j in range(lo, hi):
            used[hits[j]] = True
        keep[n_keep] = t
        n_keep += 1
    return n_keep


def resolve(
    hits: np.ndarray,
    nhits: np.ndarray,
    score: np.ndarray,
    *,
    n_hits: int,
    config: AmbiguityConfig = AmbiguityConfig(),
) -> np.ndarray:
    """Indices of the candidates to keep, best first.

    Args:
        hits: (sum(nhits),) int hit indices of all candidates, concatenated in candidate order.
        nhits: (n_candidates,) int hits per candidate.
        score: (n_candidates,) float, higher is better.
        n_hits: hits in the event (every index in ``hits`` is below it).
        config: the sharing cuts.

    Returns:
        (n_kept,) int64 candidate indices in the order accepted (score, then hit count,
        descending).
    """
    hits = np.ascontiguousarray(hits, dtype=np.int64)
    nhits = np.asarray(nhits, dtype=np.int64)
    score = np.asarray(score, dtype=np.float64)
    if nhits.shape != score.shape:
        msg = f"nhits {nhits.shape} and score {score.shape} must have the same shape"
        raise ValueError(msg)
    start = np.zeros(len(nhits) + 1, dtype=np.int64)
    np.cumsum(nhits, out=start[1:])
    if start[-1] != len(hits):
        msg = f"nhits sums to {start[-1]} but {len(hits)} hit indices were given"
        raise ValueError(msg)
    if len(hits) and (hits.min() < 0 or hits.max() >= n_hits):
        msg = f"hit indices must lie in [0, {n_hits}), got [{hits.min()}, {hits.max()}]"
        raise ValueError(msg)
    # lexsort: last key first; the candidate index breaks ties so the order is total.
    order = np.lexsort((np.arange(len(nhits)), -nhits, -score)).astype(np.int64)
    keep = np.empty(len(nhits), dtype=np.int64)
    n = _greedy_kernel(
        hits, start, order, int(n_hits), int(config.max_shared_hits), float(config.max_shared_fraction), keep
    )
    return keep[:n]


@kernel()
def _preselect_kernel(seeds, cand, feats, n_hits, head, slot_cols, chi2_cut, keep):
    """Greedy seed preselection without the network (see `preselect_seeds`)."""
    n, n_slots, _ = cand.shape
    nprov = np.zeros(n, np.int64)
    chi2 = np.zeros(n, np.float64)
    prov = np.full((n, n_slots), -1, np.int64)
    for i in range(n):
        count = 3
        for slot in range(n_slots):
            off = head + slot * slot_cols + 4
            if feats[i, off + 2] > 0.5:
                r1 = feats[i, off]
                r2 = feats[i, off + 1]
                q = r1 * r1 + r2 * r2
                if q < chi2_cut:
                    prov[i, slot] = cand[i, slot, 0]
                    count += 1
                    chi2[i] += q
        nprov[i] = count
    # Longest provisional track first, then the best fitting: a seed of a real track finds
    # hits on most surfaces along its road, a fake finds few.
    key = np.empty(n, np.float64)
    for i in range(n):
        key[i] = -nprov[i] * 1.0e6 + min(chi2[i], 9.99e5)
    order = np.argsort(key, kind="mergesort")
    owned = np.zeros(n_hits, np.bool_)
    for o in range(n):
        i = order[o]
        shared = 0
        for j in range(3):
            if owned[seeds[i, j]]:
                shared += 1
        for slot in range(n_slots):
            h = prov[i, slot]
            if h >= 0 and owned[h]:
                shared += 1
        if 2 * shared < nprov[i]:
            keep[i] = True
            for j in range(3):
                owned[seeds[i, j]] = True
            for slot in range(n_slots):
                h = prov[i, slot]
                if h >= 0:
                    owned[h] = True


def preselect_seeds(
    seeds: np.ndarray, candidates: np.ndarray, features: np.ndarray, *, n_hits: int, n_candidates: int, chi2_cut: float = 9.0
) -> np.ndarray:
    """Seeds worth sending to the network: (n_seeds,) bool.

    Each seed gets a provisional track, its 3 hits plus the nearest candidate on each crossed
    surface within ``chi2_cut`` (squared normalised residuals, both axes); seeds are taken
    longest first, and one is dropped when half or more of its provisional hits already belong
    to a kept seed. Several seeds of one particle (one per middle hit) then shrink to about
    one before the network, whose cost grows with seeds; fakes, which find few hits along
    their road, go last and lose their hits to real tracks. seeds (n, 3), candidates
    (n, L, K) int32, features (n, F) float32 (layout of `hepgan.reco.features`).
    """
    keep = np.zeros(len(seeds), np.bool_)
    if len(seeds):
        _preselect_kernel(
            np.ascontiguousarray(seeds, dtype=np.int64), np.ascontiguousarray(candidates), np.ascontiguousarray(features),
            int(n_hits), 14, 4 + 3 * int(n_candidates), float(chi2_cut), keep,
        )  # fmt: skip
    return keep
