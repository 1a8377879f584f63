"""The bench's headline: per size, one row per reconstruction (ACTS-1, ACTS-5, surrogate) of
the figures the README and the report quote, and its plain-text table for the terminal."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hepgan.perf.timing import ACTS_CONFIGS

__all__ = ["ROW_LABELS", "build_headline", "format_headline", "interval_text"]

#: Row label of each reconstruction.
ROW_LABELS = {"spm1": "ACTS-1", "spm5": "ACTS-5", "surrogate": "surrogate"}


def _row(summary: Mapping[str, Any], summary05: Mapping[str, Any]) -> dict:
    return {
        "efficiency_pt1": summary["efficiency_interval"],
        "efficiency_pt0.5": summary05["efficiency_interval"],
        "efficiency_categories_pt1": summary["efficiency_categories"],
        "fake_rate": summary["fake_rate_interval"],
        "duplicate_rate": summary["duplicate_rate_interval"],
        "trackml_score": summary["trackml_score"],
    }


def build_headline(results: Mapping[str, Any]) -> dict:
    """Per size, one row per reconstruction (ACTS-1, ACTS-5, surrogate) of the figures the
    README and the report's table quote. On the ACTS rows, ``speedup`` is the surrogate's
    (1 thread) over that row and ``agreement`` the share of that row's tracks the surrogate
    reproduces."""
    out = {}
    for s, r in results["sizes"].items():
        summ = r["physics"]["summary"]
        rows = {}
        for a in ACTS_CONFIGS:
            ms = r["acts"][a]["ms_per_event_repeats"]["total_reco"]
            rows[ROW_LABELS[a]] = {
                "ms_per_event": r["acts"][a]["ms_per_event"]["total_reco"],
                "ms_per_event_range": [min(ms), max(ms)],
                "speedup": {k: r["speedup"][a]["threads_1"]["reco"][k] for k in ("median", "min", "max")},
                "speedup_all_cores": {k: r["speedup"][a]["threads_all"]["reco"][k] for k in ("median", "min", "max")},
                "agreement": r["agreement"][a]["fraction_reproduced"],
                "paired_pt1": r["paired"][a]["pt_gt_1"],
                **_row(summ[f"acts_{a}"]["pt_gt_1"], summ[f"acts_{a}"]["pt_gt_0.5"]),
            }
        t1 = r["surrogate"]["threads_1"]
        ms = t1["ms_per_event_repeats"]["reco"]
        rows["surrogate"] = {
            "ms_per_event": t1["ms_per_event"]["reco"],
            "ms_per_event_range": [min(ms), max(ms)],
            "ms_per_event_all_cores": r["surrogate"]["threads_all"]["ms_per_event"]["reco"],
            "speedup": None,
            "agreement": None,
            **_row(summ["surrogate"]["pt_gt_1"], summ["surrogate"]["pt_gt_0.5"]),
        }
        out[s] = {"hits_per_event": r["hits_per_event"], "events": r["events"], "rows": rows}
    return out


def _pct(rate: Mapping[str, Any] | None) -> str:
    if not rate or rate.get("value") is None:
        return "n/a"
    return f"{100 * rate['value']:.2f}%"


def interval_text(rate: Mapping[str, Any] | None) -> str:
    """A rate with its interval for people: ``0.9915 [0.9892, 0.9933]`` ("n/a" when undefined)."""
    if not rate or rate.get("value") is None:
        return "n/a"
    return f"{rate['value']:.4f} [{rate['lower']:.4f}, {rate['upper']:.4f}]"


def format_headline(results: Mapping[str, Any]) -> str:
    """The headline as a plain-text table for a terminal: per size, ACTS-1, ACTS-5 and the
    surrogate with ms/event, the surrogate's speed-up over each ACTS row (median [min-max]),
    efficiency (pT > 1 GeV) with its interval, fake and duplicate rates, agreement, TrackML."""
    head = (f"{'size':<12} {'reco':<10} {'ms/event':>10} {'speed-up [min-max]':>22}  "
            f"{'efficiency pT>1 [68% CL]':<26} {'fake':>7} {'dup':>7} {'agree':>6} {'TrackML':>8}")  # fmt: skip
    lines = [head, "-" * len(head)]
    for s, h in results["headline"].items():
        for k, (label, row) in enumerate(h["rows"].items()):
            sp = row.get("speedup")
            speed = f"{sp['median']:.1f}x [{sp['min']:.1f}-{sp['max']:.1f}]" if sp and sp.get("median") else "-"
            agree = f"{row['agreement']:.3f}" if row.get("agreement") is not None else "-"
            tml = f"{row['trackml_score']:.3f}" if row.get("trackml_score") is not None else "n/a"
            name = f"{s}" if k == 0 else ""
            lines.append(
                f"{name:<12} {label:<10} {row['ms_per_event']:>10.2f} {speed:>22}  {interval_text(row['efficiency_pt1']):<26} "
                f"{_pct(row['fake_rate']):>7} {_pct(row['duplicate_rate']):>7} {agree:>6} {tml:>8}"
            )
        sur = h["rows"]["surrogate"]
        lines.append(f"{'':<12} {'':<10} surrogate on all cores: {sur['ms_per_event_all_cores']:.2f} ms/event; "
                     f"{h['hits_per_event']:.0f} hits/event, {h['events']} events")  # fmt: skip
    cfg = results["config"]
    lines.append(
        f"ACTS {cfg['acts_repeats']} and surrogate {cfg['repeats']} repeats, interleaved; ms/event: median, marginal; "
        f"speed-up: surrogate (1 thread) over that ACTS row; agree: share of that row's tracks the surrogate "
        f"reproduces; seed {cfg['seed']} ({cfg['seed_purpose']}); device {results['device']['label']}"
    )
    return "\n".join(lines)
