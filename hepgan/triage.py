"""``hepgan triage``: fast first-pass tracks, a summary, a selected event list, and the events
the surrogate is unsure of.

Outputs in ``out_dir``:

* ``tracks/<input name>.root``: the surrogate tracks (as ``hepgan reco`` writes them);
* ``summary.json``: tracks/event, pT and eta spectra (histograms), eta-phi occupancy, counts
  of high-pT and displaced tracks, the rule and how many events pass, the flag counts;
* ``events.csv``: one row per event with every quantity the rule can use and the flags (the
  whole distribution, never a hand-picked event);
* ``selected.txt``: ``<input>\\t<event_id>`` of the events passing the rule;
* ``send_to_classic.txt``: ``<input>\\t<event_id>\\t<reasons>`` of the flagged events;
* ``*.png`` plots when matplotlib is installed (else a logged warning).

Rules are a small expression language over per-event quantities (:data:`QUANTITIES`)::

    ntracks >= 50 and max_pt > 5
    not (n_displaced == 0) or nhits < 1e4

Only comparisons (``< <= > >= == !=``, chained), ``and``, ``or``, ``not``, parentheses,
numbers (with unary minus) and the known names are allowed; the text is parsed with ``ast``
and never evaluated as Python.

Reliability flags (why an event goes to the classic reconstruction): ``unknown_layers`` (hits
on layers the model's geometry lacks), ``occupancy`` (hits/event outside the range of the
training set, metadata ``training.hits_per_event``), ``unassigned`` (a large share of the
hits on no track), ``low_score`` (many tracks the network is unsure of).
"""

from __future__ import annotations

import ast
import csv
import json
import logging
import math
import operator
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hepgan.errors import InputError
from hepgan.io.atomic import atomic_output, write_text_atomically
from hepgan.io.events import BranchMap
from hepgan.reco.driver import RangeResult, RecoOptions, run_files
from hepgan.reco.model_file import read_model_info, shipped_model_path

__all__ = ["QUANTITIES", "TriageConfig", "compile_rule", "event_quantities", "triage_files"]

log = logging.getLogger(__name__)

#: Per-event quantities a rule may use, and what they mean (units).
QUANTITIES: dict[str, str] = {
    "event_id": "the event's id",
    "nhits": "hits in the event",
    "ntracks": "surrogate tracks",
    "max_pt": "largest track pT (GeV; 0 without tracks)",
    "sum_pt": "scalar sum of track pT (GeV)",
    "n_high_pt": "tracks with pT > TriageConfig.high_pt (5 GeV)",
    "n_displaced": "tracks with |d0| > TriageConfig.displaced_d0 (1 mm)",
    "max_abs_d0": "largest track |d0| (mm)",
    "mean_score": "mean track score (0 without tracks)",
    "n_low_score": "tracks with score < TriageConfig.low_score",
    "low_score_fraction": "n_low_score / ntracks",
    "unassigned_fraction": "share of the hits on known layers that are on no track",
    "n_unknown_hits": "hits on layers the model's geometry lacks",
}

FLAGS = ("unknown_layers", "occupancy", "unassigned", "low_score")


@dataclass(frozen=True)
class TriageConfig:
    """Thresholds of the summary and the reliability flags.

    Attributes:
        high_pt: a track is high-pT above this (GeV).
        displaced_d0: a track is displaced above this |d0| (mm).
        low_score: a track's score below this counts as unsure.
        max_low_score_fraction: flag an event with more unsure tracks than this share.
        max_unassigned_fraction: flag an event with more of its hits on no track.
        occupancy_margin: widen the training range of hits/event by this fraction each way.

    The defaults of the flags are chosen on tune-seed samples only
    (``benchmarks/bench_reliability_flag.py``, ``benchmarks/results/reliability-flag.json``;
    their rates on fresh report-seed samples: ``reliability-flag-report.json``), shipped model
    (ttbar at pile-up 0/50/200 plus guns, the engine keeping overlap and skipped-layer hits).
    The unassigned share is set by the process, not by noise: 0.004-0.012 on guns (20 and
    100 x 50) but 0.31-0.38 on ttbar at pile-up 0 and 0.45-0.48 at 50 and 200 (the hits of
    particles below the leftover pass's 0.3 GeV, loopers and secondaries stay on no track). A
    cut low enough to see noise on guns (0.09 / 0.23 with 10% / 30% noise hits) would flag
    every collision, so 0.53 sits between the largest in-distribution share (0.485, ttbar
    pile-up 200) and the smallest with 30% noise on ttbar pile-up 50 (0.580; 10% noise:
    0.503-0.530, not flagged; measured with the engine's confirmed prompt seeds): it still
    sends heavily noisy collision events to the classic chain and does not see noise on guns
    or a wrong field (the file's field record catches that; 0.006 at 3 T). Chosen again when
    the engine gained its leftover pass, which took the share from 0.56-0.60 to 0.45-0.48 at
    pile-up (it was 0.64 between 0.601 and 0.661).
    No sample comes near the low-score cut (at most 2.4% of tracks below 0.7, noise or
    not): 0.3 stays as a guard.
    Occupancy: the training spans 640 (ttbar, no pile-up) to 122k hits/event (pile-up 200);
    10% each way keeps fresh events of a trained pile-up in and flags 300 x 50 (182k).
    """

    high_pt: float = 5.0
    displaced_d0: float = 1.0
    low_score: float = 0.7
    max_low_score_fraction: float = 0.3
    max_unassigned_fraction: float = 0.53
    occupancy_margin: float = 0.1


# --------------------------------------------------------------------------- rules
_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}


def compile_rule(text: str, names: Iterable[str] = QUANTITIES) -> Callable[[Mapping[str, np.ndarray]], np.ndarray]:
    """Compile a selection rule into a function of per-event columns -> (n_events,) bool.

    Raises ``InputError`` quoting the rule and the offending part for anything but the
    language of the module docstring.

    >>> rule = compile_rule("ntracks >= 2 and max_pt > 5")
    >>> rule({"ntracks": np.array([1, 3]), "max_pt": np.array([9.0, 9.0])}).tolist()
    [False, True]
    """
    known = set(names)
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as err:
        where = "it ends too early" if not err.offset or err.offset > len(text.strip()) else f"at character {err.offset}"
        msg = (f"selection rule {text!r}: cannot read it ({where}); expected comparisons like "
               f"'ntracks >= 50 and max_pt > 5' over {', '.join(sorted(known))}")  # fmt: skip
        raise InputError(msg) from err

    def bad(node: ast.AST, what: str) -> InputError:
        part = ast.get_source_segment(text.strip(), node) or type(node).__name__
        return InputError(
            f"selection rule {text!r}: {what} {part!r} is not allowed; use comparisons, and/or/not, "
            f"numbers and the names {sorted(known)}"
        )

    def number(node: ast.AST) -> bool:
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            return number(node.operand)
        return isinstance(node, ast.Constant) and type(node.value) in (int, float)

    def value(node: ast.AST) -> Callable:
        if isinstance(node, ast.Name):
            if node.id not in known:
                msg = f"selection rule {text!r}: unknown name {node.id!r}; known: {sorted(known)}"
                raise InputError(msg)
            name = node.id
            return lambda cols: np.asarray(cols[name])
        if number(node):
            v = float(ast.literal_eval(node))
            return lambda cols: v
        raise bad(node, "operand")

    def boolean(node: ast.AST) -> Callable:
        if isinstance(node, ast.BoolOp):
            parts = [boolean(v) for v in node.values]
            combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or

            def run_bool(cols):
                out = parts[0](cols)
                for p in parts[1:]:
                    out = combine(out, p(cols))
                return out

            return run_bool
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            inner = boolean(node.operand)
            return lambda cols: np.logical_not(inner(cols))
        if isinstance(node, ast.Compare):
            ops = []
            for op in node.ops:
                if type(op) not in _COMPARE:
                    raise bad(node, "comparison")
                ops.append(_COMPARE[type(op)])
            terms = [value(node.left), *(value(c) for c in node.comparators)]

            def run_compare(cols):
                out = None
                for i, fn in enumerate(ops):
                    part = fn(terms[i](cols), terms[i + 1](cols))
                    out = part if out is None else np.logical_and(out, part)
                return out

            return run_compare
        raise bad(node, "expression")

    fn = boolean(tree.body)

    def rule(cols: Mapping[str, np.ndarray]) -> np.ndarray:
        n = len(next(iter(cols.values()))) if cols else 0
        return np.broadcast_to(np.asarray(fn(cols), dtype=bool), (n,)).copy()

    return rule


# --------------------------------------------------------------------------- quantities
def _pt_eta(theta: np.ndarray, qop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    theta = np.asarray(theta, np.float64)
    with np.errstate(divide="ignore"):
        p = np.where(qop != 0, 1.0 / np.abs(qop), np.inf)
    pt = p * np.sin(theta)
    eta = -np.log(np.tan(np.clip(theta, 1e-6, np.pi - 1e-6) / 2))
    return pt, eta


def event_quantities(r: RangeResult, config: TriageConfig) -> dict[str, np.ndarray]:
    """Per-event quantities (:data:`QUANTITIES`) of one range of events: (n_events,) each."""
    n = len(r.event_id)
    pt, _ = _pt_eta(r.flat["track_theta"], r.flat["track_qop"])
    d0 = np.abs(r.flat["track_d0"].astype(np.float64))
    score = r.flat["track_score"].astype(np.float64)
    ev = np.repeat(np.arange(n), r.ntracks)

    def per_event(values: np.ndarray, how: str) -> np.ndarray:
        out = np.zeros(n)
        if how == "sum":
            np.add.at(out, ev, values)
        else:
            np.maximum.at(out, ev, values)
        return out

    ntracks = r.ntracks.astype(np.float64)
    known = (r.nhits - r.n_unknown).astype(np.float64)
    n_low = per_event((score < config.low_score).astype(float), "sum")
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_score = np.where(ntracks > 0, per_event(score, "sum") / ntracks, 0.0)
        low_frac = np.where(ntracks > 0, n_low / ntracks, 0.0)
        unassigned = np.where(known > 0, 1.0 - r.n_assigned / known, 0.0)
    return {
        "event_id": r.event_id.astype(np.int64),
        "nhits": r.nhits.astype(np.int64),
        "ntracks": r.ntracks.astype(np.int64),
        "max_pt": per_event(np.where(np.isfinite(pt), pt, 0.0), "max"),
        "sum_pt": per_event(np.where(np.isfinite(pt), pt, 0.0), "sum"),
        "n_high_pt": per_event((pt > config.high_pt).astype(float), "sum").astype(np.int64),
        "n_displaced": per_event((d0 > config.displaced_d0).astype(float), "sum").astype(np.int64),
        "max_abs_d0": per_event(d0, "max"),
        "mean_score": mean_score,
        "n_low_score": n_low.astype(np.int64),
        "low_score_fraction": low_frac,
        "unassigned_fraction": unassigned,
        "n_unknown_hits": r.n_unknown.astype(np.int64),
    }


class _Histograms:
    """Whole-sample histograms of the tracks, filled range by range."""

    PT_EDGES = np.logspace(-1, 2, 31)  # GeV
    ETA_EDGES = np.linspace(-4, 4, 41)
    PHI_EDGES = np.linspace(-math.pi, math.pi, 33)
    D0_EDGES = np.linspace(-5, 5, 51)  # mm

    def __init__(self) -> None:
        self.pt = np.zeros(len(self.PT_EDGES) - 1, np.int64)
        self.eta = np.zeros(len(self.ETA_EDGES) - 1, np.int64)
        self.d0 = np.zeros(len(self.D0_EDGES) - 1, np.int64)
        self.eta_phi = np.zeros((len(self.ETA_EDGES) - 1, len(self.PHI_EDGES) - 1), np.int64)

    def fill(self, r: RangeResult) -> None:
        pt, eta = _pt_eta(r.flat["track_theta"], r.flat["track_qop"])
        phi = r.flat["track_phi"].astype(np.float64)
        self.pt += np.histogram(pt, self.PT_EDGES)[0]
        self.eta += np.histogram(eta, self.ETA_EDGES)[0]
        self.d0 += np.histogram(r.flat["track_d0"], self.D0_EDGES)[0]
        self.eta_phi += np.histogram2d(eta, phi, [self.ETA_EDGES, self.PHI_EDGES])[0].astype(np.int64)

    def to_dict(self) -> dict[str, Any]:
        return {
            "pt": {"edges_gev": self.PT_EDGES.tolist(), "counts": self.pt.tolist()},
            "eta": {"edges": self.ETA_EDGES.tolist(), "counts": self.eta.tolist()},
            "d0": {"edges_mm": self.D0_EDGES.tolist(), "counts": self.d0.tolist()},
            "eta_phi": {"eta_edges": self.ETA_EDGES.tolist(), "phi_edges": self.PHI_EDGES.tolist(), "counts": self.eta_phi.tolist()},
        }  # fmt: skip


def _flags(q: Mapping[str, np.ndarray], config: TriageConfig, occupancy: tuple[float, float] | None) -> dict[str, np.ndarray]:
    flags = {
        "unknown_layers": q["n_unknown_hits"] > 0,
        "unassigned": q["unassigned_fraction"] > config.max_unassigned_fraction,
        "low_score": q["low_score_fraction"] > config.max_low_score_fraction,
    }
    if occupancy is not None:
        lo, hi = occupancy
        span = config.occupancy_margin
        flags["occupancy"] = (q["nhits"] < lo * (1 - span)) | (q["nhits"] > hi * (1 + span))
    else:
        flags["occupancy"] = np.zeros(len(q["nhits"]), bool)
    return {k: flags[k] for k in FLAGS}


def _training_occupancy(training: Mapping[str, Any]) -> tuple[float, float] | None:
    hpe = training.get("hits_per_event")
    if isinstance(hpe, Mapping):
        hpe = [hpe.get("min"), hpe.get("max")]
    if isinstance(hpe, list | tuple) and len(hpe) == 2 and all(isinstance(v, int | float) for v in hpe):
        return float(hpe[0]), float(hpe[1])
    return None


def _plots(out_dir: Path, hist: _Histograms, ntracks: np.ndarray) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed: no plots (pip install 'hepgan[report]')")
        return []
    written = []

    def save(fig, name: str) -> None:
        # format given: matplotlib would take it from the temporary's ".tmp" suffix
        with atomic_output(out_dir / name) as tmp:
            fig.savefig(tmp, dpi=100, format="png")
        plt.close(fig)
        written.append(name)

    fig, ax = plt.subplots()
    ax.stairs(hist.pt, hist.PT_EDGES)
    ax.set(xscale="log", xlabel="track pT (GeV)", ylabel="tracks", title="pT spectrum")
    save(fig, "pt.png")
    fig, ax = plt.subplots()
    ax.stairs(hist.eta, hist.ETA_EDGES)
    ax.set(xlabel="track eta", ylabel="tracks", title="eta spectrum")
    save(fig, "eta.png")
    fig, ax = plt.subplots()
    mesh = ax.pcolormesh(hist.ETA_EDGES, hist.PHI_EDGES, hist.eta_phi.T)
    fig.colorbar(mesh, ax=ax, label="tracks")
    ax.set(xlabel="eta", ylabel="phi (rad)", title="eta-phi occupancy")
    save(fig, "eta_phi.png")
    fig, ax = plt.subplots()
    ax.hist(ntracks, bins=min(50, max(len(ntracks), 1)))
    ax.set(xlabel="tracks per event", ylabel="events", title="tracks per event")
    save(fig, "tracks_per_event.png")
    return written


def _describe(values: np.ndarray) -> dict[str, float]:
    if len(values) == 0:
        return {"mean": 0.0, "min": 0.0, "max": 0.0, "p16": 0.0, "p50": 0.0, "p84": 0.0}
    p16, p50, p84 = np.percentile(values, [16, 50, 84])
    return {"mean": float(values.mean()), "min": float(values.min()), "max": float(values.max()),
            "p16": float(p16), "p50": float(p50), "p84": float(p84)}  # fmt: skip


# --------------------------------------------------------------------------- entry
def triage_files(
    inputs: Iterable[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    select: str,
    model: str | os.PathLike | None = None,
    threads: int = 1,
    step_events: int = 100,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = True,
    plots: bool = True,
    seed: int = 0,
    config: TriageConfig = TriageConfig(),
    b_field: float | None = None,
    branch_map: BranchMap | None = None,
) -> dict[str, Any]:
    """Triage event files (module docstring): tracks, summary, selected and flagged events.

    Args:
        inputs: event files with a ``hits`` tree.
        out_dir: output folder (created; earlier triage outputs in it are replaced).
        select: the selection rule (see :func:`compile_rule`; names in :data:`QUANTITIES`).
        model: model.onnx (default: the shipped model).
        threads, step_events, workers, scheduler, progress, seed, b_field, branch_map: as for
            ``hepgan.reco.driver.reconstruct_files``.
        plots: write PNG plots (needs matplotlib).
        config: thresholds of the summary and flags.

    Returns:
        The ``summary.json`` document.
    """
    rule = compile_rule(select)  # a bad rule fails before any work
    out_dir = Path(out_dir)
    path = Path(model) if model is not None else shipped_model_path()
    info = read_model_info(path)
    occupancy = _training_occupancy(info.training)
    if occupancy is None:
        log.warning("%s: metadata has no training.hits_per_event; the occupancy flag is off", path)
    options = RecoOptions(model=str(path.resolve()), threads=threads, seed=seed, refuse_unknown_layers=False, b_field=b_field,
                          branch_map=branch_map)  # fmt: skip
    hist = _Histograms()
    rows: list[tuple[str, dict[str, np.ndarray]]] = []

    def on_result(r: RangeResult) -> None:
        hist.fill(r)
        rows.append((r.path, event_quantities(r, config)))

    out_dir.mkdir(parents=True, exist_ok=True)
    reco = run_files(
        inputs, out_dir / "tracks", options, step_events=step_events, workers=workers, scheduler=scheduler,
        progress=progress, resume=False, on_result=on_result,
    )  # fmt: skip
    files = np.concatenate([np.full(len(q["event_id"]), p, dtype=object) for p, q in rows]) if rows else np.zeros(0, object)
    cols = {k: np.concatenate([q[k] for _, q in rows]) if rows else np.zeros(0) for k in QUANTITIES}
    selected = rule(cols)
    flags = _flags(cols, config, occupancy)
    flagged = np.zeros(len(files), bool)
    for v in flags.values():
        flagged |= v

    with atomic_output(out_dir / "events.csv") as tmp, tmp.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["input", *QUANTITIES, "selected", *(f"flag_{f}" for f in FLAGS)])
        for i in range(len(files)):
            w.writerow([files[i], *(cols[k][i] for k in QUANTITIES), int(selected[i]), *(int(flags[f][i]) for f in FLAGS)])
    lines = [f"{files[i]}\t{int(cols['event_id'][i])}\n" for i in np.flatnonzero(selected)]
    write_text_atomically(out_dir / "selected.txt", "".join(lines))
    lines = []
    for i in np.flatnonzero(flagged):
        reasons = ",".join(f for f in FLAGS if flags[f][i])
        lines.append(f"{files[i]}\t{int(cols['event_id'][i])}\t{reasons}\n")
    write_text_atomically(out_dir / "send_to_classic.txt", "".join(lines))

    pt_all = cols["n_high_pt"]
    summary = {
        "inputs": [str(p) for p in inputs] if not isinstance(inputs, str | os.PathLike) else [str(inputs)],
        "model": str(path),
        "rule": select,
        "config": asdict(config),
        "events": int(len(files)),
        "tracks": int(cols["ntracks"].sum()) if len(files) else 0,
        "tracks_per_event": _describe(cols["ntracks"].astype(float)),
        "hits_per_event": _describe(cols["nhits"].astype(float)),
        "high_pt_tracks": int(pt_all.sum()) if len(files) else 0,
        "displaced_tracks": int(cols["n_displaced"].sum()) if len(files) else 0,
        "histograms": hist.to_dict(),
        "selected_events": int(selected.sum()),
        "flagged_events": int(flagged.sum()),
        "flags": {f: int(flags[f].sum()) for f in FLAGS},
        "training_hits_per_event": list(occupancy) if occupancy else None,
        "ms_per_event": reco["ms_per_event"],
        "plots": [],
    }
    if plots:
        summary["plots"] = _plots(out_dir, hist, cols["ntracks"])
    write_text_atomically(out_dir / "summary.json", json.dumps(summary, indent=1))
    log.info("triage: %d events, %d selected, %d flagged", summary["events"], summary["selected_events"], summary["flagged_events"])
    return summary
