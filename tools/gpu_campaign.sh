#!/usr/bin/env bash
# Issue 14: a 10-minute GPU fine-tuning run of the small-128 preset from the bundled model.
#
#   tools/gpu_campaign.sh            # on the GPU machine: writes its results to $OUT
#   tools/gpu_campaign.sh --tiny     # here, on the CPU: the same command, 2 steps at batch 2
#
# Data: the folder written by tools/pack_gpu_data.py (DATA, default gpu-data; carry it to the GPU machine):
# curated UTKFace faces (sharpest first) + the validation split at 128 px, their landmarks, dlib's face
# ResNet for the identity and feature-matching terms (no face_recognition_models needed there).
# Training: train.init_weights=bundled, degradation mix {mild: 0.25, near_clean: 0.1}, dlib identity +
# feature matching, discriminators learning from step 0, their gradients reaching the generator from
# ADV_START, bf16 autocast, batch BATCH, stopped by wall clock after MINUTES at a step boundary with a checkpoint.
# Results in $OUT (at most 8 files of 16 MiB come back): model.safetensors.part00 + .part01 (the 30 MB fp32
# model in two pieces: `cat model.safetensors.part* > model.safetensors`), val_log.csv, train_log.csv, curves.png,
# the last validation grid, campaign.log, run.tar (model.json, config.yaml). Checkpoints stay in RUN, outside $OUT.
#
# Environment: PYTHON (python3), DATA (gpu-data), OUT (runs/gpu-campaign-out), RUN (/tmp/poseface-gpu-campaign),
# MINUTES (7.5: leaves the 10-minute command limit room for start-up and the last checkpoint), BATCH (32),
# WORKERS (14 data-loader processes of the 16 cores), ADV_START (1000).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
DATA=${DATA:-gpu-data}
OUT=${OUT:-runs/gpu-campaign-out}
RUN=${RUN:-/tmp/poseface-gpu-campaign}
MINUTES=${MINUTES:-7.5}
BATCH=${BATCH:-32}
WORKERS=${WORKERS:-14}
ADV_START=${ADV_START:-1000}
LOG_EVERY=25
DEVICE=cuda
LIMIT=()
if [[ "${1:-}" == "--tiny" ]]; then
  BATCH=2 WORKERS=0 DEVICE=cpu LOG_EVERY=1 LIMIT=(--max-steps 2)
elif [[ -n "${1:-}" ]]; then
  echo "gpu_campaign.sh: unknown argument ${1}; use --tiny or nothing" >&2; exit 2
fi
for file in faces.tar landmarks.json dlib_face_recognition_resnet_model_v1.dat; do
  [[ -f "$DATA/$file" ]] || { echo "gpu_campaign.sh: $DATA/$file missing; run tools/pack_gpu_data.py and carry $DATA" >&2; exit 2; }
done
if [[ -e "$RUN" ]]; then
  echo "gpu_campaign.sh: $RUN exists; remove it or set RUN to a new folder" >&2; exit 2
fi
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

set -o pipefail
"$PYTHON" -m poseface train configs/small-128.yaml --out-dir "$RUN" --no-progress --max-minutes "$MINUTES" "${LIMIT[@]}" \
  --set data.source="$DATA/faces.tar" --set data.landmarks="$DATA/landmarks.json" \
  --set losses.dlib_weights="$DATA/dlib_face_recognition_resnet_model_v1.dat" \
  --set "data.degradation_mix={mild: 0.25, near_clean: 0.1}" --set data.num_workers="$WORKERS" \
  --set train.device="$DEVICE" --set train.amp=bf16 --set train.batch_size="$BATCH" \
  --set train.init_weights=bundled \
  --set train.lr_codec=0.0005 --set train.lr_prior=0.0005 --set train.lr_noise=0.0005 --set train.lr_global_d=0.0002 \
  --set train.discriminator_start=0 --set train.adversarial_start="$ADV_START" --set "train.lr_milestones=[100000]" \
  --set losses.identity_backbone=dlib --set losses.feature_backbone=dlib \
  --set losses.face_preserving=1.0 --set losses.feature_matching=0.02 \
  --set train.log_every="$LOG_EVERY" --set train.val_every=250 --set train.checkpoint_every=1000 --set train.image_every=1000 \
  2>&1 | tee "$OUT/campaign.log"

for file in val_log.csv train_log.csv curves.png; do
  if [[ -f "$RUN/$file" ]]; then cp "$RUN/$file" "$OUT/"; else echo "gpu_campaign.sh: the run wrote no $file"; fi
done
split -b 15M -d "$RUN/model.safetensors" "$OUT/model.safetensors.part"
tar -cf "$OUT/run.tar" -C "$RUN" model.json config.yaml
last_grid=$(ls "$RUN"/images/step-*.png | sort | tail -n 1)
cp "$last_grid" "$OUT/last_grid_$(basename "$last_grid")"
echo "gpu_campaign.sh: results in $OUT (model: cat model.safetensors.part* > model.safetensors):"; ls -l "$OUT"
echo "last validation rows:"; tail -n 3 "$OUT/val_log.csv"
