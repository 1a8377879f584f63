"""``kernel``: ``numba.njit`` with a cache that is stale as soon as any hepgan kernel source is.

Why: numba keys each cached function on its own source file. A kernel compiled with a callee
from another file (the feature kernel calls ``hepgan.reco.helix`` and ``hepgan.reco.roadfit``)
has that callee's machine code inside it, so after editing only the callee, the caller kept
loading the old code from the cache. Here the cache of every ``@kernel`` function is keyed
instead on one hash of all the modules that use this one (the kernel sources): editing any
of them recompiles every kernel once, and the compiled code goes into a folder named after
that hash, beside numba's usual place (``__pycache__`` next to the source, or
``NUMBA_CACHE_DIR``, or the user-wide cache when the tree is read-only). So every hepgan
kernel that calls a kernel of another module must be a ``@kernel``, not a plain
``numba.njit(cache=True)``.

Use it as ``numba.njit`` without ``cache=`` (in a module file: numba caches nothing defined
in a console)::

    @kernel(error_model="numpy")
    def seed_kernel(coarse, fine, layers, plan, cuts): ...

    @kernel(allocates=False, inline="always")  # a helper: see kernel()
    def _third_window(...): ...
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numba
from numba.core import caching

__all__ = ["NAN_SAFE_FASTMATH", "kernel", "kernel_sources_hash"]

#: fastmath flags for kernels that test for NaN or inf: reciprocals, approximate functions and
#: the sign of zero, without reassociation or contraction (both made a kernel loaded from the
#: cache compute other last bits than the same kernel freshly compiled)
NAN_SAFE_FASTMATH = frozenset({"nsz", "arcp", "afn"})

_PACKAGE = Path(__file__).resolve().parent.parent


@functools.cache
def kernel_sources_hash() -> str:
    """Hex SHA-256 over the path and text of every module of the hepgan package that uses
    ``hepgan.reco.jit`` (read once per process)."""
    digest = hashlib.sha256()
    for path in sorted(_PACKAGE.rglob("*.py")):
        text = path.read_bytes()
        if b"hepgan.reco.jit" in text:
            digest.update(path.relative_to(_PACKAGE).as_posix().encode() + b"\0" + text + b"\0")
    return digest.hexdigest()


class _KernelSourcesMixin:
    """Cache path and freshness stamp from :func:`kernel_sources_hash` instead of one file's."""

    def get_cache_path(self) -> str:
        return str(Path(super().get_cache_path()) / ("hepgan-" + kernel_sources_hash()[:16]))  # type: ignore[misc]

    def get_source_stamp(self) -> str:
        return kernel_sources_hash()


class _UserProvidedLocator(_KernelSourcesMixin, caching.UserProvidedCacheLocator):
    pass


class _InTreeLocator(_KernelSourcesMixin, caching.InTreeCacheLocator):
    pass


class _UserWideLocator(_KernelSourcesMixin, caching.UserWideCacheLocator):
    pass


class _KernelCacheImpl(caching.CompileResultCacheImpl):
    # numba's own order of preference, each keyed on the hash
    _locator_classes = [_UserProvidedLocator, _InTreeLocator, _UserWideLocator]  # noqa: RUF012


class _KernelCache(caching.FunctionCache):
    _impl_class = _KernelCacheImpl


def kernel(*, allocates: bool = True, **options: Any) -> Callable[[Callable], Any]:
    """``numba.njit(**options)`` cached on :func:`kernel_sources_hash` (see the module docstring).

    ``allocates=False`` declares a helper that creates no array: it is compiled without
    numba's reference counting (``_nrt=False``), so calling it with arrays (or tuples of
    arrays) costs no atomic increments. Why: a seeding helper called per doublet with a few
    tuples of arrays cost more reference counting than arithmetic (measured: the seeder 8x
    slower); without it the helpers are as fast as the one big function they replace.
    ``cache`` must not be given: every kernel is cached this way.

    Every kernel's ``fastmath``, ``error_model`` and reference counting are its own (defaults:
    no fastmath, ``error_model="python"``), never its caller's. Why: numba lets a callee that
    leaves them unset inherit them from the kernel that compiles it first, keeps that one
    compiled version for every later caller and writes it to the cache, so a helper shared by
    kernels of different flags (``hepgan.reco.helix``'s, called by the feature kernel with
    fastmath and by the completion without) computed other last bits depending on which
    kernel a process, or the process that filled the cache, happened to compile first (the
    features of one ttbar pile-up 200 event: 5760 values differed between a process that had
    run the completion first and one that had not; ``tests/test_jit.py``). Helpers with
    ``inline="always"`` are compiled into each caller with the caller's flags, so they are
    left unset. A helper that tests for NaN or inf needs :data:`NAN_SAFE_FASTMATH` at most.

    Every kernel releases the GIL (``nogil=True``; only the call from Python differs, the
    compiled code is the same): the file driver reconstructs ``--threads N`` events at a time
    in N threads of one process (:mod:`hepgan.reco.parallel`), which run in parallel only
    while they are in kernels, numpy or onnxruntime. numba's cache index does not hold the
    options, so a kernel compiled before this default would be loaded without it; changing
    this file changes :func:`kernel_sources_hash`, and with it the cache folder.
    """
    if "cache" in options:
        msg = "kernel() always caches; do not pass cache="
        raise TypeError(msg)
    options.setdefault("nogil", True)
    options["_nrt"] = allocates
    if options.get("inline") != "always":
        options.setdefault("fastmath", False)
        options.setdefault("error_model", "python")
    if isinstance(options.get("fastmath"), frozenset):  # numba takes a set
        options["fastmath"] = set(options["fastmath"])

    def decorate(func: Callable) -> Any:
        dispatcher = numba.njit(**options)(func)
        # what numba's Dispatcher.enable_caching does, with our cache class
        dispatcher._cache = _KernelCache(func)
        return dispatcher

    return decorate
