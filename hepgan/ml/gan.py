"""The GAN's losses and its two train steps (TensorFlow, the default; JAX, the lent GPU's).

Losses (all on the same batch; parameters only on positive seeds), in ``keras.ops`` so that
both backends share them: the CRPS of each perigee residual from two noise samples, the
non-saturating adversarial loss, the track score's and the hit assignment's binary
cross-entropies (see :mod:`hepgan.ml.train` for why each). Keras and its backend are imported
inside the functions: importing this module costs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from hepgan.ml.config import TrainConfig

__all__ = ["JaxStep", "TensorFlowStep", "gan_losses"]


def gan_losses(parts, disc, batch: dict, noise, cfg: TrainConfig, *, training: bool):
    """Generator and discriminator losses (scalars) and a dict of parts, in keras.ops."""
    from keras import ops

    features, y, hits, label = batch["features"], batch["target"], batch["target_hits"], batch["label"]
    score_target = batch.get("score_target", label)
    y = ops.clip(y, -cfg.residual_clip, cfg.residual_clip)
    h, score_logit, hit_logits = parts.encoder(features, training=training)
    samples = parts.head([ops.expand_dims(h, 1) + ops.zeros_like(noise[..., :1]), noise], training=training)
    s1, s2 = samples[:, 0], samples[:, 1]
    pos = label
    n_pos = ops.maximum(ops.sum(pos), 1.0)
    crps = ops.sum(0.5 * (ops.abs(s1 - y) + ops.abs(s2 - y)) - 0.5 * ops.abs(s1 - s2), axis=-1)
    crps = ops.sum(crps * pos) / n_pos
    score_bce = ops.mean(_bce_logits(score_target, ops.squeeze(score_logit, -1)))
    mask = _candidate_mask(features, hits.shape[1], hits.shape[2]) * ops.reshape(pos, (-1, 1, 1))
    hit_bce = ops.sum(_bce_logits(hits, hit_logits) * mask) / ops.maximum(ops.sum(mask), 1.0)
    d_fake = ops.squeeze(disc([features, s1], training=training), -1)
    d_real = ops.squeeze(disc([features, y], training=training), -1)
    adv = ops.sum(ops.softplus(-d_fake) * pos) / n_pos
    g_loss = cfg.crps_weight * crps + cfg.score_weight * score_bce + cfg.hit_weight * hit_bce + cfg.adversarial_weight * adv
    d_fake_detached = ops.squeeze(disc([features, ops.stop_gradient(s1)], training=training), -1)
    d_loss = ops.sum((ops.softplus(-d_real) + ops.softplus(d_fake_detached)) * pos) / n_pos
    return g_loss, d_loss, {"crps": crps, "score_bce": score_bce, "hit_bce": hit_bce, "adv": adv, "d_loss": d_loss}


def _bce_logits(target, logits):
    from keras import ops

    return ops.maximum(logits, 0.0) - logits * target + ops.log1p(ops.exp(-ops.abs(logits)))


def _candidate_mask(features, n_slots: int, n_candidates: int):
    from keras import ops

    slot = 4 + 3 * n_candidates
    block = ops.reshape(features[:, 14 : 14 + n_slots * slot], (-1, n_slots, slot))
    return block[:, :, 6::3]


# --------------------------------------------------------------------------- train steps
class TensorFlowStep:
    """The default train step: tf.GradientTape, compiled with tf.function."""

    def __init__(self, parts, disc, g_opt, d_opt, cfg: TrainConfig) -> None:
        import tensorflow as tf

        self.g_vars = parts.encoder.trainable_variables + parts.head.trainable_variables
        self.d_vars = disc.trainable_variables
        self.parts, self.disc, self.g_opt, self.d_opt, self.cfg = parts, disc, g_opt, d_opt, cfg
        g_opt.build(self.g_vars)
        d_opt.build(self.d_vars)

        @tf.function(reduce_retracing=True)
        def step(batch, noise):
            with tf.GradientTape(persistent=True) as tape:
                g_loss, d_loss, logs = gan_losses(self.parts, self.disc, batch, noise, self.cfg, training=True)
            g_grads = tape.gradient(g_loss, self.g_vars)
            d_grads = tape.gradient(d_loss, self.d_vars)
            del tape
            self.g_opt.apply(g_grads, self.g_vars)
            if self.cfg.adversarial_weight > 0:
                self.d_opt.apply(d_grads, self.d_vars)
            return logs

        self._step = step

    def __call__(self, batch: dict, noise: np.ndarray) -> dict:
        logs = self._step(batch, noise)
        return {k: float(v) for k, v in logs.items()}


class JaxStep:
    """The JAX train step (GPU): stateless calls, jit-compiled, state written back after."""

    def __init__(self, parts, disc, g_opt, d_opt, cfg: TrainConfig) -> None:
        import jax

        self.parts, self.disc, self.g_opt, self.d_opt, self.cfg = parts, disc, g_opt, d_opt, cfg
        self.enc_t = parts.encoder.trainable_variables
        self.head_t = parts.head.trainable_variables
        self.d_t = disc.trainable_variables
        g_opt.build(self.enc_t + self.head_t)
        d_opt.build(self.d_t)
        self.enc_nt = parts.encoder.non_trainable_variables
        self.d_nt = disc.non_trainable_variables
        self.state = (
            [v.value for v in self.enc_t],
            [v.value for v in self.head_t],
            [v.value for v in self.d_t],
            [v.value for v in self.g_opt.variables],
            [v.value for v in self.d_opt.variables],
        )
        n_enc = len(self.enc_t)

        def g_loss_fn(g_train, d_train, batch, noise):
            enc_train, head_train = g_train[:n_enc], g_train[n_enc:]
            g_loss, d_loss, logs = self._stateless_losses(enc_train, head_train, d_train, batch, noise)
            return g_loss, logs

        def d_loss_fn(d_train, g_train, batch, noise):
            enc_train, head_train = g_train[:n_enc], g_train[n_enc:]
            _, d_loss, _ = self._stateless_losses(enc_train, head_train, d_train, batch, noise)
            return d_loss

        def step(state, batch, noise):
            enc_train, head_train, d_train, g_opt_vars, d_opt_vars = state
            g_train = enc_train + head_train
            (_, logs), g_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(g_train, d_train, batch, noise)
            g_train, g_opt_vars = self.g_opt.stateless_apply(g_opt_vars, g_grads, g_train)
            if self.cfg.adversarial_weight > 0:
                d_grads = jax.grad(d_loss_fn)(d_train, g_train, batch, noise)
                d_train, d_opt_vars = self.d_opt.stateless_apply(d_opt_vars, d_grads, d_train)
            return (g_train[:n_enc], g_train[n_enc:], d_train, g_opt_vars, d_opt_vars), logs

        self._step = jax.jit(step)

    def _stateless_losses(self, enc_train, head_train, d_train, batch, noise):
        from keras import StatelessScope

        mapping = list(zip(self.enc_t, enc_train, strict=True)) + list(zip(self.head_t, head_train, strict=True))
        mapping += list(zip(self.d_t, d_train, strict=True))
        with StatelessScope(state_mapping=mapping):
            return gan_losses(self.parts, self.disc, batch, noise, self.cfg, training=True)

    def __call__(self, batch: dict, noise: np.ndarray) -> dict:
        self.state, logs = self._step(self.state, batch, noise)
        return {k: float(v) for k, v in logs.items()}

    def sync(self) -> None:
        """Write the functional state back into the Keras variables (before saving/validating).

        Copies, because Keras's JAX predict donates the variables' buffers to its jitted
        function: handing it our state's own arrays would delete them under the next step."""
        import jax.numpy as jnp

        enc_train, head_train, d_train, g_opt_vars, d_opt_vars = self.state
        pairs = [
            (self.enc_t, enc_train), (self.head_t, head_train), (self.d_t, d_train),
            (self.g_opt.variables, g_opt_vars), (self.d_opt.variables, d_opt_vars),
        ]  # fmt: skip
        for variables, values in pairs:
            for var, value in zip(variables, values, strict=True):
                var.assign(jnp.array(value, copy=True))
