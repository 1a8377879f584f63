"""Reliability through the real command line: bad input, killed runs, lost workers, full disks,
and safety rules (no pickle, safe Keras loading, checked ONNX files, config paths).

Every refusal is checked the way a user running over thousands of files meets it: exit code 2,
exactly one line on stderr starting with ``hepgan: error:`` that names the file, the object
(tree, branch, column, key) and what was expected, no traceback (unless ``--debug``), and no
output left behind (nothing under the final name, no temporary files in the output folder).
"""

from __future__ import annotations

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

pytest.importorskip("onnx")

from _fake_model import build_fake_model, model_for_tests  # noqa: E402
from conftest import empty_tracks, random_hit_columns  # noqa: E402

from hepgan.io.events import HITS, METADATA_KEY, TRACKS, RootEventWriter, read_events  # noqa: E402
from hepgan.reco.geometry import GENERIC_DETECTOR, Geometry  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------- helpers
def hepgan(*args: str | Path, cwd: Path | None = None, env: dict | None = None, timeout: int = 600, **kw):
    """Run the real command line in a fresh interpreter."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "hepgan.cli", *map(str, args)],
        capture_output=True, text=True, cwd=cwd, env=full_env, timeout=timeout, check=False, **kw,
    )  # fmt: skip


# TensorFlow's C++ start-up lines, printed on import whatever TF_CPP_MIN_LOG_LEVEL says; only
# tolerated where a check needs Keras (loading a .keras file).
_TF_NOISE = re.compile(r"^(WARNING: All log messages before absl::InitializeLog|[IWE]\d{4} [\d:.]+ +\d+ \w+\.cc:\d+\])")


def assert_refused(out: subprocess.CompletedProcess, *needles: str, code: int = 2, tf_noise: bool = False) -> str:
    """Exit `code`, exactly one stderr line `hepgan: error: ...` holding every needle (regex)."""
    # hepgan's narration of a slow step ("hepgan: importing TensorFlow...") is not an error line
    lines = [line for line in out.stderr.splitlines() if line.strip() and not re.match(r"hepgan: (?!error: )", line)]
    if tf_noise:
        lines = [line for line in lines if not _TF_NOISE.match(line)]
    assert out.returncode == code, f"exit {out.returncode}, stderr:\n{out.stderr[-3000:]}"
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{out.stderr[-3000:]}"
    line = lines[0]
    assert line.startswith("hepgan: error: "), line
    for needle in needles:
        assert re.search(needle, line), f"{needle!r} not in {line!r}"
    return line


def leftovers(folder: Path) -> list[str]:
    """Every file under `folder` (hidden temporaries included), relative names."""
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def write_hits(path: Path, cols: dict, *, trees: tuple = (HITS,), tracks: dict | None = None) -> Path:
    # recorded at the model's field: a file without one is taken with a warning (a second line)
    with RootEventWriter(path, list(trees), metadata={"b_field_t": 2.0}) as w:
        w.write_chunk("hits", cols)
        if tracks is not None:
            w.write_chunk("tracks", tracks)
    return path


def write_raw_hits(path: Path, *, tree: str = "hits", n: int = 3, **replace: object) -> Path:
    """A hits tree written directly with uproot (`replace`: hit_* fields by suffix; None drops)."""
    cols = random_hit_columns(n)
    fields = {k[4:]: cols[k] for k in HITS.reco_names() if k != "event_id"}
    for k, v in replace.items():
        if v is None:
            fields.pop(k)
        else:
            fields[k] = v
    data = {"event_id": cols["event_id"], "hit": ak.zip(fields)}
    with uproot.recreate(path) as f:
        f.mktree(tree, {k: (v.type if isinstance(v, ak.Array) else np.asarray(v).dtype) for k, v in data.items()})
        f[tree].extend(data)
        f[METADATA_KEY] = '{"b_field_t": 2.0}'  # the model's field: no warning line beside the refusal
    return path


def tracks_entries(path: Path) -> dict[str, np.ndarray]:
    with uproot.open(path) as f:
        arrays = f["tracks"].arrays(library="ak")
    return {k: ak.to_numpy(ak.flatten(arrays[k]) if arrays[k].ndim > 1 else arrays[k]) for k in arrays.fields}


def assert_same_tracks(a: Path, b: Path) -> None:
    ta, tb = tracks_entries(a), tracks_entries(b)
    assert ta.keys() == tb.keys()
    for k in ta:
        assert ta[k].dtype == tb[k].dtype, k
        assert ta[k].tobytes() == tb[k].tobytes(), f"{a} and {b} differ in {k}"


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return model_for_tests(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """7 valid events (hits on the generic detector's barrel layers; the fake model makes no
    tracks of random hits, which is fine: these tests are about refusals and files)."""
    return write_hits(tmp_path_factory.mktemp("good") / "good.root", random_hit_columns(7, seed=1))


# ----------------------------------------------------------------------------- reader (reco)
def _not_root(d: Path, good: Path) -> tuple[Path, list[str]]:
    p = d / "notes.root"
    p.write_text("run 1234: beam lost at 02:10\n" * 50)
    return p, [r"notes\.root", "cannot open as a ROOT file"]


def _zero_bytes(d: Path, good: Path) -> tuple[Path, list[str]]:
    p = d / "zero.root"
    p.write_bytes(b"")
    return p, [r"zero\.root", "ROOT file"]


def _truncated(d: Path, good: Path) -> tuple[Path, list[str]]:
    p = d / "cut.root"
    data = good.read_bytes()
    p.write_bytes(data[: len(data) * 2 // 3])
    return p, [r"cut\.root", "(ROOT file|damaged or truncated|cannot read)"]


def _missing_tree(d: Path, good: Path) -> tuple[Path, list[str]]:
    p = write_raw_hits(d / "notree.root", tree="Events")
    return p, [r"notree\.root", "missing tree 'hits'", "expected the hits tree", "'Events'"]


def _missing_branch(d: Path, good: Path) -> tuple[Path, list[str]]:
    cols = random_hit_columns(3)
    p = write_raw_hits(d / "nobranch.root", x=None, xpos=cols["hit_x"])
    return p, [r"nobranch\.root", "tree 'hits'", "missing branch 'hit_x'", r"expected jagged float32\)", "closest: .*'hit_xpos'"]


def _wrong_dtype(d: Path, good: Path) -> tuple[Path, list[str]]:
    cols = random_hit_columns(3)
    p = write_raw_hits(d / "dtype.root", layer_id=ak.values_astype(cols["hit_layer_id"], np.float64))
    return p, [r"dtype\.root", "tree 'hits'", "branch 'hit_layer_id'", "float64", "expected int32"]


def _flat_coordinate(d: Path, good: Path) -> tuple[Path, list[str]]:
    cols = random_hit_columns(3)
    data = {"event_id": cols["event_id"], "hit_x": np.ones(3, np.float32)}
    data["hit"] = ak.zip({k[4:]: cols[k] for k in HITS.reco_names() if k not in ("event_id", "hit_x")})
    p = d / "flat.root"
    with uproot.recreate(p) as f:
        f.mktree("hits", {k: (v.type if isinstance(v, ak.Array) else v.dtype) for k, v in data.items()})
        f["hits"].extend(data)
    return p, [r"flat\.root", "branch 'hit_x'", "one float32 per entry, expected a list per event", "flat ntuple"]


def _nan(d: Path, good: Path) -> tuple[Path, list[str]]:
    cols = random_hit_columns(3)
    y = ak.to_list(cols["hit_y"])
    y[2][3] = float("nan")
    p = write_raw_hits(d / "nan.root", y=ak.Array(y))
    return p, [r"nan\.root", "branch 'hit_y'", "NaN or infinite", "event 2", "expected finite"]


def _inf(d: Path, good: Path) -> tuple[Path, list[str]]:
    cols = random_hit_columns(3)
    x = ak.to_list(cols["hit_x"])
    x[0][0] = float("inf")
    x[1][1] = float("-inf")
    p = write_raw_hits(d / "inf.root", x=ak.Array(x))
    return p, [r"inf\.root", "branch 'hit_x'", "2 NaN or infinite values", "first in event 0"]


def _foreign_layers(d: Path, good: Path) -> tuple[Path, list[str]]:
    cols = random_hit_columns(3, seed=4)
    cols["hit_layer_id"] = cols["hit_layer_id"] * 0 + 77  # type: ignore[operator]
    p = write_hits(d / "alien.root", cols)
    return p, [r"alien\.root", r"not in geometry 'acts-generic'", r"\(\d+, 77\)"]


READER_CASES = [_not_root, _zero_bytes, _truncated, _missing_tree, _missing_branch, _wrong_dtype, _flat_coordinate,
                _nan, _inf, _foreign_layers]  # fmt: skip


@pytest.mark.parametrize("case", READER_CASES, ids=lambda f: f.__name__.strip("_"))
def test_reco_refuses_bad_input(case, model: Path, good: Path, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    bad, needles = case(tmp_path / "in", good)
    out_dir = tmp_path / "out"
    # a good file first: its output, when written before the bad file is met (a damaged
    # basket shows only when read), is whole; the bad file leaves nothing
    out = hepgan("reco", good, bad, "-o", out_dir, "--model", model, "--no-progress")
    assert_refused(out, *needles)
    assert leftovers(out_dir) in ([], ["good.root"])
    if leftovers(out_dir):
        assert len(read_events(out_dir / "good.root", trees=("tracks",))["tracks"]) == 7


def test_debug_shows_the_traceback(model: Path, tmp_path: Path) -> None:
    bad, _ = _nan(tmp_path, tmp_path)
    out = hepgan("--debug", "reco", bad, "-o", tmp_path / "out", "--model", model)
    assert out.returncode != 0
    assert "Traceback" in out.stderr and "InputError" in out.stderr and "nan.root" in out.stderr


def test_event_ids_differ_between_trees(tmp_path: Path) -> None:
    """`hepgan dataset` reads the hits and the tracks trees together."""
    hits = random_hit_columns(3)
    bad = write_hits(tmp_path / "ids.root", hits, trees=(HITS, TRACKS), tracks=empty_tracks(np.array([0, 1, 5])))
    out = hepgan("dataset", bad, "-o", tmp_path / "ds")
    assert_refused(out, r"ids\.root", "event ids differ between trees 'hits' and 'tracks'", r"entry 2 \(2 vs 5\)",
                   "expected the same events")  # fmt: skip
    assert leftovers(tmp_path / "ds") == [] or not any(p.endswith((".npz", ".tmp")) for p in leftovers(tmp_path / "ds"))


def test_zero_events_is_a_valid_empty_file(model: Path, tmp_path: Path) -> None:
    """README: a file with no events reads as empty. reco writes an output of zero entries."""
    empty = tmp_path / "empty.root"
    with RootEventWriter(empty, [HITS]):
        pass
    out = hepgan("reco", empty, "-o", tmp_path / "out", "--model", model, "--no-progress")
    assert out.returncode == 0, out.stderr
    with uproot.open(tmp_path / "out" / "empty.root") as f:
        assert f["tracks"].num_entries == 0
    assert leftovers(tmp_path / "out") == ["empty.root"]


def test_events_without_hits_give_no_tracks(model: Path, tmp_path: Path) -> None:
    cols = random_hit_columns(4, seed=2)
    for b in HITS.branches[1:]:
        values = ak.to_list(cols[b.name])
        values[1] = []
        values[3] = []
        cols[b.name] = ak.values_astype(ak.Array(values), b.dtype)
    path = write_hits(tmp_path / "holes.root", cols)
    out = hepgan("reco", path, "-o", tmp_path / "out", "--model", model, "--no-progress", "--step-events", "2")
    assert out.returncode == 0, out.stderr
    tracks = read_events(tmp_path / "out" / "holes.root", trees=("tracks",))["tracks"]
    assert ak.to_numpy(tracks.event_id).tolist() == [0, 1, 2, 3]
    ntracks = ak.num(tracks.track_d0, axis=1).tolist()
    assert ntracks[1] == 0 and ntracks[3] == 0


# ----------------------------------------------------------------------------- models
def _other_geometry() -> Geometry:
    """A detector of the generic detector's innermost pixel volume only."""
    volume = GENERIC_DETECTOR.pixel_volumes[1] if len(GENERIC_DETECTOR.pixel_volumes) > 1 else 8
    layers = tuple(x for x in GENERIC_DETECTOR.layers if x.volume_id == volume)
    return Geometry("other-detector", layers, (volume,))


def _corrupt_model(d: Path) -> tuple[Path, list[str]]:
    good = build_fake_model(d / "good.onnx").read_bytes()
    p = d / "cut.onnx"
    p.write_bytes(good[: len(good) // 2])
    return p, [r"cut\.onnx", "not an ONNX model", "expected a model.onnx"]


def _foreign_model(d: Path) -> tuple[Path, list[str]]:
    p = build_fake_model(d / "foreign.onnx", with_metadata=False)
    return p, [r"foreign\.onnx", "no 'hepgan' metadata", "expected a model exported by 'hepgan export'"]


def _text_model(d: Path) -> tuple[Path, list[str]]:
    p = d / "model.onnx"
    p.write_text("this is a README, not a model\n" * 20)
    return p, [r"model\.onnx", "not an ONNX model"]


def _other_inputs(d: Path) -> tuple[Path, list[str]]:
    p = build_fake_model(d / "renamed.onnx", input_names=("features", "z"))
    return p, [r"renamed\.onnx", r"model inputs \['features', 'z'\], expected \['condition', 'noise'\]"]


def _other_width(d: Path) -> tuple[Path, list[str]]:
    p = build_fake_model(d / "narrow.onnx", condition_width=12)
    return p, [r"narrow\.onnx", r"input 'condition' has shape \[n, 12\], expected \[n, \d+\]"]


def _other_geometry_model(d: Path) -> tuple[Path, list[str]]:
    p = build_fake_model(d / "other.onnx", geometry=_other_geometry())
    return p, [r"good\.root", "not in geometry 'other-detector'", r"model other\.onnx"]


MODEL_CASES = [_corrupt_model, _foreign_model, _text_model, _other_inputs, _other_width, _other_geometry_model]


@pytest.mark.parametrize("case", MODEL_CASES, ids=lambda f: f.__name__.strip("_"))
def test_reco_refuses_bad_model(case, good: Path, tmp_path: Path) -> None:
    bad_model, needles = case(tmp_path)
    out = hepgan("reco", good, "-o", tmp_path / "out", "--model", bad_model, "--no-progress")
    assert_refused(out, *needles)
    assert leftovers(tmp_path / "out") == []


def test_checker_runs_before_any_session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file that parses as a ModelProto but is not a valid graph is refused by onnx.checker
    before onnxruntime is asked for a session."""
    import onnx
    import onnxruntime

    from hepgan.errors import InputError
    from hepgan.reco.engine import Engine

    path = build_fake_model(tmp_path / "ok.onnx")
    proto = onnx.load(path)
    proto.graph.node[0].input[0] = "no_such_tensor"  # a dangling edge: invalid graph
    bad = tmp_path / "dangling.onnx"
    bad.write_bytes(proto.SerializeToString())

    def no_session(*a: object, **k: object) -> None:
        msg = "an onnxruntime session was created for a refused model"
        raise AssertionError(msg)

    monkeypatch.setattr(onnxruntime, "InferenceSession", no_session)
    with pytest.raises(InputError, match=r"dangling\.onnx: onnx\.checker refuses the model"):
        Engine(bad)
    for meta in ({"n_samples": "many"}, {"feature_config": [1, 2]}, {"geometry": "generic"}):
        with pytest.raises(InputError, match=r"meta\.onnx: .*metadata"):
            Engine(build_fake_model(tmp_path / "meta.onnx", metadata=meta))


# ----------------------------------------------------------------------------- import (CSV)
def _trackml_event(folder: Path, *, extra: bool = False, drop: tuple[str, str] | None = None,
                   replace: tuple[str, str, int, str] | None = None) -> None:  # fmt: skip
    """One small valid TrackML event (10 hits, 2 particles). `extra` adds columns the format
    does not use; `drop` = (file, column) removes one; `replace` = (file, column, row, text)."""
    rng = np.random.default_rng(3)
    n = 10
    barrels = [x for x in GENERIC_DETECTOR.layers if x.is_barrel][:5]
    which = np.arange(n) % len(barrels)
    phi = rng.uniform(-3, 3, n)
    r = np.array([barrels[i].position for i in which])
    tables = {
        "hits": {"hit_id": np.arange(1, n + 1), "x": r * np.cos(phi), "y": r * np.sin(phi), "z": rng.uniform(-300, 300, n),
                 "volume_id": [barrels[i].volume_id for i in which], "layer_id": [barrels[i].layer_id for i in which],
                 "module_id": rng.integers(1, 50, n)},
        "truth": {"hit_id": np.arange(1, n + 1), "particle_id": np.where(np.arange(n) < 5, 4503599644147712, 0),
                  "tx": r * np.cos(phi), "ty": r * np.sin(phi), "tz": rng.uniform(-300, 300, n)},
        "particles": {"particle_id": [4503599644147712, 4503599660924928], "vx": [0.01, 0.0], "vy": [0.0, 0.02],
                      "vz": [1.0, -3.0], "px": [1.0, -0.5], "py": [0.2, 0.7], "pz": [0.1, 2.0], "q": [1, -1]},
    }  # fmt: skip
    if extra:
        tables["hits"] = {"sensor_temp": np.full(n, 21.5), **tables["hits"], "comment_code": np.arange(n)}
        tables["truth"]["weight"] = np.full(n, 0.1)
        tables["particles"]["nhits"] = [5, 0]
    if drop:
        del tables[drop[0]][drop[1]]
    for kind, cols in tables.items():
        names = list(cols)
        rows = [[str(v) for v in row] for row in zip(*(list(np.asarray(cols[c]).tolist()) for c in names), strict=True)]
        if replace and replace[0] == kind:
            rows[replace[2]][names.index(replace[1])] = replace[3]
        text = ",".join(names) + "\n" + "".join(",".join(r) + "\n" for r in rows)
        (folder / f"event000000042-{kind}.csv").write_text(text)


def test_import_ignores_extra_columns(tmp_path: Path) -> None:
    for name, extra in (("plain", False), ("extra", True)):
        (tmp_path / name).mkdir()
        _trackml_event(tmp_path / name, extra=extra)
        out = hepgan("import", "--format", "trackml", tmp_path / name, "-o", tmp_path / f"{name}.root")
        assert out.returncode == 0, out.stderr
    a = read_events(tmp_path / "plain.root", trees=("hits", "particles"), truth=True)
    b = read_events(tmp_path / "extra.root", trees=("hits", "particles"), truth=True)
    for tree in a:
        assert a[tree].fields == b[tree].fields
        for field in a[tree].fields:
            assert ak.to_list(a[tree][field]) == ak.to_list(b[tree][field]), (tree, field)
    assert len(a["hits"].hit_x[0]) == 10


@pytest.mark.parametrize(
    ("kwargs", "needles"),
    [
        ({"drop": ("truth", "tz")}, [r"event000000042-truth\.csv", r"missing column\(s\) \['tz'\]", "expected at least"]),
        ({"drop": ("particles", "q")}, [r"event000000042-particles\.csv", r"\['q'\]"]),
        ({"replace": ("hits", "x", 3, "inf")}, [r"hits\.csv", "column 'x'", "line 5", "expected finite numbers"]),
        ({"replace": ("hits", "z", 0, "nan")}, [r"hits\.csv", "column 'z'", "line 2"]),
        ({"replace": ("hits", "y", 2, "12.5mm")}, [r"hits\.csv", "not a table of numbers", "'y'"]),
        ({"replace": ("hits", "volume_id", 1, "7.5")}, [r"hits\.csv", "column 'volume_id'", "7.5 on line 3", "expected integers"]),
        ({"replace": ("truth", "hit_id", 0, "99")}, [r"truth\.csv", "hit_id", "one truth row per hit"]),
    ],
    ids=["missing-tz", "missing-q", "inf", "nan", "unit-in-number", "float-id", "truth-ids"],
)
def test_import_refuses_bad_csv(tmp_path: Path, kwargs: dict, needles: list[str]) -> None:
    src = tmp_path / "src"
    src.mkdir()
    _trackml_event(src, **kwargs)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = hepgan("import", "--format", "trackml", src, "-o", out_dir / "events.root")
    assert_refused(out, *needles)
    assert leftovers(out_dir) == []


def test_import_refuses_empty_csv(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    _trackml_event(src)
    (src / "event000000042-hits.csv").write_bytes(b"")
    out = hepgan("import", "--format", "trackml", src, "-o", tmp_path / "out" / "events.root")
    assert_refused(out, r"event000000042-hits\.csv", "empty file", "expected a CSV header")
    assert leftovers(tmp_path / "out") == []


def test_import_acts_csv_without_detectors(tmp_path: Path) -> None:
    src = tmp_path / "acts"
    src.mkdir()
    (src / "event000000001-measurements.csv").write_text("measurement_id,geometry_id,local0,local1\n0,1,0.1,0.2\n")
    out = hepgan("import", "--format", "acts-csv", src, "-o", tmp_path / "out" / "e.root")
    assert_refused(out, r"detectors\.csv", "missing", "surfaces")
    assert leftovers(tmp_path / "out") == []


# ----------------------------------------------------------------------------- train config
def _train_config(tmp_path: Path, extra: str, *, output: str = "model") -> Path:
    (tmp_path / "ds_train").mkdir(exist_ok=True)
    (tmp_path / "ds_val").mkdir(exist_ok=True)
    cfg = tmp_path / "cfg" / "train.toml"
    cfg.parent.mkdir(exist_ok=True)
    cfg.write_text(f'dataset = "../ds_train"\nvalidation = "../ds_val"\noutput = "{output}"\n{extra}\n')
    return cfg


@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        ("epochz = 3", [r"train\.toml", "unknown key 'epochz'", "closest: 'epochs'"]),
        ('learning_rate = "1e-3"', [r"train\.toml", r"learning_rate = '1e-3'", "expected a number"]),
        ('residual_clip = "30 mm"', [r"train\.toml", "residual_clip", "expected a number"]),
        ("epochs = 2.5", [r"train\.toml", r"epochs = 2\.5", "expected an integer"]),
        ("batch_size = true", [r"train\.toml", "batch_size = True", "expected a number"]),
        ("noise_dim = -4", [r"train\.toml", "noise_dim must be > 0"]),
        ("seed = 1\nseed = 2", [r"train\.toml", "cannot read training config"]),
        ("[model]\nwidth = 3", [r"train\.toml", "unknown key 'model'"]),
    ],
    ids=["unknown-key", "string-number", "unit", "float-int", "bool", "negative", "duplicate-key", "table"],
)
def test_train_refuses_bad_config(tmp_path: Path, extra: str, needles: list[str]) -> None:
    cfg = _train_config(tmp_path, extra)
    out = hepgan("train", cfg)
    assert_refused(out, *needles)
    assert not (tmp_path / "cfg" / "model").exists()


def test_train_refuses_missing_dataset(tmp_path: Path) -> None:
    cfg = _train_config(tmp_path, "")
    out = hepgan("train", cfg)
    assert_refused(out, "ds_train", "no stats.json", "expected a folder written by `hepgan dataset`")
    assert not (tmp_path / "cfg" / "model").exists()


@pytest.mark.parametrize(
    ("output", "needles"),
    [
        ("../ds_train", ["output", "is inside the dataset folder", "ds_train", "expected a folder apart from the inputs"]),
        ("../ds_val/model", ["output", "is inside the validation folder", "ds_val"]),
        ("..", ["output", "contains the dataset folder"]),
        ("", ["output = ''", "expected a folder path", "empty"]),
        ("train.toml", [r"output = '.*train\.toml' is an existing file", "not a folder"]),
    ],
    ids=["is-dataset", "inside-validation", "parent-of-dataset", "empty", "a-file"],
)
def test_train_output_cannot_overwrite_inputs(tmp_path: Path, output: str, needles: list[str]) -> None:
    """The rule (README, "Errors and guarantees"): relative paths in a train config are relative
    to the config file; `output` may be anywhere (the shipped config writes ../../build/...),
    but not empty, not an existing file, and neither the same as, inside, nor a parent of the
    `dataset` or `validation` folders: training writes only under `output`, by fixed names,
    and never over its own inputs."""
    cfg = _train_config(tmp_path, "", output=output)
    out = hepgan("train", cfg)
    assert_refused(out, r"train\.toml", *needles)


def test_train_config_paths_resolve_against_the_config(tmp_path: Path) -> None:
    from hepgan.ml.train import TrainConfig

    cfg = TrainConfig.from_toml(_train_config(tmp_path, "", output="../build/model"))
    assert cfg.output == str((tmp_path / "build" / "model").resolve())
    assert cfg.dataset == str((tmp_path / "ds_train").resolve())
    absolute = TrainConfig.from_toml(_train_config(tmp_path, "", output=str(tmp_path / "abs")))
    assert absolute.output == str(tmp_path / "abs")


# ----------------------------------------------------------------------------- export / keras
def _keras_with_lambda(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    code = (
        "import os; os.environ.setdefault('KERAS_BACKEND', 'tensorflow')\n"
        "import keras\n"
        "inp = keras.Input((4,), name='condition')\n"
        "out = keras.layers.Lambda(lambda t: t * 2.0)(inp)\n"
        f"keras.Model(inp, out).save({str(path)!r})\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    return path


def test_export_refuses_lambda_layers(tmp_path: Path) -> None:
    """.keras files are loaded with safe_mode=True: a Lambda layer (arbitrary Python code) is
    refused, never run."""
    pytest.importorskip("tf2onnx")
    pytest.importorskip("keras")
    model = _keras_with_lambda(tmp_path / "m" / "generator.keras")
    out = hepgan("export", model, "-o", tmp_path / "out" / "m.onnx")
    assert_refused(out, r"generator\.keras", "not a hepgan generator checkpoint", "Lambda", "safe_mode", tf_noise=True)
    assert leftovers(tmp_path / "out") == []


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 not really a zip", b"\x89HDF\r\n"], ids=["empty", "bad-zip", "hdf5"])
def test_export_refuses_non_checkpoints(tmp_path: Path, content: bytes) -> None:
    pytest.importorskip("tf2onnx")
    src = tmp_path / "gen.keras"
    src.write_bytes(content)
    out = hepgan("export", src, "-o", tmp_path / "out" / "m.onnx")
    assert_refused(out, r"gen\.keras", "not a hepgan generator checkpoint")
    assert leftovers(tmp_path / "out") == []


def test_safe_mode_everywhere() -> None:
    """Every Keras load in hepgan/ passes safe_mode=True."""
    loads = []
    for path in sorted((REPO / "hepgan").rglob("*.py")):
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"load_model\(", line):
                loads.append((path.name, i, line))
    assert loads, "no keras load found: the grep is broken"
    for name, i, line in loads:
        assert "safe_mode=True" in line, f"{name}:{i}: {line.strip()}"


def test_no_pickle_in_the_package() -> None:
    """No pickle, no allow_pickle=True, no eval/exec of file contents anywhere in hepgan/."""
    pattern = re.compile(
        r"\bimport (c?pickle|dill|cloudpickle|joblib|marshal|shelve)\b|\bfrom (c?pickle|dill|cloudpickle|joblib|marshal|shelve) import"
        r"|allow_pickle\s*=\s*True|\bpickle\.loads?\(|\btorch\.load\(|(?<![\w.])eval\(|(?<![\w.])exec\(|yaml\.load\("
    )
    hits = []
    checked = 0
    for path in sorted((REPO / "hepgan").rglob("*.py")):
        checked += 1
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                hits.append(f"{path.relative_to(REPO)}:{i}: {line.strip()}")
    assert checked > 10
    assert not hits, "\n".join(hits)
    # np.load is always explicit about pickles
    for path in sorted((REPO / "hepgan").rglob("*.py")):
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if "np.load(" in line:
                assert "allow_pickle=False" in line, f"{path.name}:{i}: {line.strip()}"


# ----------------------------------------------------------------------------- faults
def _inputs(folder: Path, n_files: int, n_events: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return [write_hits(folder / f"run{i}.root", random_hit_columns(n_events, seed=10 + i, first_event=1000 * i))
            for i in range(n_files)]  # fmt: skip


def _assert_whole(out: Path, n_events: int) -> None:
    tracks = read_events(out, trees=("tracks",))["tracks"]
    assert len(tracks) == n_events, out


def test_sigkill_midway_leaves_whole_outputs_and_rerun_completes(model: Path, tmp_path: Path) -> None:
    inputs = _inputs(tmp_path / "in", 4, 60)
    reference = tmp_path / "reference"
    ref = hepgan("reco", *inputs, "-o", reference, "--model", model, "--no-progress", "--step-events", "7")
    assert ref.returncode == 0, ref.stderr
    out_dir = tmp_path / "out"
    cmd = [sys.executable, "-m", "hepgan.cli", "reco", *map(str, inputs), "-o", str(out_dir), "--model", str(model),
           "--no-progress", "--step-events", "2"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env) as proc:
        deadline = time.monotonic() + 120
        while not (out_dir / "run0.root").exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        if proc.poll() is not None:
            pytest.fail(f"reco ended before it could be killed: {proc.communicate()[1].decode()[-2000:]}")
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    finals = sorted(p.name for p in out_dir.glob("run*.root"))
    assert "run0.root" in finals and len(finals) < 4, finals  # killed midway
    for name in finals:  # whatever has its final name is whole
        _assert_whole(out_dir / name, 60)
        assert_same_tracks(out_dir / name, reference / name)
    rerun = hepgan("reco", *inputs, "-o", out_dir, "--model", model, "--no-progress", "--step-events", "5")
    assert rerun.returncode == 0, rerun.stderr
    assert leftovers(out_dir) == [f"run{i}.root" for i in range(4)]  # the killed run's temporary is gone
    for i in range(4):
        assert_same_tracks(out_dir / f"run{i}.root", reference / f"run{i}.root")


def test_dask_worker_killed_midway_gives_identical_outputs(model: Path, small_sim: Path, tmp_path: Path) -> None:
    """A worker process dies (SIGKILL) while it runs tasks: the scheduler reruns its tasks on
    the other worker (or on the nanny's replacement), and the outputs equal a serial run's."""
    distributed = pytest.importorskip("distributed")
    import threading

    from hepgan.reco.driver import reconstruct_files

    inputs = _inputs(tmp_path / "in", 2, 40) + [small_sim]
    reconstruct_files(inputs, tmp_path / "serial", model=model, progress=False, step_events=100)
    killed: list[int] = []
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=50) as cluster, distributed.Client(cluster) as client:  # fmt: skip
        pids = client.run(os.getpid)  # worker address -> process id
        done = threading.Event()

        def killer() -> None:
            while not done.is_set():
                busy = [w for w, tasks in client.processing().items() if tasks and w in pids]
                if busy:
                    os.kill(pids[busy[0]], signal.SIGKILL)
                    killed.append(pids[busy[0]])
                    return
                time.sleep(0.01)

        thread = threading.Thread(target=killer, daemon=True)
        thread.start()
        summary = reconstruct_files(inputs, tmp_path / "dask", model=model, progress=False, step_events=1,
                                    scheduler=cluster.scheduler_address)  # fmt: skip
        done.set()
        thread.join(10)
    assert killed, "no worker was killed: the tasks ended before the killer saw one running"
    assert summary["files_done"] == 3
    assert leftovers(tmp_path / "dask") == sorted(p.name for p in (tmp_path / "serial").iterdir())
    for p in inputs:
        assert_same_tracks(tmp_path / "dask" / p.name, tmp_path / "serial" / p.name)


def _full_disk_message(out: subprocess.CompletedProcess, name: str) -> None:
    assert_refused(out, rf"{name}: cannot write the output", "(No space left on device|File too large)", code=1)


def test_full_disk_fails_cleanly(model: Path, good: Path, tmp_path: Path) -> None:
    """A 200 kB tmpfs, nearly full: reco fails with one line naming the output, exit 1, and
    leaves no half-written file."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; test_file_size_limit_fails_cleanly covers the same path")
    disk = tmp_path / "disk"
    disk.mkdir()
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(disk)], capture_output=True, text=True)
    if mount.returncode != 0:
        pytest.skip(f"mount -t tmpfs not permitted here: {mount.stderr.strip()}")
    try:
        (disk / "filler").write_bytes(b"\0" * 150_000)
        big = write_hits(tmp_path / "big.root", random_hit_columns(2000, seed=5))
        out = hepgan("reco", good, big, "-o", disk / "out", "--model", model, "--no-progress")
        _full_disk_message(out, r"big\.root")
        assert leftovers(disk / "out") in ([], ["good.root"])  # good's output is whole, big's absent
        for name in leftovers(disk / "out"):
            _assert_whole(disk / "out" / name, 7)
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_file_size_limit_fails_cleanly(model: Path, good: Path, tmp_path: Path) -> None:
    """RLIMIT_FSIZE (SIGXFSZ ignored, so the write raises EFBIG): same clean failure."""
    import resource

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    big = write_hits(tmp_path / "big.root", random_hit_columns(3000, seed=6))
    out = hepgan("reco", big, "-o", tmp_path / "out", "--model", model, "--no-progress", preexec_fn=limit)
    _full_disk_message(out, r"big\.root")
    assert leftovers(tmp_path / "out") == []
    src = tmp_path / "csv"
    src.mkdir()
    _trackml_event(src)
    out = hepgan("import", "--format", "trackml", src, "-o", tmp_path / "imp" / "e.root", preexec_fn=lambda: (
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN), resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))))
    _full_disk_message(out, r"e\.root")
    assert leftovers(tmp_path / "imp") == []


@pytest.mark.slow
def test_a_million_hits_in_one_event(model: Path, ttbar_pu50_sample: Path, tmp_path: Path) -> None:
    """Decision: an event of a million hits is processed, not refused (seeding time grows
    faster than linearly: about 3 minutes on 2 cores; peak RSS about 1.3 GB). Bound: 3 GB.

    The event: the hits of 3 ttbar events at pile-up 50, each copy turned by its own random
    angle about the beam line until there are a million, a collision event at pile-up about
    1800 (the detector is symmetric in phi; a turned hit is off its module, which nothing here
    reads). Why not random hits: a million uniform hits on the four pixel barrels (what this
    test made until December 2026) are 100 times pile-up 200's pixel density, and the seeder's
    combinatorics took 7 minutes of CI's 25 there for the same decision."""
    n = 1_000_000
    hits = read_events(ttbar_pu50_sample, truth=True)["hits"]
    names = ("hit_x", "hit_y", "hit_z", "hit_volume_id", "hit_layer_id", "hit_module_id", "hit_particle_id",
             "hit_tx", "hit_ty", "hit_tz")  # fmt: skip
    one = {k: np.concatenate([ak.to_numpy(hits[k][i]) for i in range(len(hits))]) for k in names}
    copies = -(-n // len(one["hit_x"]))
    angle = np.random.default_rng(0).uniform(-np.pi, np.pi, (copies, 1))
    cos, sin = np.cos(angle), np.sin(angle)
    cols = {k: np.tile(v, copies)[:n] for k, v in one.items()}
    for x, y in (("hit_x", "hit_y"), ("hit_tx", "hit_ty")):
        cols[x] = (one[x] * cos - one[y] * sin).ravel()[:n]
        cols[y] = (one[x] * sin + one[y] * cos).ravel()[:n]
    data = {k: ak.Array([v]) for k, v in cols.items()}
    data["event_id"] = np.array([0])
    path = write_hits(tmp_path / "million.root", data)
    code = (
        "import resource, subprocess, sys\n"
        f"r = subprocess.run([sys.executable, '-m', 'hepgan.cli', 'reco', {str(path)!r}, '-o', {str(tmp_path / 'out')!r},"
        f" '--model', {str(model)!r}, '--no-progress'])\n"
        "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )  # fmt: skip
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=1200, check=False,
                         env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip
    rc, peak_kb = map(int, run.stdout.strip().splitlines()[-1].split())  # the last line: reco prints its summary first
    assert rc == 0, run.stderr[-2000:]
    assert peak_kb < 3 * 1024 * 1024, f"peak RSS {peak_kb / 1024:.0f} MB"
    _assert_whole(tmp_path / "out" / "million.root", 1)
    # and tracks came out of it (47k of a million such hits made of tuning events, seed 5050)
    n_tracks = len(read_events(tmp_path / "out" / "million.root", trees=("tracks",))["tracks"]["track_nhits"][0])
    assert n_tracks > 20_000, n_tracks
