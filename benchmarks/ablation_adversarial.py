"""What the adversarial term adds over the CRPS reconstruction term alone (issue: the GAN).

Trains the same generator twice on the same seeds, steps and seed, once with the adversarial
weight of the shipped config and once with 0, and compares on the validation set:

- per-parameter figures of `hepgan.ml.train.evaluate` (resolution, pull width, score AUC);
- the multivariate energy score of the sampled residual vectors against the ACTS residuals
  (a proper score of the joint distribution: lower is better; CRPS sees only marginals);
- the d0-phi correlation of the samples next to that of the actual errors (ACTS - mean):
  the two should agree when the joint distribution is right.

Usage: python benchmarks/ablation_adversarial.py TRAIN_DIR VAL_DIR [-o results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np


def joint_figures(model_dir: Path, val_dir: str, *, n: int = 20_000, samples: int = 16, seed: int = 5) -> dict:
    import keras

    import hepgan.ml.model  # noqa: F401  (custom layers)
    from hepgan.ml.train import load_shards

    model = keras.saving.load_model(model_dir / "generator.keras", safe_mode=True, compile=False)
    data, _ = load_shards(val_dir, limit=n, seed=seed)
    pos = data.label > 0.5
    features, y = data.features[pos], np.clip(data.target[pos], -30, 30)
    encoder, head = model.get_layer("encoder"), model.get_layer("head")
    h, _, _ = encoder.predict(features, batch_size=8192, verbose=0)
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((len(h), samples, head.input[1].shape[-1])).astype(np.float32)
    emb = np.repeat(h[:, None, :], samples, axis=1)
    s = np.asarray(head.predict([emb, noise], batch_size=4096, verbose=0))  # (n, M, 5) residual units
    term1 = np.linalg.norm(s - y[:, None, :], axis=-1).mean(axis=1)
    diff = s[:, :, None, :] - s[:, None, :, :]
    term2 = np.linalg.norm(diff, axis=-1).mean(axis=(1, 2))
    mean = s.mean(axis=1)
    errors = y - mean
    sample_corr = np.mean([np.corrcoef(s[i, :, 0], s[i, :, 2])[0, 1] for i in range(min(len(s), 5000))])
    return {
        "energy_score": float(np.mean(term1 - 0.5 * term2)),
        "corr_d0_phi_errors": float(np.corrcoef(errors[:, 0], errors[:, 2])[0, 1]),
        "corr_d0_phi_samples": float(sample_corr),
        "n_seeds": int(len(s)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("train_dir")
    parser.add_argument("val_dir")
    parser.add_argument("-o", "--output", default="benchmarks/results/ablation-adversarial.json")
    parser.add_argument("--seeds", type=int, default=300_000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()

    from hepgan.ml.train import TrainConfig, train, versions

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, weight in (("crps_plus_adversarial", 0.05), ("crps_only", 0.0)):
            cfg = TrainConfig(
                dataset=args.train_dir, validation=args.val_dir, output=str(Path(tmp) / name), epochs=args.epochs,
                steps_per_epoch=args.steps, max_train_seeds=args.seeds, max_validation_seeds=50_000,
                adversarial_weight=weight, crps_weight=0.5, seed=7, patience=100,  # crps_weight as shipped
            )  # fmt: skip
            t0 = time.perf_counter()
            card = train(cfg, progress=False)
            results[name] = {
                "adversarial_weight": weight,
                "seconds": time.perf_counter() - t0,
                "validation": card["validation"],
                "joint": joint_figures(Path(cfg.output), args.val_dir),
            }
    doc = {
        "benchmark": "adversarial term ablation",
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M:%S")},
        "versions": versions(),
        "config": {"train_seeds": args.seeds, "epochs": args.epochs, "steps_per_epoch": args.steps},
        "results": results,
    }
    Path(args.output).write_text(json.dumps(doc, indent=2))
    for name, r in results.items():
        v, j = r["validation"], r["joint"]
        print(name, {k: round(v[k], 5) for k in v if k.startswith(("resolution", "pull"))}, j)


if __name__ == "__main__":
    main()
