"""Shared fixtures: tiny hand-made event files and small real ACTS samples (fixed seeds)."""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np
import pytest

from hepgan.io.events import HITS, TRACKS, RootEventWriter
from hepgan.reco.geometry import GENERIC_DETECTOR


def random_hit_columns(n_events: int, *, seed: int = 0, first_event: int = 0) -> dict[str, object]:
    """Hits on the generic detector's barrel layers at random phi and z: valid, not physical."""
    rng = np.random.default_rng(seed)
    barrels = [layer for layer in GENERIC_DETECTOR.layers if layer.is_barrel]
    cols: dict[str, list[np.ndarray]] = {b.name: [] for b in HITS.branches[1:]}
    for _ in range(n_events):
        n = int(rng.integers(5, 40))
        which = rng.integers(0, len(barrels), n)
        r = np.array([barrels[i].position for i in which])
        phi = rng.uniform(-np.pi, np.pi, n)
        z = rng.uniform(-400, 400, n)
        values = {
            "hit_x": r * np.cos(phi), "hit_y": r * np.sin(phi), "hit_z": z,
            "hit_volume_id": np.array([barrels[i].volume_id for i in which]),
            "hit_layer_id": np.array([barrels[i].layer_id for i in which]),
            "hit_module_id": rng.integers(1, 100, n), "hit_particle_id": rng.integers(0, 5, n),
            "hit_tx": r * np.cos(phi), "hit_ty": r * np.sin(phi), "hit_tz": z,
        }  # fmt: skip
        for k, v in values.items():
            cols[k].append(v)
    out: dict[str, object] = {k: ak.Array(v) for k, v in cols.items()}
    out["event_id"] = np.arange(first_event, first_event + n_events, dtype=np.int64)
    return out


def empty_tracks(event_id: np.ndarray) -> dict[str, object]:
    cols: dict[str, object] = {"event_id": event_id}
    for b in TRACKS.branches[1:]:
        cols[b.name] = ak.Array([np.zeros(0, dtype=b.dtype) for _ in event_id])
    return cols


@pytest.fixture
def hits_file(tmp_path: Path) -> Path:
    path = tmp_path / "hits.root"
    with RootEventWriter(path, [HITS, TRACKS]) as w:
        hits = random_hit_columns(7, seed=1)
        w.write_chunk("hits", hits)
        w.write_chunk("tracks", empty_tracks(hits["event_id"]))  # type: ignore[arg-type]
    return path


@pytest.fixture(scope="session")
def small_sim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 events of 2 vertices x 20 pions from ACTS (seed 7): hits, particles, tracks, timing."""
    from hepgan.acts.simulation import SimulationConfig, simulate

    path = tmp_path_factory.mktemp("sim") / "small.root"
    simulate(path, SimulationConfig(events=3, vertices=2, particles=20, seed=7), progress=False)
    return path


@pytest.fixture(scope="session")
def sim_20x50(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5 events of 20 vertices x 50 pions from ACTS (seed 42): the reference 20 x 50 sample (docs/benchmark-protocol.md)."""
    from hepgan.acts.simulation import SimulationConfig, simulate

    path = tmp_path_factory.mktemp("sim") / "sample_20x50.root"
    simulate(path, SimulationConfig(events=5, vertices=20, particles=50, seed=42), progress=False)
    return path





@pytest.fixture(scope="session")
def dataset_pair(tmp_path_factory: pytest.TempPathFactory, sim_20x50: Path, small_sim: Path) -> tuple[Path, Path]:
    """(training, validation) dataset folders: our seeds on the 20 x 50 sample and on the
    small 2 x 20 sample, matched to ACTS's tracks."""
    from hepgan.ml.dataset import DatasetConfig, build_dataset

    root = tmp_path_factory.mktemp("datasets")
    build_dataset([sim_20x50], root / "train", config=DatasetConfig(), progress=False)
    build_dataset([small_sim], root / "val", config=DatasetConfig(), progress=False)
    return root / "train", root / "val"


@pytest.fixture(scope="session")
def ttbar_pu50_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 ttbar events with 50 pile-up collisions each, Pythia 8 through ACTS (seed 7): the shipped
    model's kind of data, never used in training or tuning (docs/seeds.md)."""
    from hepgan.acts.simulation import SimulationConfig, simulate

    path = tmp_path_factory.mktemp("ttbar") / "ttbar_pu50.root"
    simulate(path, SimulationConfig(events=3, process="ttbar", pileup=50, seed=7), progress=False)
    return path


@pytest.fixture(scope="session")
def ttbar_pu0_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 ttbar events without pile-up (seed 42): about 300 decay products of pT > 1 GeV
    (b, c, tau, V0) among 1500 particles, for the displaced efficiency (docs/seeds.md)."""
    from hepgan.acts.simulation import SimulationConfig, simulate

    path = tmp_path_factory.mktemp("ttbar") / "ttbar_pu0.root"
    simulate(path, SimulationConfig(events=30, process="ttbar", pileup=0, seed=42), progress=False)
    return path
