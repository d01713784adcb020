#!/usr/bin/env bash
# On a machine with a GPU (benchmarks/README.md, "On a machine with a GPU"): installs the wheels
# in .whl/ (if any), measures the reference isolated steps (.gpu/gpu_anchor.py, if present) and
# our level and score networks in the same run, and leaves the JSON files in $OUT.
set -euo pipefail
OUT=${OUT:-benchmarks/results}
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
fi
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,clocks.sm --format=csv | tee "$OUT/gpu.txt"
if [[ -f .gpu/gpu_anchor.py ]]; then python3 .gpu/gpu_anchor.py --paper 2>&1 | tail -3; fi
python3 benchmarks/level_net_gpu.py 2>&1 | tee "$OUT/level_net_gpu.log"
python3 benchmarks/score_net_gpu.py 2>&1 | tee "$OUT/score_net_gpu.log"
python3 benchmarks/explain_cost.py --device cuda --out-dir "$OUT" 2>&1 | tee "$OUT/explain_cost_gpu.log"
