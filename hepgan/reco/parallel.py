"""Events at once: ``threads`` events of a chunk reconstructed in as many threads of one
process, results in input order.

Why threads of one process, not processes: one onnxruntime session, one copy of the seeding
plans and feature tables, no pickling of hits and tracks. They run in parallel because the
chain holds the GIL for little of its time: every numba kernel releases it
(:func:`hepgan.reco.jit.kernel`), and so do onnxruntime's ``run`` and numpy's loops over large
arrays (measured at ttbar pile-up 200: 95% of an event's CPU time is in the kernels and
onnxruntime).

Why it is safe: an event's chain reads shared state only (the engine's geometry, tables and
session, whose ``run`` may be called from several threads at once; the seeding plans cached
with ``functools.lru_cache``, which may be built twice by two first calls, the same both
times), and draws its noise from its own generator seeded by (seed, event_id). So the tracks
of an event do not depend on the number of threads, and they come back in the order of the
events (the writers write events in input order).

Why one onnxruntime thread per event (``Engine``'s session has one intra-op thread): with N
events in flight every core is already busy, and intra-op threads would only contend with the
other events' kernels (measured at ttbar pile-up 200 on 2 cores, 2 events at once: 212 ms/event
with one intra-op thread, 203 with two, within the noise; N x N threads on a bigger machine).

Measured on the 2-core project machine, idle (tuning events, ms per event of engine wall time,
1 -> 2 threads): ttbar pile-up 200 367 -> 213, pile-up 50 65 -> 34, pile-up 0 5.7 -> 3.5.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np

__all__ = ["ordered_map", "reconstruct_events"]

T = TypeVar("T")
R = TypeVar("R")


def ordered_map(fn: Callable[[T], R], items: Iterable[T], threads: int) -> Iterator[R]:
    """``fn(item)`` for every item, `threads` at a time, yielded in the order of `items`.

    With one thread, everything runs in the calling thread, with no pool. At most ``2 * threads``
    items are in flight, so a consumer that is slower than the pool holds back few results. An
    exception is raised where its item's result would be yielded, and items not started yet
    are dropped.
    """
    if threads <= 1:
        yield from map(fn, items)
        return
    pending: list[Future[R]] = []
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="hepgan-event") as pool:
        try:
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) >= 2 * threads:
                    yield pending.pop(0).result()
            while pending:
                yield pending.pop(0).result()
        finally:
            for f in pending:
                f.cancel()


def reconstruct_events(
    engine: Any, hits: Sequence[Sequence[np.ndarray]], event_ids: Sequence[int], threads: int
) -> Iterator[tuple[dict[str, np.ndarray], dict[str, float]]]:
    """``engine.reconstruct_event`` of every event, `threads` events at a time, in order.

    `hits` holds each event's (x, y, z, volume_id, layer_id). Each event's ``ms`` are the wall
    times of its stages in its own thread: summed over the events they are the time the events
    spent in each stage (with N threads, N times the wall time per event at best).
    """

    def one(j: int) -> tuple[dict[str, np.ndarray], dict[str, float]]:
        return engine.reconstruct_event(*hits[j], event_id=int(event_ids[j]))

    return ordered_map(one, range(len(hits)), threads)

