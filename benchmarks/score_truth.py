"""What the track score separates, against truth (issue: the GAN, "AUC >= 0.99").

The shipped score learns truth (``score_label = "truth"``: the seed's three hits are one
particle's); older ones learned whether ACTS returned the seed's track. This benchmark splits
the seeds of held-out events by truth, from the hits' particle ids:

- real: the three hits belong to one particle;
- fake, combinatorial: no two hits of one particle;
- fake, one wrong hit: two hits of one particle, the third of another (or noise);

and reports the score's AUC against the ACTS label and against each truth split; how many
negatives (not on an ACTS track) are real seeds ACTS did not return; for the one-wrong-hit
fakes, which seed hit is the wrong one, how far it lies from the particle's own hit on that
layer (across the track and along z), and how often ACTS's own track holds the wrong hit; and
the AUC by the project's matching rule applied to a seed (``hepgan.perf.metrics``: a particle
holding at least half of the hits, two of three, makes it that particle's track).

Usage: python benchmarks/score_truth.py MODEL.keras FILE.root... [-o results.json]
(needs the training extras: Keras loads the generator; features as `hepgan dataset` builds them)
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import awkward as ak
import numpy as np

from hepgan.io.events import iterate_chunks
from hepgan.ml.dataset import DatasetConfig, _event_arrays, process_event
from hepgan.perf.machine import machine_info
from hepgan.reco.features import layer_table
from hepgan.reco.geometry import GENERIC_DETECTOR


def seeds_with_truth(paths: list[str]) -> dict[str, np.ndarray]:
    cfg = DatasetConfig()
    table = layer_table(GENERIC_DETECTOR, cfg.features)
    out: dict[str, list[np.ndarray]] = {"features": [], "label": [], "same": [], "wrong": [], "d_rphi": [], "d_z": []}
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
                wrong, d_rphi, d_z = _wrong_hit(hits[k], r["seeds"].astype(np.int64), p, same == 2)
                out["wrong"].append(wrong)
                out["d_rphi"].append(d_rphi)
                out["d_z"].append(d_z)
    return {k: np.concatenate(v) for k, v in out.items()}


def _wrong_hit(hits, seeds: np.ndarray, p: np.ndarray, one_wrong: np.ndarray):
    """For one-wrong-hit seeds: which seed hit (0 inner, 1 middle, 2 outer) is the other
    particle's, and its distance across the track (r dphi) and along z from the nearest hit of
    the seed's particle on the same layer (NaN where that particle has none there); -1 / NaN
    for the other seeds."""
    n = len(seeds)
    wrong, d_rphi, d_z = np.full(n, -1, np.int8), np.full(n, np.nan), np.full(n, np.nan)
    pid = ak.to_numpy(hits["hit_particle_id"])
    x, y, z = (ak.to_numpy(hits[f"hit_{c}"]).astype(np.float64) for c in "xyz")
    surface = ak.to_numpy(hits["hit_volume_id"]).astype(np.int64) * 10_000 + ak.to_numpy(hits["hit_layer_id"])
    for i in np.flatnonzero(one_wrong):
        a, b, c = p[i]
        w = 2 if a == b else 0 if b == c else 1
        owner = b if w != 1 else a
        hit = seeds[i, w]
        own = np.flatnonzero((pid == owner) & (surface == surface[hit]))
        wrong[i] = w
        if len(own):
            j = own[np.argmin((x[own] - x[hit]) ** 2 + (y[own] - y[hit]) ** 2 + (z[own] - z[hit]) ** 2)]
            r = math.hypot(x[hit], y[hit])
            d_rphi[i] = r * math.remainder(math.atan2(y[hit], x[hit]) - math.atan2(y[j], x[j]), 2 * math.pi)
            d_z[i] = z[hit] - z[j]
    return wrong, d_rphi, d_z


def scores(model_path: Path, features: np.ndarray) -> np.ndarray:
    import keras

    import hepgan.ml.model  # noqa: F401  (custom layers)

    model = keras.saving.load_model(model_path, safe_mode=True, compile=False)
    z = model.input["noise"].shape[-1] if isinstance(model.input, dict) else 8
    parts = []
    for s in range(0, len(features), 8192):
        f = features[s : s + 8192].astype(np.float32)
        out = model.predict_on_batch({"condition": f, "noise": np.zeros((len(f), 1, z), np.float32)})
        parts.append(np.asarray(out["score"]))
    return np.concatenate(parts)


def _one_wrong_summary(data: dict[str, np.ndarray], score: np.ndarray, label: np.ndarray) -> dict:
    from hepgan.perf.metrics import auc as _auc

    sel = data["same"] == 2
    real = data["same"] == 3
    out: dict = {"seeds": int(sel.sum()), "on_an_acts_track": round(float(label[sel].mean()), 4) if sel.any() else None}
    for w, name in enumerate(("inner", "middle", "outer")):
        this = sel & (data["wrong"] == w)
        if not this.any():
            continue
        dr, dz = np.abs(data["d_rphi"][this]), np.abs(data["d_z"][this])
        out[f"wrong_{name}"] = {
            "seeds": int(this.sum()),
            "on_an_acts_track": round(float(label[this].mean()), 4),
            "median_abs_d_rphi_mm": round(float(np.nanmedian(dr)), 4) if np.isfinite(dr).any() else None,
            "median_abs_d_z_mm": round(float(np.nanmedian(dz)), 4) if np.isfinite(dz).any() else None,
            "auc_real_vs_these": round(_auc(score[real | this], real[real | this].astype(np.float64)), 4),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    from hepgan.perf.metrics import auc as _auc

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
            # the project's matching rule on a seed: two of its three hits make it a particle's
            "auc_particle_majority_vs_combinatorial": auc(np.ones_like(real), same >= 2),
        },
        "one_wrong_hit": _one_wrong_summary(data, score, label),
    }
    doc = {"benchmark": "track score against the ACTS label and against truth", "machine": machine_info(),
           "model": str(args.model), "inputs": args.inputs, "results": results}  # fmt: skip
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
