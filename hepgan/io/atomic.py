"""Atomic output: every file hepgan writes appears whole under its final name, or not at all.

One temporary-name scheme for the whole package: ``.<name>.<pid>.tmp`` in the destination's
folder (same filesystem, so the final rename is atomic). `clean_stale_temporaries` recognises
exactly this scheme, so a run killed with SIGKILL leaves nothing that a re-run cannot clear.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_output",
    "clean_stale_temporaries",
    "temporary_path",
    "write_bytes_atomically",
    "write_json_atomically",
    "write_text_atomically",
]

log = logging.getLogger(__name__)

_TMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.tmp$")


def temporary_path(path: Path) -> Path:
    """Where `path` is written before it is complete: hidden, same folder, tagged with our pid."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield the temporary path to write; rename it to `path` when the block ends normally.

    On an exception (a full disk included) the temporary is removed and `path` is untouched.
    Writers that append a suffix of their own (``np.savez``) must be given an open file object.
    """
    path = Path(path)
    tmp = temporary_path(path)
    try:
        yield tmp
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomically(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path`: either the old file stays or the whole new one appears."""
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomically(path: str | os.PathLike, text: str) -> None:
    """`write_bytes_atomically` for UTF-8 text."""
    write_bytes_atomically(path, text.encode())


def write_json_atomically(path: str | os.PathLike, doc: Any, *, indent: int | None = 1) -> None:
    """`write_text_atomically` of ``json.dumps(doc)`` (NaN refused: JSON readers choke on it)."""
    write_text_atomically(path, json.dumps(doc, indent=indent, allow_nan=False) + "\n")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def clean_stale_temporaries(out: Path) -> list[Path]:
    """Remove temporaries of `out` (``.<name>.<pid>.tmp``) whose writer process is gone.

    Why the pid check: a temporary of a live process is another run writing the same output
    right now. Process ids are per machine: on a shared file system, run one job per output
    folder at a time.
    """
    removed: list[Path] = []
    if not out.parent.is_dir():
        return removed
    for tmp in out.parent.glob(f".{out.name}.*.tmp"):
        m = _TMP.match(tmp.name)
        if not m or m["name"] != out.name:
            continue
        pid = int(m["pid"])
        if pid != os.getpid() and _pid_alive(pid):
            log.warning("%s: being written by live process %d; leaving it", tmp, pid)
            continue
        tmp.unlink(missing_ok=True)
        log.info("removed stale temporary %s (process %d is gone)", tmp, pid)
        removed.append(tmp)
    return removed
