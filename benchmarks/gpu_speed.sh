#!/usr/bin/env bash
# The GPU speed figures in README (issue 8), in one go on a CUDA machine:
#   bash benchmarks/gpu_speed.sh DATA_ROOT LOG_DIR [dcgan|cyclegan|all]
# DATA_ROOT holds MNIST/raw/; each part's log goes to LOG_DIR. Parts run one after the other so
# that no two timings share the machine.
set -u
DATA=$1 LOGS=$2 PART=${3:-all}
RUNS=$(mktemp -d)
export PYTHONUNBUFFERED=1
TIMEFORMAT='  wall %R s'
mkdir -p "$LOGS"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$LOGS/device.txt"
python -c "import torch, sys; print('torch', torch.__version__, 'python', sys.version.split()[0])" | tee -a "$LOGS/device.txt"

if [ "$PART" != cyclegan ]; then
  echo "== DCGAN, MNIST 64x64, batch 128, one epoch: peer loop against ganzoo with each set of options"
  timeout 300 python benchmarks/dcgan_speed.py --data-root "$DATA" --image-size 64 --batch-size 128 --workers 2 \
    --device cuda --variants off defaults reuse graphs bf16+tf32+compile+graphs 2>&1 | tee "$LOGS/dcgan64.log"
  for mode in ${E2E_MODES:-default cuda-graphs fast}; do
    echo "== ganzoo train dcgan, 5 epochs end to end (process start included): $mode"
    flags=(--batch-size 128)
    [ $mode = cuda-graphs ] && flags=(--batch-size 128 --cuda-graphs)
    [ $mode = fast ] && flags=(--fast)
    { time python -m ganzoo train dcgan --data mnist --data-root "$DATA" --image-size 64 --epochs 5 --device cuda \
        --no-progress --out "$RUNS/$mode" "${flags[@]}" >"$RUNS/train-$mode.log" 2>&1; } 2>&1 | tee -a "$LOGS/e2e.log"
    tail -4 "$RUNS/train-$mode.log" | tee -a "$LOGS/e2e.log"
    python -c "import json,sys; rows=[json.loads(l) for l in open(sys.argv[1])]; print('  epoch seconds:', [round(r['seconds'],2) for r in rows if r.get('event')=='epoch'])" \
      "$RUNS/$mode/metrics.jsonl" | tee -a "$LOGS/e2e.log"
    python -m ganzoo eval dcgan --weights "$RUNS/$mode/generator.safetensors" --data mnist --data-root "$DATA" \
      --metrics digits --num 10000 --device cuda 2>&1 | tail -12 | tee -a "$LOGS/e2e.log"
  done
  echo "== where the end-to-end time goes (start-up, set-up, loops, epoch ends), default options"
  timeout 300 python benchmarks/train_phases.py dcgan --data mnist --data-root "$DATA" --image-size 64 --epochs 5 \
    --batch-size 128 --device cuda 2>&1 | tee "$LOGS/phases.log"
  echo "== ganzoo sample: 50,000 MNIST samples to .npz"
  { time python -m ganzoo sample dcgan --weights "$RUNS/default/generator.safetensors" --num 50000 \
      --out "$RUNS/samples.npz" --device cuda 2>&1 | tail -2; } 2>&1 | tee "$LOGS/sample.log"
  timeout 120 python benchmarks/guard_overhead.py --device cuda 2>&1 | tee "$LOGS/guard.log"
fi

if [ "$PART" != dcgan ]; then
  echo "== CycleGAN 256x256, batch 1: peer loop against ganzoo"
  # compile: G_AB, G_BA, D_A and D_B themselves (before, only their holders, which training never calls)
  timeout 560 python benchmarks/cyclegan_step.py --device cuda --image-size 256 --steps 200 --log-every 25 \
    --workers 8 --warmup 10 --variants ${CYCLEGAN_VARIANTS:-defaults tf32 compile tf32+compile bf16+compile fast} 2>&1 \
    | tee "$LOGS/cyclegan256.log"
fi
rm -rf "$RUNS"
