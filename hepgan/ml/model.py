"""The conditional GAN: generator G(condition, noise) and discriminator D(condition, params).

Plain Keras 3 (`keras.ops` only), so the same model trains under TensorFlow (CPU, CI) and JAX
(the lent GPU) and exports to ONNX under TensorFlow.

What is generated. For each seed the generator sees the condition features of
`hepgan.reco.features` (F values: the seed helix, the seed hits, and the K nearest hits on each of
the next L surfaces with their normalised residuals). It returns

- `score` (n,): probability that the seed is real (its hits one particle's: the truth label,
  or the classic algorithm's track where a training set has no truth);
- `hit_prob` (n, L, K): probability that each candidate hit belongs to that track (0 where the
  feature mask says there is no candidate);
- `params` (n, 5) and `params_std` (n, 5): mean and spread over M noise samples of the perigee
  (d0 mm, z0 mm, phi rad, theta rad, qop e/GeV, ACTS convention).

Parameters are generated as residuals to a reference helix, in units of a residual scale (qop
relative to the reference's), because the reference already knows the track to about that
precision and the network only has to learn the correction and its uncertainty. The reference is
the features' fit block (``hepgan.reco.roadfit``: the helix fitted over the seed and its road,
`FIT_RESIDUAL_SCALE`) when they carry one, else the seed helix (columns 0-4, `RESIDUAL_SCALE`;
models trained before the fit existed).
The noise enters after the condition encoder, so the encoder runs once per seed and only a small
head runs per sample: M samples cost little more than one.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import keras
from keras import layers, ops

__all__ = [
    "FIT_RESIDUAL_SCALE",
    "PARAMETERS",
    "RESIDUAL_SCALE",
    "GeneratorParts",
    "ModelConfig",
    "build_discriminator",
    "build_export_generator",
    "build_generator_parts",
    "residuals_from_params",
]

PARAMETERS = ("d0", "z0", "phi", "theta", "qop")

#: Typical |ACTS - seed estimate| on the generic detector (features module's measurement:
#: 68% widths d0 0.05 mm, z0 0.06 mm, phi 2e-3, theta 3e-4, qop 12% relative), so that a
#: residual of 1 is a typical correction.
RESIDUAL_SCALE = (0.05, 0.06, 2e-3, 3e-4, 0.12)

#: The same for the fitted reference (68% core widths of fit - ACTS on the matched seeds of
#: the 20 x 50 and 100 x 50 validation events, pT > 1 GeV: d0 0.018 mm, z0 0.032 mm,
#: phi 3.6e-4, theta 1.3e-4, qop 0.55% relative; all pT: d0 0.027, z0 0.046, phi 5.6e-4).
FIT_RESIDUAL_SCALE = (0.02, 0.03, 4e-4, 1.5e-4, 0.006)


@dataclass(frozen=True)
class ModelConfig:
    """Shapes and widths. `n_features`, `n_slots` (L) and `n_candidates` (K) must match the
    features; `noise_dim` Z and `n_samples` M are the generator's; widths are hidden units."""

    n_features: int
    n_slots: int
    n_candidates: int
    noise_dim: int = 8
    n_samples: int = 16
    width: int = 128
    depth: int = 3
    head_width: int = 64
    disc_width: int = 128
    disc_depth: int = 3
    #: first feature column of the reference helix (0: the seed; the fit block's offset)
    reference_offset: int = 0
    residual_scale: tuple[float, ...] = RESIDUAL_SCALE

    def to_dict(self) -> dict:
        return asdict(self)


@keras.saving.register_keras_serializable(package="hepgan")
class Standardize(layers.Layer):
    """(x - mean) / std with fixed statistics from the training set (inside the graph, so the
    exported model takes raw features)."""

    def __init__(self, mean: list[float], std: list[float], **kwargs) -> None:
        super().__init__(**kwargs)
        self.mean_values = [float(v) for v in mean]
        self.std_values = [float(v) if v > 1e-12 else 1.0 for v in std]

    def build(self, input_shape) -> None:
        n = len(self.mean_values)
        self.mean = self.add_weight(shape=(n,), initializer=keras.initializers.Constant(self.mean_values), trainable=False, name="mean")
        self.inv_std = self.add_weight(
            shape=(n,), initializer=keras.initializers.Constant([1.0 / s for s in self.std_values]), trainable=False, name="inv_std"
        )

    def call(self, x):
        return (x - self.mean) * self.inv_std

    def get_config(self) -> dict:
        return {**super().get_config(), "mean": self.mean_values, "std": self.std_values}


@keras.saving.register_keras_serializable(package="hepgan")
class SeedEstimate(layers.Layer):
    """The physical reference perigee (n, 5) from five raw feature columns from `offset` (d0,
    z0/100, phi/pi, theta - pi/2, qop): the seed helix at 0, the fit block at its offset (see
    `hepgan.reco.features`). The name is the seed's, which it was alone before the fit existed."""

    def __init__(self, offset: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.offset = int(offset)

    def call(self, features):
        f = features[..., self.offset : self.offset + 5]
        return ops.stack(
            [f[..., 0], f[..., 1] * 100.0, f[..., 2] * math.pi, f[..., 3] + math.pi / 2, f[..., 4]], axis=-1
        )

    def get_config(self) -> dict:
        return {**super().get_config(), "offset": self.offset}


@keras.saving.register_keras_serializable(package="hepgan")
class ResidualsToParams(layers.Layer):
    """Mean and spread of sampled residuals (n, M, 5) -> physical params and spread (n, 5)."""

    def __init__(self, scale: tuple[float, ...] = RESIDUAL_SCALE, **kwargs) -> None:
        super().__init__(**kwargs)
        self.scale = tuple(float(v) for v in scale)

    def get_config(self) -> dict:
        return {**super().get_config(), "scale": list(self.scale)}

    def call(self, seed, samples):
        scale = ops.convert_to_tensor(self.scale, dtype=samples.dtype)
        mean = ops.mean(samples, axis=1)
        std = ops.std(samples, axis=1)
        # qop is relative to the seed's |qop|; the others absolute.
        unit = ops.concatenate([ops.ones_like(seed[..., :4]), ops.abs(seed[..., 4:5])], axis=-1) * scale
        params = seed + mean * unit
        phi = params[..., 2]
        wrapped = ops.arctan2(ops.sin(phi), ops.cos(phi))
        params = ops.concatenate([params[..., :2], wrapped[..., None], params[..., 3:]], axis=-1)
        return params, std * unit


@keras.saving.register_keras_serializable(package="hepgan")
class CandidateMask(layers.Layer):
    """The per-candidate presence mask (n, L, K) from the raw features (0 = no hit there)."""

    def __init__(self, n_slots: int, n_candidates: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.n_slots = n_slots
        self.n_candidates = n_candidates

    def call(self, features):
        slot = 4 + 3 * self.n_candidates
        block = ops.reshape(features[:, 14 : 14 + self.n_slots * slot], (-1, self.n_slots, slot))
        return block[:, :, 4 + 2 :: 3]

    def get_config(self) -> dict:
        return {**super().get_config(), "n_slots": self.n_slots, "n_candidates": self.n_candidates}


def residuals_from_params(seed, target, scale=RESIDUAL_SCALE):
    """Target residuals in units of `scale` (numpy or tensors with `ops`): the quantity the
    generator samples. seed (the reference), target: (n, 5) physical perigees."""
    scale = ops.convert_to_tensor(scale, dtype="float32")
    d = target - seed
    dphi = ops.arctan2(ops.sin(d[:, 2]), ops.cos(d[:, 2]))
    qop_rel = d[:, 4] / ops.maximum(ops.abs(seed[:, 4]), 1e-4)
    d = ops.stack([d[:, 0], d[:, 1], dphi, d[:, 3], qop_rel], axis=-1)
    return d / scale


@dataclass
class GeneratorParts:
    """The trainable pieces: `encoder` (raw features -> embedding, score logit, hit logits) and
    `head` (embedding (n, M, H), noise (n, M, Z) -> residual samples (n, M, 5))."""

    encoder: keras.Model
    head: keras.Model


def build_generator_parts(config: ModelConfig, mean: list[float], std: list[float]) -> GeneratorParts:
    features = keras.Input((config.n_features,), name="condition")
    h = Standardize(mean, std, name="standardize")(features)
    for i in range(config.depth):
        h = layers.Dense(config.width, activation="silu", name=f"encoder_{i}")(h)
    score_logit = layers.Dense(1, name="score_logit")(h)
    hit_logits = layers.Reshape((config.n_slots, config.n_candidates), name="hit_logits")(
        layers.Dense(config.n_slots * config.n_candidates, name="hit_dense")(h)
    )
    encoder = keras.Model(features, [h, score_logit, hit_logits], name="encoder")

    embedding = keras.Input((None, config.width), name="embedding")
    noise = keras.Input((None, config.noise_dim), name="noise")
    x = layers.Concatenate(axis=-1)([embedding, noise])
    x = layers.Dense(config.head_width, activation="silu", name="head_0")(x)
    x = layers.Dense(config.head_width, activation="silu", name="head_1")(x)
    residuals = layers.Dense(5, name="residuals")(x)
    head = keras.Model([embedding, noise], residuals, name="head")
    return GeneratorParts(encoder, head)


def build_discriminator(config: ModelConfig, mean: list[float], std: list[float]) -> keras.Model:
    """D(condition, residuals) -> logit that the residuals are the classic algorithm's."""
    features = keras.Input((config.n_features,), name="condition")
    residuals = keras.Input((5,), name="residuals")
    c = Standardize(mean, std, name="standardize_d")(features)
    x = layers.Concatenate()([c, residuals])
    for i in range(config.disc_depth):
        x = layers.Dense(config.disc_width, activation="silu", name=f"disc_{i}")(x)
    logit = layers.Dense(1, name="disc_logit")(x)
    return keras.Model([features, residuals], logit, name="discriminator")


def build_export_generator(parts: GeneratorParts, config: ModelConfig) -> keras.Model:
    """The inference graph of the model interface (docs/pipeline.md): inputs `condition` (n, F) and
    `noise` (n, M, Z); outputs `params`, `params_std` (n, 5), `score` (n,), `hit_prob` (n, L, K)."""
    features = keras.Input((config.n_features,), name="condition")
    noise = keras.Input((None, config.noise_dim), name="noise")
    h, score_logit, hit_logits = parts.encoder(features)
    samples = parts.head([_Broadcast(name="broadcast")(h, noise), noise])
    seed = SeedEstimate(config.reference_offset, name="seed_estimate")(features)
    params, params_std = ResidualsToParams(config.residual_scale, name="to_params")(seed, samples)
    score = layers.Activation("sigmoid", name="score_prob")(layers.Reshape(())(score_logit))
    mask = CandidateMask(config.n_slots, config.n_candidates, name="candidate_mask")(features)
    hit_prob = layers.Multiply(name="hit_prob_masked")([layers.Activation("sigmoid")(hit_logits), mask])
    outputs = {
        "params": layers.Identity(name="params")(params),
        "params_std": layers.Identity(name="params_std")(params_std),
        "score": layers.Identity(name="score")(score),
        "hit_prob": layers.Identity(name="hit_prob")(hit_prob),
    }
    return keras.Model({"condition": features, "noise": noise}, outputs, name="hepgan_generator")


@keras.saving.register_keras_serializable(package="hepgan")
class _Broadcast(layers.Layer):
    """Repeat the per-seed embedding (n, H) along the samples axis of `noise` (n, M, Z)."""

    def call(self, h, noise):
        return ops.expand_dims(h, 1) + ops.zeros_like(noise[..., :1])
