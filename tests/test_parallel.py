"""hepgan.reco.parallel: events in threads, in order; the numba kernels let go of the GIL."""

from __future__ import annotations

import importlib
import pkgutil
import threading
import time

import numpy as np
import pytest
from numba.core.registry import CPUDispatcher

import hepgan.reco
from hepgan.reco.jit import kernel
from hepgan.reco.parallel import ordered_map


@kernel()
def _busy(n: int) -> float:
    s = 0.0
    for i in range(n):
        s += np.sin(i * 1e-3)
    return s


def _kernels() -> dict[str, CPUDispatcher]:
    found = {}
    for info in pkgutil.iter_modules(hepgan.reco.__path__):
        module = importlib.import_module(f"hepgan.reco.{info.name}")
        for name, value in vars(module).items():
            if isinstance(value, CPUDispatcher) and value.py_func.__module__ == module.__name__:
                found[f"{module.__name__}.{name}"] = value
    return found


def test_every_kernel_releases_the_gil() -> None:
    kernels = _kernels()
    # the chain's top-level kernels among them: what events in threads run in parallel
    top = {"hepgan.reco.seeding_kernel.seed_kernel", "hepgan.reco.features_kernel.road_kernel",
           "hepgan.reco.features_kernel.fit_kernel", "hepgan.reco.completion._inward_kernel"}  # fmt: skip
    assert top <= set(kernels)
    held = [name for name, k in kernels.items() if not k.targetoptions.get("nogil")]
    assert not held, held


def test_a_kernel_lets_python_run_beside_it() -> None:
    """While one thread is in a kernel, another runs Python: no pause of the other thread as
    long as the call (with the GIL kept, it would wait for the whole call)."""
    _busy(10)  # compiled or loaded before the clock
    n = 1
    while True:  # a call long enough to see on any machine
        t0 = time.perf_counter()
        _busy(n)
        if time.perf_counter() - t0 > 0.2 or n > 1 << 34:
            break
        n *= 4
    span: list[float] = []

    def call() -> None:
        t = time.perf_counter()
        _busy(n)
        span.append(time.perf_counter() - t)

    worker = threading.Thread(target=call)
    last, longest = time.perf_counter(), 0.0
    worker.start()
    while worker.is_alive():
        now = time.perf_counter()
        longest, last = max(longest, now - last), now
    worker.join()
    assert longest < 0.5 * span[0], (longest, span)


def test_ordered_map_keeps_the_order_and_uses_threads() -> None:
    names: set[str] = set()

    def slow_first(i: int) -> int:
        names.add(threading.current_thread().name)
        time.sleep(0.02 if i % 3 == 0 else 0.001)  # later items finish first
        return i * i

    assert list(ordered_map(slow_first, range(20), 3)) == [i * i for i in range(20)]
    assert len(names) > 1 and all(n.startswith("hepgan-event") for n in names)
    names.clear()
    assert list(ordered_map(slow_first, range(5), 1)) == [0, 1, 4, 9, 16]
    assert names == {threading.current_thread().name}  # one thread: no pool


def test_ordered_map_raises_where_the_item_fails() -> None:
    def fail_at_3(i: int) -> int:
        if i == 3:
            msg = "event 3"
            raise ValueError(msg)
        return i

    got = []
    with pytest.raises(ValueError, match="event 3"):
        for x in ordered_map(fail_at_3, range(50), 2):
            got.append(x)
    assert got == [0, 1, 2]
