"""Running reconstruction tasks on a Dask cluster, results back in submission order.

``hepgan reco --workers N`` starts a ``dask.distributed.LocalCluster`` of N worker processes
with one thread each; ``--scheduler ADDRESS`` connects to a running cluster instead. A task is
one entry range of one input file (:func:`hepgan.reco.driver.process_range`); each worker process
builds its onnxruntime session once (:func:`hepgan.reco.engine.cached_engine`) and reuses it for
every task it runs. The client writes the outputs, in the order of the ranges, so an output
is the same bytes-for-bytes tracks as a single-process run: the noise of an event is seeded
by its event id, not by which worker ran it or when.

Dask is an optional dependency (``pip install 'hepgan[dask]'``); it is imported only here and
only when a cluster is asked for.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from hepgan.errors import InputError

__all__ = ["DaskExecutor", "SerialExecutor", "make_executor"]

log = logging.getLogger(__name__)

_DASK_HINT = "pip install 'dask[distributed]==2025.3.1' 'dask-awkward==2026.2.1'  (or: pip install 'hepgan[dask]')"


class SerialExecutor:
    """Runs tasks one after another in this process (the default, and the reference)."""

    def __enter__(self) -> SerialExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def map_ordered(self, fn: Callable[..., Any], tasks: Iterable[tuple]) -> Iterator[Any]:
        """``fn(*task)`` for each task, lazily, in order."""
        for task in tasks:
            yield fn(*task)

    def describe(self) -> str:
        return "serial"


class DaskExecutor:
    """Runs tasks on a Dask cluster: a new LocalCluster of `workers` processes (1 thread
    each) or the scheduler at `scheduler`. Results come back in submission order; at most
    `window` tasks are in flight, so results waiting for an earlier one stay bounded."""

    def __init__(self, *, workers: int | None = None, scheduler: str | None = None, window: int | None = None) -> None:
        if (workers is None) == (scheduler is None):
            msg = "give exactly one of workers (a local cluster) and scheduler (an address)"
            raise InputError(msg)
        if workers is not None and workers < 1:
            msg = f"workers must be >= 1, got {workers}"
            raise InputError(msg)
        self.workers = workers
        self.scheduler = scheduler
        self.window = window
        self._cluster: Any = None
        self._client: Any = None

    def __enter__(self) -> DaskExecutor:
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError as err:
            msg = f"--workers/--scheduler need Dask: {_DASK_HINT}"
            raise InputError(msg) from err
        try:
            if self.scheduler is not None:
                try:
                    self._client = Client(self.scheduler, timeout="30s")
                except OSError as err:
                    msg = f"cannot connect to the Dask scheduler at {self.scheduler!r}: {err}"
                    raise InputError(msg) from err
            else:
                # processes: the numba kernels and onnxruntime hold the GIL for long
                # stretches; threads of one process would not run in parallel.
                self._cluster = LocalCluster(
                    n_workers=self.workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    silence_logs=logging.WARNING,
                )
                self._client = Client(self._cluster)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def _n_workers(self) -> int:
        info = self._client.scheduler_info()
        return max(len(info.get("workers", {})), 1)

    def map_ordered(self, fn: Callable[..., Any], tasks: Iterable[tuple]) -> Iterator[Any]:
        """``fn(*task)`` on the cluster for each task; yields results in task order.

        A task's exception is raised here (with its own type) when its turn comes.
        """
        window = self.window or 4 * self._n_workers()
        pending: deque = deque()
        it = iter(tasks)
        try:
            for task in it:
                # pure=False: a rerun of the same range must run again, never reuse a result.
                pending.append(self._client.submit(fn, *task, pure=False))
                if len(pending) >= window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for fut in pending:
                fut.cancel()

    def describe(self) -> str:
        return f"dask scheduler {self.scheduler}" if self.scheduler else f"dask LocalCluster of {self.workers} workers"


def make_executor(*, workers: int | None = None, scheduler: str | None = None) -> SerialExecutor | DaskExecutor:
    """The executor for these options: serial without workers or scheduler."""
    if workers is None and scheduler is None:
        return SerialExecutor()
    if workers is not None and scheduler is not None:
        msg = "give either workers (a local cluster) or scheduler (an address), not both"
        raise InputError(msg)
    return DaskExecutor(workers=workers, scheduler=scheduler)
