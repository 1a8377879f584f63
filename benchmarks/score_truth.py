"""What the track score separates, against truth (issue: the GAN, "AUC >= 0.99").

The score is trained to say whether ACTS reconstructed a seed's track (the dataset's label).
This benchmark splits the seeds of held-out events by truth, from the hits' particle ids:

- real: the three hits belong to one particle;
- fake, combinatorial: no two hits of one particle;
- fake, one wrong hit: two hits of one particle, the third of another (or noise);

and reports the score's AUC against the ACTS label and against each truth split, and how many
negatives (not on an ACTS track) are real seeds ACTS did not return.

Usage: python benchmarks/score_truth.py MODEL.keras FILE.root... [-o results.json]
(needs the training extras: Keras loads the generator; features as `hepgan dataset` builds them)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import awkward as ak
import numpy as np

from hepgan.bench import machine_info
from hepgan.dataset import DatasetConfig, _event_arrays, process_event
from hepgan.features import layer_table
from hepgan.geometry import GENERIC_DETECTOR
from hepgan.io import iterate_chunks


def seeds_with_truth(paths: list[str]) -> dict[str, np.ndarray]:
    cfg = DatasetConfig()
    table = layer_table(GENERIC_DETECTOR, cfg.features)
    out: dict[str, list[np.ndarray]] = {"features": [], "label": [], "same": []}
    for path in paths:
        for chunk in iterate_chunks(path, trees=("hits", "tracks"), truth=True, step_events=50):
            hits, tracks = chunk.arrays["hits"], chunk.arrays["tracks"]
            for k in range(len(hits)):
                r = process_event(_event_arrays(hits[k], tracks[k], GENERIC_DETECTOR), config=cfg,
                                  geometry=GENERIC_DETECTOR, table=table)  # fmt: skip
                p = ak.to_numpy(hits[k]["hit_particle_id"])[r["seeds"].astype(np.int64)]
                pairs = [(p[:, a] == p[:, b]) & (p[:, a] != 0) for a, b in ((0, 1), (1, 2), (0, 2))]
                # 3: one particle; 2: one pair of one particle; 1: none
                same = np.where(pairs[0] & pairs[1], 3, np.where(pairs[0] | pairs[1] | pairs[2], 2, 1))
                out["features"].append(r["features"])
                out["label"].append(r["label"])
                out["same"].append(same)
    return {k: np.concatenate(v) for k, v in out.items()}


def scores(model_path: Path, features: np.ndarray) -> np.ndarray:
    import keras

    import hepgan.model  # noqa: F401  (custom layers)

    model = keras.saving.load_model(model_path, safe_mode=True, compile=False)
    z = model.input["noise"].shape[-1] if isinstance(model.input, dict) else 8
    parts = []
    for s in range(0, len(features), 8192):
        f = features[s : s + 8192].astype(np.float32)
        out = model.predict_on_batch({"condition": f, "noise": np.zeros((len(f), 1, z), np.float32)})
        parts.append(np.asarray(out["score"]))
    return np.concatenate(parts)


def main(argv: list[str] | None = None) -> int:
    from hepgan.train import _auc

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("inputs", nargs="+")
    ap.add_argument("-o", "--output", type=Path, default=Path(__file__).parent / "results" / "score-truth.json")
    args = ap.parse_args(argv)
    data = seeds_with_truth(args.inputs)
    score = scores(args.model, data["features"])
    label, same = data["label"] > 0, data["same"]
    real = same == 3

    def auc(sel: np.ndarray, positive: np.ndarray) -> float:
        return round(_auc(score[sel], positive[sel].astype(np.float64)), 4)

    results = {
        "seeds": int(len(score)),
        "acts_label": {"positives": int(label.sum()), "negatives": int((~label).sum()),
                       "negatives_real": int((real & ~label).sum()), "auc": auc(np.ones_like(label), label)},  # fmt: skip
        "truth": {
            "real": int(real.sum()),
            "fake_combinatorial": int((same == 1).sum()),
            "fake_one_wrong_hit": int((same == 2).sum()),
            "auc_real_vs_all_fakes": auc(np.ones_like(real), real),
            "auc_real_vs_combinatorial": auc(real | (same == 1), real),
            "auc_real_vs_one_wrong_hit": auc(real | (same == 2), real),
        },
    }
    doc = {"benchmark": "track score against the ACTS label and against truth", "machine": machine_info(),
           "model": str(args.model), "inputs": args.inputs, "results": results}  # fmt: skip
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
