"""A throwaway ONNX model with the hepgan interface, for tests only (never shipped).

It imitates a generator without learning anything: ``params`` is the seed estimate of
feature columns 0-4 (d0, 100 * z0 column, pi * phi column, theta column + pi/2, qop) plus
1e-3 x the mean of the noise samples (so the noise seed matters), ``params_std`` is 0.01 x
the RMS of the noise, ``score`` is 1 and ``hit_prob`` is 1 for a present candidate whose
normalised residuals satisfy res1^2 + res2^2 < 9, else 0.

Tests use :func:`model_for_tests`: the real shipped model when it exists
(``deploy/models/hepgan-generic.onnx``), else this one.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np

from hepgan.reco.features import N_HELIX, N_SEED_HITS, FeatureConfig
from hepgan.reco.geometry import GENERIC_DETECTOR, Geometry
from hepgan.reco.seeding import SeedingConfig

SHIPPED = Path(__file__).resolve().parent.parent / "deploy" / "models" / "hepgan-generic.onnx"

_FEATURES = FeatureConfig()
_SEEDING = SeedingConfig()


def build_fake_model(
    path: Path,
    *,
    feature_config: FeatureConfig = _FEATURES,
    seeding_config: SeedingConfig = _SEEDING,
    geometry: Geometry = GENERIC_DETECTOR,
    n_samples: int = 4,
    noise_dim: int = 8,
    metadata: dict | None = None,
    with_metadata: bool = True,
    input_names: tuple[str, str] = ("condition", "noise"),
    condition_width: int | None = None,
    training: dict | None = None,
) -> Path:
    """Write the throwaway model to `path` (variants of the arguments make bad models)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    fc = feature_config
    f = fc.n_features
    width = f if condition_width is None else condition_width
    l_, k = fc.layers, fc.candidates
    cname, nname = input_names
    head = N_HELIX + N_SEED_HITS
    per_slot = 4 + 3 * k
    res1 = [head + s * per_slot + 4 + 3 * c for s in range(l_) for c in range(k)]

    def const(name: str, value) -> onnx.TensorProto:
        return numpy_helper.from_array(np.asarray(value), name)

    inits = [
        const("helix_idx", np.arange(5, dtype=np.int64)),
        const("scale", np.array([1, 100, math.pi, 1, 1], np.float32)),
        const("offset", np.array([0, 0, 0, math.pi / 2, 0], np.float32)),
        const("idx1", np.array(res1, np.int64)),
        const("idx2", np.array(res1, np.int64) + 1),
        const("idxm", np.array(res1, np.int64) + 2),
        const("noise_scale", np.array(1e-3, np.float32)),
        const("std_scale", np.array(1e-2, np.float32)),
        const("zero", np.array(0.0, np.float32)),
        const("one", np.array(1.0, np.float32)),
        const("nine", np.array(9.0, np.float32)),
        const("col0", np.array(0, np.int64)),
        const("prob_shape", np.array([-1, l_, k], np.int64)),
    ]
    nodes = [
        helper.make_node("Gather", [cname, "helix_idx"], ["helix"], axis=1),
        helper.make_node("Mul", ["helix", "scale"], ["helix_scaled"]),
        helper.make_node("Add", ["helix_scaled", "offset"], ["seed_params"]),
        helper.make_node("ReduceMean", [nname], ["noise_mean"], axes=[1], keepdims=0),
        helper.make_node("Gather", ["noise_mean", "helix_idx"], ["noise5"], axis=1),
        helper.make_node("Mul", ["noise5", "noise_scale"], ["shift"]),
        helper.make_node("Add", ["seed_params", "shift"], ["params"]),
        helper.make_node("Mul", [nname, nname], ["noise_sq"]),
        helper.make_node("ReduceMean", ["noise_sq"], ["noise_ms"], axes=[1], keepdims=0),
        helper.make_node("Gather", ["noise_ms", "helix_idx"], ["noise_ms5"], axis=1),
        helper.make_node("Sqrt", ["noise_ms5"], ["noise_rms"]),
        helper.make_node("Mul", ["noise_rms", "std_scale"], ["params_std"]),
        helper.make_node("Gather", [cname, "col0"], ["c0"], axis=1),
        helper.make_node("Mul", ["c0", "zero"], ["c0_zero"]),
        helper.make_node("Add", ["c0_zero", "one"], ["score"]),
        helper.make_node("Gather", [cname, "idx1"], ["r1"], axis=1),
        helper.make_node("Gather", [cname, "idx2"], ["r2"], axis=1),
        helper.make_node("Gather", [cname, "idxm"], ["mask"], axis=1),
        helper.make_node("Mul", ["r1", "r1"], ["r1sq"]),
        helper.make_node("Mul", ["r2", "r2"], ["r2sq"]),
        helper.make_node("Add", ["r1sq", "r2sq"], ["chi"]),
        helper.make_node("Less", ["chi", "nine"], ["near"]),
        helper.make_node("Cast", ["near"], ["near_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["near_f", "mask"], ["prob_flat"]),
        helper.make_node("Reshape", ["prob_flat", "prob_shape"], ["hit_prob"]),
    ]
    graph = helper.make_graph(
        nodes,
        "hepgan_fake_generator",
        [
            helper.make_tensor_value_info(cname, TensorProto.FLOAT, ["n", width]),
            helper.make_tensor_value_info(nname, TensorProto.FLOAT, ["n", n_samples, noise_dim]),
        ],
        [
            helper.make_tensor_value_info("params", TensorProto.FLOAT, ["n", 5]),
            helper.make_tensor_value_info("params_std", TensorProto.FLOAT, ["n", 5]),
            helper.make_tensor_value_info("score", TensorProto.FLOAT, ["n"]),
            helper.make_tensor_value_info("hit_prob", TensorProto.FLOAT, ["n", l_, k]),
        ],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="hepgan-tests")
    model.ir_version = 8
    if with_metadata:
        doc = {
            "hepgan_version": "test",
            "geometry": geometry.to_dict(),
            "geometry_fingerprint": geometry.fingerprint(),
            "feature_config": asdict(fc),
            "seeding_config": asdict(seeding_config),
            "n_features": f,
            "n_slots": l_,
            "n_candidates": k,
            "noise_dim": noise_dim,
            "n_samples": n_samples,
            "training": training if training is not None else {"hits_per_event": [8000, 16000], "fake": True},
        }
        doc.update(metadata or {})
        helper.set_model_props(model, {"hepgan": json.dumps(doc)})
    onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, path)
    return path


def model_for_tests(tmp_dir: Path) -> Path:
    """The shipped model when it exists, else the throwaway one written into `tmp_dir`."""
    if SHIPPED.is_file():
        return SHIPPED
    return build_fake_model(Path(tmp_dir) / "fake.onnx")
