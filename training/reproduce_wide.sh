#!/usr/bin/env bash
# The 2026-12 retraining with the inference seeder: two candidate models, trained on the
# events of training/reproduce.sh (simulated once into build/training_collisions and shared),
# and their comparison with the installed model on the tuning events (docs/seeds.md: ttbar
# 5001 / 5050 / 5200, guns 3011 / 3012) in one run, so that the three alternate per event.
#   A  configs/collisions-wide-dataset.toml:    the inference seeder (pT > 0.4 GeV, |eta| < 3,
#      two seeds per middle hit), |d0| < 2 mm (1 mm, inner hit on the first layer)
#   B  configs/collisions-wide-d0-dataset.toml: the same with |d0| < 5 mm (2.5 mm)
# Candidates: build/training_collisions_wide{,-d0}/hepgan-generic.{onnx,keras,card.json}
# (exported, calibrated; not installed). Comparison: benchmarks/results/retrain-wide-seeding.json
# (10 / 4 / 3 ttbar events, as reproduce.sh's) and retrain-wide-seeding-large.json (100 / 20 / 12).
# CPU, 2 cores: simulation about 10 minutes (shared), each variant 10-20, the comparison 10-20.
# Installing one is reproduce.sh with its DATASET_TOML / TRAIN_TOML and INSTALL=1; B (wide-d0) is
# shipped and is now reproduce.sh's default.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
OUT="${COMPARISON:-benchmarks/results/retrain-wide-seeding.json}"
for v in wide wide-d0; do
  DATASET_TOML="training/configs/collisions-$v-dataset.toml" TRAIN_TOML="training/configs/collisions-$v.toml" \
    COMPARISON="$OUT" BENCH=0 INSTALL=0 bash training/reproduce.sh
done
"$PY" benchmarks/bench_retrain_collisions.py --baseline "${BASELINE:-deploy/models/hepgan-generic.onnx}" \
  --model build/training_collisions_wide/hepgan-generic.onnx --name wide \
  --model build/training_collisions_wide-d0/hepgan-generic.onnx --name wide-d0 \
  --data build/training_collisions/tuning -o "$OUT" \
  --what "models trained with the inference seeder (wide: |d0| < 2 mm; wide-d0: |d0| < 5 mm) against the installed one (baseline)"
# the same on more events of the same tuning seeds (ttbar 100 / 20 / 12 events at pile-up 0 / 50 / 200)
"$PY" benchmarks/bench_retrain_collisions.py --baseline "${BASELINE:-deploy/models/hepgan-generic.onnx}" \
  --model build/training_collisions_wide/hepgan-generic.onnx --name wide \
  --model build/training_collisions_wide-d0/hepgan-generic.onnx --name wide-d0 \
  --data build/training_collisions/tuning --ttbar-events 100 20 12 --no-scan -o "${OUT%.json}-large.json" \
  --what "as retrain-wide-seeding.json on more events of the same tuning seeds (ttbar 100 / 20 / 12 events), no score scan"
for v in wide wide-d0; do
  "$PY" training/write_card.py "build/training_collisions_$v" "training/configs/collisions-$v-dataset.toml" \
    --train-toml "training/configs/collisions-$v.toml" --comparison "$OUT" \
    -o "build/training_collisions_$v/hepgan-generic.card.json"
done
echo "candidates: build/training_collisions_wide{,-d0}/hepgan-generic.onnx (not installed); comparison: $OUT"
