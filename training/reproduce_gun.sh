#!/usr/bin/env bash
# The previous, gun-only shipped model (pion guns only; superseded by training/reproduce.sh, which
# trains on collisions and guns). Installs into deploy/models/ like it: run one or the other.
# Reproduces deploy/models/hepgan-generic.{onnx,keras,card.json,export.json,parity.npz} as it was
# from nothing:
# simulate with ACTS, build the training set, train, export (parity-checked), calibrate the
# track errors, install.
# CPU: about 35 minutes on 2 cores (simulation 12, dataset 2, training 17, calibration 1), as the
# README says. On a GPU, run the train step with KERAS_BACKEND=jax (the README tour: JAX on a GPU)
# and the export under TensorFlow (tf2onnx needs it).
set -euo pipefail
cd "$(dirname "$0")/.."
B=build/training
mkdir -p "$B"
H="${HEPGAN:-hepgan}"
sim() { [ -f "$B/$1.root" ] || "$H" simulate -o "$B/$1.root" --events "$2" --vertices "$3" --particles 50 --seed "$4"; }
sim train_20x50 60 20 1001
sim train_100x50 12 100 1002
sim train_200x50 6 200 1003
sim train2_20x50 60 20 1011
sim train2_100x50 12 100 1012
sim train2_200x50 6 200 1013
sim val_20x50 10 20 2001
sim val_100x50 5 100 2002
sim val_200x50 4 200 2003
"$H" dataset "$B"/train_20x50.root "$B"/train_100x50.root "$B"/train_200x50.root \
  "$B"/train2_20x50.root "$B"/train2_100x50.root "$B"/train2_200x50.root -o "$B/dataset_train"
"$H" dataset "$B"/val_20x50.root "$B"/val_100x50.root "$B"/val_200x50.root -o "$B/dataset_val"
"$H" -v train training/configs/generic.toml
"$H" export "$B/model/generator.keras" -o deploy/models/hepgan-generic.onnx
# the track errors against the truth (error model) and the sampled spread against ACTS, fitted end
# to end on the validation events (hepgan.ml.error_model, hepgan.ml.calibrate)
"$H" calibrate --in-place deploy/models/hepgan-generic.onnx "$B"/val_20x50.root "$B"/val_100x50.root "$B"/val_200x50.root
cp "$B/model/generator.keras" deploy/models/hepgan-generic.keras
cp "$B/model/model_card.json" deploy/models/hepgan-generic.card.json
# what `hepgan export deploy/models/hepgan-generic.keras` needs in place of build/training/:
# the ONNX's metadata and parity features of validation seeds (hepgan.ml.export.write_sidecars)
"${PYTHON:-python}" -c "from hepgan.ml.export import write_sidecars as w; w('deploy/models/hepgan-generic.onnx', \
  'deploy/models/hepgan-generic.keras', '$B/val_20x50.root')"
echo "shipped: deploy/models/hepgan-generic.onnx"
