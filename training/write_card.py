"""Write the shipped model's card: the training card (data, config, versions, train time) plus
what a reader needs to judge the model: the seeds of every event it saw, the seeding config
inference must use, the calibrations stored in the ONNX, and the comparison with the model it
replaced (bench_retrain_collisions.py's JSON, tuning seeds only; the shipped model's:
benchmarks/results/retrain-wide-seeding.json).

Usage: python training/write_card.py BUILD_DIR DATASET_TOML [--train-toml TOML] [--comparison JSON] -o CARD.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import onnx

from hepgan.ml.dataset import DatasetConfig
from hepgan.reco.model_file import CARD_CALIBRATION_KEYS

#: The events the model saw (docs/seeds.md): file stem -> (seed, what).
SEEDS = {
    "train_ttbar_pu0": (6001, "ttbar, pile-up 0, 40 events"),
    "train_ttbar_pu50": (6002, "ttbar, pile-up 50, 12 events"),
    "train_ttbar_pu200": (6003, "ttbar, pile-up 200, 5 events"),
    "train2_ttbar_pu200": (6004, "ttbar, pile-up 200, 10 events"),
    "train2_ttbar_pu50": (6005, "ttbar, pile-up 50, 12 events"),
    "train_20x50": (1001, "pion gun 20 x 50, 60 events"),
    "train_100x50": (1002, "pion gun 100 x 50, 12 events"),
    "train_200x50": (1003, "pion gun 200 x 50, 6 events"),
    "val_ttbar_pu0": (6101, "ttbar, pile-up 0, 10 events"),
    "val_ttbar_pu50": (6102, "ttbar, pile-up 50, 3 events"),
    "val_ttbar_pu200": (6103, "ttbar, pile-up 200, 2 events"),
    "val_20x50": (2001, "pion gun 20 x 50, 10 events"),
    "val_100x50": (2002, "pion gun 100 x 50, 5 events"),
    "val_200x50": (2003, "pion gun 200 x 50, 4 events"),
}
ROOT = Path(__file__).resolve().parent.parent
COMPARISON = ROOT / "benchmarks" / "results" / "retrain-wide-seeding.json"


def _repo_relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def comparison_summary(path: Path) -> dict | None:
    """Per sample and model: the headline figures of bench_retrain_collisions.py's JSON."""
    if not path.exists():
        return None
    doc = json.loads(path.read_text())
    keys = ("efficiency_pt1.0", "efficiency_pt0.5", "efficiency_pt1.0_hard_scatter", "efficiency_pt1.0_displaced")
    out = {}
    models = list(doc.get("models", {"baseline": None, "new": None}))
    for sample, r in doc["results"].items():
        out[sample] = {"seed": r["seed"], "events": r["events"]}
        for who in ("acts", *models):
            f = r[who]
            row = {k: f[k]["efficiency"] for k in keys if k in f}
            row.update({k: f[k] for k in ("fake_rate", "duplicate_rate", "trackml_score", "engine_ms_per_event") if k in f})
            if "agreement" in f:
                row["acts_tracks_reproduced"] = f["agreement"]["fraction_reproduced"]
            out[sample][who] = row
    return {"source": f"{_repo_relative(path)} (tuning seeds; not for quoting)",
            "date": doc["machine"].get("date"), "results": out}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("build", type=Path)
    ap.add_argument("dataset_toml", type=Path)
    ap.add_argument("--train-toml", type=Path, default=Path("training/configs/collisions-wide-d0.toml"))
    ap.add_argument("--comparison", type=Path, default=COMPARISON, help="bench_retrain_collisions.py's JSON")
    ap.add_argument("-o", "--output", type=Path, required=True)
    args = ap.parse_args(argv)
    card = json.loads((args.build / "model" / "model_card.json").read_text())
    card["files"] = {"onnx": "hepgan-generic.onnx", "keras": "hepgan-generic.keras"}
    card["events"] = {stem: {"seed": seed, "sample": what, "split": stem.split("_")[0].rstrip("2")}
                      for stem, (seed, what) in SEEDS.items()}  # fmt: skip
    card["recipe"] = f"training/reproduce.sh ({_repo_relative(args.train_toml)}, {_repo_relative(args.dataset_toml)})"
    card["dataset_config"] = DatasetConfig.from_toml(args.dataset_toml).to_dict()
    meta = {p.key: p.value for p in onnx.load(str(args.build / "hepgan-generic.onnx"), load_external_data=False).metadata_props}
    doc = json.loads(meta.get("hepgan", "{}"))
    card["seeding_config"] = doc.get("seeding_config")
    card["calibration"] = {k: doc.get(k, json.loads(meta[k]) if k in meta else None)
                           for k in CARD_CALIBRATION_KEYS}  # fmt: skip
    card["comparison"] = comparison_summary(args.comparison)
    args.output.write_text(json.dumps(card, indent=1) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
