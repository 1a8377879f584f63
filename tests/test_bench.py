"""hepgan.perf.bench: the protocol at a tiny size (real ACTS, real engine), JSON layout and sanity."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import awkward as ak
import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("acts")

from _fake_model import model_for_tests  # noqa: E402

from hepgan.errors import InputError  # noqa: E402
from hepgan.perf.bench import STAGES, agreement, fit_exponent, parse_size, run_bench  # noqa: E402

_SIZES = ("1x20", "2x20")


def _strict_json(path: Path) -> dict:
    def no_constants(name: str) -> None:
        raise AssertionError(f"JSON holds {name}")  # NaN/Infinity are not JSON

    return json.loads(path.read_text(), parse_constant=no_constants)


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    """(returned dict, JSON read back) of a 2-size, 2-event, 1-repeat run."""
    tmp = tmp_path_factory.mktemp("bench")
    model = model_for_tests(tmp)
    out = tmp / "bench.json"
    res = run_bench(out, sizes=_SIZES, events=2, repeats=1, model=model, progress=False, workdir=tmp / "work")
    return res, _strict_json(out)


def test_structure_and_machine(bench: tuple[dict, dict]) -> None:
    res, doc = bench
    assert doc == json.loads(json.dumps(res))  # what was written is what was returned
    assert doc["schema"] == "hepgan-bench/1"
    assert doc["device"]["kind"] == "cpu" and doc["device"]["label"] == "cpu"
    m = doc["machine"]
    assert m["cores"] == os.cpu_count() and m["cpu_model"]
    assert m["memory_gib"] > 0.5
    for pkg in ("python", "numpy", "numba", "onnxruntime", "pyacts", "date"):
        assert isinstance(m[pkg], str) and m[pkg], pkg
    assert len(m["load_average"]) == 3
    assert len(doc["model"]["sha256"]) == 64 and len(doc["model"]["metadata_sha256"]) == 64
    assert doc["config"]["threads_all"] == os.cpu_count()
    assert doc["config"]["events"] == dict.fromkeys(_SIZES, 2)
    assert list(doc["sizes"]) == list(_SIZES)


def test_timing(bench: tuple[dict, dict]) -> None:
    doc = bench[1]
    h1, h2 = (doc["sizes"][s]["hits_per_event"] for s in _SIZES)
    assert 100 < h1 < h2 < 1500  # 2 x 20 pions leave about twice the hits of 1 x 20
    for s in _SIZES:
        r = doc["sizes"][s]
        a = r["acts"]["ms_per_event"]
        assert all(a[k] > 0 for k in ("seeding", "ckf", "ambiguity", "total_reco"))
        assert a["total_reco"] == pytest.approx(a["seeding"] + a["ckf"] + a["ambiguity"], rel=1e-3)
        assert len(r["acts"]["ms_per_event_list"]["ckf"]) == 2
        for label, threads in (("threads_1", 1), ("threads_all", os.cpu_count())):
            t = r["surrogate"][label]
            assert t["threads"] == threads
            ms = t["ms_per_event"]
            assert set(STAGES) <= set(ms)
            assert all(math.isfinite(ms[k]) and ms[k] > 0 for k in STAGES), ms
            engine_sum = sum(ms[k] for k in STAGES[1:-1])
            assert ms["reco"] == pytest.approx(engine_sum, rel=1e-3, abs=1e-3)
            # the whole pass contains its parts
            assert ms["end_to_end"] >= ms["reco"] + ms["read"] + ms["write"] - 1e-3
            assert len(t["ms_per_event_repeats"]["reco"]) == 1
        for label in ("threads_1", "threads_all"):
            sp = r["speedup"][label]
            assert sp["reco"] == pytest.approx(a["total_reco"] / r["surrogate"][label]["ms_per_event"]["reco"], rel=1e-6)
            assert all(v is not None and v > 0 for k, v in sp.items() if k != "reco_cpu_estimate"), sp
        est = r["speedup"]["threads_1"]["reco_cpu_estimate"]
        share = r["acts"]["cpu_share"]
        assert 0.05 < share <= 1.05  # one thread: at most one core (+ timer granularity)
        assert est == pytest.approx(a["total_reco"] * share / r["surrogate"]["threads_1"]["ms_per_event"]["reco_cpu"], rel=1e-6)
        assert r["speedup"]["threads_all"]["reco_cpu_estimate"] is None
        assert r["acts"]["convert_ms_per_event"] > 0
        assert r["surrogate_tracks_identical_across_threads"] is True
        assert all(v > 50 for v in r["peak_rss_mib"].values()), r["peak_rss_mib"]  # MiB; ACTS alone is more


def test_physics(bench: tuple[dict, dict]) -> None:
    doc = bench[1]
    for s in _SIZES:
        r = doc["sizes"][s]
        ph = r["physics"]
        acts1 = ph["summary"]["acts"]["pt_gt_1"]
        sur1 = ph["summary"]["surrogate"]["pt_gt_1"]
        # ACTS is nearly complete on a few dozen pions (0.996 at 20 x 50).
        assert acts1["efficiency"] >= 0.9
        assert acts1["fake_rate"] <= 0.05 and acts1["duplicate_rate"] <= 0.05
        assert 0.8 < acts1["trackml_score"] <= 1.0
        assert acts1["n_particles_denominator"] >= 10
        # Same events: same denominator for both.
        assert sur1["n_particles_denominator"] == acts1["n_particles_denominator"]
        for key in ("efficiency", "fake_rate", "duplicate_rate", "trackml_score"):
            assert 0.0 <= sur1[key] <= 1.0, key
        assert sur1["efficiency"] >= 0.5  # a seed-following surrogate finds most of these tracks
        for p in ("d0", "z0", "phi", "theta", "qop"):
            assert sur1["resolutions"][p]["resolution"] > 0
            assert acts1["resolutions"][p]["resolution"] > 0
        # pT > 0.5 GeV holds all of the pT > 1 GeV particles
        assert ph["summary"]["acts"]["pt_gt_0.5"]["n_particles_denominator"] >= acts1["n_particles_denominator"]
        # binned numbers add up to the summaries
        for name in ("acts", "surrogate"):
            vs_pt = ph["efficiency_vs_pt"][name]
            assert sum(vs_pt["n_total"]) == ph["summary"][name]["pt_gt_0.5"]["n_particles_denominator"]
            assert sum(vs_pt["n_matched"]) == ph["summary"][name]["pt_gt_0.5"]["n_particles_matched"]
            vs_eta = ph["efficiency_vs_eta"][name]
            assert sum(vs_eta["n_total"]) == ph["summary"][name]["pt_gt_1"]["n_particles_denominator"]
            for p in ("d0", "z0", "phi", "theta", "qop"):
                h = ph["residuals"][p][name]
                assert len(h["edges"]) == len(h["counts"]) + 1
                n = sum(h["counts"]) + h["underflow"] + h["overflow"]
                assert n == ph["summary"][name]["pt_gt_1"]["resolutions"][p]["n"]
            assert ph["residuals"]["qop"]["acts"]["edges"] == ph["residuals"]["qop"]["surrogate"]["edges"]
        a = r["agreement"]
        assert a["n_acts_tracks"] == ph["summary"]["acts"]["pt_gt_1"]["n_tracks"]
        assert 0.5 <= a["fraction_reproduced"] <= 1.0
        assert a["n_reproduced"] == round(a["fraction_reproduced"] * a["n_acts_tracks"])
        assert all(w is not None and w > 0 for w in a["pull_width"].values()), a["pull_width"]


def test_scaling_and_headline(bench: tuple[dict, dict]) -> None:
    doc = bench[1]
    sc = doc["scaling"]
    assert sc["sizes"] == list(_SIZES)
    for key, k in sc["exponent"].items():
        assert k is not None and math.isfinite(k), key
        # recompute from the stored series: the fit is a plain log-log least squares
        ms = sc["ms_per_event"][key]
        expect = np.polyfit(np.log(sc["hits_per_event"]), np.log(ms), 1)[0]
        assert k == pytest.approx(expect, rel=1e-9)
    assert sc["exponent_from_12k_hits"] is None  # both sizes are far below 10k hits
    h = doc["headline"]["2x20"]
    assert h["speedup_1thread"] > 0
    assert h["acts_efficiency_pt1"] == doc["sizes"]["2x20"]["physics"]["summary"]["acts"]["pt_gt_1"]["efficiency"]


def test_fit_exponent() -> None:
    assert fit_exponent([1e3, 1e4, 1e5], [2.0, 200.0, 20000.0]) == pytest.approx(2.0)
    assert fit_exponent([1e3, 1e4], [5.0, 50.0]) == pytest.approx(1.0)
    assert fit_exponent([1e3], [5.0]) is None
    assert fit_exponent([1e3, 1e3], [5.0, 7.0]) is None


def test_agreement_by_hand() -> None:
    # event 0: ACTS track A0 = hits 0..7 (8), A1 = hits 10..17 (8)
    # surrogate S0 = hits 0..5 (6 of A0's 8 = 75%: reproduced), S1 = hits 10..14 (5/8 < 75%: not)
    acts = {
        "track_nhits": ak.Array([[8, 8]]),
        "track_hit_index": ak.Array([list(range(8)) + list(range(10, 18))]),
        **{f"track_{p}": ak.Array([[1.0, 2.0]]) for p in ("d0", "z0", "phi", "theta", "qop")},
    }
    sur = {
        "track_nhits": ak.Array([[5, 6]]),
        "track_hit_index": ak.Array([list(range(10, 15)) + list(range(6))]),
        **{f"track_{p}": ak.Array([[0.0, 0.5]]) for p in ("d0", "z0", "phi", "theta", "qop")},
        **{f"track_err_{p}": ak.Array([[1.0, 0.25]]) for p in ("d0", "z0", "phi", "theta", "qop")},
    }
    a = agreement(acts, sur)
    assert a["n_acts_tracks"] == 2 and a["n_reproduced"] == 1 and a["fraction_reproduced"] == 0.5
    # the pair (A0, S1 = second surrogate track): (1.0 - 0.5) / 0.25 = 2
    assert a["pull_mean"]["d0"] == pytest.approx(2.0)
    assert sum(a["pull_hist"]["d0"]["counts"]) == 1


def test_bad_sizes_refused_before_running(tmp_path: Path) -> None:
    assert parse_size(" 20x50 ") == (20, 50)
    for bad in ("20y50", "0x50", "x50", "20x"):
        with pytest.raises(InputError, match="VxM"):
            parse_size(bad)
    with pytest.raises(InputError, match="VxM"):
        run_bench(tmp_path / "x.json", sizes=("1x20", "oops"), model=tmp_path / "none.onnx", progress=False)
    with pytest.raises(InputError, match="repeats"):
        run_bench(tmp_path / "x.json", sizes=("1x20",), repeats=0, progress=False)
    assert not (tmp_path / "x.json").exists()
