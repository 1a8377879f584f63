"""Dask: a 2-worker LocalCluster writes the same tracks as one process."""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import pytest
import uproot

pytest.importorskip("onnx")
pytest.importorskip("dask.distributed")

from _fake_model import model_for_tests  # noqa: E402

from hepgan.errors import InputError  # noqa: E402
from hepgan.reco.driver import reconstruct_files  # noqa: E402


def _flat(path: Path) -> dict[str, bytes]:
    with uproot.open(path) as f:
        arrays = f["tracks"].arrays(library="ak")
    return {k: ak.to_numpy(ak.flatten(arrays[k]) if arrays[k].ndim > 1 else arrays[k]).tobytes() for k in arrays.fields}


def test_local_cluster_matches_single_process(small_sim: Path, sim_20x50: Path, tmp_path: Path) -> None:
    model = model_for_tests(tmp_path)
    inputs = [small_sim, sim_20x50]
    single = reconstruct_files(inputs, tmp_path / "single", model=model, step_events=2, progress=False)
    dask = reconstruct_files(inputs, tmp_path / "dask", model=model, step_events=2, workers=2, progress=False)
    assert dask["executor"] == "dask LocalCluster of 2 workers"
    assert dask["events"] == single["events"] == 8
    assert dask["tracks"] == single["tracks"]
    for name in ("small.root", "sample_20x50.root"):
        a, b = _flat(tmp_path / "single" / name), _flat(tmp_path / "dask" / name)
        assert a.keys() == b.keys()
        for k in a:
            assert a[k] == b[k], (name, k)


def test_workers_and_scheduler_exclusive(small_sim: Path, tmp_path: Path) -> None:
    model = model_for_tests(tmp_path)
    with pytest.raises(InputError, match="not both"):
        reconstruct_files([small_sim], tmp_path / "o", model=model, workers=2, scheduler="tcp://x:1", progress=False)
