"""What a new user hit (issue 19), through the real command line: exit codes, messages, files left.

One test (or more) per item of the issue, numbered as there.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot
from conftest import random_hit_columns

from hepgan.io.events import HITS, RootEventWriter, read_events, read_file_metadata

REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "deploy" / "models" / "hepgan-generic.onnx"

pytestmark = pytest.mark.skipif(not SHIPPED.exists(), reason="no shipped model")


def hepgan(*args: str | Path, timeout: int = 600, **kw) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", "hepgan.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout, check=False, **kw)  # fmt: skip


def error_line(out: subprocess.CompletedProcess[str], code: int = 2) -> str:
    """The one error line of a refused command (exit `code`, no traceback)."""
    assert out.returncode == code, out.stderr[-3000:]
    assert "Traceback" not in out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("hepgan: error: ")]
    assert len(errors) == 1, out.stderr[-3000:]
    return errors[0]


def write_hits(path: Path, cols: dict, *, metadata: dict | None = None) -> Path:
    with RootEventWriter(path, [HITS], metadata=metadata) as w:
        w.write_chunk("hits", cols)
    return path


@pytest.fixture(scope="module")
def hits2t(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 events of hits on the generic detector's barrel layers, recorded at 2 T."""
    return write_hits(tmp_path_factory.mktemp("hits") / "hits.root", random_hit_columns(6, seed=4), metadata={"b_field_t": 2.0})


def _tracks(path: Path) -> dict[str, np.ndarray]:
    with uproot.open(path) as f:
        arrays = f["tracks"].arrays(library="ak")
    return {k: ak.to_numpy(ak.flatten(arrays[k]) if arrays[k].ndim > 1 else arrays[k]) for k in arrays.fields}


# ----------------------------------------------------------------------------- 1: resume
def test_1_outputs_record_what_made_them_and_resume_redoes_what_differs(hits2t: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = hepgan("reco", hits2t, "-o", out)
    assert first.returncode == 0, first.stderr
    made = out / "hits.root"
    record = read_file_metadata(made)["reco"]
    assert record["engine"] == "onnx" and record["seed"] == 0 and record["model"] == str(SHIPPED.resolve())
    assert re.fullmatch(r"[0-9a-f]{64}", record["model_sha256"]) and record["hepgan_version"]
    assert record["assignment"]["hit_threshold"] > 0 and record["b_field_t"] == 2.0 and record["branch_map"] is None
    mtime = made.stat().st_mtime_ns

    again = hepgan("reco", hits2t, "-o", out)
    assert again.returncode == 0 and "1 skipped (made the same way; --force redoes them)" in again.stdout
    assert made.stat().st_mtime_ns == mtime

    reseeded = hepgan("reco", hits2t, "-o", out, "--seed", "5")
    assert reseeded.returncode == 0, reseeded.stderr
    assert "made another way: seed 0 -> 5" in reseeded.stderr and "seed 0 -> 5" in reseeded.stdout
    assert read_file_metadata(made)["reco"]["seed"] == 5

    model = tmp_path / "other.onnx"
    model.write_bytes(SHIPPED.read_bytes())  # the same bytes elsewhere: the same model
    moved = hepgan("reco", hits2t, "-o", out, "--seed", "5", "--model", model)
    assert "1 skipped" in moved.stdout, moved.stdout + moved.stderr

    forced = hepgan("reco", hits2t, "-o", out, "--seed", "5", "--force")
    assert forced.returncode == 0 and "1 written" in forced.stdout and made.stat().st_mtime_ns != mtime


def test_1_the_leftover_pass_is_recorded_and_can_be_turned_off(ttbar_pu50_sample: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert hepgan("reco", ttbar_pu50_sample, "-o", out).returncode == 0
    made = out / ttbar_pu50_sample.name
    assert read_file_metadata(made)["reco"]["assignment"]["leftover_pt_min"] == 0.3

    def per_event() -> ak.Array:
        with uproot.open(made) as f:
            return f["tracks"].arrays(["track_nhits", "track_hit_index"], library="ak")

    two = per_event()
    one_pass = hepgan("reco", ttbar_pu50_sample, "-o", out, "--leftover-pt-min", "0")
    assert one_pass.returncode == 0, one_pass.stderr
    assert "leftover_pt_min" in one_pass.stderr  # made another way: redone, saying what differed
    assert read_file_metadata(made)["reco"]["assignment"]["leftover_pt_min"] == 0.0
    one = per_event()
    # one pass (with the model's seeding cuts; the two-pass engine's first pass seeds prompt
    # particles only, hepgan.reco.engine) finds fewer tracks in every event
    for e in range(len(one)):
        assert 0 < len(one["track_nhits"][e]) < len(two["track_nhits"][e])
        assert ak.sum(one["track_nhits"][e]) < ak.sum(two["track_nhits"][e])
    bad = hepgan("reco", ttbar_pu50_sample, "-o", out, "--leftover-pt-min", "-1")
    assert bad.returncode == 2 and "--leftover-pt-min" in bad.stderr


def test_1_an_output_of_another_engine_is_redone(small_sim: Path, tmp_path: Path) -> None:
    pytest.importorskip("acts")
    out = tmp_path / "out"
    assert hepgan("reco", small_sim, "-o", out).returncode == 0
    surrogate = _tracks(out / "small.root")
    acts = hepgan("reco", small_sim, "-o", out, "--engine", "acts")
    assert acts.returncode == 0, acts.stderr
    assert "engine 'onnx' -> 'acts'" in acts.stderr
    record = read_file_metadata(out / "small.root")["reco"]
    assert record["engine"] == "acts" and record["model"] is None
    # ACTS's tracks now, not the surrogate's kept under their name
    assert hepgan("reco", small_sim, "-o", tmp_path / "ref", "--engine", "acts").returncode == 0
    classic = _tracks(tmp_path / "ref" / "small.root")["track_hit_index"]
    np.testing.assert_array_equal(_tracks(out / "small.root")["track_hit_index"], classic)
    assert not np.array_equal(surrogate["track_hit_index"][: len(classic)], classic[: len(surrogate["track_hit_index"])])


# ----------------------------------------------------------------------------- 2: branch map
@pytest.fixture(scope="module")
def theirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A user's file: tree 'Hits' with x, y, z; and the branch map that reads it."""
    d = tmp_path_factory.mktemp("theirs")
    c = random_hit_columns(4, seed=5)
    data = {"event_id": c["event_id"], **{k: ak.values_astype(c[f"hit_{k}"], np.float32) for k in "xyz"},
            **{k: ak.values_astype(c[k], np.int32) for k in ("hit_volume_id", "hit_layer_id", "hit_module_id")}}  # fmt: skip
    path = d / "theirs.root"
    with uproot.recreate(path) as f:
        f.mktree("Hits", {k: v.type if isinstance(v, ak.Array) else v.dtype for k, v in data.items()})
        f["Hits"].extend(data)
    bmap = d / "map.toml"
    bmap.write_text('[hits]\ntree = "Hits"\nhit_x = "x"\nhit_y = "y"\nhit_z = "z"\n')
    return path, bmap


def test_2_branch_map_on_reco_and_triage(theirs: tuple[Path, Path], tmp_path: Path) -> None:
    path, bmap = theirs
    line = error_line(hepgan("reco", path, "-o", tmp_path / "a"))
    assert "missing tree 'hits'" in line and "--branch-map FILE.toml" in line and '[hits] tree = "Hits"' in line
    assert not (tmp_path / "a").exists()
    ok = hepgan("reco", path, "-o", tmp_path / "a", "--branch-map", bmap, "--b-field", "2")
    assert ok.returncode == 0, ok.stderr
    assert read_events(tmp_path / "a" / "theirs.root", trees=("tracks",))["tracks"].event_id.tolist() == [0, 1, 2, 3]
    assert read_file_metadata(tmp_path / "a" / "theirs.root")["reco"]["branch_map"]["trees"] == {"hits": "Hits"}
    tri = hepgan("triage", path, "-o", tmp_path / "t", "--select", "ntracks >= 0", "--branch-map", bmap,
                 "--b-field", "2", "--no-plots")  # fmt: skip
    assert tri.returncode == 0, tri.stderr
    assert json.loads((tmp_path / "t" / "summary.json").read_text())["events"] == 4
    shown = hepgan("inspect", path)
    assert shown.returncode == 0 and "give reco a branch map: --branch-map FILE.toml with [hits] tree = \"Hits\"" in shown.stdout
    half = tmp_path / "half.toml"
    half.write_text('[hits]\ntree = "Hits"\n')
    line = error_line(hepgan("reco", path, "-o", tmp_path / "b", "--branch-map", half))
    assert "missing branch 'hit_x'" in line and "--branch-map" in line


def test_2_a_bad_branch_map_is_named(theirs: tuple[Path, Path], tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[hitz]\ntree = "Hits"\n')
    line = error_line(hepgan("reco", theirs[0], "-o", tmp_path / "o", "--branch-map", bad))
    assert "bad.toml" in line and "unknown tree [hitz]" in line and "'hits'" in line


# ----------------------------------------------------------------------------- 3: start-up
def test_3_reco_reports_start_up_apart_from_per_event_times(hits2t: Path, tmp_path: Path) -> None:
    out = hepgan("reco", hits2t, "-o", tmp_path / "o")
    assert out.returncode == 0, out.stderr
    assert re.search(r"start-up \(once\) +model load \d+\.\d s, kernels \d+\.\d s; not in ms/event", out.stdout)
    assert "e+" not in out.stdout  # numbers for people

    from hepgan.reco.driver import reconstruct_files

    summary = reconstruct_files([hits2t], tmp_path / "api", progress=False)
    assert set(summary["startup_s"]) == {"model_load", "kernels"}
    # the warm-up ran the chain: what is left per event is the warm cost (ms, not seconds)
    assert summary["ms_per_event"]["seeding"] < 500


def test_3_slow_steps_say_what_they_do_and_progress_shows_off_a_terminal(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from hepgan.io.notice import Progress, slow_notice

    caplog.set_level(logging.INFO, logger="hepgan")
    with slow_notice("compiling", after_s=0.05):
        time.sleep(0.3)
    with slow_notice("fast", after_s=5):
        pass
    texts = [r.getMessage() for r in caplog.records]
    assert texts[0] == "compiling..." and texts[1].startswith("compiling: done in ")
    assert not any("fast" in t for t in texts)
    caplog.clear()
    bar = Progress(4, bar=False, desc="reco", every_s=0.0)
    for _ in range(4):
        bar.update(1)
    bar.close()
    assert [r.getMessage().split(",")[0] for r in caplog.records][-1] == "reco: 4/4 events (100%)"


def test_3_demo_measures_both_sides_now(tmp_path: Path) -> None:
    pytest.importorskip("acts")
    args = ("demo", "-o", tmp_path, "--events", "2", "--process", "gun", "--vertices", "2", "--particles", "10",
            "--repeats", "2")
    out = hepgan(*args)
    assert out.returncode == 0, out.stderr
    assert "simulated now" in out.stdout
    assert re.search(r"speed-up, measured now: \d+\.\dx \(median of 2 interleaved runs; per run \d+\.\d, \d+\.\d\)", out.stdout)
    assert "ACTS seeding + ckf + ambiguity" in out.stdout and "start-up, once per process" in out.stdout
    again = hepgan(*args)
    assert "reused" in again.stdout and "measured now" in again.stdout
    assert "stored ACTS timings are not used" in again.stderr
    # aligned: the figure rows are label, ACTS and surrogate columns of fixed widths
    rows = [line for line in out.stdout.splitlines() if re.fullmatch(r"  [a-zA-Z ()]{24}[ \d.,]{12}[ \d.,]{12}", line)]
    assert len(rows) == 7, out.stdout  # efficiency, fake, duplicate, TrackML, tracks, agreement, ms


# ----------------------------------------------------------------------------- 4: RNTuple
def test_4_rntuple_files_are_read(small_sim: Path, tmp_path: Path) -> None:
    hits = read_events(small_sim, trees=("hits",))["hits"]
    rnt = tmp_path / "rnt" / "small.root"
    rnt.parent.mkdir()
    with uproot.recreate(rnt) as f:  # uproot 5.7's simplest way: an RNTuple
        f["hits"] = {k: hits[k] for k in HITS.reco_names()}
    with uproot.open(rnt) as f:
        assert f.classnames()["hits;1"] == "ROOT::RNTuple"
    shown = hepgan("inspect", rnt)
    assert shown.returncode == 0 and "RNTuple hits: 3 events" in shown.stdout and "hits/event" in shown.stdout
    a = hepgan("reco", rnt, "-o", tmp_path / "a", "--b-field", "2")
    b = hepgan("reco", small_sim, "-o", tmp_path / "b")
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    ta, tb = _tracks(tmp_path / "a" / "small.root"), _tracks(tmp_path / "b" / "small.root")
    assert len(tb["track_d0"]) > 20
    for k in tb:
        np.testing.assert_array_equal(ta[k], tb[k])


# ----------------------------------------------------------------------------- 5: flat ntuples
def test_5_flat_ntuples_are_named_and_counted(tmp_path: Path) -> None:
    c = random_hit_columns(5, seed=2)
    n = ak.to_numpy(ak.num(c["hit_x"]))
    flat = {"event_id": np.repeat(c["event_id"], n)}
    flat |= {k: ak.to_numpy(ak.flatten(c[k])) for k in HITS.reco_names() if k != "event_id"}
    path = tmp_path / "flat.root"
    with uproot.recreate(path) as f:
        f.mktree("hits", {k: v.dtype for k, v in flat.items()})
        f["hits"].extend(flat)
    line = error_line(hepgan("reco", path, "-o", tmp_path / "o"))
    assert "branch 'hit_x' holds one float64 per entry, expected a list per event" in line and "flat ntuple" in line
    shown = hepgan("inspect", path)
    assert shown.returncode == 0
    assert f"{n.sum()} rows, one per hit, in 5 events (a flat ntuple)" in shown.stdout
    assert "missing for the hepgan format" not in shown.stdout
    assert "no truth (hit_particle_id, hit_tx, hit_ty, hit_tz): optional" in shown.stdout
    report = json.loads(hepgan("inspect", "--json", path).stdout)
    assert report["trees"]["hits"]["flat"] == {"rows": int(n.sum()), "events": 5}
    assert report["trees"]["hits"]["missing_branches"] == []


# ----------------------------------------------------------------------------- 6: acts engine
def _shift_first_hit(src: Path, dst: Path, mm: float, *, along_normal: bool) -> Path:
    """`src` with event 0's hit 0 moved by `mm` along its module's local x or its normal."""
    import acts

    from hepgan.acts.classic import _detector
    from hepgan.acts.convert import SurfaceFrames

    hits = read_events(src, trees=("hits",), truth=True)["hits"]
    cols = {b: ak.to_list(hits[b]) for b in HITS.names}
    frames = SurfaceFrames(_detector()[1], acts.GeometryContext.dangerouslyDefaultConstruct())
    ids = [int(cols[k][0][0]) for k in ("hit_volume_id", "hit_layer_id", "hit_module_id")]
    f = frames.frame(acts.GeometryIdentifier(volume=ids[0], layer=ids[1], sensitive=ids[2]).value)
    e = np.cross(f[1], f[2]) if along_normal else f[1]
    e = e / np.linalg.norm(e)
    for i, k in enumerate(("hit_x", "hit_y", "hit_z")):
        cols[k][0][0] = float(cols[k][0][0] + mm * e[i])
    return write_hits(dst, {k: np.asarray(v) if k == "event_id" else ak.Array(v) for k, v in cols.items()},
                      metadata={"b_field_t": 2.0})  # fmt: skip


def test_6_acts_engine_leaves_out_a_hit_outside_its_module(small_sim: Path, tmp_path: Path) -> None:
    """A hit on its module's plane but outside its area gets no measurement: the indices of
    the other hits must not shift (they did, or failed with IndexError)."""
    pytest.importorskip("acts")
    moved = _shift_first_hit(small_sim, tmp_path / "in" / "moved.root", 300.0, along_normal=False)
    out = hepgan("reco", moved, "-o", tmp_path / "o", "--engine", "acts")
    assert out.returncode == 0, out.stderr
    assert "1 of" in out.stderr and "outside the active area" in out.stderr and "generic detector" in out.stderr
    assert hepgan("reco", small_sim, "-o", tmp_path / "ref", "--engine", "acts").returncode == 0
    ours = read_events(tmp_path / "o" / "moved.root", trees=("tracks",))["tracks"]
    theirs = read_events(tmp_path / "ref" / "small.root", trees=("tracks",))["tracks"]
    for event in (1, 2):  # untouched events: the same tracks
        assert ak.to_list(ours.track_hit_index[event]) == ak.to_list(theirs.track_hit_index[event])
    assert 0 not in ak.to_list(ours.track_hit_index[0])

    def hit_sets(t, event):
        flat, counts = ak.to_list(t.track_hit_index[event]), ak.to_list(t.track_nhits[event])
        bounds = np.concatenate([[0], np.cumsum(counts)]).astype(int)
        return {frozenset(flat[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)}

    same = hit_sets(ours, 0) & hit_sets(theirs, 0)
    assert len(same) >= 0.8 * len(hit_sets(theirs, 0))


def test_6_a_file_of_another_detector_is_named_as_such(small_sim: Path, tmp_path: Path) -> None:
    pytest.importorskip("acts")
    moved = _shift_first_hit(small_sim, tmp_path / "in" / "other.root", 5.0, along_normal=True)
    line = error_line(hepgan("reco", moved, "-o", tmp_path / "o", "--engine", "acts"))
    assert "other.root" in line and "off the plane of its module" in line
    assert "the file's detector is not ACTS's generic detector" in line
    assert not (tmp_path / "o" / "other.root").exists()


# ----------------------------------------------------------------------------- 7: TrackML
def test_7_trackml_hits_only_and_gzipped(tmp_path: Path) -> None:
    src = tmp_path / "trackml"
    src.mkdir()
    header = "hit_id,x,y,z,volume_id,layer_id,module_id,extra\n"
    rows = ["2,72.0,2.0,10.0,8,4,1,0\n", "1,32.0,1.0,5.0,8,2,1,0\n"]
    with gzip.open(src / "event000000001-hits.csv.gz", "wt") as fh:
        fh.write(header + "".join(rows))
    (src / "event000000002-hits.csv").write_text(header + rows[1])
    out = hepgan("import", "--format", "trackml", src, "-o", tmp_path / "t.root")
    assert out.returncode == 0, out.stderr
    assert "imported 2 events" in out.stdout and "no truth files" in out.stderr
    with uproot.open(tmp_path / "t.root") as f:
        assert "particles" not in f and "hit_particle_id" not in f["hits"]
    hits = read_events(tmp_path / "t.root")["hits"]
    assert hits.event_id.tolist() == [1, 2] and ak.to_list(hits.hit_x) == [[32.0, 72.0], [32.0]]  # by hit_id
    assert hepgan("reco", tmp_path / "t.root", "-o", tmp_path / "o", "--b-field", "2").returncode == 0
    # truth for one event and not the other is refused, nothing written
    (src / "event000000002-truth.csv").write_text("hit_id,particle_id,tx,ty,tz\n1,0,32,1,5\n")
    (src / "event000000002-particles.csv").write_text("particle_id,vx,vy,vz,px,py,pz,q\n")
    line = error_line(hepgan("import", "--format", "trackml", src, "-o", tmp_path / "u.root"))
    assert "event 2 has truth files and event 1 lacks them" in line and not (tmp_path / "u.root").exists()


# ----------------------------------------------------------------------------- 8: export
@pytest.mark.slow
def test_8_the_shipped_model_re_exports_to_the_shipped_onnx(tmp_path: Path) -> None:
    pytest.importorskip("tf2onnx")
    import onnx
    import onnxruntime as ort

    out = hepgan("export", REPO / "deploy" / "models" / "hepgan-generic.keras", "-o", tmp_path / "x.onnx")
    assert out.returncode == 0, out.stderr[-3000:]
    assert float(out.stdout.split()[-1]) < 1e-5
    meta = [{p.key: p.value for p in onnx.load(m).metadata_props} for m in (SHIPPED, tmp_path / "x.onnx")]
    assert json.loads(meta[0]["hepgan"]) == json.loads(meta[1]["hepgan"])
    features = np.load(REPO / "deploy" / "models" / "hepgan-generic.parity.npz", allow_pickle=False)["condition"]
    noise = np.random.default_rng(3).standard_normal((len(features), 16, 8)).astype(np.float32)
    a, b = (ort.InferenceSession(str(m)).run(None, {"condition": features, "noise": noise}) for m in (SHIPPED, tmp_path / "x.onnx"))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, atol=1e-5)


# ----------------------------------------------------------------------------- 9, 10: progress, Dask
def test_9_progress_moves_per_event(hits2t: Path, small_sim: Path) -> None:
    from hepgan.reco.driver import RecoOptions, process_range

    seen: list[int] = []
    r = process_range(str(hits2t), 0, 6, RecoOptions(model=str(SHIPPED)), 2.0, lambda: seen.append(1))
    assert len(seen) == len(r.event_id) == 6
    pytest.importorskip("acts")
    seen.clear()
    process_range(str(small_sim), 0, 3, RecoOptions(model=None, engine_name="acts"), 2.0, lambda: seen.append(1))
    assert len(seen) == 3


def test_10_workers_do_not_flood_the_log(hits2t: Path, tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    out = hepgan("reco", hits2t, "-o", tmp_path / "o", "--workers", "2", "--step-events", "2")
    assert out.returncode == 0, out.stderr
    assert "distributed" not in out.stderr, out.stderr
    assert "dask LocalCluster of 2 workers" in out.stdout


# ----------------------------------------------------------------------------- 11: no field
def test_11_onnx_engine_warns_of_a_file_with_no_field(tmp_path: Path) -> None:
    path = write_hits(tmp_path / "nofield.root", random_hit_columns(2, seed=9))
    out = hepgan("reco", path, "-o", tmp_path / "o")
    assert out.returncode == 0
    assert re.search(r"WARNING .*nofield\.root records no field and none was declared \(--b-field\): assumed to be "
                     r"the model's 2\.0 T", out.stderr)  # fmt: skip
    quiet = hepgan("reco", path, "-o", tmp_path / "p", "--b-field", "2")
    assert "records no field" not in quiet.stderr
    skipped = hepgan("reco", path, "-o", tmp_path / "o")  # nothing reconstructed, nothing to warn of
    assert "1 skipped" in skipped.stdout and "records no field" not in skipped.stderr


# ----------------------------------------------------------------------------- 12: calibrate
def test_12_calibrate_writes_to_o_and_refuses_to_overwrite_in_place(sim_20x50: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    model = tmp_path / "m.onnx"
    model.write_bytes(SHIPPED.read_bytes())
    line = error_line(hepgan("calibrate", model, sim_20x50))
    assert "give -o OUT.onnx" in line and "--in-place" in line
    assert model.read_bytes() == SHIPPED.read_bytes()
    both = error_line(hepgan("calibrate", model, sim_20x50, "-o", tmp_path / "c.onnx", "--in-place"))
    assert "not both" in both
    out = hepgan("calibrate", model, sim_20x50, "-o", tmp_path / "c.onnx")
    assert out.returncode == 0, out.stderr
    assert model.read_bytes() == SHIPPED.read_bytes()
    from hepgan.reco.engine import read_model_info

    assert read_model_info(tmp_path / "c.onnx").metadata["spread_calibration"]["events"] == 5
    assert "calibrated" in out.stdout and "-> " in out.stdout and "c.onnx" in out.stdout


# ----------------------------------------------------------------------------- 13: Ctrl-C
def test_13_ctrl_c_during_simulate_is_one_line_and_exit_130(tmp_path: Path) -> None:
    pytest.importorskip("acts")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = tmp_path / "s.root"
    args = ["simulate", "-o", str(out), "--events", "500", "--vertices", "20", "--particles", "50"]
    with subprocess.Popen([sys.executable, "-m", "hepgan.cli", *args], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as proc:  # fmt: skip
        tmp = tmp_path / f".s.root.{proc.pid}.tmp"
        deadline = time.monotonic() + 120
        while not tmp.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert tmp.exists(), proc.communicate()[1][-3000:]
        time.sleep(1.0)  # inside ACTS's event loop
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-3000:]
    # hepgan's own narration ("hepgan: simulating ...") aside, one line: no FATAL, stack or "Aborted!"
    lines = [line for line in stderr.splitlines() if line.strip() and not re.match(r"hepgan: (?!interrupted)", line)]
    assert lines == ["hepgan: interrupted (Ctrl-C); no partial output is left"], stderr[-3000:]
    assert stdout == ""
    assert not out.exists() and not tmp.exists()


# ----------------------------------------------------------------------------- 14: help
def test_14_help_is_complete() -> None:
    top = hepgan("--help").stdout
    assert "as they land" not in top
    commands = re.findall(r"^  (\w+)\s+(.*)$", top.split("Commands:")[1], flags=re.M)
    assert len(commands) >= 12
    for name, summary in commands:
        assert not summary.endswith("..."), f"{name}: {summary!r} is cut"
    for name, _ in commands:
        if name == "bench":  # its options are being extended in parallel (issue 17)
            continue
        text = hepgan(name, "--help").stdout
        entries = re.split(r"\n(?=  -)", text.split("Options:")[1].strip("\n"))
        bare = []
        for entry in entries:
            spec, _, desc = entry.strip().partition("  ")
            if not re.sub(r"\[[^\]]*\]", "", desc).strip():
                bare.append(spec)
        assert not bare, f"hepgan {name}: options without help: {bare}"
    assert "The embedded default" not in top


def test_14_help_states_defaults_rules_and_keys() -> None:
    from hepgan.acts.simulation import SimulationConfig
    from hepgan.cli import TRAIN_KEYS
    from hepgan.ml.train import TrainConfig
    from hepgan.triage import QUANTITIES

    assert tuple(f.name for f in dataclasses.fields(TrainConfig)) == TRAIN_KEYS
    train = " ".join(hepgan("train", "--help").stdout.split())
    assert all(k in train for k in TRAIN_KEYS)
    sim = " ".join(hepgan("simulate", "--help").stdout.split())
    d = SimulationConfig()
    for text in (f"[default: {d.events}]", f"[default: {d.vertices}]", f"[default: {d.particles}]", f"[default: {d.seed}]",
                 f"pT {d.pt_min:g}-{d.pt_max:g} GeV", f"|eta| < {d.eta_max:g}", f"{d.b_field:g} T"):  # fmt: skip
        assert text in sim, text
    select = " ".join(hepgan("triage", "--help").stdout.split())
    assert all(q in select for q in QUANTITIES)
    reco = " ".join(hepgan("reco", "--help").stdout.split())
    assert "Resumable" in reco and "--force" in reco and "--branch-map" in reco and "[default: onnx]" in reco
    assert "tree = \"Hits\"" in reco
    assert "Progress bar" in reco


# ----------------------------------------------------------------------------- 15: numbers
def test_15_numbers_for_people() -> None:
    from hepgan.cli import _num

    assert _num(12191.0) == "12,191" and _num(1.0) == "1" and _num(0.93456) == "0.935" and _num(1234567) == "1,234,567"
    assert _num(7.6) == "7.60" and _num(25000.4) == "25,000" and _num(float("nan")) == "n/a" and _num(0.0) == "0"
    assert "e+" not in _num(2.5e4) and "e-" not in _num(0.0123)


# ----------------------------------------------------------------------------- 16: wording
def test_16_plain_words(tmp_path: Path, hits2t: Path) -> None:
    csv = tmp_path / "hits.root"
    csv.write_text("hit_id,x,y,z\n1,2,3,4\n")
    line = error_line(hepgan("inspect", csv))
    assert "starts with 'hit_id,x,y,z'" in line and "hepgan import" in line and "Chunk" not in line
    empty = tmp_path / "empty.root"
    empty.write_bytes(b"")
    assert "the file is empty (0 bytes)" in error_line(hepgan("reco", empty, "-o", tmp_path / "o"))
    rule = error_line(hepgan("triage", hits2t, "-o", tmp_path / "t", "--select", "ntracks >"))
    assert "it ends too early" in rule and "column 0" not in rule and "ntracks >= 50" in rule


def test_16_an_unwritable_output_folder_is_bad_input(hits2t: Path, tmp_path: Path) -> None:
    if os.geteuid() == 0:
        target = Path("/proc/hepgan-test-out")  # root writes anywhere but there
    else:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        target = locked / "out"
    line = error_line(hepgan("reco", hits2t, "-o", target))
    assert "cannot write there" in line and "choose another output (-o)" in line and ".tmp" not in line
    assert not target.exists()


@pytest.mark.parametrize("command", ["simulate", "import", "calibrate", "triage", "demo", "dataset"])
def test_16_every_command_refuses_an_unwritable_output_before_working(command: str, hits2t: Path, tmp_path: Path) -> None:
    if os.geteuid() == 0:
        base = Path("/proc/hepgan-test")
    else:
        base = tmp_path / "locked"
        base.mkdir()
        base.chmod(0o500)
    args = {
        "simulate": ["simulate", "-o", base / "s.root", "--events", "1"],
        "import": ["import", "--format", "trackml", tmp_path, "-o", base / "i.root"],
        "calibrate": ["calibrate", SHIPPED, hits2t, "-o", base / "c.onnx"],
        "triage": ["triage", hits2t, "--select", "ntracks > 1", "-o", base / "t"],
        "demo": ["demo", "-o", base / "d"],
        "dataset": ["dataset", hits2t, "-o", base / "ds"],
    }[command]
    out = hepgan(*args)
    line = error_line(out)
    assert "cannot write there" in line and "choose another output (-o)" in line, line
    # refused before the work: nothing but the error line (no simulation, reconstruction or
    # progress lines came first)
    assert out.stderr.strip().splitlines() == [line], out.stderr[-3000:]


def test_16_os_errors_name_the_users_file() -> None:
    from hepgan.cli import _os_error_text

    text = _os_error_text(PermissionError(13, "Permission denied", "/data/out/.c.onnx.4242.tmp"))
    assert text == "/data/out/c.onnx: cannot write it (Permission denied); nothing was left under this name"


def test_16_b_field_out_of_range_names_the_option(hits2t: Path, tmp_path: Path) -> None:
    out = hepgan("reco", hits2t, "-o", tmp_path / "o", "--b-field", "-2")
    assert out.returncode == 2 and "'--b-field': -2.0 is not in the range x>0" in out.stderr
    assert "b_field must" not in out.stderr


# ----------------------------------------------------------------------------- 17: reproduce.sh
def test_17_reproduce_script_stays_in_the_repository_and_agrees_with_the_readme() -> None:
    script = (REPO / "training" / "reproduce.sh").read_text()
    assert "../shared" not in script and "shared/" not in script
    minutes = re.search(r"about (\d+) minutes on 2 cores", script)
    readme = re.search(r"reproduce\.sh` rebuilds the shipped model from nothing \(about (\d+) minutes", (REPO / "README.md").read_text())
    assert minutes and readme and minutes.group(1) == readme.group(1)
    assert "calibrate --in-place" in script and "write_sidecars" in script
