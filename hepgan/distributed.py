"""Running reconstruction tasks on a Dask cluster, results back in submission order.

``hepgan reco --workers N`` starts a ``dask.distributed.LocalCluster`` of N worker processes
with one thread each; ``--scheduler ADDRESS`` connects to a running cluster instead. A task is
one entry range of one input file (:func:`hepgan.reco.driver.process_range`); each worker process
builds its onnxruntime session once (:func:`hepgan.reco.engine.cached_engine`) and reuses it for
every task it runs. The client writes the outputs, in the order of the ranges, so an output
is the same bytes-for-bytes tracks as a single-process run: the noise of an event is seeded
by its event id, not by which worker ran it or when.

``hepgan simulate --workers N`` / ``--scheduler`` runs event ranges as tasks the same way
(:func:`hepgan.acts.simulation.simulate_range`); its tasks report each event through
:meth:`DaskExecutor.progress`, so one progress bar counts the events of every worker.

Dask is an optional dependency (``pip install 'hepgan[dask]'``); it is imported only here and
only when a cluster is asked for.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
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

    def worker_count(self) -> int:
        return 1

    @contextlib.contextmanager
    def progress(self, on_progress: Callable[[int], None]) -> Iterator[Callable[[int], None]]:
        """A callable for tasks to report progress with (see DaskExecutor.progress): here, `on_progress`."""
        yield on_progress


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
                import dask

                # 30 s unless DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT says otherwise
                timeout = dask.config.get("distributed.comm.timeouts.connect", "30s")
                try:
                    self._client = Client(self.scheduler, timeout=timeout)
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
                # A task's exception comes back here and the command reports it in one line
                # (--debug: with the worker's traceback); the worker's own log would repeat it
                # in 20 lines on our stderr. Only on our own cluster.
                self._client.register_plugin(_quiet_task_errors(), name="hepgan-quiet-task-errors")
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

    def worker_count(self) -> int:
        """Worker processes of the cluster now (at least 1)."""
        info = self._client.scheduler_info()
        return max(len(info.get("workers", {})), 1)

    @contextlib.contextmanager
    def progress(self, on_progress: Callable[[int], None]) -> Iterator[Callable[[int], None]]:
        """A picklable callable for tasks: a task calls it with a count (events done, say) on its
        worker, and `on_progress(count)` runs here, on the client's Dask thread (so it must be
        thread-safe). Counts of a task that is rerun (a lost worker) arrive twice."""
        topic = f"hepgan-progress-{uuid.uuid4().hex}"
        self._client.subscribe_topic(topic, lambda event: on_progress(event[1]))
        try:
            yield _TopicReport(topic)
        finally:
            self._client.unsubscribe_topic(topic)

    def map_ordered(self, fn: Callable[..., Any], tasks: Iterable[tuple]) -> Iterator[Any]:
        """``fn(*task)`` on the cluster for each task; yields results in task order.

        A task's exception is raised here (with its own type) when its turn comes.
        """
        window = self.window or 4 * self.worker_count()
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


def _quiet_task_errors() -> Any:
    """A worker plugin that drops two log records of a failing task from the worker's log: its
    'Compute Failed' (the client reports the task's exception) and the 'ended with
    CancelledError' of the tasks cancelled after it. Every other log line of the worker stays.
    Made here: Dask is imported only when a cluster is asked for."""
    from distributed import WorkerPlugin

    class QuietTaskErrors(WorkerPlugin):
        def setup(self, worker: Any) -> None:
            for name in _QUIET:
                logging.getLogger(name).addFilter(_drop_task_error)

        def teardown(self, worker: Any) -> None:
            for name in _QUIET:
                logging.getLogger(name).removeFilter(_drop_task_error)

    return QuietTaskErrors()


_QUIET = ("distributed.worker", "distributed.worker.state_machine")


def _drop_task_error(record: logging.LogRecord) -> bool:
    if record.name == "distributed.worker":
        return not str(record.msg).startswith("Compute Failed")
    return "ended with CancelledError" not in record.getMessage()


class _TopicReport:
    """Logs a count under a Dask event topic from the worker it runs on (DaskExecutor.progress)."""

    def __init__(self, topic: str) -> None:
        self.topic = topic

    def __call__(self, n: int) -> None:
        from distributed import get_worker

        get_worker().log_event(self.topic, n)


def make_executor(*, workers: int | None = None, scheduler: str | None = None) -> SerialExecutor | DaskExecutor:
    """The executor for these options: serial without workers or scheduler."""
    if workers is None and scheduler is None:
        return SerialExecutor()
    if workers is not None and scheduler is not None:
        msg = "give either workers (a local cluster) or scheduler (an address), not both"
        raise InputError(msg)
    return DaskExecutor(workers=workers, scheduler=scheduler)
