"""hepgan import: TrackML CSV and ACTS CSV events to the hepgan ROOT format."""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np
import pytest

from hepgan.errors import InputError
from hepgan.io.events import read_events
from hepgan.io.importers import decode_geometry_id, import_events


def _write_csv(path: Path, columns: dict[str, np.ndarray], fmt: dict[str, str]) -> None:
    names = list(columns)
    with path.open("w") as fh:
        fh.write(",".join(names) + "\n")
        for row in zip(*(columns[n] for n in names), strict=True):
            fh.write(",".join(fmt.get(n, "%.9g") % v for n, v in zip(names, row, strict=True)) + "\n")


def _as_trackml(event: dict[str, ak.Array], folder: Path, event_id: int) -> None:
    """Write one simulated event the way the TrackML challenge files are laid out (hit ids
    from 1, truth and particles in separate files, plus the challenge's extra columns)."""
    hits, parts = event["hits"], event["particles"]
    n = len(hits.hit_x)
    hit_id = np.arange(1, n + 1)
    stem = folder / f"event{event_id:09d}"
    ints = {k: "%d" for k in ("hit_id", "volume_id", "layer_id", "module_id", "particle_id", "q", "nhits")}
    _write_csv(
        Path(f"{stem}-hits.csv"),
        {"hit_id": hit_id, "x": np.asarray(hits.hit_x), "y": np.asarray(hits.hit_y), "z": np.asarray(hits.hit_z),
         "volume_id": np.asarray(hits.hit_volume_id), "layer_id": np.asarray(hits.hit_layer_id),
         "module_id": np.asarray(hits.hit_module_id)},
        ints,
    )  # fmt: skip
    _write_csv(
        Path(f"{stem}-truth.csv"),
        {"hit_id": hit_id[::-1], "particle_id": np.asarray(hits.hit_particle_id)[::-1],
         "tx": np.asarray(hits.hit_tx)[::-1], "ty": np.asarray(hits.hit_ty)[::-1], "tz": np.asarray(hits.hit_tz)[::-1],
         "tpx": np.zeros(n), "tpy": np.zeros(n), "tpz": np.zeros(n), "weight": np.full(n, 1.0 / n)},
        ints,
    )  # fmt: skip
    _write_csv(
        Path(f"{stem}-particles.csv"),
        {"particle_id": np.asarray(parts.particle_id), "vx": np.asarray(parts.particle_vx),
         "vy": np.asarray(parts.particle_vy), "vz": np.asarray(parts.particle_vz),
         "px": np.asarray(parts.particle_px), "py": np.asarray(parts.particle_py), "pz": np.asarray(parts.particle_pz),
         "q": np.asarray(parts.particle_q), "nhits": np.asarray(parts.particle_nhits)},
        ints,
    )  # fmt: skip


def test_trackml_round_trip_gives_same_hits_truth_particles(small_sim: Path, tmp_path: Path) -> None:
    original = read_events(small_sim, trees=("hits", "particles"), truth=True)
    src = tmp_path / "trackml"
    src.mkdir()
    ids = ak.to_numpy(original["hits"].event_id)
    for i, event_id in enumerate(ids):
        _as_trackml({"hits": original["hits"][i], "particles": original["particles"][i]}, src, int(event_id))
    out = tmp_path / "imported.root"
    assert import_events("trackml", src, out) == len(ids)
    back = read_events(out, trees=("hits", "particles"), truth=True)
    assert ak.to_numpy(back["hits"].event_id).tolist() == ids.tolist()
    for name in ("hit_x", "hit_y", "hit_z", "hit_tx", "hit_ty", "hit_tz"):
        assert ak.all(back["hits"][name] == original["hits"][name]), name
    for name in ("hit_volume_id", "hit_layer_id", "hit_module_id", "hit_particle_id"):
        assert ak.all(back["hits"][name] == original["hits"][name]), name
    for name in ("particle_id", "particle_q", "particle_px", "particle_vz", "particle_nhits"):
        assert ak.all(back["particles"][name] == original["particles"][name]), name
    # Primary from the vertex radius agrees with ACTS's generation flag on this sample.
    assert ak.all(back["particles"].particle_primary == original["particles"].particle_primary)


def test_trackml_missing_column_is_named(tmp_path: Path) -> None:
    (tmp_path / "event000000001-hits.csv").write_text("hit_id,x,y,volume_id,layer_id,module_id\n1,1,2,8,2,1\n")
    out = tmp_path / "o.root"
    with pytest.raises(InputError, match=r"event000000001-hits\.csv: missing column\(s\) \['z'\]"):
        import_events("trackml", tmp_path, out)
    assert not out.exists()


def test_trackml_missing_particles_file_is_named(tmp_path: Path) -> None:
    """Truth without its particles cannot be imported (hits alone can: tests/test_cli_ux.py)."""
    (tmp_path / "event000000001-hits.csv").write_text("hit_id,x,y,z,volume_id,layer_id,module_id\n1,1,2,3,8,2,1\n")
    (tmp_path / "event000000001-truth.csv").write_text("hit_id,particle_id,tx,ty,tz\n1,0,1,2,3\n")
    with pytest.raises(InputError, match=r"event000000001-particles\.csv: missing"):
        import_events("trackml", tmp_path, tmp_path / "o.root")
    assert not (tmp_path / "o.root").exists()


def test_trackml_nan_is_named(tmp_path: Path) -> None:
    (tmp_path / "event000000001-hits.csv").write_text("hit_id,x,y,z,volume_id,layer_id,module_id\n1,1,nan,3,8,2,1\n")
    with pytest.raises(InputError, match=r"column 'y' has a NaN or infinite value on line 2"):
        import_events("trackml", tmp_path, tmp_path / "o.root")


def test_a_csv_header_without_rows_is_an_event_without_hits(tmp_path: Path) -> None:
    """Found by the fuzz test: numpy's loadtxt warns on a table without rows (an error under the
    test settings); an event file with its header and no hits reads as empty columns."""
    from hepgan.io.importers import read_csv_columns

    path = tmp_path / "event000000001-hits.csv"
    path.write_text("hit_id,x,y,z,volume_id,layer_id,module_id\n")
    out = read_csv_columns(path, ("hit_id", "x", "layer_id"), (np.int64, np.float32, np.int32))
    assert {k: (v.shape, v.dtype) for k, v in out.items()} == {
        "hit_id": ((0,), np.dtype(np.int64)), "x": ((0,), np.dtype(np.float32)), "layer_id": ((0,), np.dtype(np.int32))}


def test_empty_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no event<N>-hits\.csv \(or \.csv\.gz\) files"):
        import_events("trackml", tmp_path, tmp_path / "o.root")


def test_geometry_id_decoding_matches_acts() -> None:
    acts = pytest.importorskip("acts")
    values = [0x0800002000000A00, 0x1100004000001F00, 0x0700000E00000100]
    vol, lay, sens = decode_geometry_id(np.array(values, dtype=np.uint64))
    for i, v in enumerate(values):
        g = acts.GeometryIdentifier(v)
        assert (vol[i], lay[i], sens[i]) == (g.volume, g.layer, g.sensitive)


def test_acts_csv_import_matches_acts_truth(tmp_path: Path) -> None:
    """ACTS's own CSV writers on a real ACTS run; the import gives measured positions close to
    the true ones, on the surfaces ACTS names, with every hit's particle in the particle list."""
    acts_examples = pytest.importorskip("acts.examples")
    from hepgan.acts.chain import (
        KEY_MEAS_SIMHITS,
        KEY_MEASUREMENTS,
        KEY_PARTICLES,
        KEY_SIMHITS,
        ChainConfig,
        build_chain,
    )

    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    chain = build_chain(ChainConfig(seed=3, vertices=1, particles=20), events=2, workdir=tmp_path)
    s = chain.sequencer
    level = pytest.importorskip("acts").logging.WARNING
    s.addWriter(
        acts_examples.CsvMeasurementWriter(
            level=level, inputMeasurements=KEY_MEASUREMENTS, inputClusters="",
            inputMeasurementSimHitsMap=KEY_MEAS_SIMHITS, outputDir=str(csv_dir),
        )
    )  # fmt: skip
    s.addWriter(acts_examples.CsvSimHitWriter(level=level, inputSimHits=KEY_SIMHITS, outputDir=str(csv_dir), outputStem="hits"))
    s.addWriter(
        acts_examples.CsvParticleWriter(level=level, inputParticles=KEY_PARTICLES, outputDir=str(csv_dir), outputStem="particles")
    )
    s.addWriter(
        acts_examples.CsvTrackingGeometryWriter(
            level=level, trackingGeometry=chain.tracking_geometry, outputDir=str(csv_dir), writePerEvent=False
        )
    )
    chain.run()
    out = tmp_path / "acts.root"
    assert import_events("acts-csv", csv_dir, out) == 2
    data = read_events(out, trees=("hits", "particles"), truth=True)
    hits = data["hits"]
    assert ak.all(ak.num(hits.hit_x, axis=1) > 100)
    dx = ak.to_numpy(ak.flatten(hits.hit_x - hits.hit_tx))
    dy = ak.to_numpy(ak.flatten(hits.hit_y - hits.hit_ty))
    dz = ak.to_numpy(ak.flatten(hits.hit_z - hits.hit_tz))
    # Smearing resolutions of the generic detector: tens of um in pixels; strips measure
    # their long direction coarsely (`hepgan simulate` gives 99% within 6.4 mm there).
    distance = np.sqrt(dx**2 + dy**2 + dz**2)
    pixel = ak.to_numpy(ak.flatten(hits.hit_volume_id)) < 10
    assert np.percentile(distance[pixel], 99) < 0.1
    assert np.percentile(distance[~pixel], 99) < 10.0
    assert np.median(distance[~pixel]) < 1.0
    from hepgan.reco.geometry import GENERIC_DETECTOR

    GENERIC_DETECTOR.check_hits(ak.to_numpy(ak.flatten(hits.hit_volume_id)), ak.to_numpy(ak.flatten(hits.hit_layer_id)))
    for i in range(2):
        pids = set(ak.to_numpy(hits.hit_particle_id[i]).tolist()) - {0}
        assert pids <= set(ak.to_numpy(data["particles"].particle_id[i]).tolist())
    assert ak.sum(data["particles"].particle_primary) >= 40
