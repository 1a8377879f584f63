"""``hepgan report``: one self-contained HTML page from ``hepgan bench`` results.

Every plot is a PNG embedded as a base64 ``data:`` URI, so the page is a single file that
opens anywhere without the network. Plots use the mplhep ROOT style when mplhep is
installed (plain matplotlib otherwise). matplotlib is the ``report`` extra; nothing here is
on the reconstruction path.

Several result files (e.g. a CPU run and a GPU run) can go on one page: each gets its own
section labelled with its device (``device.label`` of the JSON) and file name, and the
time-vs-hits plot shows them side by side with that label. CPU and GPU speed-ups are never
combined into one number.

Contents per results file: headline table (per size ACTS with 1 and 5 seeds per middle space
point and the surrogate: time, the surrogate's speed-up over each ACTS row as median [min-max]
over repeats, efficiency with its interval, fake and duplicate rates, agreement, TrackML
score), paired counts and efficiency categories, efficiency vs pT and vs eta, fake /
duplicate rates, residuals and pulls against truth, calibration pulls of the surrogate's spread
against ACTS, stage-time bars per size, and the machine info; for all files together: time vs
hits on log axes with the fitted exponents.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from hepgan.errors import InputError
from hepgan.io.atomic import write_text_atomically
from hepgan.perf.headline import interval_text

__all__ = ["load_results", "render_html", "write_report"]

_PARAMS = ("d0", "z0", "phi", "theta", "qop")
_UNITS = {"d0": "mm", "z0": "mm", "phi": "rad", "theta": "rad", "qop": "e/GeV"}
_COLORS = {"acts_spm1": "#1f77b4", "acts_spm5": "#2ca02c", "surrogate": "#d62728"}
_NAMES = {"acts_spm1": "ACTS-1", "acts_spm5": "ACTS-5", "surrogate": "surrogate"}
_MARKERS = {"acts_spm1": "o", "acts_spm5": "^", "surrogate": "s"}
_SUR_STAGES = ("read", "seeding", "features", "network", "assignment", "ambiguity", "write")
_ACTS_STAGES = ("measurements", "seeding", "ckf", "ambiguity")
_SCHEMA = "hepgan-bench/2"
_STAGE_COLORS = {
    "read": "#8c564b", "seeding": "#1f77b4", "features": "#ff7f0e", "network": "#2ca02c",
    "assignment": "#9467bd", "ambiguity": "#e377c2", "write": "#7f7f7f", "ckf": "#17becf",
    "measurements": "#bcbd22",
}  # fmt: skip


# --------------------------------------------------------------------------- input
def load_results(path: str | os.PathLike) -> dict:
    """Read one bench JSON; InputError naming the file when it is not one."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except OSError as err:
        msg = f"{path}: cannot read bench results ({err.strerror or err})"
        raise InputError(msg) from err
    except json.JSONDecodeError as err:
        msg = f"{path}: not JSON ({err}); expected the output of 'hepgan bench'"
        raise InputError(msg) from err
    if not isinstance(doc, dict) or not str(doc.get("schema", "")).startswith("hepgan-bench/"):
        msg = f"{path}: not a hepgan bench results file (no 'schema': 'hepgan-bench/...')"
        raise InputError(msg)
    if doc["schema"] != _SCHEMA:
        msg = (
            f"{path}: bench results of schema {doc['schema']!r}; this report reads {_SCHEMA!r} (both ACTS "
            "configurations, interleaved repeats, intervals): rerun 'hepgan bench'"
        )
        raise InputError(msg)
    for key in ("sizes", "device", "machine", "scaling", "headline"):
        if key not in doc:
            msg = f"{path}: bench results lack {key!r}"
            raise InputError(msg)
    return doc


# --------------------------------------------------------------------------- plotting
@contextmanager
def _style() -> Iterator[None]:
    """mplhep's ROOT style when available, else matplotlib's defaults; rcParams restored after."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    try:
        import mplhep
    except ImportError:
        style: Any = "default"
    else:
        style = mplhep.style.ROOT
    with plt.style.context(style), matplotlib.rc_context({"figure.dpi": 80, "savefig.dpi": 80, "font.size": 11}):
        yield


def _figure(nrows: int = 1, ncols: int = 1, *, width: float = 10.0, height: float = 4.0, **adjust: float):
    """A figure with fixed margins: constrained layout measured every tick label again and
    was over half of the report's time (mplhep styles draw minor ticks on all four sides)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    margins = {"left": 0.07, "right": 0.98, "bottom": 0.16, "top": 0.88, "wspace": 0.25, "hspace": 0.45}
    margins.update(adjust)
    fig.subplots_adjust(**margins)
    return fig, axes


def _png(fig) -> str:
    """The figure as a base64 PNG data URI."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _nan(values: Sequence[Any]) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def _plot_eff(ax, binned: Mapping[str, Any], name: str, *, log_x: bool = False) -> None:
    edges = np.asarray(binned["edges"], dtype=np.float64)
    centres = np.sqrt(edges[:-1] * edges[1:]) if log_x else 0.5 * (edges[:-1] + edges[1:])
    eff = _nan(binned["efficiency"])
    # Clopper-Pearson bounds: asymmetric, and not zero at an efficiency of 1
    yerr = [np.nan_to_num(eff - _nan(binned["lower"])), np.nan_to_num(_nan(binned["upper"]) - eff)]
    lo, hi = centres - edges[:-1], edges[1:] - centres
    ax.errorbar(centres, eff, xerr=[lo, hi], yerr=yerr, fmt=_MARKERS.get(name, "o"), ms=4,
                color=_COLORS.get(name), label=_NAMES.get(name, name))  # fmt: skip


def _eff_figure(size: str, phys: Mapping[str, Any]) -> str:
    fig, axes = _figure(1, 2, width=11, height=3.8, left=0.07, wspace=0.22)
    for name, binned in phys["efficiency_vs_pt"].items():
        _plot_eff(axes[0, 0], binned, name, log_x=True)
    for name, binned in phys["efficiency_vs_eta"].items():
        _plot_eff(axes[0, 1], binned, name)
    axes[0, 0].set_xscale("log")
    axes[0, 0].set_xlabel(r"particle $p_T$ [GeV]")
    axes[0, 0].set_title(rf"{size}: efficiency vs $p_T$ ($|\eta|<2.5$)", fontsize=11)
    axes[0, 1].set_xlabel(r"particle $\eta$")
    axes[0, 1].set_title(rf"{size}: efficiency vs $\eta$ ($p_T>1$ GeV)", fontsize=11)
    for ax in axes[0]:
        ax.set_ylabel("efficiency")
        ax.set_ylim(0.0, 1.05)
        ax.legend(loc="lower right", fontsize=9)
    return _png(fig)


def _hist_step(ax, h: Mapping[str, Any], name: str, *, density: bool = True) -> None:
    edges = np.asarray(h["edges"], dtype=np.float64)
    counts = np.asarray(h["counts"], dtype=np.float64)
    total = counts.sum() + h.get("underflow", 0) + h.get("overflow", 0)
    if density and total > 0:
        counts = counts / (total * np.diff(edges))
    ax.stairs(counts, edges, color=_COLORS.get(name, "k"), label=f"{_NAMES.get(name, name)} (n={int(total)})")


def _hist_figure(title: str, hists: Mapping[str, Mapping[str, Any]], *, xlabel: str, gauss: bool = False) -> str:
    """One panel per parameter; `hists` maps parameter -> {name: histogram}."""
    fig, axes = _figure(1, 5, width=15, height=3.2, left=0.04, right=0.99, bottom=0.18, top=0.86, wspace=0.3)
    for ax, p in zip(axes[0], _PARAMS, strict=True):
        ax.minorticks_off()
        for name, h in hists[p].items():
            _hist_step(ax, h, name)
        if gauss:
            x = np.linspace(-5, 5, 201)
            ax.plot(x, np.exp(-0.5 * x**2) / math.sqrt(2 * math.pi), "k--", lw=1, label="N(0, 1)")
        unit = "" if gauss else f" [{_UNITS[p]}]"
        ax.set_xlabel(xlabel.format(p=p) + unit, fontsize=10)
        ax.tick_params(labelsize=8)
        ax.legend(fontsize=7, loc="upper right")
    fig.suptitle(title, fontsize=12)
    return _png(fig)


def _agreement_hists(agree: Mapping[str, Any]) -> dict:
    return {p: {f"width {_fmt(agree['pull_width'][p], 2)}": agree["pull_hist"][p]} for p in _PARAMS}


def _rates_figure(res: Mapping[str, Any]) -> str:
    sizes = list(res["sizes"])
    fig, axes = _figure(1, 2, width=11, height=3.4, left=0.08, wspace=0.3)
    x = np.arange(len(sizes))
    width = 0.26
    for j, (key, title) in enumerate((("fake_rate", "fake rate"), ("duplicate_rate", "duplicate rate"))):
        ax = axes[0, j]
        for k, name in enumerate(_NAMES):
            rates = [res["sizes"][s]["physics"]["summary"][name]["pt_gt_1"][f"{key}_interval"] for s in sizes]
            vals = np.nan_to_num(_nan([r["value"] for r in rates]))
            err = [np.nan_to_num(vals - _nan([r["lower"] for r in rates])), np.nan_to_num(_nan([r["upper"] for r in rates]) - vals)]
            ax.bar(x + (k - 1) * width, vals, width=width, yerr=err, capsize=2, color=_COLORS[name], label=_NAMES[name])
        ax.axhline(0.01, color="k", ls=":", lw=1, label="target 1%")
        ax.set_ylim(bottom=0.0)
        ax.set_xticks(x, sizes)
        ax.set_xlabel("size")
        ax.set_ylabel(title + r" ($p_T>1$ GeV sel.)")
        ax.legend(fontsize=8)
    return _png(fig)


def _stage_figure(res: Mapping[str, Any]) -> str:
    """Horizontal stacked bars of ms/event per stage, one panel per size (log-free, per size scale)."""
    sizes = list(res["sizes"])
    fig, axes = _figure(len(sizes), 1, width=11, height=1.0 + 1.5 * len(sizes), left=0.17, right=0.86,
                        bottom=0.5 / (1.0 + 1.5 * len(sizes)), top=1 - 0.3 / (1.0 + 1.5 * len(sizes)))  # fmt: skip
    for ax, s in zip(axes[:, 0], sizes, strict=True):
        r = res["sizes"][s]
        rows = [(f"{_NAMES['acts_' + a]} (1 thr.)", r["acts"][a]["ms_per_event"], _ACTS_STAGES) for a in r["acts"]]
        for label in ("1", "all"):
            t = r["surrogate"][f"threads_{label}"]
            rows.append((f"surrogate ({t['threads']} thr.)", t["ms_per_event"], _SUR_STAGES))
        seen: set[str] = set()
        for i, (_name, ms, stages) in enumerate(rows):
            left = 0.0
            for st in stages:
                w = float(ms.get(st) or 0.0)
                ax.barh(i, w, left=left, color=_STAGE_COLORS[st], label=None if st in seen else st, height=0.6)
                seen.add(st)
                left += w
            ax.text(left, i, f" {left:.1f} ms", va="center", fontsize=8)
        ax.set_yticks(range(len(rows)), [n for n, _, _ in rows], fontsize=9)
        ax.invert_yaxis()
        ax.set_title(f"{s} ({r['hits_per_event']:.0f} hits/event)", fontsize=10)
        ax.set_xlabel("ms / event", fontsize=9)
        ax.margins(x=0.12)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper right", fontsize=8)
    return _png(fig)


def _scaling_figure(results: Sequence[tuple[str, Mapping[str, Any]]]) -> str:
    fig, axes = _figure(1, 1, width=8, height=5, left=0.12, bottom=0.12, top=0.92)
    ax = axes[0, 0]
    markers = "osd^v<>"
    acts_done = False
    for k, (label, res) in enumerate(results):
        sc = res["scaling"]
        hits = np.asarray(sc["hits_per_event"], dtype=np.float64)
        series = [("surrogate_threads_1_reco", "surrogate 1 thr."), ("surrogate_threads_all_reco", "surrogate all cores")]
        if not acts_done:  # ACTS is CPU 1 thread in every file; one curve per configuration is enough
            series[:0] = [("acts_spm1_total_reco", "ACTS-1 1 thr."), ("acts_spm5_total_reco", "ACTS-5 1 thr.")]
        for key, name in series:
            ms = _nan(sc["ms_per_event"][key])
            e = sc["exponent"].get(key)
            text = f"{name}" + ("" if name.startswith("ACTS") else f" [{label}]") + (f", k={e:.2f}" if e is not None else "")
            ax.plot(hits, ms, marker=markers[k % len(markers)], ls="-" if "ACTS" in name else "--", label=text)
        acts_done = True
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("hits / event")
    ax.set_ylabel("reconstruction ms / event")
    ax.set_title(r"time vs hits (fit: ms $\propto$ hits$^k$)", fontsize=11)
    ax.legend(fontsize=8)
    return _png(fig)


# --------------------------------------------------------------------------- html
def _fmt(x: Any, digits: int = 3) -> str:
    if x is None:  # not applicable (a stage one engine does not have) or not measured
        return "–"
    if isinstance(x, float):
        if not math.isfinite(x):
            return "n/a"
        return f"{x:.{digits}f}" if abs(x) < 1e4 else f"{x:.0f}"
    return html.escape(str(x))


def _ratio(a: Any, b: Any) -> float | None:
    if a is None or b is None or not b > 0:
        return None
    return float(a) / float(b)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 3) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(v, digits)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _img(uri: str, alt: str) -> str:
    return f'<img src="{uri}" alt="{html.escape(alt)}">'


def _spread_text(sp: Mapping[str, Any] | None) -> str:
    if not sp or sp.get("median") is None:
        return "–"
    return f"{sp['median']:.1f}× [{sp['min']:.1f}, {sp['max']:.1f}]"


def _headline_table(res: Mapping[str, Any]) -> str:
    header = ["size", "hits/ev", "reco", "ms/event", "sur. speed-up (1 thr.)", "sur. speed-up (all)",
              "eff pT>1 [68% CL]", "eff pT>0.5 [68% CL]", "fake", "dup", "agreement", "TrackML"]  # fmt: skip
    rows = []
    for s, h in res["headline"].items():
        for k, (label, r) in enumerate(h["rows"].items()):
            rows.append([
                s if k == 0 else "", f"{h['hits_per_event']:.0f}" if k == 0 else "", label, r["ms_per_event"],
                _spread_text(r.get("speedup")), _spread_text(r.get("speedup_all_cores")),
                interval_text(r["efficiency_pt1"]), interval_text(r["efficiency_pt0.5"]),
                interval_text(r["fake_rate"]), interval_text(r["duplicate_rate"]),
                "–" if r.get("agreement") is None else r["agreement"], r.get("trackml_score"),
            ])  # fmt: skip
    return _table(header, rows)


def _paired_table(res: Mapping[str, Any]) -> str:
    rows = []
    for s, r in res["sizes"].items():
        for a, by_cut in r["paired"].items():
            for cut, p in by_cut.items():
                rows.append([s, _NAMES[f"acts_{a}"], cut.replace("pt_gt_", "pT > ") + " GeV", p["n_total"], p["both"],
                             p["only_acts"], p["only_surrogate"], p["neither"], p["mcnemar_p_value"]])  # fmt: skip
    header = ["size", "vs", "selection", "particles", "both", "ACTS only", "surrogate only", "neither", "McNemar p"]
    return _table(header, rows)


def _categories_table(res: Mapping[str, Any]) -> str:
    rows = []
    for s, r in res["sizes"].items():
        for name in _NAMES:
            cats = r["physics"]["summary"][name]["pt_gt_1"]["efficiency_categories"]
            rows.append([s, _NAMES[name], *(interval_text(cats.get(c)) for c in ("all", "hard_scatter", "prompt", "displaced"))])
    return _table(["size", "reco", "all", "hard scatter", "prompt", "displaced"], rows)


def _resolution_table(res: Mapping[str, Any]) -> str:
    rows = []
    for s, r in res["sizes"].items():
        summ = r["physics"]["summary"]
        for name in _NAMES:
            rs = summ[name]["pt_gt_1"]["resolutions"]
            rows.append([s, _NAMES[name], *(rs[p]["resolution"] for p in _PARAMS), *(rs[p]["pull_width"] for p in _PARAMS)])
        sur_r = summ["surrogate"]["pt_gt_1"]["resolutions"]
        for a in r["acts"]:
            acts_r = summ[f"acts_{a}"]["pt_gt_1"]["resolutions"]
            # docs/targets.md: within 20% of ACTS's CKF on every parameter (ratio <= 1.2)
            ratio = [_ratio(sur_r[p]["resolution"], acts_r[p]["resolution"]) for p in _PARAMS]
            rows.append([s, f"σ ratio surrogate / {_NAMES['acts_' + a]}", *ratio, *([None] * 5)])
        ag = r["agreement"]["spm1"]
        rows.append([s, "pull vs ACTS-1 (sur. spread)", *([None] * 5), *(ag["pull_width"][p] for p in _PARAMS)])
    header = ["size", "tracks", *(f"σ {p} [{_UNITS[p]}]" for p in _PARAMS), *(f"pull w. {p}" for p in _PARAMS)]
    return _table(header, rows, digits=4)


def _stage_table(res: Mapping[str, Any]) -> str:
    rows = []
    for s, r in res["sizes"].items():
        for a, t in r["acts"].items():
            ms = t["ms_per_event"]
            rows.append([s, f"{_NAMES['acts_' + a]} 1 thr.", ms["measurements"], None, ms["seeding"], None, None, None,
                         ms["ambiguity"], None, ms["ckf"], ms["total_reco"], None, t["startup_s"]])  # fmt: skip
        for label in ("threads_1", "threads_all"):
            t = r["surrogate"][label]
            ms = t["ms_per_event"]
            rows.append([s, f"surrogate {t['threads']} thr.", None, *(ms[st] for st in _SUR_STAGES), None, ms["reco"],
                         ms["end_to_end"], t["startup_s"]])  # fmt: skip
    header = ["size", "engine", "measurements", *_SUR_STAGES, "CKF", "reco", "end-to-end", "start-up s"]
    return _table(header, rows, digits=2)


def _machine_table(res: Mapping[str, Any]) -> str:
    m = dict(res["machine"])
    model = res.get("model", {})
    rows = [[k, json.dumps(v) if isinstance(v, list | dict) else v] for k, v in m.items()]
    rows += [[f"model {k}", json.dumps(v) if isinstance(v, list | dict) else v] for k, v in model.items()]
    rows += [["config", json.dumps({k: v for k, v in res.get("config", {}).items() if "bins" not in k})]]
    return _table(["", "value"], rows)


_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em; max-width: 1250px; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 2px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; font-size: 12px; margin: .6em 0; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
th { background: #f0f0f0; } td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; display: block; margin: .5em 0; }
.note { color: #555; font-size: 13px; }
.warn { background: #fff3cd; border: 1px solid #e0c060; padding: .4em .8em; font-size: 13px; }
.label { display: inline-block; background: #333; color: #fff; padding: 1px 8px; border-radius: 3px; }
"""


def _section(label: str, res: Mapping[str, Any]) -> str:
    parts = [f'<h2><span class="label">{html.escape(label)}</span></h2>']
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in res.get("notes", []))
    parts.append(f'<ul class="note">{notes}</ul>')
    training = res.get("model", {}).get("training") or {}
    if isinstance(training, Mapping) and training.get("fake"):
        parts.append(
            '<p class="warn">Model: the test-only stand-in (no learning). The surrogate physics on this '
            "page says nothing about the trained model.</p>"
        )
    m = res["machine"]
    loads = [m.get("load_average", [0])[0], *(r.get("load_average_end", [0])[0] for r in res["sizes"].values())]
    if m.get("cores") and max(loads) > m["cores"]:
        parts.append(
            f'<p class="warn">The machine was shared: 1-minute load average up to {max(loads):.1f} on '
            f"{m['cores']} cores during this run, so wall times are inflated and noisy (see reco_cpu).</p>"
        )
    parts.append("<h3>Headline figures</h3>")
    parts.append(
        '<p class="note">ms/event: median over repeats of the marginal time per event (warm). Speed-up: '
        "ACTS row / surrogate, median [min, max] of the per-repeat ratios. Agreement: share of that ACTS row's "
        "tracks reproduced by one surrogate track holding &ge; 75% of their hits. Intervals: Clopper-Pearson, 68.27%.</p>"
    )
    parts.append(_headline_table(res))
    parts.append("<h3>Paired counts: particles found by one side only</h3>")
    parts.append(_paired_table(res))
    parts.append("<h3>Efficiency by category (pT &gt; 1 GeV)</h3>")
    parts.append(_categories_table(res))
    parts.append("<h3>Time per stage (ms/event)</h3>")
    parts.append(_stage_table(res))
    parts.append(_img(_stage_figure(res), f"{label}: stage times"))
    parts.append("<h3>Fake and duplicate rates</h3>")
    parts.append(_img(_rates_figure(res), f"{label}: fake and duplicate rates"))
    for s, r in res["sizes"].items():
        ph = r["physics"]
        parts.append(f"<h3>{html.escape(s)}: efficiency ({r['events']} events, {r['hits_per_event']:.0f} hits/event)</h3>")
        parts.append(_img(_eff_figure(s, ph), f"{label} {s}: efficiency"))
        parts.append(f"<h3>{html.escape(s)}: residuals and pulls against truth (good tracks, pT &gt; 1 GeV)</h3>")
        parts.append(_img(_hist_figure(f"{s}: residuals (track - truth)", ph["residuals"], xlabel="Δ{p}"), f"{label} {s}: residuals"))
        parts.append(_img(_hist_figure(f"{s}: pulls (track - truth) / error", ph["pulls"], xlabel="pull {p}", gauss=True), f"{label} {s}: pulls"))
        texts = [
            f"{a['n_reproduced']} of {a['n_acts_tracks']} {_NAMES['acts_' + k]} tracks (agreement "
            f"{_fmt(a['fraction_reproduced'])})"
            for k, a in r["agreement"].items()
        ]
        a = r["agreement"]["spm1"]
        parts.append(
            f'<p class="note">{s}: reproduced by one surrogate track holding &ge; {a["fraction"]:.0%} of their hits: '
            f"{'; '.join(texts)}.</p>"
        )
        parts.append(_img(_hist_figure(f"{s}: (ACTS-1 - surrogate mean) / surrogate spread, reproduced tracks",
                                       _agreement_hists(a), xlabel="pull {p}", gauss=True), f"{label} {s}: calibration pulls"))  # fmt: skip
    parts.append("<h3>Resolutions (68% core width) and pull widths, pT &gt; 1 GeV</h3>")
    parts.append(_resolution_table(res))
    sc = res["scaling"]
    procs = sorted(sc.get("exponent_by_process") or {})
    rows = [[k, sc["exponent"].get(k), (sc.get("exponent_from_12k_hits") or {}).get(k),
             *((sc["exponent_by_process"][p] or {}).get(k) for p in procs)] for k in sc["exponent"]]  # fmt: skip
    parts.append("<h3>Time-vs-hits exponents</h3>")
    parts.append(_table(["series", "k (all sizes)", "k (sizes ≥ 10k hits)", *(f"k ({p}, ≥ 10k hits)" for p in procs)], rows))
    parts.append("<h3>Machine</h3>")
    parts.append(_machine_table(res))
    return "\n".join(parts)


def render_html(results: Sequence[tuple[str, Mapping[str, Any]]]) -> str:
    """The page for (label, results) pairs (labels name the device and the file)."""
    with _style():
        scaling = _scaling_figure(results)
        sections = [_section(label, res) for label, res in results]
    labels = ", ".join(html.escape(label) for label, _ in results)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>hepgan benchmark: {labels}</title><style>{_CSS}</style></head><body>\n"
        f"<h1>hepgan benchmark: surrogate vs ACTS</h1>\n<p class=\"note\">Results: {labels}. Same events, same "
        "process and machine for ACTS and the surrogate of each file; ACTS on 1 thread.</p>\n"
        "<h2>Time vs hits</h2>\n" + _img(scaling, "time vs hits") + "\n" + "\n".join(sections) + "\n</body></html>\n"
    )


def write_report(results_json_paths: Sequence[str | os.PathLike], output_html: str | os.PathLike) -> Path:
    """Write the HTML report of one or more ``hepgan bench`` JSON files; returns its path.

    Each file's section is labelled ``<device label> - <file name>``. The page is written to
    a temporary name and renamed, so a file under `output_html` is always complete.
    """
    paths = [Path(p) for p in results_json_paths]
    if not paths:
        msg = "no bench results given to report on"
        raise InputError(msg)
    results = []
    for p in paths:
        res = load_results(p)
        results.append((f"{res['device'].get('label', 'cpu')} - {p.name}", res))
    page = render_html(results)
    out = Path(output_html)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(out, page)
    return out
