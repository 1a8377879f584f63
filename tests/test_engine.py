"""The ONNX engine: model checks, one event's tracks, reproducible noise, no TensorFlow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
from _fake_model import SHIPPED, build_fake_model, model_for_tests

from hepgan.errors import InputError
from hepgan.io.events import read_events
from hepgan.io.schema import TRACKS
from hepgan.reco.ambiguity import AmbiguityConfig, resolve
from hepgan.reco.engine import Engine, antithetic_normal
from hepgan.reco.features import FeatureConfig
from hepgan.reco.model_file import read_model_info


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return model_for_tests(tmp_path_factory.mktemp("model"))


def _event(path: Path, i: int) -> tuple[list[np.ndarray], int]:
    hits = read_events(path)["hits"][i]
    cols = [ak.to_numpy(hits[k]) for k in ("hit_x", "hit_y", "hit_z", "hit_volume_id", "hit_layer_id")]
    return cols, int(hits["event_id"])


def test_reconstruct_event_tracks(model: Path, sim_20x50: Path) -> None:
    engine = Engine(model)
    cols, event_id = _event(sim_20x50, 0)
    tracks, ms = engine.reconstruct_event(*cols, event_id=event_id)
    assert set(ms) == {"seeding", "features", "network", "assignment", "ambiguity"}
    assert set(tracks) == {b.name for b in TRACKS.branches[1:]}
    for b in TRACKS.branches[1:]:
        assert tracks[b.name].dtype == b.dtype, b.name
    n = len(tracks["track_d0"])
    # 20 x 50 pions, ~1000 reconstructable: ACTS finds ~996; a seed-following surrogate
    # must land in the same range, not at 0 or at the 5k seeds.
    assert 700 < n < 1300
    assert tracks["track_nhits"].sum() == len(tracks["track_hit_index"])
    assert (tracks["track_nhits"] >= engine.assignment.min_hits).all()
    idx = tracks["track_hit_index"]
    assert idx.min() >= 0 and idx.max() < len(cols[0])
    # ambiguity: no two tracks share more than max_shared_hits hits
    starts = np.concatenate([[0], np.cumsum(tracks["track_nhits"])])
    owner = np.full(len(cols[0]), -1)
    for t in range(n):
        hits_t = idx[starts[t] : starts[t + 1]]
        assert len(np.unique(hits_t)) == len(hits_t)
        prev = owner[hits_t]
        if (prev >= 0).any():
            assert (prev >= 0).sum() <= engine.ambiguity.max_shared_hits
        owner[hits_t] = np.where(owner[hits_t] >= 0, owner[hits_t], t)
    assert np.all(np.abs(tracks["track_phi"]) <= np.pi)
    assert np.all((tracks["track_theta"] > 0) & (tracks["track_theta"] < np.pi))
    assert (tracks["track_err_d0"] > 0).all()
    # chi2 and ndf cover the network's assigned hits (2 per hit); the seed hits and the hits
    # the completion adds (hepgan.reco.completion) carry no chi2 term
    assert ((tracks["track_ndf"] % 2 == 0) & (tracks["track_ndf"] <= 2 * (tracks["track_nhits"] - 3))).all()


def test_features_of_the_preselected_seeds_are_build_features_rows(model: Path, sim_20x50: Path, monkeypatch) -> None:
    """The engine fits only the seeds the preselection keeps (hepgan.reco.features'
    two passes): what reaches the network is exactly those rows of the one-pass features."""
    import hepgan.reco.engine as engine_module
    from hepgan.reco.ambiguity import preselect_seeds
    from hepgan.reco.features import build_features
    from hepgan.reco.seeding import drop_duplicate_seeds, find_seeds

    seen = []
    fit_features = engine_module.fit_features

    def spy(road, rows=None):
        out = fit_features(road, rows)
        seen.append((rows, out.copy()))
        return out

    monkeypatch.setattr(engine_module, "fit_features", spy)
    engine = Engine(model)
    cols, event_id = _event(sim_20x50, 1)
    engine.reconstruct_event(*cols, event_id=event_id)
    layer = engine.geometry.layer_index(cols[3], cols[4])
    seeds = find_seeds(*cols, geometry=engine.geometry, config=engine.pass_seeding()[0], layer=layer)
    seeds = drop_duplicate_seeds(*cols[:2], seeds)
    full, cand = build_features(*cols[:3], layer, seeds, config=engine.feature_config, geometry=engine.geometry)
    kept = preselect_seeds(seeds, cand, full, n_hits=len(layer), n_candidates=engine.feature_config.candidates,
                           chi2_cut=engine.assignment.preselect_chi2)  # fmt: skip
    rows, feats = seen[0]  # the first pass's (the leftover pass fits its own seeds after it)
    np.testing.assert_array_equal(rows, np.flatnonzero(kept))
    assert 0 < len(rows) < len(seeds)
    assert feats.tobytes() == full[kept].tobytes()


def test_noise_is_seeded_by_event_id(model: Path, small_sim: Path) -> None:
    engine = Engine(model)
    cols, event_id = _event(small_sim, 1)
    a, _ = engine.reconstruct_event(*cols, event_id=event_id)
    b, _ = Engine(model).reconstruct_event(*cols, event_id=event_id)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    c, _ = engine.reconstruct_event(*cols, event_id=event_id + 1)
    assert not np.array_equal(a["track_d0"], c["track_d0"])  # the noise moved the parameters
    np.testing.assert_array_equal(a["track_hit_index"], c["track_hit_index"])
    # batching changes nothing but the last bit of a float (GEMM blocking differs by batch)
    d, _ = Engine(model, batch_size=7).reconstruct_event(*cols, event_id=event_id)
    for k in a:
        if a[k].dtype.kind == "f":
            np.testing.assert_allclose(a[k], d[k], rtol=1e-6, atol=1e-7)
        else:
            np.testing.assert_array_equal(a[k], d[k])


def test_empty_event(model: Path) -> None:
    engine = Engine(model)
    empty = np.zeros(0, np.float32)
    ids = np.zeros(0, np.int32)
    tracks, _ = engine.reconstruct_event(empty, empty, empty, ids, ids, event_id=3)
    assert all(len(v) == 0 for v in tracks.values())


def test_check_geometry_refuses_unknown_layers(model: Path) -> None:
    engine = Engine(model)
    engine.check_geometry(np.array([8, 8]), np.array([2, 4]), "ok.root")
    with pytest.raises(InputError, match=r"bad\.root.*\(99, 2\)"):
        engine.check_geometry(np.array([8, 99]), np.array([2, 2]), "bad.root")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"with_metadata": False}, "no 'hepgan' metadata"),
        ({"input_names": ("features", "noise")}, r"inputs \['features', 'noise'\], expected \['condition', 'noise'\]"),
        ({"condition_width": 10}, r"input 'condition' has shape \[n, 10\], expected \[n, 225\]"),
        ({"metadata": {"seeding_config": {"pt_min": 0.5, "warp_drive": 1}}}, "warp_drive.*unknown"),
        ({"metadata": {"n_slots": 3}}, "disagree with its feature_config"),
        ({"metadata": {"geometry_fingerprint": "0" * 16}}, "fingerprint"),
        ({"metadata": {"spread_scale": [1, 1, 0, 1, 1]}}, r"'spread_scale' is \[1, 1, 0, 1, 1\], expected 5 positive"),
        ({"metadata": {"spread_scale": [1, 1]}}, "spread_scale"),
        ({"metadata": {"spread_scale": [True, 1, 1, 1, 1]}}, "spread_scale"),
    ],
)
def test_bad_models_refused(tmp_path: Path, kwargs: dict, match: str) -> None:
    path = build_fake_model(tmp_path / "bad.onnx", **kwargs)
    with pytest.raises(InputError, match=match) as err:
        Engine(path)
    assert str(path) in str(err.value)


def test_not_onnx_refused(tmp_path: Path) -> None:
    text = tmp_path / "model.onnx"
    text.write_text("this is not a model\n" * 10)
    with pytest.raises(InputError, match=r"model\.onnx: not an ONNX model"):
        read_model_info(text)
    with pytest.raises(InputError, match="no such model file"):
        Engine(tmp_path / "missing.onnx")
    with pytest.raises(InputError, match="provider 'tpu' is not available"):
        Engine(build_fake_model(tmp_path / "ok.onnx"), providers=["tpu"])


def test_ambiguity_greedy() -> None:
    hits = np.array([0, 1, 2, 3, 0, 1, 2, 4, 5, 6, 7, 3, 5, 8, 9])
    nhits = np.array([4, 4, 3, 4])
    score = np.array([0.9, 0.95, 0.7, 0.7])
    keep = resolve(hits, nhits, score, n_hits=10, config=AmbiguityConfig(max_shared_hits=1, max_shared_fraction=1.0))
    # best score first (#1); #0 shares 3 hits with #1: dropped; at equal score #3 (4 hits)
    # goes before #2 (3 hits) and shares none; #2 shares hit 5 with #3: 1 <= 1, kept
    assert keep.tolist() == [1, 3, 2]
    keep = resolve(hits, nhits, score, n_hits=10, config=AmbiguityConfig(max_shared_hits=3, max_shared_fraction=0.2))
    assert keep.tolist() == [1, 3]  # #2: 1 shared hit > 0.2 x 3


@pytest.mark.skipif(not SHIPPED.is_file(), reason="the shipped model deploy/models/hepgan-generic.onnx is not exported yet")
def test_shipped_model_loads() -> None:
    info = read_model_info(SHIPPED)
    assert info.geometry.name == "acts-generic"
    Engine(SHIPPED)


def test_no_tensorflow_on_the_reco_path(model: Path, small_sim: Path, tmp_path: Path) -> None:
    code = f"""
import sys
from hepgan.reco.driver import reconstruct_files
import hepgan.triage, hepgan.distributed, hepgan.reco.engine
reconstruct_files([{str(small_sim)!r}], {str(tmp_path)!r}, model={str(model)!r}, progress=False)
bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf2onnx', 'torch', 'jax', 'acts'))
assert not bad, bad
print('ok')
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")


def test_antithetic_noise_pairs_and_odd_sample_count() -> None:
    rng = np.random.default_rng(1)
    noise = antithetic_normal(rng, 50, 16, 8)
    assert noise.shape == (50, 16, 8) and noise.dtype == np.float32
    assert np.array_equal(noise[:, 8:], -noise[:, :8])
    # the samples themselves are standard normal
    assert abs(noise.std() - 1) < 0.05
    odd = antithetic_normal(rng, 3, 5, 2)
    assert odd.shape == (3, 5, 2) and np.array_equal(odd[:, 2:4], -odd[:, :2])


def test_models_from_before_the_fit_block_still_load(tmp_path: Path) -> None:
    """Their metadata's feature_config has no `fit`: the engine builds their 174 features."""
    from dataclasses import replace

    old = replace(FeatureConfig(), fit=False)
    assert old.n_features == 174
    path = build_fake_model(tmp_path / "old.onnx", feature_config=old)
    import onnx

    proto = onnx.load(path)
    doc = json.loads(proto.metadata_props[0].value)
    del doc["feature_config"]["fit"], doc["feature_config"]["seed_agreement"], doc["feature_config"]["path_length"]
    proto.metadata_props[0].value = json.dumps(doc)
    onnx.save(proto, path)
    info = read_model_info(path)
    assert info.feature_config.fit is False and info.n_features == 174


def test_models_from_before_the_seed_agreements_still_load(tmp_path: Path) -> None:
    """A fit block but no `seed_agreement` or `path_length` key: the engine builds their 222
    features, with the scattering they were trained on."""
    from dataclasses import replace

    old = replace(FeatureConfig(), seed_agreement=False)
    assert old.n_features == 222 and FeatureConfig().n_features == 225
    path = build_fake_model(tmp_path / "old.onnx", feature_config=old)
    import onnx

    proto = onnx.load(path)
    doc = json.loads(proto.metadata_props[0].value)
    del doc["feature_config"]["seed_agreement"], doc["feature_config"]["path_length"]
    proto.metadata_props[0].value = json.dumps(doc)
    onnx.save(proto, path)
    info = read_model_info(path)
    assert info.feature_config.fit is True and info.feature_config.seed_agreement is False
    assert info.feature_config.path_length is False  # their scattering had no path length
    assert info.n_features == 222
