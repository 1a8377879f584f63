"""Triage: rules, summary, selected and flagged events."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")

from _fake_model import build_fake_model  # noqa: E402
from conftest import random_hit_columns  # noqa: E402

from hepgan.errors import InputError  # noqa: E402
from hepgan.io.events import HITS, RootEventWriter  # noqa: E402
from hepgan.triage import compile_rule, triage_files  # noqa: E402


def test_rule_language() -> None:
    cols = {"ntracks": np.array([10, 60, 80]), "max_pt": np.array([9.0, 2.0, 7.5]), "nhits": np.array([1, 2, 3])}
    assert compile_rule("ntracks >= 50 and max_pt > 5")(cols).tolist() == [False, False, True]
    assert compile_rule("not (ntracks < 50) or nhits == 1")(cols).tolist() == [True, True, True]
    assert compile_rule("10 < ntracks <= 80")(cols).tolist() == [False, True, True]
    assert compile_rule("max_pt > -1e3")(cols).tolist() == [True, True, True]


@pytest.mark.parametrize(
    ("rule", "match"),
    [
        ("__import__('os').system('true')", "not allowed"),
        ("ntracks.real > 1", "not allowed"),
        ("ntracks + 1 > 2", "not allowed"),
        ("ntrack > 2", "unknown name 'ntrack'"),
        ("ntracks > 'a'", "not allowed"),
        ("ntracks in (1, 2)", "not allowed"),
        ("ntracks >", "cannot read it .it ends too early.; expected comparisons like"),
        ("ntracks", "not allowed"),
        ("lambda: 1", "not allowed"),
    ],
)
def test_bad_rules_refused(rule: str, match: str) -> None:
    with pytest.raises(InputError, match=match):
        compile_rule(rule)


def test_triage_summary_selection_and_flags(small_sim: Path, sim_20x50: Path, tmp_path: Path) -> None:
    # training range 8k-16k hits/event: the 20 x 50 events (~12k) are inside, the
    # 2 x 20 ones (~500) are not, and an event on unknown layers is flagged for that
    model = build_fake_model(tmp_path / "m.onnx", training={"hits_per_event": [8000, 16000]})
    alien = tmp_path / "alien.root"
    cols = random_hit_columns(2, seed=5)
    cols["hit_volume_id"] = cols["hit_volume_id"] * 0 + 99  # type: ignore[operator]
    with RootEventWriter(alien, [HITS]) as w:
        w.write_chunk("hits", cols)
    out = tmp_path / "triage"
    summary = triage_files([sim_20x50, small_sim, alien], out, select="ntracks >= 500 and max_pt > 5", model=model, progress=False)
    assert summary["events"] == 10
    assert summary["selected_events"] == 5  # the five 20 x 50 events
    doc = json.loads((out / "summary.json").read_text())
    assert doc["selected_events"] == 5
    assert sum(doc["histograms"]["pt"]["counts"]) <= doc["tracks"]
    assert np.asarray(doc["histograms"]["eta_phi"]["counts"]).sum() == sum(doc["histograms"]["eta"]["counts"])
    assert doc["high_pt_tracks"] > 0  # pT up to 10 GeV, log-uniform: ~20% above 5 GeV
    with (out / "events.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 10
    selected = [ln.split("\t") for ln in (out / "selected.txt").read_text().splitlines()]
    assert {s[0] for s in selected} == {str(sim_20x50)}
    flagged = {(f[0], int(f[1])): f[2] for f in (ln.split("\t") for ln in (out / "send_to_classic.txt").read_text().splitlines())}
    assert all("occupancy" in flagged[(str(small_sim), e)] for e in range(3))
    assert all("unknown_layers" in flagged[(str(alien), e)] for e in range(2))
    assert not any(k[0] == str(sim_20x50) for k in flagged)
    assert doc["flags"]["unknown_layers"] == 2 and doc["flagged_events"] == 5
    assert (out / "tracks" / "sample_20x50.root").exists()
    assert doc["plots"] == [] or all((out / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in doc["plots"])
    assert sorted(p.name for p in out.glob(".*")) == []  # written atomically: no temporaries left


def test_bad_rule_fails_before_work(small_sim: Path, tmp_path: Path) -> None:
    model = build_fake_model(tmp_path / "m.onnx")
    with pytest.raises(InputError, match="unknown name"):
        triage_files([small_sim], tmp_path / "t", select="pt > 1", model=model, progress=False)
    assert not (tmp_path / "t").exists()
