"""What an event file holds: trees, branches, events, hits per event, geometry ids."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from hepgan.errors import InputError
from hepgan.io.events import _READ_ERRORS, _open_root, iterate_chunks, read_file_metadata
from hepgan.io.rootfile import TREE_CLASSES, branch_layout
from hepgan.io.schema import SCHEMAS

__all__ = ["format_report", "inspect_file"]


def inspect_file(path: str | os.PathLike, *, step_events: int = 500) -> dict[str, Any]:
    """A JSON-ready description of `path`; hits are read in chunks, so any size is fine.

    Per tree: its kind (TTree or RNTuple), entries, branches, the branches hepgan needs that
    it lacks (``missing_branches``), the optional truth branches it lacks
    (``missing_truth_branches``: reco works without them; efficiencies need them) and, for a
    flat ntuple (one hit per entry), ``flat`` with the number of distinct event ids.
    """
    path = Path(path)
    root = _open_root(path)
    try:
        trees: dict[str, Any] = {}
        for key, classname in root.classnames().items():
            if classname not in TREE_CLASSES:
                continue
            name = key.split(";")[0]
            try:
                trees[name] = _describe_tree(root[name], name, classname)
            except _READ_ERRORS as err:
                msg = f"{path}: cannot read tree '{name}' ({type(err).__name__}: {err})"
                raise InputError(msg) from err
    finally:
        root.close()
    report: dict[str, Any] = {"file": str(path), "size_bytes": path.stat().st_size, "trees": trees}
    report["metadata"] = read_file_metadata(path)
    if "hits" in trees and not trees["hits"]["missing_branches"] and "flat" not in trees["hits"]:
        report["hits"] = _hit_summary(path, step_events)
    if "tracks" in trees and not trees["tracks"]["missing_branches"] and "flat" not in trees["tracks"]:
        report["tracks"] = _track_summary(path, step_events)
    return report


def _describe_tree(tree: Any, name: str, classname: str) -> dict[str, Any]:
    branches = {b: str(tree[b].typename) for b in tree.keys()}  # noqa: SIM118  (iterating a TTree yields branches)
    known = SCHEMAS.get(name)
    doc: dict[str, Any] = {
        "kind": "RNTuple" if classname == "ROOT::RNTuple" else "TTree",
        "entries": int(tree.num_entries),
        "branches": branches,
        "missing_branches": [b.name for b in known.required().branches if not b.truth and b.name not in branches]
        if known else [],
        "missing_truth_branches": [b.name for b in known.required().branches if b.truth and b.name not in branches]
        if known else [],
    }
    if known is None:
        return doc
    jagged_names = [b.name for b in known.branches if b.jagged and b.name in branches]
    if jagged_names and "event_id" in branches and not branch_layout(tree, jagged_names[0])[0]:
        # One hit (track, particle) per entry: entries are not events.
        ids = np.asarray(tree["event_id"].array(library="np"))
        doc["flat"] = {"rows": int(tree.num_entries), "events": len(np.unique(ids))}
    return doc


def _hit_summary(path: Path, step_events: int) -> dict[str, Any]:
    per_event: list[np.ndarray] = []
    layers: dict[str, int] = {}
    for chunk in iterate_chunks(path, trees=("hits",), step_events=step_events):
        hits = chunk["hits"]
        per_event.append(ak.to_numpy(ak.num(hits["hit_x"], axis=1)))
        vol = ak.to_numpy(ak.flatten(hits["hit_volume_id"])).astype(np.int64)
        lay = ak.to_numpy(ak.flatten(hits["hit_layer_id"])).astype(np.int64)
        keys, counts = np.unique(vol * 10_000 + lay, return_counts=True)
        for k, c in zip(keys, counts, strict=True):
            label = f"{k // 10_000}:{k % 10_000}"
            layers[label] = layers.get(label, 0) + int(c)
    n = np.concatenate(per_event) if per_event else np.zeros(0, dtype=np.int64)
    return {
        "events": len(n),
        "hits_per_event": _stats(n),
        "empty_events": int((n == 0).sum()),
        "hits_by_volume_layer": dict(sorted(layers.items(), key=lambda kv: tuple(map(int, kv[0].split(":"))))),
    }


def _track_summary(path: Path, step_events: int) -> dict[str, Any]:
    ntracks: list[np.ndarray] = []
    nhits: list[np.ndarray] = []
    for chunk in iterate_chunks(path, trees=("tracks",), step_events=step_events):
        tracks = chunk["tracks"]
        ntracks.append(ak.to_numpy(ak.num(tracks["track_nhits"], axis=1)))
        nhits.append(ak.to_numpy(ak.flatten(tracks["track_nhits"])))
    n = np.concatenate(ntracks) if ntracks else np.zeros(0)
    h = np.concatenate(nhits) if nhits else np.zeros(0)
    return {"tracks_per_event": _stats(n), "hits_per_track": _stats(h)}


def _stats(x: np.ndarray) -> dict[str, float]:
    if len(x) == 0:
        return {"mean": 0.0, "min": 0.0, "max": 0.0}
    return {"mean": float(np.mean(x)), "min": float(np.min(x)), "max": float(np.max(x))}


def format_report(report: dict[str, Any]) -> str:
    lines = [f"{report['file']}  ({_size_text(report['size_bytes'])})"]
    if report.get("metadata"):
        facts = {k: v for k, v in report["metadata"].items() if not isinstance(v, dict)}
        lines.append("  made with: " + ", ".join(f"{k}={v}" for k, v in facts.items()))
    if not report["trees"]:
        lines.append("  no trees (TTree or RNTuple) in this file")
    elif not set(report["trees"]) & set(SCHEMAS):
        first = next(iter(report["trees"]))
        lines.append(
            f"  no tree has hepgan's names ({', '.join(SCHEMAS)}): if '{first}' holds the hits, give reco a "
            f'branch map: --branch-map FILE.toml with [hits] tree = "{first}" (and branch names if they differ)'
        )
    for name, tree in report["trees"].items():
        kind = tree.get("kind", "TTree")
        if "flat" in tree:
            flat = tree["flat"]
            counted = f"{flat['rows']:,} rows, one per {name.rstrip('s')}, in {flat['events']:,} events (a flat ntuple)"
        else:
            counted = f"{tree['entries']:,} events"
        lines.append(f"  {kind} {name}: {counted}, {len(tree['branches'])} branches")
        for b, t in tree["branches"].items():
            lines.append(f"      {b:<20} {t}")
        if tree["missing_branches"]:
            lines.append(f"      missing, needed by hepgan: {', '.join(tree['missing_branches'])}")
        if tree.get("missing_truth_branches"):
            lines.append(
                f"      no truth ({', '.join(tree['missing_truth_branches'])}): optional; reco runs, efficiencies need it"
            )
        if "flat" in tree:
            lines.append("      hepgan reads one entry per event with lists of hits: regroup the rows by event_id first")
    if "hits" in report:
        h = report["hits"]
        s = h["hits_per_event"]
        lines.append(f"  hits/event: mean {s['mean']:,.1f}, min {s['min']:,.0f}, max {s['max']:,.0f}; empty events {h['empty_events']}")
        lines.append("  hits by volume:layer: " + ", ".join(f"{k}={v:,}" for k, v in h["hits_by_volume_layer"].items()))
    if "tracks" in report:
        t = report["tracks"]
        lines.append(
            f"  tracks/event: mean {t['tracks_per_event']['mean']:.1f}; hits/track: mean {t['hits_per_track']['mean']:.1f}"
        )
    return "\n".join(lines)


def _size_text(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"
