"""Property-based fuzzing (hypothesis, bounded example counts): the ROOT reader, the CSV
importer, feature building and seeding take arbitrary input and answer with tracks/arrays or a
documented error (InputError / ValueError with a message) - never another exception, never a
crash. The numba kernels run in a subprocess, so a segfault fails the test instead of pytest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from hepgan.errors import InputError
from hepgan.io.events import HITS, read_events

REPO = Path(__file__).resolve().parent.parent
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

_DTYPES = st.sampled_from([np.int8, np.int16, np.int32, np.int64, np.uint32, np.float32, np.float64, np.bool_])
_FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=32)


def _documented(err: BaseException) -> None:
    assert isinstance(err, InputError | ValueError) and not isinstance(err, IndexError), repr(err)
    assert str(err).strip(), f"{type(err).__name__} without a message"


@st.composite
def hit_trees(draw):
    """A `hits` tree whose branches are the schema's, some missing, renamed, retyped, flat
    instead of jagged, of ragged lengths, with any values."""
    n_events = draw(st.integers(0, 4))
    counts = draw(st.lists(st.integers(0, 6), min_size=n_events, max_size=n_events))
    branches: dict[str, object] = {}
    names = [b for b in HITS.reco_names()]
    for name in names:
        what = draw(st.sampled_from(["ok", "ok", "ok", "missing", "dtype", "flat", "ragged"]))
        if what == "missing":
            continue
        dtype = HITS.branch(name).dtype if what != "dtype" else draw(_DTYPES)
        if name == "event_id" or what == "flat":
            values = draw(arrays(dtype, n_events, elements=None if np.dtype(dtype).kind != "f" else _FLOATS))
            branches[name] = values
            continue
        lengths = counts if what != "ragged" else draw(st.lists(st.integers(0, 6), min_size=n_events, max_size=n_events))
        flat = draw(arrays(dtype, sum(lengths), elements=None if np.dtype(dtype).kind != "f" else _FLOATS))
        branches[name] = ak.unflatten(flat, np.asarray(lengths, dtype=np.int64)) if n_events else ak.Array(
            ak.contents.ListOffsetArray(ak.index.Index64(np.zeros(1, np.int64)), ak.contents.NumpyArray(flat)))
    return n_events, branches


@FAST
@given(tree=hit_trees())
def test_reader_on_arbitrary_branches(tmp_path_factory: pytest.TempPathFactory, tree) -> None:
    n_events, branches = tree
    path = tmp_path_factory.mktemp("fuzz") / "f.root"
    with uproot.recreate(path) as f:
        if branches:
            # separate counters per branch: ragged lengths between hit_* are possible
            f["hits"] = {k: v for k, v in branches.items()}
        else:
            f.mktree("hits", {"other": np.float32})
    try:
        out = read_events(path)["hits"]
    except Exception as err:  # noqa: BLE001 - classified right here
        _documented(err)
        return
    assert len(out) == n_events
    for c in ("hit_x", "hit_y", "hit_z"):
        assert np.isfinite(ak.to_numpy(ak.flatten(out[c]))).all()


_COLUMNS = ["hit_id", "x", "y", "z", "volume_id", "layer_id", "module_id"]
_CELLS = st.one_of(st.integers(-(2**63), 2**64), st.floats(allow_nan=True, allow_infinity=True).map(repr),
                   st.sampled_from(["", "nan", "inf", "-0", "1e400", "abc", '"7"', " 3 ", "0x10"]),
                   st.text(alphabet="0123456789.-e+ ", max_size=6))  # fmt: skip


@FAST
@given(
    columns=st.lists(st.sampled_from(_COLUMNS + ["extra", "weight", "x "]), min_size=0, max_size=9),
    rows=st.lists(st.lists(_CELLS, min_size=0, max_size=10), max_size=5),
)
def test_csv_reader_on_arbitrary_tables(tmp_path_factory: pytest.TempPathFactory, columns, rows) -> None:
    from hepgan.io.importers import read_csv_columns

    path = tmp_path_factory.mktemp("csv") / "event000000001-hits.csv"
    lines = [",".join(columns)] + [",".join(str(c) for c in r) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    wanted = ("hit_id", "x", "y", "z", "volume_id", "layer_id", "module_id")
    types = (np.int64, np.float32, np.float32, np.float32, np.int32, np.int32, np.int32)
    try:
        out = read_csv_columns(path, wanted, types)
    except Exception as err:  # noqa: BLE001
        _documented(err)
        return
    n = {len(v) for v in out.values()}
    assert len(n) == 1
    for k in ("x", "y", "z"):
        assert np.isfinite(out[k]).all()


# --------------------------------------------------------------------------- numba kernels
_KERNEL_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from hepgan.errors import InputError
    from hepgan.reco.features import FeatureConfig, build_features
    from hepgan.reco.geometry import GENERIC_DETECTOR as G
    from hepgan.reco.seeding import find_seeds
    cases = json.load(sys.stdin)
    fc = FeatureConfig()
    for i, c in enumerate(cases):
        x, y, z = (np.array(c[k], dtype=c["dtype"]) for k in ("x", "y", "z"))
        vol, lay = np.array(c["vol"], np.int32), np.array(c["lay"], np.int32)
        try:
            seeds = find_seeds(x, y, z, vol, lay, geometry=G)
            assert seeds.ndim == 2 and seeds.shape[1] == 3, seeds.shape
            assert len(seeds) == 0 or (seeds.min() >= 0 and seeds.max() < len(x)), "seed index outside the hits"
            layer = G.layer_index(vol, lay)
            extra = np.array(c["seeds"], np.int64).reshape(-1, 3) if c["seeds"] else seeds
            feats, cand = build_features(x, y, z, layer, extra, config=fc, geometry=G)
            assert feats.shape == (len(extra), fc.n_features) and cand.shape[0] == len(extra)
            assert ((cand == -1) | ((cand >= 0) & (cand < len(x)))).all(), "candidate outside the hits"
        except (InputError, ValueError) as err:
            assert str(err).strip(), repr(err)
            assert not isinstance(err, IndexError), repr(err)
        print(i, flush=True)
    print("done", flush=True)
    """
)


@st.composite
def hit_arrays(draw):
    from hepgan.reco.geometry import GENERIC_DETECTOR as G

    n = draw(st.integers(0, 60))
    pixel = [x for x in G.layers if x.volume_id in G.pixel_volumes] or list(G.layers)
    known = st.sampled_from([(x.volume_id, x.layer_id) for x in pixel])
    ids = draw(st.lists(st.one_of(known, known, known, st.tuples(st.integers(-5, 300), st.integers(-5, 300))),
                        min_size=n, max_size=n))  # fmt: skip
    coord = st.one_of(st.floats(-1200, 1200), st.floats(allow_nan=True, allow_infinity=True),
                      st.sampled_from([0.0, 1e30, -1e30, 33.0, 32.0]))  # fmt: skip
    xs = draw(st.lists(coord, min_size=n, max_size=n))
    if n and draw(st.booleans()):  # duplicates
        xs = [xs[0]] * n
    ys = draw(st.lists(coord, min_size=n, max_size=n))
    zs = draw(st.lists(coord, min_size=n, max_size=n))
    seeds = draw(st.one_of(st.just([]), st.lists(st.integers(-3, n + 3), min_size=3, max_size=9).map(
        lambda v: v[: len(v) // 3 * 3])))  # fmt: skip
    return {"x": xs, "y": ys, "z": zs, "vol": [a for a, _ in ids], "lay": [b for _, b in ids], "seeds": seeds,
            "dtype": draw(st.sampled_from(["float32", "float64"]))}  # fmt: skip


def _physics_like(n_events: int, seed: int) -> list[dict]:
    """Realistic dense events (helices from the origin), shuffled and with duplicated hits."""
    from hepgan.reco.geometry import GENERIC_DETECTOR as G

    rng = np.random.default_rng(seed)
    pixel = [x for x in G.layers if x.volume_id in G.pixel_volumes and x.is_barrel]
    out = []
    for _ in range(n_events):
        xs, ys, zs, vs, ls = [], [], [], [], []
        for _ in range(40):
            phi, cot = rng.uniform(-np.pi, np.pi), rng.uniform(-1, 1)
            for layer in pixel:
                xs.append(layer.position * np.cos(phi))
                ys.append(layer.position * np.sin(phi))
                zs.append(layer.position * cot)
                vs.append(layer.volume_id)
                ls.append(layer.layer_id)
        k = len(xs) // 4
        out.append({"x": xs + xs[:k], "y": ys + ys[:k], "z": zs + zs[:k], "vol": vs + vs[:k], "lay": ls + ls[:k],
                    "seeds": [], "dtype": "float64"})  # fmt: skip
    return out


@settings(max_examples=1, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(cases=st.lists(hit_arrays(), min_size=80, max_size=80))
def test_seeding_and_features_on_arbitrary_hits(cases) -> None:
    """One subprocess runs every case (numba compiles once): a crash shows as a signal and the
    last case printed, and any exception other than InputError/ValueError fails the script."""
    cases = cases + _physics_like(3, seed=1) + [
        {"x": [], "y": [], "z": [], "vol": [], "lay": [], "seeds": [], "dtype": "float32"},
    ]
    run = subprocess.run([sys.executable, "-c", _KERNEL_SCRIPT], input=json.dumps(cases), capture_output=True,
                         text=True, timeout=300, check=False, env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip
    last = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else "none"
    assert run.returncode == 0 and last == "done", (
        f"exit {run.returncode} after case {last}: {run.stderr[-3000:]}"
    )
