"""The model file: where the shipped one is, and reading and checking one before any session.

The model file (``model.onnx``, opset 17) has inputs ``condition`` float32 (n, F) and
``noise`` float32 (n, M, Z), outputs ``params`` (n, 5) = d0 (mm), z0 (mm), phi (rad),
theta (rad), qop (e/GeV), ``params_std`` (n, 5) in the same units, ``score`` (n,) and
``hit_prob`` (n, L, K); its ``metadata_props`` key ``hepgan`` holds a JSON document with the
geometry, the feature and seeding configs and the shapes (see :class:`ModelInfo`).

:func:`read_model_info` reads the file with the ``onnx`` package (``onnx.load``), runs
``onnx.checker`` on it and checks the metadata and the graph's inputs and outputs against
that interface, all before onnxruntime is asked for a session: onnxruntime's own errors on a
wrong file are long and do not say what hepgan expected. ``onnx`` is imported on first use
(it costs most of a second), and it never imports TensorFlow.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hepgan.errors import InputError
from hepgan.io.config import load_config
from hepgan.reco.features import FeatureConfig
from hepgan.reco.geometry import Geometry
from hepgan.reco.seeding import SeedingConfig
from hepgan.reco.uncertainty import ErrorModel

__all__ = [
    "CARD_CALIBRATION_KEYS",
    "INPUTS",
    "MODEL_ENV",
    "OUTPUTS",
    "ModelInfo",
    "is_dynamic",
    "read_model_info",
    "shipped_model_path",
    "write_model_metadata",
]

#: Environment variable naming the model to use when none is given (overrides the shipped one).
MODEL_ENV = "HEPGAN_MODEL"

#: The graph's inputs and outputs, by name (module docstring).
INPUTS = ("condition", "noise")
OUTPUTS = ("params", "params_std", "score", "hit_prob")

_SHIPPED_NAME = "hepgan-generic.onnx"
_SIZES = ("n_features", "n_slots", "n_candidates", "noise_dim", "n_samples")
_REQUIRED_META = ("geometry", "feature_config", "seeding_config", *_SIZES)


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
        error_model: the tracks' errors against the truth, from ``hepgan calibrate`` (None when
            the model was never calibrated against truth: its tracks then carry NaN errors).
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
    error_model: ErrorModel | None = None


def is_dynamic(dim: object) -> bool:
    """Whether a graph dimension (int, symbol name or None) is left open."""
    return dim is None or isinstance(dim, str) or (isinstance(dim, int) and dim <= 0)


# --------------------------------------------------------------------------- the ONNX file
def _tensor_info(value_info: Any) -> tuple[int, list[int | str | None]]:
    """ValueInfoProto -> (element type, dims: int, symbol name, or None when neither)."""
    tensor = value_info.type.tensor_type
    dims: list[int | str | None] = []
    for dim in tensor.shape.dim:
        which = dim.WhichOneof("value")
        dims.append(dim.dim_value if which == "dim_value" else dim.dim_param if which == "dim_param" else None)
    return tensor.elem_type, dims


def _load_checked(path: Path) -> Any:
    """The ModelProto of `path`, parsed by ``onnx.load`` and passed by ``onnx.checker``."""
    import onnx
    import onnx.checker
    from google.protobuf.message import DecodeError

    try:
        proto = onnx.load(path)
    except (DecodeError, ValueError) as err:
        msg = f"{path}: not an ONNX model ({err}); expected a model.onnx exported by 'hepgan export'"
        raise InputError(msg) from err
    if not proto.HasField("graph"):  # any byte string may parse as an empty message
        msg = f"{path}: not an ONNX model (no graph); expected a model.onnx exported by 'hepgan export'"
        raise InputError(msg)
    try:
        onnx.checker.check_model(proto)
    except (onnx.checker.ValidationError, ValueError) as err:
        msg = f"{path}: onnx.checker refuses the model: {str(err).strip().splitlines()[0]}"
        raise InputError(msg) from err
    return proto


def _hepgan_metadata(path: Path, proto: Any) -> dict[str, Any]:
    """The ``hepgan`` metadata document, with every key :class:`ModelInfo` needs."""
    meta = {entry.key: entry.value for entry in proto.metadata_props}
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
    return doc


def _config_from(cls: type, doc: Any, path: Path, key: str) -> Any:
    if not isinstance(doc, Mapping):
        msg = f"{path}: metadata '{key}' is {type(doc).__name__}, expected an object of {cls.__name__} fields"
        raise InputError(msg)
    return load_config(cls, doc, where=f"{path}: metadata '{key}'",
                       unknown_hint=f" (unknown to this hepgan's {cls.__name__}: newer model?)")  # fmt: skip


def _shape_text(dims: Sequence) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


def _check_interface(path: Path, graph: Any, sizes: dict[str, int]) -> None:
    """Graph inputs exactly ``condition``, ``noise``, outputs at least :data:`OUTPUTS`, all
    float32 with a dynamic batch axis and the metadata's sizes."""
    from onnx import TensorProto

    inputs = {vi.name: _tensor_info(vi) for vi in graph.input}
    outputs = {vi.name: _tensor_info(vi) for vi in graph.output}
    f, l_, k, z, m = (sizes[x] for x in _SIZES)
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
            if elem != TensorProto.FLOAT:
                msg = f"{path}: {kind[:-1]} '{name}' has element type {elem}, expected float32 (1) of shape {expect}"
                raise InputError(msg)
            batch_ok = dims and is_dynamic(dims[0])
            # The samples axis of `noise` may be dynamic too (the exporter leaves it so, so
            # that the number of samples is a run-time choice); every other size must match.
            rest = [t if (name == "noise" and i == 0 and is_dynamic(d)) else d for i, (d, t) in enumerate(zip(dims[1:], tail, strict=False))]
            if len(dims) != 1 + len(tail) or not batch_ok or rest != tail:
                msg = (
                    f"{path}: {kind[:-1]} '{name}' has shape {_shape_text(dims)}, expected {expect} "
                    "(dynamic batch axis first; sizes from the 'hepgan' metadata)"
                )
                raise InputError(msg)


def read_model_info(path: str | os.PathLike) -> ModelInfo:
    """Read and check a model file without creating an onnxruntime session.

    Raises ``InputError`` naming the file when it is not an ONNX model, fails
    ``onnx.checker``, lacks the ``hepgan`` metadata, or has other input or output names,
    element types or shapes than the interface in the module docstring.
    """
    path = Path(path)
    if not path.is_file():
        msg = f"{path}: no such model file" if not path.exists() else f"{path}: is not a file, expected model.onnx"
        raise InputError(msg)
    proto = _load_checked(path)
    doc = _hepgan_metadata(path, proto)
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
        sizes = {k: int(doc[k]) for k in _SIZES}
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
    opset = None
    for entry in proto.opset_import:
        if entry.domain in ("", "ai.onnx"):
            opset = entry.version
    if opset is not None and opset < 13:
        msg = f"{path}: opset {opset}, expected >= 13 (hepgan exports opset 17)"
        raise InputError(msg)
    _check_interface(path, proto.graph, sizes)
    training = doc.get("training") or {}
    scale = doc.get("spread_scale", [1.0] * 5)
    if not (isinstance(scale, list) and len(scale) == 5 and all(isinstance(v, int | float) and not isinstance(v, bool) and 0 < v < math.inf for v in scale)):
        msg = f"{path}: metadata 'spread_scale' is {scale!r}, expected 5 positive finite numbers (d0, z0, phi, theta, qop)"
        raise InputError(msg)
    errors = doc.get("error_model")
    error_model = None if errors is None else ErrorModel.from_dict(errors, where=f"{path}: metadata 'error_model'")
    return ModelInfo(
        path, geometry, fc, sc, sizes["n_features"], sizes["n_slots"], sizes["n_candidates"], sizes["noise_dim"],
        sizes["n_samples"], training if isinstance(training, Mapping) else {}, doc, tuple(float(v) for v in scale),
        error_model,
    )  # fmt: skip


#: the metadata a model card (``<name>.card.json``, training/write_card.py) repeats
CARD_CALIBRATION_KEYS = ("spread_scale", "spread_calibration", "error_model")


def write_model_metadata(path: str | os.PathLike, updates: Mapping[str, Any], *,
                         output: str | os.PathLike | None = None) -> Path:  # fmt: skip
    """Write model `path` with `updates` merged into its ``hepgan`` metadata to `output` (default:
    `path` itself), atomically, and check that the result still reads. The one way calibrations
    and inference settings reach a model file; returns where it was written.

    A shipped model's files beside the written one that repeat its metadata follow it: the
    export sidecar ``<name>.export.json`` (``hepgan.ml.export.sidecar_paths``; re-exporting
    the model reads it) is rewritten, and the card ``<name>.card.json`` gets its calibration
    (:data:`CARD_CALIBRATION_KEYS`). Why: ``hepgan calibrate --in-place`` on the shipped model
    left both with the old calibration."""
    import onnx

    from hepgan.io.atomic import write_bytes_atomically, write_text_atomically

    path = Path(path)
    doc = {**read_model_info(path).metadata, **updates}
    proto = onnx.load(path)
    for entry in proto.metadata_props:
        if entry.key == "hepgan":
            entry.value = json.dumps(doc)
    target = Path(output) if output is not None else path
    write_bytes_atomically(target, proto.SerializeToString())
    read_model_info(target)
    export = target.with_suffix(".export.json")
    if export.exists():
        write_text_atomically(export, json.dumps(doc, indent=1) + "\n")
    card_path = target.with_suffix(".card.json")
    if card_path.exists():
        try:
            card = json.loads(card_path.read_text())
        except ValueError as err:
            msg = f"{card_path}: not a JSON document ({err}); expected the model card of {target.name}"
            raise InputError(msg) from err
        card["calibration"] = {k: doc.get(k) for k in CARD_CALIBRATION_KEYS}
        write_text_atomically(card_path, json.dumps(card, indent=1) + "\n")
    return target
