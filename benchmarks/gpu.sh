#!/usr/bin/env bash
# Issue 12: GPU forward and training-step timings in one run of under 5 minutes; tables to $OUT/gpu_bench.md.
#
#   benchmarks/gpu.sh             # on the GPU machine (python3 there holds torch; nothing to carry)
#   benchmarks/gpu.sh --dry-run   # here, on the CPU: the same steps on small-128 at batch 1, one run each
#
# 1. forward seconds per 512-px face, configs/paper-512.yaml, fp32 / fp16 / bf16 autocast, batch 1 and 8,
#    NCHW and channels_last (benchmarks/forward.py; compare the paper's Table 6: 0.109 s per face on a V100);
# 2. training seconds per iteration with bf16 autocast: paper-512 at batch 4, small-128 at batch 32, every
#    loss term on (benchmarks/train_step.py).
# Both scripts synchronise CUDA around every timed region, warm up first (cuDNN autotuner on) and take
# medians. Environment: PYTHON (python3), OUT (runs/gpu-bench-out).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
OUT=${OUT:-runs/gpu-bench-out}
DEVICE=cuda CONFIG=configs/paper-512.yaml BATCHES=1,8 PRECISIONS=fp32,fp16,bf16 RUNS=10 WARMUP=3 MATMUL=8192
TRAIN_ROWS=configs/paper-512.yaml:4,configs/small-128.yaml:32 STEPS=10 LIMIT=100
if [[ "${1:-}" == "--dry-run" ]]; then
  DEVICE=cpu CONFIG=configs/small-128.yaml BATCHES=1 PRECISIONS=fp32,bf16 RUNS=1 WARMUP=1 MATMUL=256
  TRAIN_ROWS=configs/small-128.yaml:1 STEPS=1 LIMIT=300
elif [[ -n "${1:-}" ]]; then
  echo "gpu.sh: unknown argument ${1}; use --dry-run or nothing" >&2; exit 2
fi
mkdir -p "$OUT"
REPORT="$OUT/gpu_bench.md"
export PYTHONUNBUFFERED=1

section() {  # section TITLE COMMAND...: the command's table under a heading, or one line if it failed or ran past LIMIT s
  local title=$1; shift
  printf '\n## %s\n\n```\n%s\n```\n\n' "$title" "$*" >>"$REPORT"
  if ! timeout "$LIMIT" "$@" >>"$REPORT" 2>"$OUT/stderr.txt"; then
    echo "failed or over ${LIMIT} s: $(tail -n 1 "$OUT/stderr.txt")" >>"$REPORT"
  fi
}

{
  echo "# PoseFace GPU benchmark ($(date -u +%Y-%m-%dT%H:%MZ))"
  echo
  "$PYTHON" -c "import torch; d = torch.cuda.get_device_name() if torch.cuda.is_available() else 'no CUDA device'; print(f'torch {torch.__version__}, {d}')"
  echo
  echo "Paper, Table 6: 0.109 s per 512-px face on a V100 (batch and precision not stated)."
} >"$REPORT"
forward=("$PYTHON" benchmarks/forward.py --device "$DEVICE" --config "$CONFIG" --batches "$BATCHES" --precisions "$PRECISIONS"
         --runs "$RUNS" --warmup "$WARMUP" --matmul-size "$MATMUL")
section "Forward, NCHW" "${forward[@]}"
section "Forward, channels_last" "${forward[@]}" --channels-last
section "Training step, bf16 autocast" "$PYTHON" benchmarks/train_step.py --device "$DEVICE" --amp bf16 --rows "$TRAIN_ROWS" \
  --steps "$STEPS" --warmup "$WARMUP"
rm -f "$OUT/stderr.txt"
cat "$REPORT"
