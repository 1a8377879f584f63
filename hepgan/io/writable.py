"""Refuse an output location that cannot be written, before the work that would fill it.

Without this, a read-only or missing folder surfaces after the run as an OSError about a
hidden temporary file (`hepgan.io.atomic`), minutes or hours later.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hepgan.errors import InputError

__all__ = ["check_writable"]


def check_writable(path: str | os.PathLike, *, folder: bool) -> None:
    """Raise `InputError` unless `path` (an output folder when `folder`, else an output file)
    can be created or written: its nearest existing folder must take a new file."""
    path = Path(path)
    if folder and path.exists() and not path.is_dir():
        msg = f"{path}: exists and is not a folder; expected the output folder"
        raise InputError(msg)
    if not folder and path.is_dir():
        msg = f"{path}: is a folder; expected an output file name"
        raise InputError(msg)
    start = path if folder else path.parent
    existing = next((p for p in (start, *start.absolute().parents) if p.exists()), None)
    if existing is None:
        return
    if not existing.is_dir():
        msg = f"{existing}: is a file, so {path} cannot be created; choose another output (-o)"
        raise InputError(msg)
    # Trying is the only test that holds for every case: permissions, root on a read-only
    # file system, quotas.
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        msg = f"{existing}: cannot write there ({err.strerror or err}); choose another output (-o)"
        raise InputError(msg) from err
