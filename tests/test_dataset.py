"""Training shards: readable, labels consistent with ACTS's tracks, statistics finite,
resumable; the truth label where the file has truth, and the same shards otherwise."""

from __future__ import annotations

import json
import logging
from dataclasses import replace

import awkward as ak
import numpy as np
import pytest

from hepgan.io.events import HITS, RootEventWriter, has_truth, read_events
from hepgan.io.schema import CLASSIC_TRACKS
from hepgan.ml.dataset import DatasetConfig, RunningStats, build_dataset
from hepgan.reco.features import FeatureConfig

CONFIG = DatasetConfig(features=FeatureConfig(layers=8, candidates=3), max_seeds_per_shard=6000)


def _load(out_dir):
    stats = json.loads((out_dir / "stats.json").read_text())
    return stats, [dict(np.load(out_dir / name)) for name in stats["shards"]]


def test_running_stats_merge_equals_numpy():
    rng = np.random.default_rng(3)
    data = rng.normal(5.0, 2.0, size=(1000, 4))
    total = RunningStats.empty(4)
    for part in np.array_split(data, 7):
        total = total.merge(RunningStats.of(part))
    np.testing.assert_allclose(total.mean, data.mean(0))
    np.testing.assert_allclose(total.std, data.std(0))


def test_shards_labels_stats_resume_and_truth(sim_20x50, tmp_path, caplog):
    out = tmp_path / "ds"
    doc = build_dataset([sim_20x50], out, config=CONFIG, progress=False)
    stats, shards = _load(out)
    assert doc["counts"] == stats["counts"]
    assert stats["counts"]["events"] == 5 and len(shards) >= 2
    assert stats["geometry"] and len(stats["layout"]["features"]["names"]) == CONFIG.features.n_features
    assert np.isfinite(stats["mean"]).all() and np.isfinite(stats["std"]).all() and min(stats["std"]) > 0
    ev = read_events(sim_20x50, trees=("hits", "tracks"))
    event_ids = ak.to_numpy(ev["tracks"]["event_id"]).tolist()
    n_seeds = n_pos = 0
    for sh in shards:
        n = len(sh["label"])
        n_seeds += n
        n_pos += int(sh["label"].sum())
        assert sh["features"].dtype == np.float32 and sh["features"].shape == (n, CONFIG.features.n_features)
        assert sh["target_hits"].dtype == np.int8 and sh["label"].dtype == np.int8
        assert sh["candidates"].shape == sh["target_hits"].shape == (n, 8, 3)
        neg = sh["label"] == 0
        assert (sh["target"][neg] == 0).all() and (sh["target_hits"][neg] == 0).all()
        assert (sh["track_index"][neg] == -1).all()
        assert (sh["candidates"][sh["target_hits"] == 1] >= 0).all()
        for e in np.unique(sh["event_id"]):
            tracks = ev["tracks"][event_ids.index(int(e))]
            per_track = ak.unflatten(tracks["track_hit_index"], tracks["track_nhits"])
            sel = np.flatnonzero((sh["event_id"] == e) & (sh["label"] == 1))
            assert len(sel) > 100
            for i in sel[::7]:
                t = int(sh["track_index"][i])
                hits = set(ak.to_list(per_track[t]))
                assert set(sh["seeds"][i].tolist()) <= hits  # a positive's 3 hits are in its track
                for c, lab in zip(sh["candidates"][i].ravel(), sh["target_hits"][i].ravel(), strict=True):
                    assert (c >= 0 and int(c) in hits) == bool(lab)
                ref = [float(tracks[f"track_{p}"][t]) for p in ("d0", "z0", "phi", "theta", "qop")]
                np.testing.assert_array_equal(sh["target"][i], np.float32(ref))
    assert (n_seeds, n_pos) == (stats["counts"]["seeds"], stats["counts"]["positives"])
    assert 0.5 < n_pos / n_seeds < 1.0

    # A re-run skips the finished shards (files untouched) and gives the same statistics.
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*.npz")}
    again = build_dataset([sim_20x50], out, config=CONFIG, progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*.npz")} == mtimes
    assert again["counts"] == doc["counts"] and again["mean"] == doc["mean"]
    assert sorted(p.name for p in out.glob(".*")) == []  # every temporary renamed or removed
    with pytest.raises(ValueError, match="other inputs or config"):
        build_dataset([sim_20x50], out, config=DatasetConfig(max_seeds_per_shard=10), progress=False)

    # The truth label: 1 exactly where the seed's three hits are one particle's.
    truth = read_events(sim_20x50, trees=("hits",), truth=True)["hits"]
    n_real = 0
    for sh in shards:
        assert sh["real"].dtype == np.int8
        for e in np.unique(sh["event_id"]):
            pid = ak.to_numpy(truth[event_ids.index(int(e))]["hit_particle_id"])[sh["seeds"][sh["event_id"] == e]]
            expected = (pid[:, 0] == pid[:, 1]) & (pid[:, 1] == pid[:, 2]) & (pid[:, 0] != 0)
            np.testing.assert_array_equal(sh["real"][sh["event_id"] == e], expected.astype(np.int8))
        n_real += int(sh["real"].sum())
        # ACTS's tracks are nearly all real seeds; the truth label is not the classic one
        assert sh["real"][sh["label"] == 1].mean() > 0.99
    c = stats["counts"]
    assert (c["truth_seeds"], c["real"], c["fake"]) == (n_seeds, n_real, n_seeds - n_real)
    assert 0 < c["fake"] < 0.05 * n_seeds

    # A file without truth (real data): the same shards, the truth label unknown (-1).
    plain = tmp_path / "no_truth.root"
    events = read_events(sim_20x50, trees=("hits", "tracks"))
    reco_hits = replace(HITS, branches=tuple(b for b in HITS.branches if not b.truth))
    with RootEventWriter(plain, [reco_hits, CLASSIC_TRACKS]) as w:
        for tree in ("hits", "tracks"):
            w.write_chunk(tree, {name: events[tree][name] for name in w.schemas[tree].names})
    assert has_truth(sim_20x50) and not has_truth(plain)
    with caplog.at_level(logging.WARNING, logger="hepgan.ml.dataset"):
        doc_plain = build_dataset([plain], tmp_path / "ds_plain", config=CONFIG, progress=False)
    assert "no truth branches" in caplog.text and str(plain) in caplog.text
    _, shards_plain = _load(tmp_path / "ds_plain")
    assert doc_plain["counts"]["truth_seeds"] == 0
    assert len(shards_plain) == len(shards)
    for a, b in zip(shards, shards_plain, strict=True):
        assert a.keys() == b.keys()
        assert (b["real"] == -1).all()
        for k in a.keys() - {"real"}:
            np.testing.assert_array_equal(a[k], b[k])
