"""`hepgan calibrate`: the spread of the shipped model calibrated on events, stored in the model
file, applied by the engine; tracks and parameters untouched."""

from __future__ import annotations

import shutil
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
from _fake_model import SHIPPED

pytest.importorskip("onnx")


from hepgan.errors import InputError  # noqa: E402
from hepgan.io.events import read_events  # noqa: E402
from hepgan.ml.calibrate import calibrate_spread  # noqa: E402
from hepgan.perf.metrics import agreement  # noqa: E402
from hepgan.reco.engine import Engine  # noqa: E402
from hepgan.reco.model_file import read_model_info  # noqa: E402

pytestmark = pytest.mark.skipif(not SHIPPED.exists(), reason="no shipped model")


def _run(model: Path, path: Path) -> tuple[dict, dict]:
    data = read_events(path, trees=("hits", "tracks"))
    hits, acts = data["hits"], data["tracks"]
    engine = Engine(model, threads=1)
    per = []
    for i in range(len(hits)):
        cols = [ak.to_numpy(hits[k][i]) for k in ("hit_x", "hit_y", "hit_z", "hit_volume_id", "hit_layer_id")]
        per.append(engine.reconstruct_event(*cols, event_id=int(hits["event_id"][i]))[0])
    ours = {k: ak.Array([t[k] for t in per]) for k in per[0]}
    return ours, agreement({k: acts[k] for k in acts.fields}, ours)


def test_calibration_makes_pull_widths_one_and_changes_only_the_errors(tmp_path: Path, sim_20x50: Path) -> None:
    model = tmp_path / "model.onnx"
    shutil.copy(SHIPPED, model)
    before_scale = read_model_info(model).spread_scale
    ours_before, ag_before = _run(model, sim_20x50)
    result = calibrate_spread(model, [sim_20x50])
    info = read_model_info(model)
    for j, p in enumerate(("d0", "z0", "phi", "theta", "qop")):
        assert info.spread_scale[j] == pytest.approx(before_scale[j] * ag_before["pull_width"][p], rel=1e-9)
    assert info.metadata["spread_calibration"]["events"] == 5 == result["events"]
    ours_after, ag_after = _run(model, sim_20x50)
    for p, width in ag_after["pull_width"].items():
        assert width == pytest.approx(1.0, abs=2e-3), (p, width)
    for key in ours_before:
        a, b = ak.flatten(ours_before[key]), ak.flatten(ours_after[key])
        if key.startswith("track_spread_"):
            assert not np.array_equal(ak.to_numpy(a), ak.to_numpy(b))
        else:
            assert np.array_equal(ak.to_numpy(a), ak.to_numpy(b)), key


def test_error_model_fitted_against_truth_makes_pulls_one(tmp_path: Path, sim_20x50: Path) -> None:
    from hepgan.ml.error_model import calibrate_errors
    from hepgan.perf import metrics

    model = tmp_path / "model.onnx"
    shutil.copy(SHIPPED, model)
    spread_before = read_model_info(model).spread_scale
    summary = calibrate_errors(model, [sim_20x50])
    info = read_model_info(model)
    assert info.error_model is not None and info.spread_scale == spread_before
    assert info.metadata["error_calibration"]["events"] == 5 == summary["events"]
    ours, _ = _run(model, sim_20x50)
    data = read_events(sim_20x50, trees=("hits", "particles"), truth=True)
    match = metrics.match_tracks(data["hits"], data["particles"], ours)
    res = metrics.track_residuals(ours, data["particles"], match)
    for p, pull in res.pull.items():
        assert metrics.core_width(pull) == pytest.approx(1.0, abs=0.05), p
    cov = np.stack([ak.to_numpy(ak.flatten(ours[f"track_cov_{p}_{p}"])) for p in ("d0", "z0", "phi", "theta", "qop")])
    err = np.stack([ak.to_numpy(ak.flatten(ours[f"track_err_{p}"])) for p in ("d0", "z0", "phi", "theta", "qop")])
    np.testing.assert_allclose(np.sqrt(cov), err, rtol=1e-5)


def test_too_few_tracks_refused_and_model_untouched(tmp_path: Path, small_sim: Path) -> None:
    model = tmp_path / "model.onnx"
    shutil.copy(SHIPPED, model)
    data = model.read_bytes()
    with pytest.raises(InputError, match=r"small\.root: only \d+ classic tracks reproduced in 3 events; expected >= 1000"):
        calibrate_spread(model, [small_sim])
    assert model.read_bytes() == data


def test_a_calibrated_shipped_model_keeps_its_sidecar_and_card_in_step(tmp_path: Path) -> None:
    """A new calibration written into a shipped model (``hepgan calibrate --in-place``) reaches
    the files beside it that repeat its metadata: the export sidecar (a re-export reads it) and
    the card's calibration block; the card's other entries stay, and a model without them
    gets none."""
    import json

    from hepgan.reco.model_file import CARD_CALIBRATION_KEYS, write_model_metadata

    model = tmp_path / "hepgan-generic.onnx"
    shutil.copy(SHIPPED, model)
    for suffix in (".export.json", ".card.json"):
        shutil.copy(SHIPPED.with_suffix(suffix), model.with_suffix(suffix))
    card_before = json.loads(model.with_suffix(".card.json").read_text())
    scale = [1.5, 0.5, 1.25, 0.75, 2.0]
    write_model_metadata(model, {"spread_scale": scale})
    meta = dict(read_model_info(model).metadata)
    assert meta["spread_scale"] == scale
    assert json.loads(model.with_suffix(".export.json").read_text()) == meta
    card = json.loads(model.with_suffix(".card.json").read_text())
    assert card["calibration"] == {k: meta.get(k) for k in CARD_CALIBRATION_KEYS}
    assert card["calibration"]["spread_scale"] == scale != card_before["calibration"]["spread_scale"]
    assert {k: v for k, v in card.items() if k != "calibration"} == {k: v for k, v in card_before.items() if k != "calibration"}
    bare = tmp_path / "bare" / "m.onnx"
    bare.parent.mkdir()
    write_model_metadata(model, {"spread_scale": scale}, output=bare)
    assert sorted(p.name for p in bare.parent.iterdir()) == ["m.onnx"]
