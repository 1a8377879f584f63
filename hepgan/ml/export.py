"""`hepgan export MODEL.keras -o MODEL.onnx`: the generator to ONNX, checked for parity.

Exported with tf2onnx (opset 17) under TensorFlow, whatever backend trained the checkpoint.
Inputs are named `condition` (n, F) and `noise` (n, M, Z) with dynamic n and M; outputs
`params`, `params_std`, `score`, `hit_prob` (see `hepgan.ml.model`). The normalisation is inside
the graph. The ONNX metadata (key ``hepgan``, JSON) carries everything the engine checks before
running: version, geometry, feature layout and configs, training config and versions.

The export refuses to write a file whose outputs differ from Keras's by more than 1e-5 on real
features (from the validation set) and fixed noise: absolute, and relative where the Keras value
exceeds 1 in magnitude (z0 in mm reaches 200, where one float32 step is 1.5e-5).
"""

from __future__ import annotations

import json
import logging
import os
import zipfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from hepgan.errors import HepganError, InputError
from hepgan.io.atomic import write_bytes_atomically

__all__ = ["METADATA_KEY", "ParityError", "check_model_file", "export_onnx", "sidecar_paths", "write_sidecars"]

log = logging.getLogger(__name__)

METADATA_KEY = "hepgan"
#: ONNX against Keras: |difference| <= PARITY_TOLERANCE * max(1, |Keras value|). Relative above 1
#: because float32 cannot do better: z0 (mm) reaches 200, where one step is 2**-16 = 1.5e-5, and
#: an absolute 1e-5 refused models whose z0 differed by that one step (2026-12 retraining).
PARITY_TOLERANCE = 1e-5


class ParityError(HepganError):
    """ONNX and Keras disagree beyond the tolerance: the export is refused."""


def _load_keras(path: Path):
    import keras

    import hepgan.ml.model  # noqa: F401  (registers the custom layers for safe loading)

    if not path.exists():
        msg = f"{path}: no such file"
        raise InputError(msg)
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except (ValueError, OSError, KeyError, TypeError) as err:
        # Keras's messages run over several lines; the command line shows one.
        first = " ".join(str(err).split()) or type(err).__name__
        msg = f"{path}: not a hepgan generator checkpoint (.keras): {first}"
        raise InputError(msg) from err


def sidecar_paths(model_path: Path) -> tuple[Path, Path]:
    """A shipped model's export files: ``<name>.export.json`` (the metadata of its ONNX, the
    spread calibration included) and ``<name>.parity.npz`` (real features for the parity check),
    which stand in for the training folder (config.json, the datasets) a shipped model has not."""
    return model_path.with_suffix(".export.json"), model_path.with_suffix(".parity.npz")


def _sidecar_metadata(model_path: Path) -> dict[str, Any] | None:
    meta_path, parity_path = sidecar_paths(model_path)
    if not meta_path.exists():
        return None
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as err:
        msg = f"{meta_path}: not a JSON document ({err})"
        raise InputError(msg) from err
    missing = [k for k in ("n_features", "noise_dim", "n_samples", "geometry", "feature_config") if k not in meta]
    if not isinstance(meta, dict) or missing:
        msg = f"{meta_path}: missing keys {missing}; expected the 'hepgan' metadata of the model's ONNX file"
        raise InputError(msg)
    if not parity_path.exists():
        msg = f"{parity_path}: missing; export of a shipped model needs its parity features beside {meta_path.name}"
        raise InputError(msg)
    return {**meta, "_parity_features": str(parity_path)}


def _metadata(model_dir: Path, model, model_path: Path | None = None) -> dict[str, Any]:
    """The `hepgan` metadata from the files beside the checkpoint (config, card, dataset), or
    from a shipped model's sidecar files (:func:`sidecar_paths`)."""
    import hepgan
    from hepgan.ml.dataset import DatasetConfig
    from hepgan.reco.geometry import GENERIC_DETECTOR

    config_path = model_dir / "config.json"
    card_path = model_dir / "model_card.json"
    if not config_path.exists() and model_path is not None:
        shipped = _sidecar_metadata(model_path)
        if shipped is not None:
            return shipped
    if not config_path.exists():
        sidecar = sidecar_paths(model_path)[0].name if model_path is not None else "<name>.export.json"
        msg = (f"{config_path}: missing; export needs the resolved training config saved beside the model "
               f"(hepgan train writes it), or a shipped model's {sidecar} and parity features")  # fmt: skip
        raise InputError(msg)
    config = json.loads(config_path.read_text())
    card = json.loads(card_path.read_text()) if card_path.exists() else {}
    dataset_stats_path = Path(config["train"]["dataset"]) / "stats.json"
    dataset_stats = json.loads(dataset_stats_path.read_text()) if dataset_stats_path.exists() else {}
    ds_config = dataset_stats.get("config") or asdict(DatasetConfig())
    if dataset_stats and dataset_stats.get("geometry") != GENERIC_DETECTOR.fingerprint():
        msg = f"{dataset_stats_path}: geometry fingerprint {dataset_stats.get('geometry')} is not the shipped generic detector's"
        raise InputError(msg)
    mcfg = config["model"]
    return {
        "hepgan_version": hepgan.__version__,
        "geometry": GENERIC_DETECTOR.to_dict(),
        "geometry_fingerprint": GENERIC_DETECTOR.fingerprint(),
        "feature_config": ds_config.get("features"),
        "seeding_config": ds_config.get("seeding"),
        "feature_names": dataset_stats.get("layout", {}).get("features", {}).get("names"),
        "n_features": mcfg["n_features"],
        "n_slots": mcfg["n_slots"],
        "n_candidates": mcfg["n_candidates"],
        "noise_dim": mcfg["noise_dim"],
        "n_samples": mcfg["n_samples"],
        "training": {
            "config": config["train"],
            "model": mcfg,
            "versions": card.get("versions"),
            "validation": card.get("validation"),
            "hits_per_event": dataset_stats.get("hits_per_event"),
            "best_epoch": card.get("best_epoch"),
        },
    }


def _parity_inputs(meta: dict, n: int = 512, seed: int = 7) -> dict[str, np.ndarray]:
    """Real features from the validation set when it is reachable, else the training set (or
    a shipped model's parity features)."""
    from hepgan.ml.train import load_shards

    if "_parity_features" in meta:
        with np.load(meta["_parity_features"], allow_pickle=False) as doc:
            features = doc["condition"][:n]
        rng = np.random.default_rng(seed)
        noise = rng.standard_normal((len(features), meta["n_samples"], meta["noise_dim"])).astype(np.float32)
        return {"condition": features.astype(np.float32), "noise": noise}
    train_cfg = meta["training"]["config"]
    for folder in (train_cfg.get("validation"), train_cfg.get("dataset")):
        if folder and (Path(folder) / "stats.json").exists():
            data, _ = load_shards(folder, limit=n, seed=seed)
            features = data.features
            break
    else:
        msg = "parity check needs real features: neither the validation nor the training dataset of the model is reachable"
        raise InputError(msg)
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((len(features), meta["n_samples"], meta["noise_dim"])).astype(np.float32)
    return {"condition": features.astype(np.float32), "noise": noise}


def check_model_file(model_path: str | os.PathLike) -> None:
    """Refuse what cannot be a .keras checkpoint, before TensorFlow loads (seconds), since Keras
    reports a non-zip as "file not found"."""
    model_path = Path(model_path)
    if not model_path.is_file():
        msg = f"{model_path}: no such file; expected a generator .keras checkpoint written by 'hepgan train'"
        raise InputError(msg)
    if not zipfile.is_zipfile(model_path):
        msg = f"{model_path}: not a hepgan generator checkpoint (.keras): not a zip archive"
        raise InputError(msg)


def export_onnx(model_path: str | os.PathLike, output: str | os.PathLike, *, opset: int = 17) -> dict[str, float]:
    """Export `model_path` (generator.keras with config.json beside it) to `output`; returns the
    max abs difference per output. Nothing is written unless parity holds."""
    model_path, output = Path(model_path), Path(output)
    check_model_file(model_path)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    if keras.backend.backend() != "tensorflow":
        msg = f"export runs under TensorFlow (tf2onnx); KERAS_BACKEND is {keras.backend.backend()!r}"
        raise InputError(msg)
    import onnx
    import onnxruntime as ort
    import tensorflow as tf
    import tf2onnx

    model_path, output = Path(model_path), Path(output)
    model = _load_keras(model_path)
    meta = _metadata(model_path.parent, model, model_path)
    spec = (
        tf.TensorSpec((None, meta["n_features"]), tf.float32, name="condition"),
        tf.TensorSpec((None, None, meta["noise_dim"]), tf.float32, name="noise"),
    )

    @tf.function(input_signature=spec)
    def serve(condition, noise):
        out = _inference_graph(model, condition, noise)
        return {k: tf.identity(out[k], name=k) for k in ("params", "params_std", "score", "hit_prob")}

    proto, _ = tf2onnx.convert.from_function(serve, input_signature=spec, opset=opset)
    proto = _rename_outputs(proto)
    entry = proto.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = json.dumps({k: v for k, v in meta.items() if k != "_parity_features"})
    onnx.checker.check_model(proto)

    inputs = _parity_inputs(meta)
    expected = model({"condition": inputs["condition"], "noise": inputs["noise"]}, training=False)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    got = dict(zip([o.name for o in session.get_outputs()], session.run(None, inputs), strict=True))
    keys = ("params", "params_std", "score", "hit_prob")
    diffs = {k: float(np.max(np.abs(np.asarray(expected[k]) - got[k]))) for k in keys}
    # relative to the value where it exceeds 1 (PARITY_TOLERANCE)
    scaled = {k: float(np.max(np.abs(np.asarray(expected[k]) - got[k]) / np.maximum(1.0, np.abs(np.asarray(expected[k])))))
              for k in keys}  # fmt: skip
    if max(scaled.values()) > PARITY_TOLERANCE:
        msg = (f"{model_path}: ONNX and Keras outputs differ by {diffs} (relative above 1: {scaled}; "
               f"> {PARITY_TOLERANCE}); nothing written")  # fmt: skip
        raise ParityError(msg)
    output.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomically(output, proto.SerializeToString())
    log.debug("exported %s -> %s (max abs diff %s)", model_path, output, diffs)
    return diffs


def _inference_graph(model, condition, noise) -> dict:
    """The generator's outputs computed as the Keras model does, with the sampled head's first
    layer split: ``W [h; z] + b = (W_h h + b) + W_z z``, so the embedding's share (the larger
    part of that layer) is computed once per seed instead of once per noise sample. Same
    weights, same function; the parity check below holds it to the Keras model."""
    import tensorflow as tf

    encoder = model.get_layer("encoder")
    head = model.get_layer("head")
    h, score_logit, hit_logits = encoder(condition, training=False)
    first = head.get_layer("head_0")
    kernel = first.kernel
    width = h.shape[-1]
    per_seed = tf.matmul(h, kernel[:width]) + first.bias
    per_sample = tf.einsum("nmz,zk->nmk", noise, kernel[width:])
    x = first.activation(per_seed[:, None, :] + per_sample)
    x = head.get_layer("head_1")(x)
    samples = head.get_layer("residuals")(x)
    seed = model.get_layer("seed_estimate")(condition)
    params, params_std = model.get_layer("to_params")(seed, samples)
    mask = model.get_layer("candidate_mask")(condition)
    return {
        "params": params,
        "params_std": params_std,
        "score": tf.sigmoid(tf.reshape(score_logit, [-1])),
        "hit_prob": tf.sigmoid(hit_logits) * mask,
    }


def _rename_outputs(proto):
    """tf2onnx names outputs after the function's dict keys with suffixes; give them the
    interface names (params, params_std, score, hit_prob)."""
    wanted = ("params", "params_std", "score", "hit_prob")
    for out in proto.graph.output:
        for name in sorted(wanted, key=len, reverse=True):
            if out.name == name:
                break
            if out.name.startswith(name) and out.name[len(name) :].lstrip(":_0123456789") == "":
                old = out.name
                for node in proto.graph.node:
                    node.output[:] = [name if o == old else o for o in node.output]
                    node.input[:] = [name if i == old else i for i in node.input]
                out.name = name
                break
    names = [o.name for o in proto.graph.output]
    if sorted(names) != sorted(wanted):
        msg = f"exported graph has outputs {names}, expected {list(wanted)}"
        raise HepganError(msg)
    return proto


def write_sidecars(onnx_model: str | os.PathLike, keras_model: str | os.PathLike, events: str | os.PathLike,
                   *, n: int = 256, seed: int = 7) -> tuple[Path, Path]:  # fmt: skip
    """Write `keras_model`'s export files (:func:`sidecar_paths`) for shipping: the metadata of
    `onnx_model` (its export of the same checkpoint) and the features of `n` seeds drawn from
    the events of `events` (held-out, e.g. a validation file), built as the engine builds them."""
    from hepgan.io.atomic import atomic_output, write_text_atomically
    from hepgan.io.events import iterate_chunks
    from hepgan.reco.engine import Engine
    from hepgan.reco.features import build_features
    from hepgan.reco.seeding import find_seeds

    engine = Engine(onnx_model)
    parts = []
    for chunk in iterate_chunks(events, trees=("hits",), step_events=10):
        hits = chunk["hits"]
        for i in range(len(hits)):
            x, y, z, vol, lay = (np.asarray(hits[k][i]) for k in ("hit_x", "hit_y", "hit_z", "hit_volume_id", "hit_layer_id"))
            layer = engine.geometry.layer_index(vol, lay)
            seeds = find_seeds(x, y, z, vol, lay, geometry=engine.geometry, config=engine.seeding_config, layer=layer)
            feats, _ = build_features(x, y, z, layer, seeds, config=engine.feature_config, table=engine._table,
                                      geometry=engine.geometry)  # fmt: skip
            parts.append(feats)
        if sum(len(p) for p in parts) >= 4 * n:
            break
    features = np.concatenate(parts).astype(np.float32)
    if len(features) < n:
        msg = f"{events}: {len(features)} seeds; expected at least {n} for the parity features"
        raise InputError(msg)
    chosen = np.sort(np.random.default_rng(seed).choice(len(features), n, replace=False))
    meta_path, parity_path = sidecar_paths(Path(keras_model))
    write_text_atomically(meta_path, json.dumps(dict(engine.info.metadata), indent=1) + "\n")
    with atomic_output(parity_path) as tmp, tmp.open("wb") as fh:
        np.savez_compressed(fh, condition=features[chosen])
    return meta_path, parity_path
