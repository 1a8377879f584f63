"""What made a reco output, recorded in it, and the resume rule that reads it back; the field
an input was made in.

Every output of ``hepgan reco`` carries, in its metadata (``hepgan.io.events.METADATA_KEY``,
key ``"reco"``), the facts that decide its tracks: the engine, the model file (path, sha256 and
the hepgan version that exported it), the options that change tracks (noise seed, assignment
and ambiguity cuts, branch map, the field) and hepgan's version. The resume rule:

* an output made the same way (every fact in :data:`DECIDING` equal) is skipped;
* an output made another way, or with no record (an older hepgan, another program), or that
  cannot be read, is redone, and the run says why in a warning;
* ``--force`` redoes every output.

The model's path is recorded but not compared: the same bytes elsewhere make the same tracks.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path
from typing import Any

from hepgan import __version__
from hepgan.errors import InputError
from hepgan.io.events import METADATA_KEY, read_file_metadata

__all__ = ["DECIDING", "differences", "file_sha256", "provenance", "recorded_provenance", "resolve_field"]

log = logging.getLogger(__name__)

#: The facts that decide an output's tracks; an output is reused only when all are equal.
DECIDING = (
    "engine",
    "model_sha256",
    "seed",
    "assignment",
    "ambiguity",
    "branch_map",
    "b_field_t",
    "hepgan_version",
)


@lru_cache(maxsize=8)
def _sha256(path: str, mtime_ns: int, size: int) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes (cached per path, mtime and size)."""
    st = Path(path).stat()
    return _sha256(str(path), st.st_mtime_ns, st.st_size)


def provenance(options: Any, *, model_version: str | None, b_field: float | None) -> dict[str, Any]:
    """The record written into an output of a run with these ``RecoOptions``."""
    branch_map = options.branch_map
    return {
        "made_by": "hepgan reco",
        "hepgan_version": __version__,
        "engine": options.engine_name,
        "model": options.model,
        "model_sha256": file_sha256(options.model) if options.model else None,
        "model_hepgan_version": model_version,
        "seed": options.seed if options.engine_name == "onnx" else None,
        "assignment": asdict(options.assignment) if options.engine_name == "onnx" else None,
        "ambiguity": asdict(options.ambiguity) if options.engine_name == "onnx" else None,
        "branch_map": (
            {"trees": dict(branch_map.trees), "branches": dict(branch_map.branches)}
            if branch_map is not None and (branch_map.trees or branch_map.branches)
            else None
        ),
        "b_field_t": b_field,
    }


def recorded_provenance(output: Path) -> dict[str, Any] | None:
    """The record in an existing output; None when it has none or cannot be read."""
    try:
        doc = read_file_metadata(output)
    except InputError as err:  # a damaged output is redone, and the warning says why
        log.debug("%s: unreadable metadata: %s", output, err)
        return None
    record = doc.get("reco")
    return record if isinstance(record, dict) else None


def differences(old: dict[str, Any] | None, new: dict[str, Any]) -> str:
    """'' when `old` made the output the way `new` would; else why not, in words."""
    if old is None:
        return "it records nothing of how it was made (an older hepgan or another program)"
    changed = []
    for key in DECIDING:
        if old.get(key) != new.get(key):
            a, b = _short(key, old.get(key)), _short(key, new.get(key))
            changed.append(f"{key} {a} -> {b}")
    return "; ".join(changed)


def _short(key: str, value: Any) -> str:
    if key == "model_sha256" and isinstance(value, str):
        return value[:12]
    return repr(value)


def _same_field(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-3 * max(abs(b), 1.0)


def resolve_field(path: Path, declared: float | None, model_field: float | None) -> float | None:
    """The field (tesla) `path`'s events were made in: recorded by ``hepgan simulate``
    (metadata), else `declared` by the user, else unknown (None).

    Refuses a file whose field differs from `model_field` (the onnx engine's model): the
    generator's momenta scale with the field it was trained at, and no per-event flag can
    see that (measured: at 1.5 T its q/p is wrong while hits and scores look normal). Also
    refuses a declaration that contradicts the file's record.
    """
    recorded = read_file_metadata(path).get("b_field_t")
    where = f"metadata '{METADATA_KEY}' b_field_t"
    if recorded is not None and (isinstance(recorded, bool) or not isinstance(recorded, int | float)):
        msg = f"{path}: {where} is {recorded!r}; expected the field in tesla (a number)"
        raise InputError(msg)
    if recorded is not None and declared is not None and not _same_field(float(recorded), declared):
        msg = f"{path}: events made in a {recorded} T field ({where}), but --b-field declares {declared} T"
        raise InputError(msg)
    if recorded is None and declared is None:
        return None
    value, source = (float(recorded), where) if recorded is not None else (float(declared), "--b-field")
    if model_field is not None and not _same_field(value, model_field):
        msg = (
            f"{path}: events made in a {value} T field ({source}), but the model was trained at {model_field} T; "
            "its momenta would be wrong: use a model trained at that field, or --engine acts"
        )
        raise InputError(msg)
    return value
