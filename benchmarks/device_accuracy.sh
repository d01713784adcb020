#!/usr/bin/env bash
# On a machine with a GPU: Table 1 of the paper protocol on the embedded cohort
# (benchmarks/level_accuracy.py; see benchmarks/README.md, "On a machine with a GPU").
# Arguments go to level_accuracy.py, e.g. `bash benchmarks/device_accuracy.sh --folds 0 --epochs 100`.
set -euo pipefail
OUT=${OUT:-benchmarks/results}
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
fi
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
python3 benchmarks/level_accuracy.py --jobs "$(nproc)" --out "$OUT" "$@" 2>&1 | tee "$OUT/level_accuracy.log"
