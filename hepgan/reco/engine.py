"""The ONNX engine: hits of one event -> surrogate tracks, with onnxruntime and numba only.

Chain per event (each stage timed, ms)::

    seeding     hepgan.reco.seeding.find_seeds                 (n_seeds, 3) hit indices
    features    hepgan.reco.features.build_features            (n_seeds, F) float32, candidates (n_seeds, L, K)
    network     model.onnx (condition, noise) -> params, params_std, score, hit_prob
    assignment  seed hits + the best candidate per surface with hit_prob >= hit_threshold
    ambiguity   hepgan.reco.ambiguity.resolve (greedy by score, then hit count)

The model file (``model.onnx``, opset 17) has inputs ``condition`` float32 (n, F) and
``noise`` float32 (n, M, Z), outputs ``params`` (n, 5) = d0 (mm), z0 (mm), phi (rad),
theta (rad), qop (e/GeV), ``params_std`` (n, 5) in the same units, ``score`` (n,) and
``hit_prob`` (n, L, K); its ``metadata_props`` key ``hepgan`` holds a JSON document with the
geometry, the feature and seeding configs and the shapes (see :class:`ModelInfo`). The file
is read and checked before any onnxruntime session exists, so a wrong file fails with one
line naming it and what was expected.

Noise is drawn per event from ``numpy.random.default_rng([seed, event_id])``: the tracks of
an event depend on the event and the seed only, not on batching, chunking or which worker
processed it.

Nothing here imports TensorFlow or keras (``tests/test_engine.py`` checks it in a clean
interpreter): inference needs numpy, numba, awkward, uproot and onnxruntime only.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numba
import numpy as np

from hepgan.errors import InputError
from hepgan.io.schema import TRACK_PARAMETERS, TRACKS
from hepgan.reco.ambiguity import AmbiguityConfig, preselect_seeds, resolve
from hepgan.reco.features import N_HELIX, N_SEED_HITS, FeatureConfig, build_features, layer_table
from hepgan.reco.geometry import Geometry
from hepgan.reco.seeding import SeedingConfig, find_seeds

__all__ = [
    "ENGINE_STAGES",
    "MODEL_ENV",
    "AssignmentConfig",
    "antithetic_normal",
    "Engine",
    "ModelInfo",
    "cached_engine",
    "empty_tracks",
    "read_model_info",
    "shipped_model_path",
]

log = logging.getLogger(__name__)

#: Stages timed by :meth:`Engine.reconstruct_event`, in chain order (ms per event each).
ENGINE_STAGES = ("seeding", "features", "network", "assignment", "ambiguity")

#: Environment variable naming the model to use when none is given (overrides the shipped one).
MODEL_ENV = "HEPGAN_MODEL"

_SHIPPED_NAME = "hepgan-generic.onnx"

_INPUTS = ("condition", "noise")
_OUTPUTS = ("params", "params_std", "score", "hit_prob")
_FLOAT = 1  # onnx TensorProto.FLOAT
_REQUIRED_META = ("geometry", "feature_config", "seeding_config", "n_features", "n_slots", "n_candidates",
                  "noise_dim", "n_samples")  # fmt: skip


# --------------------------------------------------------------------------- model file
def shipped_model_path() -> Path:
    """The model used when none is given: ``$HEPGAN_MODEL``, else the shipped model
    (package data ``hepgan/models/``, or ``deploy/models/`` of a source checkout)."""
    env = os.environ.get(MODEL_ENV)
    if env:
        return Path(env)
    package = Path(__file__).resolve().parents[1]
    candidates = [package / "models" / _SHIPPED_NAME, package.parent / "deploy" / "models" / _SHIPPED_NAME]
    for path in candidates:
        if path.is_file():
            return path
    listed = ", ".join(str(p) for p in candidates)
    msg = f"no model given and no shipped model found (looked for {listed}); pass --model MODEL.onnx or set {MODEL_ENV}"
    raise InputError(msg)


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            msg = "truncated varint"
            raise ValueError(msg)
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 70:
            msg = "varint too long"
            raise ValueError(msg)


def _proto_fields(buf: memoryview) -> list[tuple[int, int, Any]]:
    """(field number, wire type, value) of one protobuf message: ints for varints,
    memoryviews for length-delimited fields (fixed-width fields are skipped as bytes)."""
    out = []
    pos = 0
    n = len(buf)
    while pos < n:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            length, pos = _varint(buf, pos)
            if pos + length > n:
                msg = "length-delimited field runs past the end"
                raise ValueError(msg)
            value = buf[pos : pos + length]
            pos += length
        elif wire == 1:
            value = buf[pos : pos + 8]
            pos += 8
        elif wire == 5:
            value = buf[pos : pos + 4]
            pos += 4
        else:
            msg = f"unsupported protobuf wire type {wire}"
            raise ValueError(msg)
        if number == 0 or pos > n:
            msg = "malformed protobuf field"
            raise ValueError(msg)
        out.append((number, wire, value))
    return out


def _value_info(buf: memoryview) -> tuple[str, int, list[int | str | None]]:
    """ValueInfoProto -> (name, element type, dims: int, symbol name or None)."""
    name, elem, dims = "", 0, []
    for num, wire, val in _proto_fields(buf):
        if num == 1 and wire == 2:
            name = bytes(val).decode()
        elif num == 2 and wire == 2:  # TypeProto
            for tnum, twire, tval in _proto_fields(val):
                if tnum == 1 and twire == 2:  # tensor_type
                    for f, w, v in _proto_fields(tval):
                        if f == 1 and w == 0:
                            elem = v
                        elif f == 2 and w == 2:  # TensorShapeProto
                            for dnum, dwire, dval in _proto_fields(v):
                                if dnum == 1 and dwire == 2:
                                    dim: int | str | None = None
                                    for a, b, c in _proto_fields(dval):
                                        if a == 1 and b == 0:
                                            dim = c
                                        elif a == 2 and b == 2:
                                            dim = bytes(c).decode()
                                    dims.append(dim)
    return name, elem, dims


def _parse_model(data: bytes) -> tuple[dict[str, str], dict[str, tuple], dict[str, tuple], int | None]:
    """Metadata, graph inputs, graph outputs and default-domain opset of a serialised ModelProto.

    A small protobuf reader instead of ``onnx.load``: the inference install has no ``onnx``
    package, and the checks must happen before onnxruntime is asked to build a session.
    """
    meta: dict[str, str] = {}
    inputs: dict[str, tuple] = {}
    outputs: dict[str, tuple] = {}
    opset = None
    graph_seen = False
    for num, wire, val in _proto_fields(memoryview(data)):
        if num == 14 and wire == 2:  # metadata_props: StringStringEntryProto
            key = value = ""
            for a, _, c in _proto_fields(val):
                if a == 1:
                    key = bytes(c).decode()
                elif a == 2:
                    value = bytes(c).decode()
            meta[key] = value
        elif num == 8 and wire == 2:  # opset_import
            domain, version = "", None
            for a, _, c in _proto_fields(val):
                if a == 1:
                    domain = bytes(c).decode()
                elif a == 2:
                    version = c
            if domain in ("", "ai.onnx"):
                opset = version
        elif num == 7 and wire == 2:  # graph
            graph_seen = True
            for gnum, gwire, gval in _proto_fields(val):
                if gnum in (11, 12) and gwire == 2:
                    name, elem, dims = _value_info(gval)
                    (inputs if gnum == 11 else outputs)[name] = (elem, dims)
    if not graph_seen:
        msg = "no graph"
        raise ValueError(msg)
    return meta, inputs, outputs, opset


def antithetic_normal(rng: np.random.Generator, n: int, m: int, z: int) -> np.ndarray:
    """(n, m, z) float32 standard normal noise whose samples come in pairs (e, -e) (the last
    one alone when m is odd).

    Why: the track parameters are the mean over the m samples, and that mean carries
    Monte-Carlo noise of spread / sqrt(m); with antithetic pairs the noise of a head that is
    nearly linear in e cancels. Measured on the validation seeds (shipped model, 16 samples):
    z0 and theta of the mean 6% closer to ACTS's than with independent samples, the spread
    unchanged.
    """
    half = rng.standard_normal((n, m // 2, z), dtype=np.float32)
    parts = [half, -half]
    if m % 2:
        parts.append(rng.standard_normal((n, 1, z), dtype=np.float32))
    return np.concatenate(parts, axis=1)


@dataclass(frozen=True)
class ModelInfo:
    """What the ``hepgan`` metadata of a model file says.

    Attributes:
        path: the model file.
        geometry: detector the model was trained on (hits on other layers are unknown to it).
        feature_config, seeding_config: the configs that built its training features (the
            engine must build the same).
        n_features: F; n_slots: L; n_candidates: K; noise_dim: Z; n_samples: M.
        training: free-form facts about the training set (e.g. ``hits_per_event`` [min, max]).
        spread_scale: factors (d0, z0, phi, theta, qop) on the network's sampled spread, from
            ``hepgan calibrate`` (all 1 when the model was never calibrated).
        metadata: the whole JSON document.
    """

    path: Path
    geometry: Geometry
    feature_config: FeatureConfig
    seeding_config: SeedingConfig
    n_features: int
    n_slots: int
    n_candidates: int
    noise_dim: int
    n_samples: int
    training: Mapping[str, Any] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    spread_scale: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0)


def _config_from(cls: type, doc: Any, path: Path, key: str) -> Any:
    if not isinstance(doc, Mapping):
        msg = f"{path}: metadata '{key}' is {type(doc).__name__}, expected an object of {cls.__name__} fields"
        raise InputError(msg)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(doc) - known)
    if unknown:
        msg = f"{path}: metadata '{key}' has fields {unknown} unknown to this hepgan's {cls.__name__} (newer model?)"
        raise InputError(msg)
    # JSON turns tuples into lists; the configs are frozen and hashed, so turn them back.
    values = {k: tuple(tuple(x) if isinstance(x, list) else x for x in v) if isinstance(v, list) else v
              for k, v in doc.items()}  # fmt: skip
    try:
        return cls(**values)
    except (TypeError, ValueError) as err:
        msg = f"{path}: metadata '{key}' is not a valid {cls.__name__}: {err}"
        raise InputError(msg) from err


def _shape_text(dims: Sequence) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


def read_model_info(path: str | os.PathLike) -> ModelInfo:
    """Read and check a model file without creating an onnxruntime session.

    Raises ``InputError`` naming the file when it is not an ONNX model, fails
    ``onnx.checker`` (when ``onnx`` is installed), lacks the ``hepgan`` metadata, or has other
    input or output names, element types or shapes than the interface in the module docstring.
    """
    path = Path(path)
    if not path.is_file():
        msg = f"{path}: no such model file" if not path.exists() else f"{path}: is not a file, expected model.onnx"
        raise InputError(msg)
    data = path.read_bytes()
    try:
        meta, inputs, outputs, opset = _parse_model(data)
    except (ValueError, UnicodeDecodeError) as err:
        msg = f"{path}: not an ONNX model ({err}); expected a model.onnx exported by 'hepgan export'"
        raise InputError(msg) from err
    try:
        import onnx
        import onnx.checker
    except ImportError:
        onnx = None
    if onnx is not None:
        try:
            onnx.checker.check_model(onnx.load_from_string(data))
        except (onnx.checker.ValidationError, ValueError) as err:
            msg = f"{path}: onnx.checker refuses the model: {str(err).strip().splitlines()[0]}"
            raise InputError(msg) from err
    if "hepgan" not in meta:
        msg = f"{path}: no 'hepgan' metadata (metadata keys: {sorted(meta) or 'none'}); expected a model exported by 'hepgan export'"
        raise InputError(msg)
    try:
        doc = json.loads(meta["hepgan"])
    except json.JSONDecodeError as err:
        msg = f"{path}: 'hepgan' metadata is not JSON ({err})"
        raise InputError(msg) from err
    if not isinstance(doc, dict):
        msg = f"{path}: 'hepgan' metadata is {type(doc).__name__}, expected a JSON object"
        raise InputError(msg)
    missing = [k for k in _REQUIRED_META if k not in doc]
    if missing:
        msg = f"{path}: 'hepgan' metadata lacks {missing}; expected {list(_REQUIRED_META)}"
        raise InputError(msg)
    geometry = Geometry.from_dict(doc["geometry"]) if isinstance(doc["geometry"], Mapping) else None
    if geometry is None:
        msg = f"{path}: metadata 'geometry' is not an object"
        raise InputError(msg)
    fp = doc.get("geometry_fingerprint")
    if fp is not None and fp != geometry.fingerprint():
        msg = f"{path}: geometry fingerprint {fp} does not match its geometry ({geometry.fingerprint()}); damaged metadata"
        raise InputError(msg)
    fc_doc = doc["feature_config"]
    if isinstance(fc_doc, Mapping):
        # exported before the fit block, its seed agreements or path-length scattering existed
        fc_doc = {"fit": False, "seed_agreement": False, "path_length": False, **fc_doc}
    fc = _config_from(FeatureConfig, fc_doc, path, "feature_config")
    sc = _config_from(SeedingConfig, doc["seeding_config"], path, "seeding_config")
    try:
        sizes = {k: int(doc[k]) for k in ("n_features", "n_slots", "n_candidates", "noise_dim", "n_samples")}
    except (TypeError, ValueError) as err:
        msg = f"{path}: metadata sizes must be integers ({err})"
        raise InputError(msg) from err
    if (sizes["n_features"], sizes["n_slots"], sizes["n_candidates"]) != (fc.n_features, fc.layers, fc.candidates):
        msg = (
            f"{path}: metadata n_features/n_slots/n_candidates {sizes['n_features']}/{sizes['n_slots']}/"
            f"{sizes['n_candidates']} disagree with its feature_config ({fc.n_features}/{fc.layers}/{fc.candidates})"
        )
        raise InputError(msg)
    if min(sizes.values()) < 1:
        msg = f"{path}: metadata sizes must be >= 1, got {sizes}"
        raise InputError(msg)
    if opset is not None and opset < 13:
        msg = f"{path}: opset {opset}, expected >= 13 (hepgan exports opset 17)"
        raise InputError(msg)
    f, l_, k, z, m = (sizes[x] for x in ("n_features", "n_slots", "n_candidates", "noise_dim", "n_samples"))
    expected_in = {"condition": [f], "noise": [m, z]}
    expected_out = {"params": [5], "params_std": [5], "score": [], "hit_prob": [l_, k]}
    for kind, got, want in (("inputs", inputs, expected_in), ("outputs", outputs, expected_out)):
        # Inputs exactly (onnxruntime needs every input fed); outputs: at least these.
        wrong = set(got) != set(want) if kind == "inputs" else not set(want) <= set(got)
        if wrong:
            msg = f"{path}: model {kind} {sorted(got)}, expected {sorted(want)}"
            raise InputError(msg)
        for name, tail in want.items():
            elem, dims = got[name]
            expect = _shape_text(["n", *tail])
            if elem != _FLOAT:
                msg = f"{path}: {kind[:-1]} '{name}' has element type {elem}, expected float32 (1) of shape {expect}"
                raise InputError(msg)
            batch_ok = dims and _dynamic(dims[0])
            # The samples axis of `noise` may be dynamic too (the exporter leaves it so, so
            # that the number of samples is a run-time choice); every other size must match.
            rest = [t if (name == "noise" and i == 0 and _dynamic(d)) else d for i, (d, t) in enumerate(zip(dims[1:], tail, strict=False))]
            if len(dims) != 1 + len(tail) or not batch_ok or rest != tail:
                msg = (
                    f"{path}: {kind[:-1]} '{name}' has shape {_shape_text(dims)}, expected {expect} "
                    "(dynamic batch axis first; sizes from the 'hepgan' metadata)"
                )
                raise InputError(msg)
    training = doc.get("training") or {}
    scale = doc.get("spread_scale", [1.0] * 5)
    if not (isinstance(scale, list) and len(scale) == 5 and all(isinstance(v, int | float) and not isinstance(v, bool) and 0 < v < math.inf for v in scale)):
        msg = f"{path}: metadata 'spread_scale' is {scale!r}, expected 5 positive finite numbers (d0, z0, phi, theta, qop)"
        raise InputError(msg)
    return ModelInfo(
        path, geometry, fc, sc, f, l_, k, z, m, training if isinstance(training, Mapping) else {}, doc,
        tuple(float(v) for v in scale),
    )  # fmt: skip


def _dynamic(dim: object) -> bool:
    return dim is None or isinstance(dim, str) or (isinstance(dim, int) and dim <= 0)


# --------------------------------------------------------------------------- assignment
@dataclass(frozen=True)
class AssignmentConfig:
    """How network outputs become track candidates.

    Attributes:
        hit_threshold: a candidate hit joins the track when its ``hit_prob`` is at least this.
        max_hits_per_slot: hits taken per crossed surface (the most probable first); 1 is a
            helix crossing a surface once, 2 would admit overlapping modules.
        score_min: seeds whose ``score`` is below this make no track.
        min_hits: candidates with fewer hits (seed hits included) are dropped (ACTS's
            ambiguity solver in ``hepgan.acts.chain`` keeps >= 7 measurements).
        preselect: thin the seeds before the network (`hepgan.reco.ambiguity.preselect_seeds`):
            duplicates of one particle's track shrink to about one, which divides the
            network's cost by the seeds per particle (~5 here).
        preselect_chi2: provisional hits of the preselection lie within this squared
            normalised residual (both axes).
    """

    hit_threshold: float = 0.5
    max_hits_per_slot: int = 1
    score_min: float = 0.5
    min_hits: int = 7
    preselect: bool = True
    preselect_chi2: float = 9.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.hit_threshold <= 1.0 or not 0.0 <= self.score_min <= 1.0:
            msg = f"hit_threshold and score_min must be in [0, 1], got {self.hit_threshold}, {self.score_min}"
            raise ValueError(msg)
        if self.max_hits_per_slot < 1 or self.min_hits < 3:
            msg = f"max_hits_per_slot must be >= 1 and min_hits >= 3, got {self.max_hits_per_slot}, {self.min_hits}"
            raise ValueError(msg)


@numba.njit(cache=True)
def _assign_kernel(seeds, cand, prob, feats, score, threshold, per_slot, score_min, min_hits, head, per_slot_cols):
    """Candidate tracks: (keep (n_kept,) seed indices, hits flat, nhits, chi2, ndf).

    chi2 sums the squared normalised residuals (columns res1, res2 of the features) of the
    assigned candidate hits; ndf = 2 per such hit. Seed hits add nothing: the seed helix, from
    which the residuals are measured, passes through them.
    """
    n, n_slots, n_cand = cand.shape
    max_len = 3 + n_slots * min(per_slot, n_cand)
    hits = np.empty(n * max_len, dtype=np.int64)
    nhits = np.empty(n, dtype=np.int64)
    chi2 = np.empty(n, dtype=np.float64)
    ndf = np.empty(n, dtype=np.int64)
    keep = np.empty(n, dtype=np.int64)
    taken = np.empty(n_cand, dtype=np.bool_)
    n_keep = 0
    pos = 0
    for i in range(n):
        if not score[i] >= score_min:  # also drops NaN scores
            continue
        start = pos
        hits[pos] = seeds[i, 0]
        hits[pos + 1] = seeds[i, 1]
        hits[pos + 2] = seeds[i, 2]
        pos += 3
        c2 = 0.0
        na = 0
        for l in range(n_slots):
            for k in range(n_cand):
                taken[k] = False
            for _ in range(per_slot):
                best = -1
                best_p = threshold
                for k in range(n_cand):
                    if cand[i, l, k] >= 0 and not taken[k] and prob[i, l, k] >= best_p:
                        if best < 0 or prob[i, l, k] > prob[i, l, best]:
                            best = k
                            best_p = prob[i, l, k]
                if best < 0:
                    break
                taken[best] = True
                hits[pos] = cand[i, l, best]
                pos += 1
                col = head + l * per_slot_cols + 4 + 3 * best
                c2 += feats[i, col] ** 2 + feats[i, col + 1] ** 2
                na += 1
        if pos - start < min_hits:
            pos = start
            continue
        keep[n_keep] = i
        nhits[n_keep] = pos - start
        chi2[n_keep] = c2
        ndf[n_keep] = 2 * na
        n_keep += 1
    return keep[:n_keep], hits[:pos], nhits[:n_keep], chi2[:n_keep], ndf[:n_keep]


def empty_tracks() -> dict[str, np.ndarray]:
    """A tracks dict (TRACKS branches but event_id) of an event without tracks."""
    return {b.name: np.zeros(0, dtype=b.dtype) for b in TRACKS.branches[1:]}


def _wrap_phi(phi: np.ndarray) -> np.ndarray:
    return (phi + np.pi) % (2 * np.pi) - np.pi


# --------------------------------------------------------------------------- engine
def _resolve_providers(providers: str | Sequence[str] | None) -> list[str]:
    import onnxruntime as ort

    available = ort.get_available_providers()
    short = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}
    if providers is None:
        return ["CPUExecutionProvider"]
    if isinstance(providers, str):
        if providers == "auto":  # CUDA first when this onnxruntime has it
            return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
        providers = [providers]
    chosen = []
    for p in providers:
        name = short.get(p.lower(), p)
        if name not in available:
            msg = f"onnxruntime provider {p!r} is not available here; available: {available} (or 'auto')"
            raise InputError(msg)
        chosen.append(name)
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")  # fallback for operators the accelerator lacks
    return chosen


class Engine:
    """One onnxruntime session and the chain around it (module docstring).

    Args:
        model_path: the model file (``None``: :func:`shipped_model_path`).
        threads: onnxruntime intra-op threads (inter-op 1, sequential execution).
        providers: ``None`` (CPU), ``'auto'`` (CUDA first when available), or a list of
            onnxruntime provider names or the short names ``'cpu'``, ``'cuda'``.
        batch_size: seeds per network call (bounds memory: batch_size x M x Z noise floats).
        seed: base of the per-event noise seeds.
        assignment: hit assignment and track selection cuts.
        ambiguity: the resolver's sharing cuts.

    Create one per process (see :func:`cached_engine`): building the session costs
    milliseconds to seconds.
    """

    def __init__(
        self,
        model_path: str | os.PathLike | None = None,
        *,
        threads: int = 1,
        providers: str | Sequence[str] | None = None,
        batch_size: int = 8192,
        seed: int = 0,
        assignment: AssignmentConfig = AssignmentConfig(),
        ambiguity: AmbiguityConfig = AmbiguityConfig(),
    ) -> None:
        if threads < 1 or batch_size < 1:
            msg = f"threads and batch_size must be >= 1, got {threads}, {batch_size}"
            raise InputError(msg)
        path = Path(model_path) if model_path is not None else shipped_model_path()
        # Checked before the session: onnxruntime's own errors on a wrong file are long and
        # do not say what hepgan expected.
        self.info = read_model_info(path)
        self.path = path
        self.threads = int(threads)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.assignment = assignment
        self.ambiguity = ambiguity
        self.geometry = self.info.geometry
        self.feature_config = self.info.feature_config
        self.seeding_config = self.info.seeding_config
        self._table = layer_table(self.geometry, self.feature_config)
        self.providers = _resolve_providers(providers)
        self._session = self._make_session()
        noise_dims = next(i.shape for i in self._session.get_inputs() if i.name == "noise")
        self._dynamic_samples = len(noise_dims) == 3 and _dynamic(noise_dims[1])

    def _make_session(self) -> Any:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Spinning threads would burn the cores other workers of a Dask cluster need.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3
        try:
            return ort.InferenceSession(str(self.path), sess_options=opts, providers=self.providers)
        except Exception as err:  # onnxruntime raises its own Fail/InvalidGraph classes
            msg = f"{self.path}: onnxruntime cannot load the model: {str(err).strip().splitlines()[0]}"
            raise InputError(msg) from err

    def __repr__(self) -> str:
        return f"Engine({str(self.path)!r}, threads={self.threads}, providers={self.providers})"

    # ------------------------------------------------------------------ checks
    def check_geometry(self, volume_id: np.ndarray, layer_id: np.ndarray, source: str = "hits") -> None:
        """Raise ``InputError`` naming `source` when hits lie on layers the model's geometry
        lacks (the model has never seen them; its answer there would be a guess)."""
        self.geometry.check_hits(np.asarray(volume_id), np.asarray(layer_id), source=f"{source} (model {self.path.name})")

    # ------------------------------------------------------------------ network
    def noise(self, event_id: int, n_seeds: int) -> np.ndarray:
        """(n_seeds, M, Z) float32 standard normal noise of one event, from (seed, event_id),
        antithetic (see ``antithetic_normal``)."""
        rng = np.random.default_rng([self.seed % (1 << 63), int(event_id) % (1 << 63)])
        return antithetic_normal(rng, n_seeds, self.info.n_samples, self.info.noise_dim)

    def run_network(self, features: np.ndarray, noise: np.ndarray) -> dict[str, np.ndarray]:
        """Network outputs for (n, F) features and (n, M, Z) noise, in batches of batch_size."""
        n = len(features)
        outs: dict[str, list[np.ndarray]] = {k: [] for k in _OUTPUTS}
        for lo in range(0, n, self.batch_size):
            hi = min(lo + self.batch_size, n)
            res = self._session.run(list(_OUTPUTS), {"condition": features[lo:hi], "noise": noise[lo:hi]})
            for k, v in zip(_OUTPUTS, res, strict=True):
                outs[k].append(v)
        if n == 0:
            m = self.info
            shapes = {"params": (0, 5), "params_std": (0, 5), "score": (0,), "hit_prob": (0, m.n_slots, m.n_candidates)}
            return {k: np.zeros(s, np.float32) for k, s in shapes.items()}
        return {k: np.concatenate(v) for k, v in outs.items()}

    # ------------------------------------------------------------------ the chain
    def reconstruct_event(
        self,
        x: np.ndarray,
        y: np.ndarray,
        z: np.ndarray,
        volume_id: np.ndarray,
        layer_id: np.ndarray,
        *,
        event_id: int = 0,
    ) -> tuple[dict[str, np.ndarray], dict[str, float]]:
        """Tracks of one event.

        Args:
            x, y, z: (n_hits,) hit positions (mm).
            volume_id, layer_id: (n_hits,) geometry ids; hits on layers the model's geometry
                lacks are ignored (call :meth:`check_geometry` first to refuse them).
            event_id: the event's id, which seeds its noise.

        Returns:
            ``(tracks, ms)``: ``tracks`` maps every TRACKS branch but ``event_id`` to a numpy
            array: one value per track (``track_d0`` ... float32, ``track_ndf`` /
            ``track_nhits`` int32) and ``track_hit_index`` (sum(track_nhits),) int32 indices
            into this event's hits, tracks concatenated in order, each track's seed hits
            (inner -> outer) first and then its hits on the surfaces crossed after them.
            Tracks come best first (score, then hits). ``ms`` holds the milliseconds of each
            of :data:`ENGINE_STAGES`.
        """
        ms: dict[str, float] = {}
        n_hits = len(x)
        t0 = time.perf_counter()
        layer = self.geometry.layer_index(volume_id, layer_id)
        seeds = find_seeds(x, y, z, volume_id, layer_id, geometry=self.geometry, config=self.seeding_config, layer=layer)
        t1 = time.perf_counter()
        ms["seeding"] = (t1 - t0) * 1e3
        feats, cand = build_features(
            x, y, z, layer, seeds, config=self.feature_config, table=self._table, geometry=self.geometry
        )
        if self.assignment.preselect:
            chosen_seeds = preselect_seeds(
                seeds, cand, feats, n_hits=n_hits, n_candidates=self.feature_config.candidates,
                chi2_cut=self.assignment.preselect_chi2,
            )  # fmt: skip
            seeds, feats, cand = seeds[chosen_seeds], feats[chosen_seeds], cand[chosen_seeds]
        t2 = time.perf_counter()
        ms["features"] = (t2 - t1) * 1e3
        # Two passes when the model's samples axis is dynamic: score and hit probabilities of
        # every seed need one noise sample (the encoder runs once per seed either way), and the
        # M samples of the parameters are drawn only for the tracks that survive ambiguity
        # resolution, about one seed in five: the sampled head is most of the network's cost.
        # After the preselection nearly every seed becomes a track, so one pass with all samples
        # is cheaper than a scoring pass plus a sampling pass over the same seeds.
        two_pass = self._dynamic_samples and not self.assignment.preselect
        first_noise = np.zeros((len(seeds), 1, self.info.noise_dim), np.float32) if two_pass else self.noise(event_id, len(seeds))
        net = self.run_network(feats, first_noise)
        t3 = time.perf_counter()
        ms["network"] = (t3 - t2) * 1e3
        a = self.assignment
        fc = self.feature_config
        keep, hits, nhits, chi2, ndf = _assign_kernel(
            np.ascontiguousarray(seeds, dtype=np.int64),
            cand,
            np.ascontiguousarray(net["hit_prob"], dtype=np.float32),
            feats,
            np.ascontiguousarray(net["score"], dtype=np.float32),
            float(a.hit_threshold),
            int(a.max_hits_per_slot),
            float(a.score_min),
            int(a.min_hits),
            N_HELIX + N_SEED_HITS,
            4 + 3 * fc.candidates,
        )
        t4 = time.perf_counter()
        ms["assignment"] = (t4 - t3) * 1e3
        score = net["score"][keep]
        chosen = resolve(hits, nhits, score, n_hits=max(n_hits, 1), config=self.ambiguity)
        start = np.zeros(len(nhits) + 1, dtype=np.int64)
        np.cumsum(nhits, out=start[1:])
        # Gather the chosen candidates' hit ranges in one vectorised step.
        lengths = nhits[chosen]
        out_start = np.cumsum(lengths) - lengths
        flat = hits[np.repeat(start[chosen] - out_start, lengths) + np.arange(lengths.sum())]
        sel = keep[chosen]
        if two_pass:
            t_net = time.perf_counter()
            sampled = self.run_network(feats[sel], self.noise(event_id, len(sel)))
            net_ms = (time.perf_counter() - t_net) * 1e3
            ms["network"] += net_ms
            params, errs = sampled["params"], sampled["params_std"]
        else:
            net_ms = 0.0
            params = net["params"][sel]
            errs = net["params_std"][sel]
        tracks: dict[str, np.ndarray] = {}
        for j, p in enumerate(TRACK_PARAMETERS):
            values = params[:, j]
            if p == "phi":  # the network may leave (-pi, pi]; downstream compares angles
                values = _wrap_phi(values)
            tracks[f"track_{p}"] = np.asarray(values, dtype=np.float32)
        for j, p in enumerate(TRACK_PARAMETERS):
            tracks[f"track_err_{p}"] = np.asarray(errs[:, j] * self.info.spread_scale[j], dtype=np.float32)
        tracks["track_chi2"] = chi2[chosen].astype(np.float32)
        tracks["track_ndf"] = ndf[chosen].astype(np.int32)
        tracks["track_nhits"] = nhits[chosen].astype(np.int32)
        tracks["track_score"] = np.asarray(net["score"][sel], dtype=np.float32)
        tracks["track_hit_index"] = flat.astype(np.int32)
        ms["ambiguity"] = (time.perf_counter() - t4) * 1e3 - net_ms
        return tracks, ms


@functools.lru_cache(maxsize=4)
def _cached(path: str, mtime_ns: int, size: int, options: tuple) -> Engine:
    return Engine(path, **dict(options))


def cached_engine(model_path: str | os.PathLike | None = None, **options: Any) -> Engine:
    """The process's Engine for this model file and these options (created on first use).

    Keyed by the file's path, modification time and size, so a replaced model is reloaded.
    Dask workers call this once per task and build one session per process.
    """
    path = Path(model_path) if model_path is not None else shipped_model_path()
    try:
        st = path.stat()
    except OSError as err:
        msg = f"{path}: no such model file"
        raise InputError(msg) from err
    return _cached(str(path.resolve()), st.st_mtime_ns, st.st_size, tuple(sorted(options.items())))
