"""`hepgan reco` as a function: layout, resumability, killed runs, truth never read."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from hepgan.io.schema import SPREAD_BRANCHES

pytest.importorskip("onnx")

from _fake_model import model_for_tests  # noqa: E402

from hepgan.errors import InputError  # noqa: E402
from hepgan.io.events import RootEventWriter, read_events  # noqa: E402
from hepgan.io.schema import HITS, TreeSchema  # noqa: E402
from hepgan.reco.driver import reconstruct_files  # noqa: E402


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return model_for_tests(tmp_path_factory.mktemp("model"))


def _tracks(path: Path) -> dict[str, np.ndarray]:
    with uproot.open(path) as f:
        arrays = f["tracks"].arrays(library="ak")
    return {k: ak.to_numpy(ak.flatten(arrays[k]) if arrays[k].ndim > 1 else arrays[k]) for k in arrays.fields}


def _assert_same(a: Path, b: Path) -> None:
    ta, tb = _tracks(a), _tracks(b)
    assert ta.keys() == tb.keys()
    for k in ta:
        assert ta[k].dtype == tb[k].dtype, k
        assert ta[k].tobytes() == tb[k].tobytes(), k


def test_layout_equals_acts_tracks(model: Path, small_sim: Path, tmp_path: Path) -> None:
    summary = reconstruct_files([small_sim], tmp_path, model=model, progress=False, step_events=2)
    out = tmp_path / "small.root"
    assert summary["files"][0]["status"] == "done" and summary["events"] == 3
    assert set(summary["ms_per_event"]) == {
        "read", "seeding", "features", "network", "assignment", "ambiguity", "write", "total"
    }  # fmt: skip
    with uproot.open(out) as got, uproot.open(small_sim) as ref:
        assert got.classnames(cycle=False) == {"hepgan_metadata": "TObjString", "tracks": "TTree"}
        g, r = got["tracks"], ref["tracks"]
        # ACTS's layout, plus the surrogate's own sampled spread (track_spread_*)
        ours = [(k, g[k].typename) for k in g.keys() if k not in SPREAD_BRANCHES]
        assert ours == [(k, r[k].typename) for k in r.keys()]
        assert set(SPREAD_BRANCHES) <= set(g.keys())
        assert g.num_entries == r.num_entries
        np.testing.assert_array_equal(g["event_id"].array(library="np"), r["event_id"].array(library="np"))
    # and it reads back through hepgan's validated reader, hit indices inside the events
    data = read_events(out, trees=("tracks",))["tracks"]
    hits = read_events(small_sim)["hits"]
    assert ak.all(ak.max(data.track_hit_index, axis=1, mask_identity=False) < ak.num(hits.hit_x, axis=1))
    assert summary["tracks"] == int(ak.sum(ak.num(data.track_d0, axis=1)))
    assert summary["tracks"] > 20  # 3 events x 40 pions


def test_resume_skips_and_redoes(model: Path, small_sim: Path, tmp_path: Path) -> None:
    first = reconstruct_files([small_sim], tmp_path / "a", model=model, progress=False)
    out = tmp_path / "a" / "small.root"
    mtime = out.stat().st_mtime_ns
    second = reconstruct_files([small_sim], tmp_path / "a", model=model, progress=False)
    assert second["files"][0]["status"] == "skipped" and second["events"] == 0
    assert out.stat().st_mtime_ns == mtime
    copy = tmp_path / "copy.root"
    copy.write_bytes(out.read_bytes())
    out.unlink()
    third = reconstruct_files([small_sim], tmp_path / "a", model=model, progress=False)
    assert third["files"][0]["status"] == "done" and third["tracks"] == first["tracks"]
    _assert_same(copy, out)


def test_chunking_does_not_change_tracks(model: Path, small_sim: Path, tmp_path: Path) -> None:
    reconstruct_files([small_sim], tmp_path / "one", model=model, progress=False, step_events=1)
    reconstruct_files([small_sim], tmp_path / "all", model=model, progress=False, step_events=100)
    _assert_same(tmp_path / "one" / "small.root", tmp_path / "all" / "small.root")


def test_threads_do_not_change_the_output(model: Path, sim_20x50: Path, tmp_path: Path) -> None:
    """--threads N reconstructs N events at once (hepgan.reco.parallel): same tracks, same order;
    step 2 leaves a chunk of one event, fewer than the threads."""
    one = reconstruct_files([sim_20x50], tmp_path / "t1", model=model, progress=False, step_events=2, threads=1)
    for n in (2, 3):
        many = reconstruct_files([sim_20x50], tmp_path / f"t{n}", model=model, progress=False, step_events=2, threads=n)
        assert (many["events"], many["tracks"], many["threads"]) == (one["events"], one["tracks"], n)
        _assert_same(tmp_path / "t1" / "sample_20x50.root", tmp_path / f"t{n}" / "sample_20x50.root")
        with uproot.open(tmp_path / f"t{n}" / "sample_20x50.root") as f:
            assert f["tracks"]["event_id"].array(library="np").tolist() == list(range(5))
    assert one["tracks"] > 0 and 0 < one["engine_wall_ms_per_event"] <= 1.05 * one["ms_per_event"]["total"] + 1


def test_truth_is_never_read(model: Path, small_sim: Path, tmp_path: Path) -> None:
    hits = read_events(small_sim)["hits"]
    stripped = tmp_path / "in" / "small.root"
    stripped.parent.mkdir()
    reco_only = TreeSchema("hits", tuple(b for b in HITS.branches if not b.truth))
    with RootEventWriter(stripped, [reco_only]) as w:
        w.write_chunk("hits", {name: hits[name] for name in reco_only.names})
    with uproot.open(stripped) as f:
        assert "hit_particle_id" not in f["hits"] and "particles" not in f
    reconstruct_files([small_sim], tmp_path / "full", model=model, progress=False)
    reconstruct_files([stripped], tmp_path / "stripped", model=model, progress=False)
    _assert_same(tmp_path / "full" / "small.root", tmp_path / "stripped" / "small.root")


def test_killed_run_leaves_no_output_and_rerun_completes(model: Path, sim_20x50: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    final = out_dir / "sample_20x50.root"
    code = (
        "from hepgan.reco.driver import reconstruct_files\n"
        f"reconstruct_files([{str(sim_20x50)!r}], {str(out_dir)!r}, model={str(model)!r}, step_events=1, progress=False)\n"
    )
    with subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as proc:
        tmp = out_dir / f".sample_20x50.root.{proc.pid}.tmp"
        deadline = time.monotonic() + 60
        while not tmp.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        if not tmp.exists():
            pytest.fail(f"no temporary output appeared: {proc.communicate()[1].decode()[-2000:]}")
        time.sleep(0.1)  # into the events, the output half written
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert not final.exists()
    assert tmp.exists()  # what a killed process leaves behind
    summary = reconstruct_files([sim_20x50], out_dir, model=model, progress=False)
    assert summary["files"][0]["status"] == "done" and summary["events"] == 5
    assert final.exists() and not tmp.exists()
    assert [p.name for p in out_dir.iterdir()] == ["sample_20x50.root"]


def test_bad_usage(model: Path, small_sim: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="engine 'cuda' is not available"):
        reconstruct_files([small_sim], tmp_path, model=model, engine="cuda", progress=False)
    with pytest.raises(InputError, match="no such file"):
        reconstruct_files([tmp_path / "nope.root"], tmp_path, model=model, progress=False)
    other = tmp_path / "x" / "small.root"
    other.parent.mkdir()
    other.write_bytes(small_sim.read_bytes())
    with pytest.raises(InputError, match="would both write"):
        reconstruct_files([small_sim, other], tmp_path / "o", model=model, progress=False)
    assert not (tmp_path / "o" / "small.root").exists()


def test_unknown_layers_refused(model: Path, tmp_path: Path) -> None:
    from conftest import random_hit_columns

    cols = random_hit_columns(2, seed=3)
    cols["hit_volume_id"] = cols["hit_volume_id"] * 0 + 99  # type: ignore[operator]
    path = tmp_path / "alien.root"
    with RootEventWriter(path, [HITS]) as w:
        w.write_chunk("hits", cols)
    with pytest.raises(InputError, match=r"alien\.root.*not in geometry"):
        reconstruct_files([path], tmp_path / "out", model=model, progress=False)
    assert not (tmp_path / "out" / "alien.root").exists()


def test_a_file_of_another_field_is_refused(tmp_path: Path, small_sim: Path) -> None:
    """`hepgan simulate` records its field; reco refuses a file made in another one (the
    generator's momenta scale with the field it was trained at), before writing anything."""
    from hepgan.errors import InputError
    from hepgan.io.events import HITS, RootEventWriter, read_events, read_file_metadata
    from hepgan.reco.driver import reconstruct_files

    assert read_file_metadata(small_sim)["b_field_t"] == 2.0
    hits = read_events(small_sim, trees=("hits",), truth=True)["hits"]
    other = tmp_path / "other_field.root"
    with RootEventWriter(other, [HITS], metadata={"b_field_t": 1.5}) as w:
        w.write_chunk("hits", {b: hits[b] for b in HITS.names})
    out = tmp_path / "out"
    with pytest.raises(InputError, match=r"other_field\.root: events made in a 1\.5 T field .* trained at 2\.0 T"):
        reconstruct_files([other], out, progress=False)
    assert not out.exists()
