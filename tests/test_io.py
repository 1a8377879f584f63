"""hepgan.io.events: round trips, chunking, branch maps, and every kind of bad input."""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot
from conftest import empty_tracks, random_hit_columns

from hepgan.errors import InputError
from hepgan.io.atomic import temporary_path
from hepgan.io.events import HITS, TRACKS, BranchMap, RootEventWriter, iterate_chunks, read_events


def test_round_trip_keeps_values_and_dtypes(tmp_path: Path) -> None:
    cols = random_hit_columns(5, seed=3)
    path = tmp_path / "a.root"
    with RootEventWriter(path, [HITS]) as w:
        w.write_chunk("hits", cols)
    back = read_events(path, trees=("hits",), truth=True)["hits"]
    assert back.fields == list(HITS.names)
    for b in HITS.branches:
        expected = cols[b.name]
        got = back[b.name]
        assert ak.to_numpy(ak.flatten(got, axis=None)).dtype == b.dtype
        np.testing.assert_allclose(
            ak.to_numpy(ak.flatten(got, axis=None)).astype(float),
            ak.to_numpy(ak.flatten(ak.Array(expected), axis=None)).astype(b.dtype).astype(float),
        )
    # One counter shared by the hit collection, as docs/file-format.md says.
    with uproot.open(path) as f:
        keys = set(f["hits"].keys())
    assert "nhit" in keys and "nhit_x" not in keys


def test_reco_reading_never_sees_truth(hits_file: Path) -> None:
    hits = read_events(hits_file)["hits"]
    assert not {"hit_particle_id", "hit_tx", "hit_ty", "hit_tz"} & set(hits.fields)


def test_chunks_cover_every_event_once_across_files(tmp_path: Path) -> None:
    paths = []
    for i in range(2):
        p = tmp_path / f"f{i}.root"
        with RootEventWriter(p, [HITS]) as w:
            w.write_chunk("hits", random_hit_columns(7, seed=i, first_event=100 * i))
        paths.append(p)
    chunks = list(iterate_chunks(paths, step_events=3))
    assert [len(c) for c in chunks] == [3, 3, 1, 3, 3, 1]
    ids = np.concatenate([c.event_id for c in chunks])
    assert ids.tolist() == list(range(7)) + list(range(100, 107))


def test_writer_failure_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "out.root"
    with pytest.raises(RuntimeError), RootEventWriter(path, [HITS]) as w:
        w.write_chunk("hits", random_hit_columns(2))
        msg = "boom"
        raise RuntimeError(msg)
    assert list(tmp_path.iterdir()) == []


def test_writer_output_appears_only_when_complete(tmp_path: Path) -> None:
    path = tmp_path / "out.root"
    with RootEventWriter(path, [HITS]) as w:
        w.write_chunk("hits", random_hit_columns(2))
        assert not path.exists()
        assert temporary_path(path).exists()
    assert path.exists() and not temporary_path(path).exists()


def test_writer_rejects_missing_branch(tmp_path: Path) -> None:
    cols = random_hit_columns(2)
    del cols["hit_z"]
    with pytest.raises(ValueError, match="missing branches \\['hit_z'\\]"), RootEventWriter(tmp_path / "o.root", [HITS]) as w:
        w.write_chunk("hits", cols)
    assert not (tmp_path / "o.root").exists()


def test_branch_map_reads_foreign_names(tmp_path: Path) -> None:
    cols = random_hit_columns(3, seed=5)
    theirs = {"evt": cols["event_id"], "pos": ak.zip({"x": cols["hit_x"], "y": cols["hit_y"], "z": cols["hit_z"]})}
    theirs["vol"] = cols["hit_volume_id"]
    theirs["lay"] = cols["hit_layer_id"]
    theirs["mod"] = cols["hit_module_id"]
    path = tmp_path / "theirs.root"
    with uproot.recreate(path) as f:
        f.mktree("Hits", {k: (v.type if isinstance(v, ak.Array) else v.dtype) for k, v in theirs.items()})
        f["Hits"].extend(theirs)
    mapping = tmp_path / "map.toml"
    mapping.write_text(
        '[hits]\ntree = "Hits"\nevent_id = "evt"\nhit_x = "pos_x"\nhit_y = "pos_y"\nhit_z = "pos_z"\n'
        'hit_volume_id = "vol"\nhit_layer_id = "lay"\nhit_module_id = "mod"\n'
    )
    hits = read_events(path, branch_map=BranchMap.from_toml(mapping))["hits"]
    np.testing.assert_allclose(ak.to_numpy(ak.flatten(hits.hit_z)), ak.to_numpy(ak.flatten(cols["hit_z"])), rtol=1e-6)


def test_branch_map_rejects_unknown_branch(tmp_path: Path) -> None:
    mapping = tmp_path / "map.toml"
    mapping.write_text('[hits]\nhit_xx = "x"\n')
    with pytest.raises(InputError, match="no branch 'hit_xx'.*closest: 'hit_x'"):
        BranchMap.from_toml(mapping)


# ----------------------------------------------------------------------------- bad input
def test_not_a_root_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.root"
    path.write_text("these are my notes\n" * 100)
    with pytest.raises(InputError, match=r"notes\.root: cannot open as a ROOT file"):
        read_events(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_events(tmp_path / "absent.root")


def test_truncated_file(hits_file: Path, tmp_path: Path) -> None:
    data = hits_file.read_bytes()
    cut = tmp_path / "cut.root"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"cut\.root"):
        read_events(cut)


def test_missing_tree_lists_what_is_there(hits_file: Path) -> None:
    with pytest.raises(InputError, match=r"missing tree 'particles'.*available: 'hits', 'tracks'"):
        read_events(hits_file, trees=("particles",), truth=True)


def test_missing_branch_lists_closest(tmp_path: Path) -> None:
    cols = random_hit_columns(2)
    path = tmp_path / "nox.root"
    data = {"event_id": cols["event_id"], "hit": ak.zip({"xx": cols["hit_x"], "y": cols["hit_y"], "z": cols["hit_z"]})}
    with uproot.recreate(path) as f:
        f.mktree("hits", {k: (v.type if isinstance(v, ak.Array) else v.dtype) for k, v in data.items()})
        f["hits"].extend(data)
    with pytest.raises(InputError, match=r"nox\.root: tree 'hits': missing branch 'hit_x'.*closest: 'hit_xx'"):
        read_events(path)


def _write_raw(path: Path, data: dict[str, object]) -> None:
    with uproot.recreate(path) as f:
        f.mktree("hits", {k: (v.type if isinstance(v, ak.Array) else np.asarray(v).dtype) for k, v in data.items()})
        f["hits"].extend(data)


def _raw_hits(n: int = 2, **replace: object) -> dict[str, object]:
    cols = random_hit_columns(n)
    fields = {k[4:]: cols[k] for k in HITS.reco_names() if k != "event_id"}
    fields.update(replace)
    return {"event_id": cols["event_id"], "hit": ak.zip(fields)}


def test_wrong_dtype_names_branch_and_expectation(tmp_path: Path) -> None:
    cols = random_hit_columns(2)
    path = tmp_path / "dtype.root"
    _write_raw(path, _raw_hits(volume_id=ak.values_astype(cols["hit_volume_id"], np.float32)))
    with pytest.raises(InputError, match=r"branch 'hit_volume_id' holds a list of float32, expected int32"):
        read_events(path)


def test_nan_coordinates_name_event(tmp_path: Path) -> None:
    cols = random_hit_columns(3)
    z = ak.to_list(cols["hit_z"])
    z[1][0] = float("nan")
    path = tmp_path / "nan.root"
    _write_raw(path, _raw_hits(3, z=ak.Array(z)))
    with pytest.raises(InputError, match=r"branch 'hit_z': 1 NaN or infinite values, first in event 1"):
        read_events(path)


def test_event_ids_differ_between_trees(tmp_path: Path) -> None:
    path = tmp_path / "ids.root"
    hits = random_hit_columns(3)
    with RootEventWriter(path, [HITS, TRACKS]) as w:
        w.write_chunk("hits", hits)
        w.write_chunk("tracks", empty_tracks(np.array([0, 1, 5])))
    with pytest.raises(InputError, match=r"event ids differ between trees 'hits' and 'tracks' at entry 2 \(2 vs 5\)"):
        read_events(path, trees=("hits", "tracks"))


def test_empty_tree_reads_as_no_events(tmp_path: Path) -> None:
    path = tmp_path / "empty.root"
    with RootEventWriter(path, [HITS]):
        pass
    assert len(read_events(path)["hits"]) == 0


def test_events_without_hits_are_valid(tmp_path: Path) -> None:
    cols = random_hit_columns(2)
    for b in HITS.branches[1:]:
        values = ak.to_list(cols[b.name])
        values[0] = []
        cols[b.name] = ak.values_astype(ak.Array(values), b.dtype)
    path = tmp_path / "some_empty.root"
    with RootEventWriter(path, [HITS]) as w:
        w.write_chunk("hits", cols)
    assert ak.num(read_events(path)["hits"].hit_x, axis=1).tolist()[0] == 0


def test_file_metadata_round_trip(tmp_path: Path) -> None:
    from hepgan.io.events import read_file_metadata

    path = tmp_path / "m.root"
    with RootEventWriter(path, [HITS], metadata={"b_field_t": 1.5}) as w:
        w.write_chunk("hits", random_hit_columns(2))
    assert read_file_metadata(path) == {"b_field_t": 1.5}
    plain = tmp_path / "plain.root"
    with RootEventWriter(plain, [HITS]) as w:
        w.write_chunk("hits", random_hit_columns(2))
    assert read_file_metadata(plain) == {}
