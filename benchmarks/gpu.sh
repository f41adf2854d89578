#!/usr/bin/env bash
# One prepared GPU check (for a machine with CUDA torch already installed): records the
# 256^2 and 512^2 training-step measurements and the paper preset's scaling rows.
# Usage (from the repository root): OUT=/some/folder bash benchmarks/gpu.sh
# Each command writes JSON or JSONL into $OUT; `mollifier report` renders the sweep.
set -uo pipefail
OUT=${OUT:-results/gpu}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.csv" 2>&1
for pde in laplacian biharmonic; do
  timeout 240 "$PY" -m mollifier bench --pde "$pde" --grid 256,512 \
    --engines mollifier,autodiff,autodiff-forward,fd --device cuda --repeats 5 --json \
    > "$OUT/bench-$pde.json" 2> "$OUT/bench-$pde.err"
done
# Scaling part of the paper preset.
timeout 300 "$PY" -m mollifier bench --preset paper --device cuda --results "$OUT/bench-paper.jsonl" --kind scaling \
  --time-limit 60 > "$OUT/paper.out" 2> "$OUT/paper.err"
"$PY" -m mollifier report "$OUT/bench-paper.jsonl" --out "$OUT/report" --no-figures > /dev/null 2>&1
# Every engine and backbone trains on the GPU (the CPU suite's test, on cuda).
MOLLIFIER_TEST_DEVICE=cuda timeout 300 "$PY" -m pytest -q -p no:randomly tests/inverse/test_inverse_training.py \
  -k every_engine_and_backbone > "$OUT/device-tests.txt" 2>&1
# torch.compile and bf16 autocast on the three benchmarks (step time, accuracy).
timeout 600 "$PY" benchmarks/compile_precision.py --device cuda --steps 300 --json > "$OUT/compile-precision.json" \
  2> "$OUT/compile-precision.err"
ls -la "$OUT"
