"""`hepgan train CONFIG.toml`: train the conditional GAN on dataset shards.

Losses (all on the same batch; parameters only on positive seeds):

- reconstruction: the CRPS of each perigee residual, estimated from two noise samples
  (``|s1 - y| + |s2 - y|) / 2 - |s1 - s2| / 2``). It is pix2pix's L1 made distribution-aware:
  a strictly proper scoring rule, minimised only when the sampled spread is the real spread of
  the classic answer given the features, which is what calibrates the pulls. With one sample it
  would be plain L1 and the noise would be ignored.
- adversarial (non-saturating): D(condition, residuals) tells the classic residuals from
  sampled ones; the generator is pushed towards the joint distribution (correlations between
  parameters, multi-modality) that per-parameter CRPS cannot see.
- track score: binary cross-entropy of "this seed is a real track": by default (``score_label =
  "auto"``) the truth label of the dataset (the seed's hits belong to one particle) where every
  seed has one, else "this seed is on a classic track". Truth is the better target: about half
  of the seeds ACTS does not return are real particles it lost, and a score taught to call them
  fake learns ACTS's losses instead of what a fake seed looks like.
- hit assignment: binary cross-entropy of each candidate hit being on the track (positives,
  present candidates only).

The losses and the two train steps, one model, are :mod:`hepgan.ml.gan`'s: TensorFlow (default;
CPU and CI) and JAX (the lent GPU machine, ``KERAS_BACKEND=jax``); the config is
:class:`hepgan.ml.config.TrainConfig`. Each epoch ends with a validation on physics figures (resolution
against the classic parameters, pull widths, score AUC), checkpoints, and early stopping;
`resume=True` continues from the last checkpoint. Beside every model: the resolved config,
the versions of everything that shaped it, the seeds, and the history.
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from hepgan.errors import InputError
from hepgan.io.atomic import atomic_output, write_text_atomically
from hepgan.ml.config import TrainConfig
from hepgan.ml.gan import JaxStep, TensorFlowStep
from hepgan.perf.metrics.auc import auc as _auc

__all__ = ["TrainConfig", "check_inputs", "import_tensorflow_quietly", "load_shards", "train"]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- data
@dataclass
class Arrays:
    features: np.ndarray  # (n, F) float32, raw
    target: np.ndarray  # (n, 5) float32 residuals to the reference in its scale's units (0 for negatives)
    target_hits: np.ndarray  # (n, L, K) float32
    label: np.ndarray  # (n,) float32 1: on a classic track (the parameters' and hits' mask)
    physical: np.ndarray  # (n, 5) float32 classic perigee (0 for negatives)
    reference_offset: int = 0  # first feature column of the reference helix (see reference_of)
    real: np.ndarray | None = None  # (n,) float32 truth: 1 real, 0 fake, -1 unknown
    score_target: np.ndarray | None = None  # (n,) float32 what the score learns (with_score_label)

    def __len__(self) -> int:
        return len(self.label)


def _dataset_files(folder: str | os.PathLike) -> tuple[Path, list[Path]]:
    """(stats.json, shard files) of a dataset folder, or InputError naming what is missing."""
    folder = Path(folder)
    stats_path = folder / "stats.json"
    if not stats_path.exists():
        msg = f"{folder}: no stats.json; expected a folder written by `hepgan dataset`"
        raise InputError(msg)
    shards = sorted(folder.glob("shard-*.npz"))
    if not shards:
        msg = f"{folder}: no shard-*.npz files; expected a folder written by `hepgan dataset`"
        raise InputError(msg)
    return stats_path, shards


def load_shards(folder: str | os.PathLike, *, limit: int = 0, seed: int = 0) -> tuple[Arrays, dict]:
    """All shards of a dataset folder in memory (n x F x 4 bytes: 600 MB for a million seeds of
    the default 225 features), and its stats.json. `limit` > 0 keeps a random subset."""
    from hepgan.ml.model import residuals_from_params

    stats_path, shards = _dataset_files(folder)
    stats = json.loads(stats_path.read_text())
    offset, scale = reference_of(stats)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("features", "target", "target_hits", "label", "real")}
    for path in shards:
        with np.load(path, allow_pickle=False) as z:
            for k in parts:
                if k == "real" and k not in z.files:  # datasets before the truth label: unknown
                    parts[k].append(np.full(len(z["label"]), -1, dtype=np.int8))
                    continue
                if k not in z.files:
                    msg = f"{path}: missing array {k!r}; has {sorted(z.files)}"
                    raise InputError(msg)
                parts[k].append(z[k])
    features = np.concatenate(parts["features"]).astype(np.float32)
    physical = np.concatenate(parts["target"]).astype(np.float32)
    label = np.concatenate(parts["label"]).astype(np.float32)
    real = np.concatenate(parts["real"]).astype(np.float32)
    target_hits = np.concatenate(parts["target_hits"]).astype(np.float32)
    if limit and len(label) > limit:
        keep = np.sort(np.random.default_rng(seed).choice(len(label), limit, replace=False))
        features, physical, label, target_hits, real = features[keep], physical[keep], label[keep], target_hits[keep], real[keep]
    reference = _seed_params(features, offset)
    residuals = np.array(residuals_from_params(reference, physical, scale), dtype=np.float32)
    residuals[label == 0] = 0.0
    return Arrays(features, residuals, target_hits, label, physical, offset, real, label), stats


def resolve_score_label(requested: str, *datasets: tuple[str, Arrays]) -> str:
    """"truth" or "acts": what `requested` means for these (folder, arrays) datasets. "truth"
    needs every seed of every one to have the truth label; "auto" takes it where they do."""
    missing = [(folder, int((a.real < 0).sum()), len(a)) for folder, a in datasets if a.real is None or (a.real < 0).any()]
    if requested == "acts" or (requested == "auto" and missing):
        return "acts"
    if missing:
        folder, n, total = missing[0]
        msg = (f"{folder}: {n} of {total} seeds have no truth label (built from files without truth branches, or "
               f"by a hepgan older than dataset format 2); score_label = \"truth\" needs it: use \"acts\" or \"auto\"")  # fmt: skip
        raise InputError(msg)
    return "truth"


def with_score_label(data: Arrays, label: str) -> Arrays:
    """`data` with the score's target set: the truth label, or being on a classic track."""
    data.score_target = data.real.copy() if label == "truth" else data.label.copy()
    return data


def reference_of(stats: dict) -> tuple[int, tuple[float, ...]]:
    """(first feature column, residual scale) of the helix the generator corrects: the fit
    block when the dataset's features carry one, else the seed helix."""
    from hepgan.ml.model import FIT_RESIDUAL_SCALE, RESIDUAL_SCALE

    names = stats.get("layout", {}).get("features", {}).get("names", [])
    if "fit_d0" in names:
        return names.index("fit_d0"), FIT_RESIDUAL_SCALE
    return 0, RESIDUAL_SCALE


def _seed_params(features: np.ndarray, offset: int = 0) -> np.ndarray:
    """Physical perigee of the five helix columns from `offset` (the seed's at 0)."""
    f = features[:, offset : offset + 5].astype(np.float64)
    return np.stack([f[:, 0], f[:, 1] * 100.0, f[:, 2] * math.pi, f[:, 3] + math.pi / 2, f[:, 4]], axis=1).astype(np.float32)


# --------------------------------------------------------------------------- validation
def evaluate(generator, data: Arrays, cfg: TrainConfig, *, seed: int = 12345, batch: int = 8192) -> dict:
    """Physics figures of the generator on `data`: resolution of the sampled mean against the
    classic parameters (68% core half-width, physical units) next to the seed estimate's, pull
    widths of (classic - mean) / spread, score AUC, and hit-assignment accuracy."""
    from hepgan.ml.model import PARAMETERS
    from hepgan.reco.engine import antithetic_normal

    rng = np.random.default_rng(seed)
    outs: dict[str, list[np.ndarray]] = {"params": [], "params_std": [], "score": [], "hit_prob": []}
    for start in range(0, len(data), batch):
        f = data.features[start : start + batch]
        noise = antithetic_normal(rng, len(f), cfg.n_samples, cfg.noise_dim)  # as the engine samples
        out = generator.predict_on_batch({"condition": f, "noise": noise})
        for k in outs:
            outs[k].append(np.asarray(out[k]))
    res = {k: np.concatenate(v) for k, v in outs.items()}
    pos = data.label > 0.5
    seed_params = _seed_params(data.features)
    fit_params = _seed_params(data.features, data.reference_offset) if data.reference_offset else None
    figures: dict[str, Any] = {"n": int(len(data)), "n_positive": int(pos.sum())}
    for i, name in enumerate(PARAMETERS):
        truth = data.physical[pos, i].astype(np.float64)
        pred = res["params"][pos, i].astype(np.float64)
        seed_p = seed_params[pos, i].astype(np.float64)
        d_pred, d_seed = pred - truth, seed_p - truth
        if name == "phi":
            d_pred, d_seed = _wrap(d_pred), _wrap(d_seed)
        if name == "qop":
            d_pred, d_seed = d_pred / np.abs(truth), d_seed / np.abs(truth)  # relative
        figures[f"resolution_{name}"] = _core(d_pred)
        figures[f"seed_resolution_{name}"] = _core(d_seed)
        if fit_params is not None:
            d_fit = fit_params[pos, i].astype(np.float64) - truth
            d_fit = _wrap(d_fit) if name == "phi" else d_fit / np.abs(truth) if name == "qop" else d_fit
            figures[f"fit_resolution_{name}"] = _core(d_fit)
        spread = res["params_std"][pos, i].astype(np.float64)
        d_raw = pred - truth if name != "phi" else _wrap(pred - truth)
        figures[f"pull_width_{name}"] = _core(d_raw / np.maximum(spread, 1e-12))
    score_target = data.label if data.score_target is None else data.score_target
    figures["score_auc"] = _auc(res["score"], score_target)
    # both views of the score, whichever it learned: against the classic label and against truth
    figures["score_auc_acts"] = _auc(res["score"], data.label)
    if data.real is not None and (data.real >= 0).all():
        figures["score_auc_truth"] = _auc(res["score"], data.real)
    present = _candidate_mask_np(data.features, data.target_hits.shape[1], data.target_hits.shape[2]) > 0.5
    present &= pos[:, None, None]
    if present.any():
        figures["hit_accuracy"] = float(((res["hit_prob"] > 0.5) == (data.target_hits > 0.5))[present].mean())
    return figures


def validation_quality(figures: dict) -> float:
    """What early stopping minimises: the mean over the five parameters of log(resolution /
    seed resolution) and log(1 - score AUC). Logs, so that a 1% better q/p counts as much as a
    1% better z0 and as 1% fewer misranked pairs: a plain mean of the ratios barely sees q/p
    (its ratio is 0.06 against theta's 0.5), and a linear AUC term drowned the resolutions in
    its epoch-to-epoch noise (measured: it kept an epoch with 4.5% worse q/p resolution)."""
    terms = [math.log(figures[f"resolution_{p}"] / figures[f"seed_resolution_{p}"]) for p in ("d0", "z0", "phi", "theta", "qop")]
    # no AUC on a validation set of one class (a sparse sample without fakes): resolutions only
    if math.isfinite(figures["score_auc"]):
        terms.append(math.log(max(1.0 - figures["score_auc"], 1e-6)))
    return float(np.mean(terms))


def _candidate_mask_np(features: np.ndarray, n_slots: int, n_candidates: int) -> np.ndarray:
    slot = 4 + 3 * n_candidates
    return features[:, 14 : 14 + n_slots * slot].reshape(-1, n_slots, slot)[:, :, 6::3]


def _wrap(d: np.ndarray) -> np.ndarray:
    return (d + np.pi) % (2 * np.pi) - np.pi


def _core(d: np.ndarray) -> float:
    d = d[np.isfinite(d)]
    if len(d) == 0:
        return float("nan")
    q16, q84 = np.percentile(d, [16, 84])
    return float((q84 - q16) / 2)


# --------------------------------------------------------------------------- the run
@dataclass
class _History:
    epochs: list[dict] = field(default_factory=list)


def versions() -> dict[str, str]:
    """Versions of everything that shapes a model, for the card and the metadata."""
    import keras

    import hepgan

    out = {"hepgan": hepgan.__version__, "keras": keras.__version__, "backend": keras.backend.backend(), "numpy": np.__version__}
    out["python"] = platform.python_version()
    from importlib import metadata

    # Installed versions from the package metadata: importing TensorFlow just to ask would
    # cost seconds (and it is absent on the GPU machine).
    for name in ("tensorflow", "jax", "jaxlib", "numba", "tf2onnx", "onnx"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _seed_everything(seed: int) -> None:
    import keras

    np.random.seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        keras.utils.set_random_seed(seed)  # also seeds TensorFlow's global generator
        # Same seed, same model: deterministic kernels cost a little speed on the CPU.
        tf.config.experimental.enable_op_determinism()
    else:
        import random

        # keras.utils.set_random_seed imports TensorFlow; JAX/torch take explicit seeds.
        random.seed(seed)


def import_tensorflow_quietly(*, debug: bool = False) -> None:
    """Import TensorFlow with stderr silenced at the file-descriptor level: its C++ start-up
    lines (CUDA probing, CPU features) come before any logging setting applies. Python errors
    of the import still raise. Nothing to do under another Keras backend or with `debug`."""
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow" or debug:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def check_inputs(cfg: TrainConfig) -> None:
    """Refuse missing dataset folders before Keras and its backend load (seconds, and
    TensorFlow's start-up chatter on stderr)."""
    for folder in (cfg.dataset, cfg.validation):
        _dataset_files(folder)


def train(cfg: TrainConfig, *, resume: bool = False, progress: bool = True) -> dict:
    """Train, validate each epoch, checkpoint, stop early; returns the model card (dict).

    Writes into ``cfg.output``: ``generator.keras`` (the export graph: inputs condition,
    noise), ``discriminator.keras``, ``checkpoint/`` (last epoch, optimizer state),
    ``history.json``, ``config.json`` (resolved), ``model_card.json``.
    """
    check_inputs(cfg)
    import keras

    from hepgan.ml.model import ModelConfig, build_discriminator, build_export_generator, build_generator_parts

    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    _seed_everything(cfg.seed)
    t_load = time.perf_counter()
    train_data, stats = load_shards(cfg.dataset, limit=cfg.max_train_seeds, seed=cfg.seed)
    val_data, val_stats = load_shards(cfg.validation, limit=cfg.max_validation_seeds, seed=cfg.seed + 1)
    if stats["geometry"] != val_stats["geometry"] or stats["layout"] != val_stats["layout"]:
        msg = f"{cfg.validation}: validation set has another geometry or feature layout than {cfg.dataset}"
        raise InputError(msg)
    log.info("loaded %d training and %d validation seeds in %.1f s", len(train_data), len(val_data), time.perf_counter() - t_load)
    # resolved here and saved so: the card says what the score learned
    cfg = replace(cfg, score_label=resolve_score_label(cfg.score_label, (cfg.dataset, train_data), (cfg.validation, val_data)))
    with_score_label(train_data, cfg.score_label)
    with_score_label(val_data, cfg.score_label)
    log.info("track score learns the %s label", cfg.score_label)
    L, K = stats["layout"]["candidates"]["shape"]
    ref_offset, ref_scale = reference_of(stats)
    mcfg = ModelConfig(
        n_features=int(stats["layout"]["features"]["shape"][0]), n_slots=int(L), n_candidates=int(K),
        noise_dim=cfg.noise_dim, n_samples=cfg.n_samples, width=cfg.width, depth=cfg.depth,
        head_width=cfg.head_width, disc_width=cfg.disc_width, disc_depth=cfg.disc_depth,
        reference_offset=ref_offset, residual_scale=ref_scale,
    )  # fmt: skip
    mean, std = stats["mean"], stats["std"]
    parts = build_generator_parts(mcfg, mean, std)
    disc = build_discriminator(mcfg, mean, std)
    generator = build_export_generator(parts, mcfg)
    g_opt = keras.optimizers.Adam(cfg.learning_rate)
    d_opt = keras.optimizers.Adam(cfg.disc_learning_rate, beta_1=0.5)
    backend = keras.backend.backend()
    step = (JaxStep if backend == "jax" else TensorFlowStep)(parts, disc, g_opt, d_opt, cfg)

    ckpt = out / "checkpoint"
    history = _History()
    start_epoch, best, since_best, wall_before = 0, math.inf, 0, 0.0
    if resume and (ckpt / "state.json").exists():
        state = json.loads((ckpt / "state.json").read_text())
        _load_weights(ckpt, parts, disc, g_opt, d_opt)
        if backend == "jax":
            step = JaxStep(parts, disc, g_opt, d_opt, cfg)
        history.epochs = state["history"]
        start_epoch, best, since_best = state["epoch"] + 1, state["best"], state["since_best"]
        wall_before = state.get("wall_s", 0.0)  # the runs before this one, for the card
        log.info("resumed from %s at epoch %d", ckpt, start_epoch)

    write_text_atomically(out / "config.json", json.dumps({"train": cfg.to_dict(), "model": mcfg.to_dict()}, indent=2))
    rng = np.random.default_rng(cfg.seed)
    steps = cfg.steps_per_epoch or max(1, len(train_data) // cfg.batch_size)
    t0 = time.perf_counter()
    for epoch in range(start_epoch, cfg.epochs):
        # A fresh, reproducible stream per epoch, so a resumed run sees what a straight one would.
        rng = np.random.default_rng([cfg.seed, epoch])
        order = rng.permutation(len(train_data))
        sums: dict[str, float] = {}
        te = time.perf_counter()
        bar = _bar(steps, epoch, progress)
        for s in range(steps):
            idx = order[(s * cfg.batch_size) % len(order) : (s * cfg.batch_size) % len(order) + cfg.batch_size]
            batch = {
                "features": train_data.features[idx], "target": train_data.target[idx],
                "target_hits": train_data.target_hits[idx], "label": train_data.label[idx],
                "score_target": train_data.score_target[idx],
            }  # fmt: skip
            noise = rng.standard_normal((len(idx), 2, cfg.noise_dim)).astype(np.float32)
            logs = step(batch, noise)
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + v
            bar.update(1)
        bar.close()
        epoch_time = time.perf_counter() - te
        if isinstance(step, JaxStep):
            step.sync()
        figures = evaluate(generator, val_data, cfg)
        quality = validation_quality(figures)
        record = {"epoch": epoch, "seconds": epoch_time, "steps": steps, "steps_per_s": steps / epoch_time,
                  "train": {k: v / steps for k, v in sums.items()}, "validation": figures, "quality": quality}  # fmt: skip
        history.epochs.append(record)
        log.info("epoch %d: %s", epoch, json.dumps({k: round(v, 5) for k, v in figures.items() if isinstance(v, float)}))
        if quality < best:
            best, since_best = quality, 0
            generator.save(out / "generator.keras")
            disc.save(out / "discriminator.keras")
        else:
            since_best += 1
        _save_checkpoint(ckpt, parts, disc, g_opt, d_opt, {"epoch": epoch, "best": best, "since_best": since_best, "history": history.epochs,
                                                          "wall_s": wall_before + time.perf_counter() - t0})
        write_text_atomically(out / "history.json", json.dumps(history.epochs, indent=1))
        if since_best >= cfg.patience:
            log.info("early stop at epoch %d (no improvement in %d epochs)", epoch, cfg.patience)
            break
    best_record = min(history.epochs, key=lambda r: r["quality"])
    card = {
        "model": "hepgan conditional GAN generator",
        "files": {"keras": "generator.keras"},
        "data": {"training": {"folder": cfg.dataset, "seeds": len(train_data), "positives": int(train_data.label.sum()),
                              "inputs": stats.get("inputs", [])},
                 "validation": {"folder": cfg.validation, "seeds": len(val_data), "inputs": val_stats.get("inputs", [])}},
        "geometry_fingerprint": stats["geometry"],
        "feature_config": stats["config"]["features"] if "features" in stats.get("config", {}) else stats.get("config"),
        "config": cfg.to_dict(),
        "model_config": mcfg.to_dict(),
        "epochs_run": len(history.epochs),
        "best_epoch": best_record["epoch"],
        "validation": best_record["validation"],
        # over every run of a resumed training, so the card tells what the model cost
        "wall_time_s": wall_before + time.perf_counter() - t0,
        "train_time_s": float(sum(r["seconds"] for r in history.epochs)),
        "resumed_at_epoch": start_epoch if start_epoch else None,
        "steps_per_s": float(np.mean([r["steps_per_s"] for r in history.epochs[-len(history.epochs):]])),
        "device": _device(),
        "versions": versions(),
        "seed": cfg.seed,
    }  # fmt: skip
    write_text_atomically(out / "model_card.json", json.dumps(card, indent=2))
    return card


def _bar(total: int, epoch: int, progress: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=f"epoch {epoch}", unit="step", disable=not progress, leave=False)


def _device() -> str:
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return ", ".join(str(d) for d in jax.devices())
    return f"cpu ({os.cpu_count()} cores, {platform.processor() or platform.machine()})"


def _save_checkpoint(ckpt: Path, parts, disc, g_opt, d_opt, state: dict) -> None:
    ckpt.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for prefix, variables in (("enc", parts.encoder.variables), ("head", parts.head.variables), ("disc", disc.variables),
                              ("gopt", g_opt.variables), ("dopt", d_opt.variables)):  # fmt: skip
        for i, v in enumerate(variables):
            arrays[f"{prefix}_{i:04d}"] = np.asarray(v.numpy() if hasattr(v, "numpy") else v.value)
    # An open file, so that np.savez appends no ".npz" to the temporary's name.
    with atomic_output(ckpt / "weights.npz") as tmp, tmp.open("wb") as fh:
        np.savez(fh, **arrays)
    # Plain json.dumps: the history may hold NaN (the AUC of a one-class validation set).
    write_text_atomically(ckpt / "state.json", json.dumps(state))


def _load_weights(ckpt: Path, parts, disc, g_opt, d_opt) -> None:
    with np.load(ckpt / "weights.npz", allow_pickle=False) as z:
        for prefix, variables in (("enc", parts.encoder.variables), ("head", parts.head.variables), ("disc", disc.variables),
                                  ("gopt", g_opt.variables), ("dopt", d_opt.variables)):  # fmt: skip
            for i, v in enumerate(variables):
                key = f"{prefix}_{i:04d}"
                if key not in z.files:
                    msg = f"{ckpt}: checkpoint lacks {key}; it was written by another model configuration"
                    raise InputError(msg)
                v.assign(z[key])


__all__ += ["evaluate", "versions"]
