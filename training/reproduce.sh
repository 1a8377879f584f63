#!/usr/bin/env bash
# Reproduce the shipped model deploy/models/hepgan-generic.{onnx,keras,card.json,export.json,parity.npz}
# from nothing: simulate Pythia 8 ttbar with pile-up and pion guns through ACTS, build the
# training set with the collision seeder window (configs/collisions-dataset.toml), train
# (configs/collisions.toml), export (parity-checked), calibrate the spread against ACTS, fit the
# error model against truth, compare with the installed model on tuning events, write the
# card, install.
# CPU, 2 cores (measured 2026-12-07, machine shared): simulation about 10 minutes (pile-up 200
# costs 12-25 s per event), datasets 1.5, training 5 (67 steps/s, early stop at epoch 28),
# export, calibration and error model 1: about 20 minutes on 2 cores in all. Seeds: docs/seeds.md (train 6001-6005 and 1001-1003; validation
# 6101-6103 and 2001-2003; the comparison's tuning seeds 5001/5050/5200, 3011/3012). Install
# only a model that beats the installed one there: INSTALL=0 stops before deploy/models.
set -euo pipefail
cd "$(dirname "$0")/.."
B=build/training_collisions
mkdir -p "$B"
H="${HEPGAN:-hepgan}"
PY="${PYTHON:-python}"
tt() { [ -f "$B/$1.root" ] || "$H" simulate -o "$B/$1.root" --process ttbar --pileup "$2" --events "$3" --seed "$4"; }
gun() { [ -f "$B/$1.root" ] || "$H" simulate -o "$B/$1.root" --events "$2" --vertices "$3" --particles 50 --seed "$4"; }
tt train_ttbar_pu0 0 40 6001
tt train_ttbar_pu50 50 12 6002
tt train_ttbar_pu200 200 5 6003
# more dense events: the fake rate at pile-up 200 is what the gun-trained model got wrong
tt train2_ttbar_pu200 200 10 6004
tt train2_ttbar_pu50 50 12 6005
gun train_20x50 60 20 1001
gun train_100x50 12 100 1002
gun train_200x50 6 200 1003
tt val_ttbar_pu0 0 10 6101
tt val_ttbar_pu50 50 3 6102
tt val_ttbar_pu200 200 2 6103
gun val_20x50 10 20 2001
gun val_100x50 5 100 2002
gun val_200x50 4 200 2003
TRAIN=("$B"/train_ttbar_pu0.root "$B"/train_ttbar_pu50.root "$B"/train_ttbar_pu200.root
  "$B"/train2_ttbar_pu200.root "$B"/train2_ttbar_pu50.root
  "$B"/train_20x50.root "$B"/train_100x50.root "$B"/train_200x50.root)
VAL=("$B"/val_ttbar_pu0.root "$B"/val_ttbar_pu50.root "$B"/val_ttbar_pu200.root
  "$B"/val_20x50.root "$B"/val_100x50.root "$B"/val_200x50.root)
# `hepgan dataset` builds with the default seeder; the collision window comes from the TOML
# through the library call so that it lands in the model's seeding_config
dataset() {
  "$PY" -c 'import sys
from hepgan.ml.dataset import DatasetConfig, build_dataset
cfg = DatasetConfig.from_toml("training/configs/collisions-dataset.toml")
doc = build_dataset(sys.argv[2:], sys.argv[1], config=cfg)
print(sys.argv[1], doc["counts"])' "$@"
}
dataset "$B/dataset_train" "${TRAIN[@]}"
dataset "$B/dataset_val" "${VAL[@]}"
"$H" -v train training/configs/collisions.toml
M="$B/hepgan-generic.onnx"
"$H" export "$B/model/generator.keras" -o "$M"
# the engine seeds as ACTS does (pT > 0.4 GeV, |eta| < 3, two per middle hit; why: the script's docstring)
"$PY" training/set_inference_seeding.py "$M"
# the sampled spread against ACTS and the error model against truth, fitted end to end on the
# validation events (hepgan.ml.calibrate, hepgan.ml.error_model)
"$H" calibrate --in-place "$M" "${VAL[@]}"
cp "$B/model/generator.keras" "$B/hepgan-generic.keras"
# against the installed model on tuning events (simulated into $B/tuning); the card records it
"$PY" benchmarks/bench_retrain_collisions.py --baseline "${BASELINE:-deploy/models/hepgan-generic.onnx}" \
  --model "$M" --data "$B/tuning"
"$PY" training/write_card.py "$B" training/configs/collisions-dataset.toml -o "$B/hepgan-generic.card.json"
[ "${INSTALL:-1}" = 1 ] || { echo "built $M (not installed: INSTALL=0)"; exit 0; }
cp "$M" "$B/hepgan-generic.keras" "$B/hepgan-generic.card.json" deploy/models/
# what `hepgan export deploy/models/hepgan-generic.keras` needs in place of build/: the ONNX's
# metadata and parity features of validation seeds (hepgan.ml.export.write_sidecars)
"$PY" -c "from hepgan.ml.export import write_sidecars as w; w('deploy/models/hepgan-generic.onnx', \
  'deploy/models/hepgan-generic.keras', '$B/val_20x50.root')"
echo "shipped: deploy/models/hepgan-generic.onnx"
