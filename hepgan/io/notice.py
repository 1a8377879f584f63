"""Say what a slow step is doing, only when it turns out to be slow; progress off a terminal.

A first run after an install compiles numba kernels for tens of seconds; later runs load them
from numba's cache in a fraction of one. A message before every such step would be noise on
the fast runs (and a line before every one-line error); none would leave the slow runs silent.
`slow_notice` logs its message at INFO once the step has run for `NOTICE_AFTER_S` seconds, from
a timer thread, so it appears while the step still runs, on a terminal or not.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator

from tqdm import tqdm

__all__ = ["NOTICE_AFTER_S", "Progress", "slow_notice"]

log = logging.getLogger("hepgan")

#: Seconds a step runs before its notice is logged.
NOTICE_AFTER_S = 5.0


@contextlib.contextmanager
def slow_notice(message: str, *, after_s: float = NOTICE_AFTER_S, logger: logging.Logger | None = None) -> Iterator[None]:
    """Log ``message...`` at INFO if the block is still running after `after_s` seconds, and
    how long it took when it ends."""
    target = logger or log
    t0 = time.perf_counter()
    told = threading.Event()

    def tell() -> None:
        told.set()
        target.info("%s...", message)

    timer = threading.Timer(after_s, tell)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        if told.is_set():
            target.info("%s: done in %.1f s", message, time.perf_counter() - t0)


class Progress:
    """A bar on a terminal; elsewhere an INFO line at most every `every_s` seconds, so a run in
    a batch job or a pipe shows it is alive."""

    def __init__(self, total: int, *, bar: bool, desc: str, every_s: float = 10.0) -> None:
        self.total = total
        self.done = 0
        self._bar = tqdm(total=total, desc=desc, unit="event", disable=not bar)
        self._log = not bar and total > 0
        self._desc = desc
        self._every = every_s
        self._t0 = self._last = time.perf_counter()
        self._told = False

    def update(self, n: int = 1) -> None:
        self.done += n
        self._bar.update(n)
        now = time.perf_counter()
        # a run that ends within the first interval stays quiet
        if self._log and (now - self._last >= self._every or (self.done == self.total and self._told)):
            self._last = now
            self._told = True
            log.info("%s: %s/%s events (%.0f%%), %.0f s", self._desc, f"{self.done:,}", f"{self.total:,}",
                     100 * self.done / self.total, now - self._t0)  # fmt: skip

    def close(self) -> None:
        self._bar.close()
