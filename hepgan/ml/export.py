"""`hepgan export MODEL.keras -o MODEL.onnx`: the generator to ONNX, checked for parity.

Exported with tf2onnx (opset 17) under TensorFlow, whatever backend trained the checkpoint.
Inputs are named `condition` (n, F) and `noise` (n, M, Z) with dynamic n and M; outputs
`params`, `params_std`, `score`, `hit_prob` (see `hepgan.ml.model`). The normalisation is inside
the graph. The ONNX metadata (key ``hepgan``, JSON) carries everything the engine checks before
running: version, geometry, feature layout and configs, training config and versions.

The export refuses to write a file whose outputs differ from Keras's by more than 1e-5 on real
features (from the validation set) and fixed noise.
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

__all__ = ["METADATA_KEY", "ParityError", "check_model_file", "export_onnx"]

log = logging.getLogger(__name__)

METADATA_KEY = "hepgan"
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


def _metadata(model_dir: Path, model) -> dict[str, Any]:
    """The `hepgan` metadata from the files beside the checkpoint (config, card, dataset)."""
    import hepgan
    from hepgan.ml.dataset import DatasetConfig
    from hepgan.reco.geometry import GENERIC_DETECTOR

    config_path = model_dir / "config.json"
    card_path = model_dir / "model_card.json"
    if not config_path.exists():
        msg = f"{config_path}: missing; export needs the resolved training config saved beside the model"
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
    """Real features from the validation set when it is reachable, else the training set."""
    from hepgan.ml.train import load_shards

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
    meta = _metadata(model_path.parent, model)
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
    entry.value = json.dumps(meta)
    onnx.checker.check_model(proto)

    inputs = _parity_inputs(meta)
    expected = model({"condition": inputs["condition"], "noise": inputs["noise"]}, training=False)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    got = dict(zip([o.name for o in session.get_outputs()], session.run(None, inputs), strict=True))
    diffs = {k: float(np.max(np.abs(np.asarray(expected[k]) - got[k]))) for k in ("params", "params_std", "score", "hit_prob")}
    if max(diffs.values()) > PARITY_TOLERANCE:
        msg = f"{model_path}: ONNX and Keras outputs differ by {diffs} (> {PARITY_TOLERANCE}); nothing written"
        raise ParityError(msg)
    output.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomically(output, proto.SerializeToString())
    log.info("exported %s -> %s (max abs diff %s)", model_path, output, diffs)
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
