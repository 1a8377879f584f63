"""Reading and writing event files (ROOT TTrees or RNTuples through uproot), with validation.

Reading is chunked (a bounded number of events in memory at once) and checks every file against
the schema of `hepgan.io.schema`: a missing tree or branch, a wrong dtype, non-finite coordinates
or event ids that differ between trees raise `InputError` naming the file, tree and branch.
Writing goes to a temporary name in the output folder and is renamed on success, so an output
under its final name is always complete.

Users' own files with other tree or branch names are read through a `BranchMap`.
"""

from __future__ import annotations

import json
import logging
import os
import tomllib
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import uproot

from hepgan.errors import HepganError, InputError, closest
from hepgan.io.atomic import temporary_path
from hepgan.io.rootfile import TREE_CLASSES, branch_layout, check_root_signature, is_event_tree
from hepgan.io.schema import ACTS_TIMING, HITS, PARTICLES, SCHEMAS, TRACKS, TreeSchema

__all__ = [
    "ACTS_TIMING",
    "HITS",
    "PARTICLES",
    "TRACKS",
    "BranchMap",
    "EventChunk",
    "RootEventWriter",
    "count_events",
    "has_truth",
    "iterate_chunks",
    "open_event_file",
    "METADATA_KEY",
    "read_events",
    "read_file_metadata",
    "read_range",
]

log = logging.getLogger(__name__)

# What uproot and its decompressors raise on a damaged file; anything else is a bug and escapes.
_READ_ERRORS = (OSError, ValueError, EOFError, KeyError, zlib.error, uproot.DeserializationError)

_COORDINATES = ("hit_x", "hit_y", "hit_z")

#: Name of the JSON string (a TObjString) with facts about how a file's events were made,
#: e.g. ``{"b_field_t": 2.0}`` from `hepgan simulate`; optional in users' files.
METADATA_KEY = "hepgan_metadata"


# --------------------------------------------------------------------------- branch mapping
@dataclass(frozen=True)
class BranchMap:
    """How a user's file names our trees and branches.

    ``trees`` maps our tree name to theirs; ``branches`` maps our branch name to theirs. Names
    not listed are taken as they are. Loaded from TOML::

        [hits]
        tree = "Hits"          # their tree name
        hit_x = "x"            # our branch = their branch
        hit_y = "y"
    """

    trees: Mapping[str, str] = field(default_factory=dict)
    branches: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_toml(cls, path: str | os.PathLike) -> BranchMap:
        path = Path(path)
        try:
            doc = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as err:
            msg = f"{path}: cannot read branch map: {err}"
            raise InputError(msg) from err
        trees: dict[str, str] = {}
        branches: dict[str, str] = {}
        for tree_name, table in doc.items():
            if tree_name not in SCHEMAS or not isinstance(table, dict):
                msg = f"{path}: unknown tree [{tree_name}] in branch map; {closest(tree_name, SCHEMAS)}"
                raise InputError(msg)
            schema = SCHEMAS[tree_name]
            for key, value in table.items():
                if not isinstance(value, str):
                    msg = f"{path}: [{tree_name}] {key} must be a string (a name in your file), got {value!r}"
                    raise InputError(msg)
                if key == "tree":
                    trees[tree_name] = value
                elif key in schema.names:
                    branches[key] = value
                else:
                    msg = f"{path}: [{tree_name}] has no branch {key!r}; {closest(key, schema.names)}"
                    raise InputError(msg)
        return cls(trees, branches)

    def tree(self, name: str) -> str:
        return self.trees.get(name, name)

    def branch(self, name: str) -> str:
        return self.branches.get(name, name)


_IDENTITY = BranchMap()


# --------------------------------------------------------------------------- reading
@dataclass
class EventFile:
    """An opened, validated event file: the trees asked for, all with `num_entries` events."""

    path: Path
    trees: dict[str, Any]  # our tree name -> uproot TTree
    branches: dict[str, tuple[str, ...]]  # our tree name -> our branch names to read
    num_entries: int
    branch_map: BranchMap
    _file: Any = None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> EventFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class EventChunk:
    """Events ``[entry_start, entry_stop)`` of one file: one awkward array per tree.

    Each array has one record per event and our branch names as fields.
    """

    path: Path
    entry_start: int
    entry_stop: int
    arrays: dict[str, ak.Array]

    def __len__(self) -> int:
        return self.entry_stop - self.entry_start

    def __getitem__(self, tree: str) -> ak.Array:
        return self.arrays[tree]

    @property
    def event_id(self) -> np.ndarray:
        first = next(iter(self.arrays.values()))
        return ak.to_numpy(first["event_id"])


def _open_root(path: Path) -> Any:
    if not path.exists():
        msg = f"{path}: no such file"
        raise InputError(msg)
    if path.is_dir():
        msg = f"{path}: is a folder, expected a ROOT file"
        raise InputError(msg)
    check_root_signature(path)
    try:
        return uproot.open(path)
    except _READ_ERRORS as err:
        msg = f"{path}: cannot open as a ROOT file ({type(err).__name__}: {_first_line(err)})"
        raise InputError(msg) from err


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def _branch_names_to_read(schema: TreeSchema, *, truth: bool) -> tuple[str, ...]:
    return schema.names if truth else schema.reco_names()


def _check_branch(path: Path, tree_name: str, tree: Any, schema: TreeSchema, ours: str, theirs: str) -> None:
    """The branch exists, is jagged when it should be, and holds numbers of the right kind."""
    where = f"{path}: tree '{tree_name}'"
    if theirs not in tree:
        available = [k for k in tree.keys() if not k.startswith("n") or k[1:] not in tree]  # noqa: SIM118  (iterating a TTree yields branches)
        msg = f"{where}: missing branch '{theirs}' (expected {'jagged ' if schema.branch(ours).jagged else ''}"
        msg += f"{schema.branch(ours).dtype}); {closest(theirs, available)}; "
        msg += "if your file names it otherwise, map it with --branch-map FILE.toml"
        raise InputError(msg)
    expected = schema.branch(ours)
    jagged, dtype = branch_layout(tree, theirs)
    if dtype is None:
        msg = f"{where}: branch '{theirs}' holds {tree[theirs].typename}, expected {expected.dtype} numbers"
        raise InputError(msg)
    # Any float width for floats and any integer width for integers: users' files differ and
    # the cast is exact or harmless; a float where an integer id is expected is not.
    allowed = {"f": "f", "i": "iu", "b": "biu"}[expected.kind]
    if expected.jagged and not jagged and dtype.kind in allowed:
        # The usual cause: a flat ntuple, one hit per entry, where hepgan reads one entry per event.
        msg = (f"{where}: branch '{theirs}' holds one {dtype} per entry, expected a list per event: hepgan reads one "
               "entry per event; a flat ntuple (one hit per entry) must be regrouped by event_id first (ak.unflatten)")
        raise InputError(msg)  # fmt: skip
    if dtype.kind not in allowed or jagged != expected.jagged:
        shape = "one list per event" if expected.jagged else "one value per event"
        got = f"{'a list of ' if jagged else ''}{dtype}"
        msg = f"{where}: branch '{theirs}' holds {got}, expected {expected.dtype} ({shape})"
        raise InputError(msg)


def open_event_file(
    path: str | os.PathLike,
    *,
    trees: Sequence[str] = ("hits",),
    truth: bool = False,
    branch_map: BranchMap | None = None,
) -> EventFile:
    """Open `path` and check that it holds `trees` with the branches of the schema.

    With ``truth=False`` the truth branches are neither checked nor read, which is what the
    reconstruction uses: it must work on real data, which has none.
    """
    path = Path(path)
    branch_map = branch_map or _IDENTITY
    root = _open_root(path)
    try:
        opened: dict[str, Any] = {}
        names: dict[str, tuple[str, ...]] = {}
        for name in trees:
            if name not in SCHEMAS:
                msg = f"unknown tree {name!r}; {closest(name, SCHEMAS)}"
                raise ValueError(msg)
            schema = SCHEMAS[name]
            if schema.truth and not truth:
                msg = f"tree {name!r} is truth, and truth was not asked for"
                raise ValueError(msg)
            theirs = branch_map.tree(name)
            try:
                tree = root[theirs]
            except uproot.KeyInFileError as err:
                available = [k.split(";")[0] for k, c in root.classnames().items() if c in TREE_CLASSES]
                msg = f"{path}: missing tree '{theirs}' (expected the {name} tree); {closest(theirs, available)}"
                if available:
                    msg += f"; if one of them is it, pass --branch-map FILE.toml with [{name}] tree = \"{available[0]}\""
                raise InputError(msg) from err
            except _READ_ERRORS as err:
                msg = f"{path}: cannot read tree '{theirs}' ({type(err).__name__}: {_first_line(err)})"
                raise InputError(msg) from err
            if not is_event_tree(tree):
                msg = f"{path}: '{theirs}' is a {tree.classname}, not a tree of events (a TTree or an RNTuple)"
                raise InputError(msg)
            wanted = _branch_names_to_read(schema, truth=truth)
            # optional branches (newer truth) are read where the file has them
            wanted = tuple(n for n in wanted if not schema.branch(n).optional or branch_map.branch(n) in tree)
            for ours in wanted:
                _check_branch(path, theirs, tree, schema, ours, branch_map.branch(ours))
            opened[name] = tree
            names[name] = wanted
        counts = {name: t.num_entries for name, t in opened.items()}
        if len(set(counts.values())) > 1:
            listed = ", ".join(f"'{branch_map.tree(n)}' {c}" for n, c in counts.items())
            msg = f"{path}: trees hold different numbers of events ({listed}); expected one entry per event in each"
            raise InputError(msg)
        num = next(iter(counts.values())) if counts else 0
        return EventFile(path, opened, names, num, branch_map, root)
    except BaseException:
        root.close()
        raise


def has_truth(path: str | os.PathLike, *, tree: str = "hits", branch_map: BranchMap | None = None) -> bool:
    """Whether `path`'s `tree` holds every truth branch of our schema (simulated files do, real
    data does not). A missing file or tree raises InputError as `open_event_file` would."""
    path = Path(path)
    branch_map = branch_map or _IDENTITY
    root = _open_root(path)
    try:
        theirs = branch_map.tree(tree)
        if theirs not in root:
            msg = f"{path}: missing tree '{theirs}' (expected the {tree} tree)"
            raise InputError(msg)
        keys = set(root[theirs].keys())
        return all(branch_map.branch(b.name) in keys for b in SCHEMAS[tree].branches if b.truth and not b.optional)
    finally:
        root.close()


def _read_tree(ef: EventFile, name: str, start: int, stop: int) -> ak.Array:
    schema = SCHEMAS[name]
    tree = ef.trees[name]
    ours = ef.branches[name]
    theirs = [ef.branch_map.branch(b) for b in ours]
    try:
        raw = tree.arrays(theirs, entry_start=start, entry_stop=stop, library="ak", how=dict)
    except _READ_ERRORS as err:
        msg = (
            f"{ef.path}: tree '{ef.branch_map.tree(name)}': cannot read entries {start}-{stop} "
            f"(damaged or truncated file? {type(err).__name__}: {_first_line(err)})"
        )
        raise InputError(msg) from err
    columns = {}
    for our, their in zip(ours, theirs, strict=True):
        columns[our] = ak.values_astype(raw[their], schema.branch(our).dtype)
    return ak.zip(columns, depth_limit=1)


def _validate_chunk(ef: EventFile, arrays: dict[str, ak.Array], start: int) -> None:
    reference_name, reference = next(iter(arrays.items()))
    ids = ak.to_numpy(reference["event_id"])
    for name, arr in arrays.items():
        other = ak.to_numpy(arr["event_id"])
        if not np.array_equal(ids, other):
            bad = int(np.flatnonzero(ids != other)[0])
            msg = (
                f"{ef.path}: event ids differ between trees '{ef.branch_map.tree(reference_name)}' and "
                f"'{ef.branch_map.tree(name)}' at entry {start + bad} ({ids[bad]} vs {other[bad]}); "
                "expected the same events in the same order"
            )
            raise InputError(msg)
    if "hits" in arrays:
        hits = arrays["hits"]
        for coord in _COORDINATES:
            values = hits[coord]
            finite = np.isfinite(ak.to_numpy(ak.flatten(values)))
            if not finite.all():
                per_event = ak.all(np.isfinite(values), axis=1)
                entry = int(np.flatnonzero(~ak.to_numpy(per_event))[0])
                msg = (
                    f"{ef.path}: tree '{ef.branch_map.tree('hits')}' branch '{ef.branch_map.branch(coord)}': "
                    f"{int((~finite).sum())} NaN or infinite values, first in event {int(ids[entry])} "
                    f"(entry {start + entry}); expected finite coordinates in mm"
                )
                raise InputError(msg)
        _check_collection_counts(ef, hits, "hits", start)
    if "tracks" in arrays:
        _check_track_hits(ef, arrays, start)


def _check_collection_counts(ef: EventFile, arr: ak.Array, name: str, start: int) -> None:
    """Branches of one collection (hit_x, hit_y, ...) have the same length in every event."""
    schema = SCHEMAS[name]
    by_collection: dict[str, list[str]] = {}
    for b in schema.branches:
        if b.jagged and b.name in arr.fields:
            by_collection.setdefault(b.collection or b.name, []).append(b.name)
    for members in by_collection.values():
        counts = ak.to_numpy(ak.num(arr[members[0]], axis=1))
        for other in members[1:]:
            if not np.array_equal(counts, ak.to_numpy(ak.num(arr[other], axis=1))):
                msg = (
                    f"{ef.path}: tree '{ef.branch_map.tree(name)}': branches '{members[0]}' and '{other}' "
                    f"have different lengths (entries from {start}); expected one value per {members[0].split('_')[0]}"
                )
                raise InputError(msg)


def _check_track_hits(ef: EventFile, arrays: dict[str, ak.Array], start: int) -> None:
    tracks = arrays["tracks"]
    _check_collection_counts(ef, tracks, "tracks", start)
    total = ak.to_numpy(ak.sum(tracks["track_nhits"], axis=1))
    flat = ak.to_numpy(ak.num(tracks["track_hit_index"], axis=1))
    if not np.array_equal(total, flat):
        entry = int(np.flatnonzero(total != flat)[0])
        msg = (
            f"{ef.path}: tree '{ef.branch_map.tree('tracks')}': entry {start + entry} has "
            f"{flat[entry]} values in 'track_hit_index' but 'track_nhits' sums to {total[entry]}"
        )
        raise InputError(msg)
    if "hits" in arrays:
        nhits = ak.num(arrays["hits"]["hit_x"], axis=1)
        index = tracks["track_hit_index"]
        bad = ak.to_numpy(ak.any((index < 0) | (index >= nhits), axis=1))
        if bad.any():
            entry = int(np.flatnonzero(bad)[0])
            msg = (
                f"{ef.path}: tree '{ef.branch_map.tree('tracks')}' branch 'track_hit_index': entry "
                f"{start + entry} points outside the event's {int(nhits[entry])} hits"
            )
            raise InputError(msg)


def iterate_chunks(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    *,
    trees: Sequence[str] = ("hits",),
    truth: bool = False,
    step_events: int = 500,
    branch_map: BranchMap | None = None,
) -> Iterator[EventChunk]:
    """Events of one or many files, at most `step_events` at a time, validated.

    >>> for chunk in iterate_chunks(["a.root", "b.root"], trees=("hits",)):  # doctest: +SKIP
    ...     chunk["hits"].hit_x   # (n_events, var) float32, mm
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    if step_events < 1:
        msg = f"step_events must be >= 1, got {step_events}"
        raise ValueError(msg)
    for path in paths:
        with open_event_file(path, trees=trees, truth=truth, branch_map=branch_map) as ef:
            for start in range(0, ef.num_entries, step_events):
                stop = min(start + step_events, ef.num_entries)
                arrays = {name: _read_tree(ef, name, start, stop) for name in trees}
                _validate_chunk(ef, arrays, start)
                yield EventChunk(ef.path, start, stop, arrays)


def read_range(ef: EventFile, start: int, stop: int) -> EventChunk:
    """Events ``[start, stop)`` of an opened file, validated like `iterate_chunks`' chunks:
    the unit of work of a distributed job."""
    if not 0 <= start <= stop <= ef.num_entries:
        msg = f"{ef.path}: entry range [{start}, {stop}) outside the file's {ef.num_entries} events"
        raise ValueError(msg)
    arrays = {name: _read_tree(ef, name, start, stop) for name in ef.trees}
    _validate_chunk(ef, arrays, start)
    return EventChunk(ef.path, start, stop, arrays)


def read_events(
    path: str | os.PathLike,
    *,
    trees: Sequence[str] = ("hits",),
    truth: bool = False,
    branch_map: BranchMap | None = None,
) -> dict[str, ak.Array]:
    """All events of one file at once (small files, tests); one array per tree."""
    parts = list(iterate_chunks(path, trees=trees, truth=truth, step_events=1 << 30, branch_map=branch_map))
    if not parts:
        with open_event_file(path, trees=trees, truth=truth, branch_map=branch_map) as ef:
            return {name: _read_tree(ef, name, 0, 0) for name in trees}
    return parts[0].arrays


def read_file_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The file's `METADATA_KEY` JSON ({} when the file has none, as users' own files may not)."""
    path = Path(path)
    root = _open_root(path)
    try:
        if METADATA_KEY not in root:
            return {}
        try:
            doc = json.loads(str(root[METADATA_KEY]))
        except (ValueError, *_READ_ERRORS) as err:
            msg = f"{path}: '{METADATA_KEY}' is not a JSON object ({type(err).__name__}: {_first_line(err)})"
            raise InputError(msg) from err
        if not isinstance(doc, dict):
            msg = f"{path}: '{METADATA_KEY}' holds {type(doc).__name__}, expected a JSON object"
            raise InputError(msg)
        return doc
    finally:
        root.close()


def count_events(path: str | os.PathLike, *, tree: str = "hits") -> int:
    with open_event_file(path, trees=(tree,), truth=SCHEMAS[tree].truth) as ef:
        return ef.num_entries


# --------------------------------------------------------------------------- writing
def _datashape(schema: TreeSchema) -> dict[str, Any]:
    """uproot `mktree` branch types; jagged branches of one collection become one record."""
    types: dict[str, Any] = {}
    records: dict[str, list[str]] = {}
    for b in schema.branches:
        if not b.jagged:
            types[b.name] = b.dtype
        elif b.collection == b.name:
            types[b.name] = f"var * {_ak_dtype(b.dtype)}"
        else:
            assert b.collection is not None
            suffix = b.name[len(b.collection) + 1 :]
            records.setdefault(b.collection, []).append(f"{suffix}: {_ak_dtype(b.dtype)}")
    for collection, fields in records.items():
        types[collection] = ak.types.from_datashape("var * {" + ", ".join(fields) + "}", highlevel=False)
    return types


def _ak_dtype(dtype: np.dtype) -> str:
    return "bool" if dtype.kind == "b" else str(np.dtype(dtype))


class RootEventWriter:
    """Write event trees to `path` atomically (temporary name, renamed when complete).

    >>> with RootEventWriter(out, [HITS]) as w:            # doctest: +SKIP
    ...     w.write_chunk("hits", {"event_id": ids, "hit_x": xs, ...})

    Every tree is created on entry, so a tree that receives no chunk is written empty. On an
    exception inside the block the temporary file is removed and nothing appears at `path`.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        schemas: Sequence[TreeSchema],
        *,
        compression: str = "zstd",
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        self.path = Path(path)
        self.metadata = dict(metadata or {})
        self.schemas = {s.name: s for s in schemas}
        self._tmp = temporary_path(self.path)
        self._compression = uproot.ZSTD(3) if compression == "zstd" else uproot.ZLIB(1)
        self._file: Any = None
        self.events_written: dict[str, int] = dict.fromkeys(self.schemas, 0)

    def __enter__(self) -> RootEventWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._file = uproot.recreate(self._tmp, compression=self._compression)
            if self.metadata:
                self._file[METADATA_KEY] = json.dumps(self.metadata, sort_keys=True)
            for schema in self.schemas.values():
                self._file.mktree(schema.name, _datashape(schema))
        except BaseException as err:
            # __exit__ does not run when __enter__ fails: clean up here.
            self._discard(err)
            if isinstance(err, OSError):
                raise self._write_error(err) from err
            raise
        return self

    def _write_error(self, err: OSError) -> HepganError:
        """A failed write (full disk, quota, file size limit) as one line naming the output."""
        return HepganError(f"{self.path}: cannot write the output ({err.strerror or err}); nothing was left under this name")

    def _discard(self, cause: BaseException) -> None:
        """Close and remove the temporary after `cause` (which the caller raises)."""
        if self._file is not None:
            try:
                self._file.close()
            except OSError as err:  # the same full disk again; `cause` is what gets raised
                log.debug("%s: closing after %s failed too: %s", self._tmp, type(cause).__name__, err)
            self._file = None
        self._tmp.unlink(missing_ok=True)

    def write_chunk(self, tree: str, columns: Mapping[str, Any]) -> None:
        """Append events: `columns` maps every branch of the tree to one value or list per event."""
        schema = self.schemas[tree]
        missing = [n for n in schema.names if n not in columns]
        extra = [n for n in columns if n not in schema.names]
        if missing or extra:
            msg = f"tree '{tree}': missing branches {missing}, unexpected branches {extra}"
            raise ValueError(msg)
        n_events = len(columns["event_id"])
        data: dict[str, Any] = {}
        records: dict[str, dict[str, Any]] = {}
        for b in schema.branches:
            values = columns[b.name]
            if len(values) != n_events:
                msg = f"tree '{tree}': branch '{b.name}' has {len(values)} events, event_id has {n_events}"
                raise ValueError(msg)
            if not b.jagged:
                data[b.name] = np.asarray(values, dtype=b.dtype)
                continue
            arr = ak.values_astype(ak.Array(values), b.dtype)
            if b.collection == b.name:
                data[b.name] = arr
            else:
                assert b.collection is not None
                records.setdefault(b.collection, {})[b.name[len(b.collection) + 1 :]] = arr
        for collection, fields in records.items():
            counts = [ak.to_numpy(ak.num(a, axis=1)) for a in fields.values()]
            if any(not np.array_equal(counts[0], c) for c in counts[1:]):
                msg = f"tree '{tree}': branches of collection '{collection}' have different lengths"
                raise ValueError(msg)
            data[collection] = ak.zip(fields)
        if n_events:
            try:
                self._file[tree].extend(data)
            except OSError as err:
                raise self._write_error(err) from err
        self.events_written[tree] += n_events

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            self._discard(exc if isinstance(exc, BaseException) else RuntimeError(str(exc)))
            return  # the exception of the block goes on
        try:
            self._file.close()
            self._tmp.replace(self.path)
        except OSError as err:
            self._file = None
            self._tmp.unlink(missing_ok=True)
            raise self._write_error(err) from err
        except BaseException:
            self._file = None
            self._tmp.unlink(missing_ok=True)
            raise
