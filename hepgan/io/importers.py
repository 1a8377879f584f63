"""Foreign event formats to the hepgan ROOT format: TrackML CSV and ACTS CSV.

TrackML (Kaggle 2018) events are files ``event<N>-hits.csv``, ``-truth.csv`` and
``-particles.csv`` in one folder; without the truth files (real data, hits-only samples) the
output holds hits without truth, which reco and triage read. Any file may be gzipped
(``.csv.gz``, the form TrackML samples are often shipped in). ACTS's CSV writers give ``event<N>-measurements.csv``
(local coordinates), ``-measurement-simhit-map.csv``, ``-hits.csv`` (simulated hits) and
``-particles.csv``; measured global positions need the surfaces, which ACTS's
``CsvTrackingGeometryWriter`` writes as ``detectors.csv`` (centre and rotation of each module).

Columns a format does not use are ignored (TrackML releases differ in their extra columns);
a missing column is an `InputError` naming the file and column.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import logging
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import awkward as ak
import numpy as np

from hepgan.errors import InputError
from hepgan.io.events import HITS, PARTICLES, RootEventWriter
from hepgan.io.schema import TreeSchema, pack_particle_id

__all__ = ["FORMATS", "decode_geometry_id", "import_events", "read_csv_columns"]

log = logging.getLogger(__name__)

#: The hits tree of a file without truth (real data): what reco and triage read.
_HITS_NO_TRUTH = TreeSchema("hits", tuple(b for b in HITS.branches if not b.truth))

_EVENT_RE = re.compile(r"^event(\d+)-(.+)\.csv(?:\.gz)?$")


def _open_text(path: Path) -> io.TextIOBase:
    """A CSV file, gzipped or not, as text."""
    if path.name.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), newline="")
    return path.open(newline="")


def read_csv_columns(path: Path, columns: Sequence[str], dtypes: Sequence[type]) -> dict[str, np.ndarray]:
    """Read the named `columns` of a CSV file with a header line, one numpy array per column."""
    try:
        with _open_text(path) as fh:
            header = next(csv.reader(fh), None)
    except (OSError, EOFError) as err:
        msg = f"{path}: cannot read ({err})"
        raise InputError(msg) from err
    if not header:
        msg = f"{path}: empty file, expected a CSV header line with columns {list(columns)}"
        raise InputError(msg)
    header = [h.strip() for h in header]
    missing = [c for c in columns if c not in header]
    if missing:
        msg = f"{path}: missing column(s) {missing}; the file has {header}, expected at least {list(columns)}"
        raise InputError(msg)
    index = [header.index(c) for c in columns]
    try:
        with warnings.catch_warnings():
            # a header without rows is an event without hits: (0, n) columns, not a warning
            warnings.filterwarnings("ignore", message="loadtxt: input contained no data", category=UserWarning)
            table = np.loadtxt(path, delimiter=",", skiprows=1, usecols=index, dtype=np.float64, ndmin=2)
    except ValueError as err:
        msg = f"{path}: not a table of numbers in columns {list(columns)} ({err})"
        raise InputError(msg) from err
    out = {}
    for i, (name, dtype) in enumerate(zip(columns, dtypes, strict=True)):
        values = table[:, i]
        if np.dtype(dtype).kind in "iu":
            if not np.all(np.isfinite(values)):
                msg = f"{path}: column '{name}' has non-numbers, expected integers"
                raise InputError(msg)
            fractional = values != np.round(values)
            if fractional.any():
                row = int(np.flatnonzero(fractional)[0]) + 2
                msg = f"{path}: column '{name}' has {float(values[row - 2]):g} on line {row}, expected integers"
                raise InputError(msg)
            # Large ids (64-bit particle barcodes) lose precision through float64: re-read them.
            if np.abs(values).max(initial=0) >= 2**53:
                values = _read_int_column(path, index[i])
        elif np.dtype(dtype).kind == "f" and not np.all(np.isfinite(values)):
            row = int(np.flatnonzero(~np.isfinite(values))[0]) + 2
            msg = f"{path}: column '{name}' has a NaN or infinite value on line {row}, expected finite numbers"
            raise InputError(msg)
        out[name] = values.astype(dtype)
    return out


def _read_int_column(path: Path, column: int) -> np.ndarray:
    with _open_text(path) as fh:
        rows = csv.reader(fh)
        next(rows)
        return np.array([int(r[column]) for r in rows], dtype=np.uint64).astype(np.int64)


def decode_geometry_id(geometry_id: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ACTS GeometryIdentifier -> (volume, layer, sensitive) ids, as ACTS packs them:
    volume in bits 56-63, layer in bits 36-47, sensitive in bits 8-27."""
    g = np.asarray(geometry_id).astype(np.uint64)
    volume = (g >> np.uint64(56)) & np.uint64(0xFF)
    layer = (g >> np.uint64(36)) & np.uint64(0xFFF)
    sensitive = (g >> np.uint64(8)) & np.uint64(0xFFFFF)
    return volume.astype(np.int32), layer.astype(np.int32), sensitive.astype(np.int32)


@dataclass
class _Event:
    event_id: int
    hits: dict[str, np.ndarray]
    particles: dict[str, np.ndarray] | None  # None: no truth (hits only)


def _event_files(src: Path, suffix: str) -> list[tuple[int, Path]]:
    if not src.is_dir():
        msg = f"{src}: expected a folder of event<N>-*.csv files"
        raise InputError(msg)
    found = []
    for p in sorted(src.iterdir()):
        m = _EVENT_RE.match(p.name)
        if m and m.group(2) == suffix:
            found.append((int(m.group(1)), p))
    if not found:
        msg = f"{src}: no event<N>-{suffix}.csv (or .csv.gz) files found"
        raise InputError(msg)
    return found


def _sibling(path: Path, event_id_text: str, suffix: str, *, required: bool = True) -> Path | None:
    for ext in (".csv", ".csv.gz"):
        sib = path.with_name(f"event{event_id_text}-{suffix}{ext}")
        if sib.exists():
            return sib
    if required:
        msg = f"{path.with_name(f'event{event_id_text}-{suffix}.csv')}: missing (needed beside {path.name})"
        raise InputError(msg)
    return None


def _particle_columns(
    ids: np.ndarray, q: np.ndarray, p: dict[str, np.ndarray], pdg: np.ndarray, primary: np.ndarray, hit_pid: np.ndarray
) -> dict[str, np.ndarray]:
    order = np.argsort(hit_pid[hit_pid != 0])
    counted, counts = np.unique(hit_pid[hit_pid != 0][order], return_counts=True)
    nhits = np.zeros(len(ids), dtype=np.int32)
    where = np.searchsorted(counted, ids)
    ok = (where < len(counted)) & (counted[np.clip(where, 0, max(len(counted) - 1, 0))] == ids) if len(counted) else np.zeros(len(ids), bool)
    nhits[ok] = counts[where[ok]]
    return {
        "particle_id": ids,
        "particle_q": q.astype(np.int32),
        **{f"particle_{k}": p[k].astype(np.float32) for k in ("px", "py", "pz", "vx", "vy", "vz")},
        "particle_pdg": pdg.astype(np.int32),
        "particle_nhits": nhits,
        "particle_primary": primary.astype(bool),
    }


# --------------------------------------------------------------------------- TrackML
def _trackml_events(src: Path) -> Iterator[_Event]:
    for event_id, hits_path in _event_files(src, "hits"):
        text_id = _EVENT_RE.match(hits_path.name).group(1)  # type: ignore[union-attr]
        hits = read_csv_columns(
            hits_path,
            ("hit_id", "x", "y", "z", "volume_id", "layer_id", "module_id"),
            (np.int64, np.float32, np.float32, np.float32, np.int32, np.int32, np.int32),
        )
        truth_path = _sibling(hits_path, text_id, "truth", required=False)
        if truth_path is None:
            order = np.argsort(hits["hit_id"], kind="stable")
            reco = {"hit_x": "x", "hit_y": "y", "hit_z": "z", "hit_volume_id": "volume_id",
                    "hit_layer_id": "layer_id", "hit_module_id": "module_id"}  # fmt: skip
            yield _Event(event_id, {ours: hits[theirs][order] for ours, theirs in reco.items()}, None)
            continue
        truth = read_csv_columns(
            truth_path, ("hit_id", "particle_id", "tx", "ty", "tz"), (np.int64, np.int64, np.float32, np.float32, np.float32)
        )
        particles_path = _sibling(hits_path, text_id, "particles")
        parts = read_csv_columns(
            particles_path,
            ("particle_id", "vx", "vy", "vz", "px", "py", "pz", "q"),
            (np.int64, np.float32, np.float32, np.float32, np.float32, np.float32, np.float32, np.float32),
        )
        order = np.argsort(hits["hit_id"], kind="stable")
        hit_id = hits["hit_id"][order]
        t_order = np.argsort(truth["hit_id"], kind="stable")
        if not np.array_equal(truth["hit_id"][t_order], hit_id):
            msg = f"{truth_path}: hit_id values differ from {hits_path.name}; expected one truth row per hit"
            raise InputError(msg)
        hit_pid = truth["particle_id"][t_order]
        known = np.isin(hit_pid[hit_pid != 0], parts["particle_id"])
        if not known.all():
            msg = f"{truth_path}: {int((~known).sum())} hits belong to particles missing from {particles_path.name}"
            raise InputError(msg)
        columns = {
            "hit_x": hits["x"][order], "hit_y": hits["y"][order], "hit_z": hits["z"][order],
            "hit_volume_id": hits["volume_id"][order], "hit_layer_id": hits["layer_id"][order],
            "hit_module_id": hits["module_id"][order], "hit_particle_id": hit_pid,
            "hit_tx": truth["tx"][t_order], "hit_ty": truth["ty"][t_order], "hit_tz": truth["tz"][t_order],
        }  # fmt: skip
        # TrackML has no generation flag: a particle produced within 1 mm of the beam line in
        # r is taken as primary (secondaries from material start further out).
        primary = np.hypot(parts["vx"], parts["vy"]) < 1.0
        pdg = np.zeros(len(parts["particle_id"]), dtype=np.int32)
        particles = _particle_columns(parts["particle_id"], parts["q"], parts, pdg, primary, hit_pid)
        yield _Event(event_id, columns, particles)


# --------------------------------------------------------------------------- ACTS CSV
def _read_surfaces(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(geometry_id sorted, centre (n, 3), rotation (n, 3, 3)) from ACTS's detectors.csv."""
    names = ("geometry_id", "cx", "cy", "cz") + tuple(f"rot_{a}{b}" for a in "xyz" for b in "uvw")
    cols = read_csv_columns(path, names, (np.int64,) + (np.float64,) * 12)
    order = np.argsort(cols["geometry_id"].astype(np.uint64))
    centre = np.stack([cols[c] for c in ("cx", "cy", "cz")], axis=1)[order]
    rot = np.stack([cols[f"rot_{a}{b}"] for a in "xyz" for b in "uvw"], axis=1).reshape(-1, 3, 3)[order]
    return cols["geometry_id"].astype(np.uint64)[order], centre, rot


def _acts_csv_events(src: Path, detectors: Path | None) -> Iterator[_Event]:
    detectors = detectors or src / "detectors.csv"
    if not detectors.exists():
        msg = f"{detectors}: missing; ACTS CSV import needs the surfaces (CsvTrackingGeometryWriter's detectors.csv) for global positions"
        raise InputError(msg)
    surf_id, centre, rot = _read_surfaces(detectors)
    for event_id, meas_path in _event_files(src, "measurements"):
        text_id = _EVENT_RE.match(meas_path.name).group(1)  # type: ignore[union-attr]
        meas = read_csv_columns(
            meas_path, ("measurement_id", "geometry_id", "local0", "local1"), (np.int64, np.int64, np.float64, np.float64)
        )
        link_path = _sibling(meas_path, text_id, "measurement-simhit-map")
        link = read_csv_columns(link_path, ("measurement_id", "hit_id"), (np.int64, np.int64))
        sim_path = _sibling(meas_path, text_id, "hits")
        sim = read_csv_columns(sim_path, ("tx", "ty", "tz"), (np.float32, np.float32, np.float32))
        sim["particle_id"], _ = _acts_particle_ids(sim_path)
        parts_path = _sibling(meas_path, text_id, "particles")
        parts = read_csv_columns(
            parts_path,
            ("particle_type", "vx", "vy", "vz", "px", "py", "pz", "q"),
            (np.int32, np.float32, np.float32, np.float32, np.float32, np.float32, np.float32, np.float32),
        )
        parts["particle_id"], primary = _acts_particle_ids(parts_path)
        order = np.argsort(meas["measurement_id"], kind="stable")
        gid = meas["geometry_id"][order].astype(np.uint64)
        where = np.searchsorted(surf_id, gid)
        where_c = np.clip(where, 0, len(surf_id) - 1)
        if not np.all(surf_id[where_c] == gid):
            bad = gid[surf_id[where_c] != gid][0]
            msg = f"{meas_path}: geometry_id {int(bad)} is not a surface in {detectors}"
            raise InputError(msg)
        local = np.stack([meas["local0"][order], meas["local1"][order], np.zeros(len(order))], axis=1)
        glob = centre[where_c] + np.einsum("nij,nj->ni", rot[where_c], local)
        # One simulated hit per measurement with smearing digitisation; where a measurement
        # has several (merged clusters) the first names its particle.
        first = {}
        for m, h in zip(link["measurement_id"], link["hit_id"], strict=True):
            first.setdefault(int(m), int(h))
        sim_index = np.array([first.get(int(m), -1) for m in meas["measurement_id"][order]], dtype=np.int64)
        if (sim_index < 0).any() or (sim_index >= len(sim["tx"])).any():
            msg = f"{link_path}: measurements without a valid simulated hit (hit_id is the row in {sim_path.name})"
            raise InputError(msg)
        volume, layer, module = decode_geometry_id(gid)
        hit_pid = sim["particle_id"][sim_index]
        columns = {
            "hit_x": glob[:, 0].astype(np.float32), "hit_y": glob[:, 1].astype(np.float32),
            "hit_z": glob[:, 2].astype(np.float32), "hit_volume_id": volume, "hit_layer_id": layer,
            "hit_module_id": module, "hit_particle_id": hit_pid, "hit_tx": sim["tx"][sim_index],
            "hit_ty": sim["ty"][sim_index], "hit_tz": sim["tz"][sim_index],
        }  # fmt: skip
        particles = _particle_columns(parts["particle_id"], parts["q"], parts, parts["particle_type"], primary, hit_pid)
        yield _Event(event_id, columns, particles)


_BARCODE_COLUMNS = ("particle_id_pv", "particle_id_sv", "particle_id_part", "particle_id_gen", "particle_id_subpart")


def _acts_particle_ids(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(particle id, is primary) from an ACTS CSV file. ACTS 48 writes the barcode as five
    columns, packed here as `hepgan.io.schema.pack_particle_id` (the same ids `hepgan simulate`
    writes); primary = generation 0, no secondary vertex, sub-particle 0."""
    with path.open(newline="") as fh:
        header = [h.strip() for h in next(csv.reader(fh), [])]
    if "particle_id" in header and "particle_id_pv" not in header:
        msg = f"{path}: a single 'particle_id' column (ACTS before v40); expected the barcode columns {list(_BARCODE_COLUMNS)}"
        raise InputError(msg)
    cols = read_csv_columns(path, _BARCODE_COLUMNS, (np.int64,) * 5)
    parts = [cols[c] for c in _BARCODE_COLUMNS]
    try:
        ids = pack_particle_id(*parts)
    except ValueError as err:
        msg = f"{path}: {err}"
        raise InputError(msg) from err
    primary = (cols["particle_id_sv"] == 0) & (cols["particle_id_gen"] == 0) & (cols["particle_id_subpart"] == 0)
    return ids, primary


FORMATS: dict[str, Callable[..., Iterator[_Event]]] = {"trackml": _trackml_events, "acts-csv": _acts_csv_events}


def import_events(
    fmt: str, src: str | Path, output: str | Path, *, detectors: str | Path | None = None, chunk_events: int = 100
) -> int:
    """Convert every event in folder `src` (format `fmt`) to one hepgan ROOT file; returns the
    number of events. The output appears only when every event was read and written."""
    src, output = Path(src), Path(output)
    if fmt not in FORMATS:
        msg = f"unknown format {fmt!r}; available: {sorted(FORMATS)}"
        raise InputError(msg)
    events = _trackml_events(src) if fmt == "trackml" else _acts_csv_events(src, Path(detectors) if detectors else None)
    first = next(events, None)
    if first is None:  # _event_files refuses an empty folder; kept for a format that yields none
        msg = f"{src}: no events"
        raise InputError(msg)
    truth = first.particles is not None
    if not truth:
        log.info("%s: no truth files (event<N>-truth.csv): importing hits only; efficiencies will need truth", src)
    schemas = [HITS, PARTICLES.required()] if truth else [_HITS_NO_TRUTH]
    n = 0
    with RootEventWriter(output, schemas) as writer:
        batch: list[_Event] = []
        for event in itertools.chain([first], events):
            if (event.particles is not None) != truth:
                msg = (f"{src}: event {event.event_id} {'has' if event.particles is not None else 'lacks'} truth files "
                       f"and event {first.event_id} {'has' if truth else 'lacks'} them; expected all or none")  # fmt: skip
                raise InputError(msg)
            batch.append(event)
            if len(batch) >= chunk_events:
                _write_batch(writer, batch)
                n += len(batch)
                batch = []
        if batch:
            _write_batch(writer, batch)
            n += len(batch)
    log.debug("imported %d events from %s to %s", n, src, output)
    return n


def _write_batch(writer: RootEventWriter, batch: list[_Event]) -> None:
    ids = np.array([e.event_id for e in batch], dtype=np.int64)
    for tree, attr in (("hits", "hits"), ("particles", "particles")):
        if tree not in writer.schemas:
            continue
        schema = writer.schemas[tree]
        cols: dict[str, object] = {"event_id": ids}
        for b in schema.branches[1:]:
            cols[b.name] = ak.Array([getattr(e, attr)[b.name] for e in batch])
        writer.write_chunk(tree, cols)
