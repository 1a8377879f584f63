"""Exceptions that the command line turns into one-line messages and exit codes.

`InputError` is bad input or usage (exit code 2); every other `HepganError` is exit code 1.
Messages name the file, the tree or column, and what was expected, so that a user running
over thousands of files can act on the one line they see.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["HepganError", "InputError", "closest"]


class HepganError(Exception):
    """Base class of hepgan's own errors (exit code 1)."""

    exit_code = 1


class InputError(HepganError, ValueError):
    """The input (a file, a config, a command-line value) is not what hepgan expects (exit 2)."""

    exit_code = 2


def closest(name: str, available: Iterable[str], *, n: int = 3) -> str:
    """Text listing what is available, the closest names to `name` first.

    >>> closest("hit_xx", ["hit_x", "hit_y", "event_id"])
    "closest: 'hit_x', 'hit_y'; available: 'event_id', 'hit_x', 'hit_y'"
    """
    names = sorted(set(available))
    near = difflib.get_close_matches(name, names, n=n)
    listed = ", ".join(repr(x) for x in names) if names else "(nothing)"
    if near:
        return "closest: " + ", ".join(repr(x) for x in near) + "; available: " + listed
    return "available: " + listed
