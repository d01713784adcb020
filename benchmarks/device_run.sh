#!/usr/bin/env bash
# One prepared call on a lent GPU machine (see benchmarks/README.md, "Running on the lent GPU"):
# installs the carried wheels, measures the shared anchor (the paper's nets) and our level
# network in the same call, and leaves both JSON files in $OUT.
set -euo pipefail
OUT=${OUT:-benchmarks/results}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,clocks.sm --format=csv | tee "$OUT/gpu.txt"
python3 .gpu/gpu_anchor.py --paper 2>&1 | tail -3
python3 benchmarks/level_net_gpu.py 2>&1 | tee "$OUT/level_net_gpu.log"
python3 benchmarks/score_net_gpu.py 2>&1 | tee "$OUT/score_net_gpu.log"
