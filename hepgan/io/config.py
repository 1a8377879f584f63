"""The one config loader: a TOML file (or a mapping) -> a frozen dataclass, or one-line errors.

Every config of hepgan is a frozen dataclass whose fields carry their defaults and types;
this module turns a document into one and refuses, naming the file and the key:

- a file that cannot be read or is not TOML: ``f.toml: cannot read <what>: <reason>``;
- an unknown key: ``f.toml: unknown key 'epochz'; closest: 'epochs'; available: ...``;
- a missing required key: ``f.toml: missing key 'dataset' (a folder path)`` (the hint is the
  field's ``metadata["expected"]``);
- a value of the wrong type: ``f.toml: epochs = 2.5, expected an integer``, ``... expected a
  number (float)``, ``... expected true or false``, ``... expected a string``;
- a value the dataclass itself refuses (``ValueError`` of ``__post_init__``):
  ``f.toml: not a valid TrainConfig: <reason>``.

All of them are :class:`hepgan.errors.InputError` (exit code 2). Numbers are not converted
(an int stays an int in a float field: both are numbers to the code that reads them); TOML
arrays become tuples, recursively, since the configs are frozen and hashed. A field whose
type is itself a dataclass is read from a TOML table the same way (keys shown dotted:
``features.layers``).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from hepgan.errors import InputError, closest

__all__ = ["load_config", "read_toml"]

T = TypeVar("T")


def read_toml(path: str | os.PathLike, *, what: str = "config") -> dict[str, Any]:
    """The TOML document of `path`, or ``InputError`` "path: cannot read <what>: reason"."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        msg = f"{path}: cannot read {what}: {err}"
        raise InputError(msg) from err


def load_config(
    cls: type[T],
    source: str | os.PathLike | Mapping[str, Any],
    *,
    what: str = "config",
    where: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    prepare: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    unknown_hint: str = "",
) -> T:
    """A `cls` instance from a TOML file or a mapping (module docstring for the errors).

    Args:
        cls: a dataclass (frozen, by the house rule).
        source: the TOML file, or an already parsed mapping (model metadata, a stats file).
        what: what the document is, for the "cannot read" message ("training config").
        where: how messages name the source (default: the file's path, or `what`).
        overrides: values that win over the document's (``None`` values are ignored; an
            unknown key is refused as the "override"'s, not the file's).
        prepare: called with the document after the key checks and before the type checks,
            returns the document to use (e.g. paths resolved against the file's folder).
        unknown_hint: appended to an unknown key's name in its message.
    """
    if isinstance(source, Mapping):
        doc = dict(source)
        where = where or what
    else:
        doc = read_toml(source, what=what)
        where = where or str(source)
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    known = {f.name for f in dataclasses.fields(cls) if f.init}
    for key in given:
        if key not in known:  # a caller's (command line's) key, not the file's: say so
            msg = f"override: unknown key {key!r}{unknown_hint}; {closest(key, known)}"
            raise InputError(msg)
    doc.update(given)
    return _build(cls, doc, where, prefix="", prepare=prepare, unknown_hint=unknown_hint)


def _build(cls: type[T], doc: dict[str, Any], where: str, *, prefix: str, prepare=None, unknown_hint: str = "") -> T:
    known = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in doc:
        if key not in known:
            msg = f"{where}: unknown key {prefix + key!r}{unknown_hint}; {closest(key, known)}"
            raise InputError(msg)
    for name, f in known.items():
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if required and name not in doc:
            hint = f.metadata.get("expected")
            msg = f"{where}: missing key {prefix + name!r}" + (f" ({hint})" if hint else "")
            raise InputError(msg)
    if prepare is not None:
        doc = prepare(doc)
    hints = typing.get_type_hints(cls)
    values = {key: _convert(hints[key], value, where, prefix + key) for key, value in doc.items()}
    try:
        return cls(**values)
    except (TypeError, ValueError) as err:  # InputError from the dataclass's checks included
        msg = f"{where}: not a valid {cls.__name__}: {err}"
        raise InputError(msg) from err


def _convert(tp: Any, value: Any, where: str, key: str) -> Any:
    """`value` checked against the type `tp` (lists -> tuples, tables -> dataclasses)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in (o for o in options if o is not type(None)):
            try:
                return _convert(option, value, where, key)
            except InputError as err:
                errors.append(err)
        raise errors[0]
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            msg = f"{where}: {key} = {value!r}, expected a table of {tp.__name__} keys"
            raise InputError(msg)
        return _build(tp, dict(value), where, prefix=key + ".")
    if tp is bool:
        if not isinstance(value, bool):
            msg = f"{where}: {key} = {value!r}, expected true or false"
            raise InputError(msg)
        return value
    if tp in (int, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            msg = f"{where}: {key} = {value!r}, expected a number ({tp.__name__})"
            raise InputError(msg)
        if tp is int and isinstance(value, float):
            msg = f"{where}: {key} = {value!r}, expected an integer"
            raise InputError(msg)
        return value
    if tp is str:
        if not isinstance(value, str):
            msg = f"{where}: {key} = {value!r}, expected a string"
            raise InputError(msg)
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            msg = f"{where}: {key} = {value!r}, expected an array"
            raise InputError(msg)
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, where, f"{key}[{i}]") for i, v in enumerate(value))
        if args and len(args) != len(value):
            msg = f"{where}: {key} = {list(value)!r}, expected an array of {len(args)} values"
            raise InputError(msg)
        return tuple(_convert(a, v, where, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=False)))
    # Mappings and other types: handed to the dataclass as they are (it checks what it needs).
    return value
