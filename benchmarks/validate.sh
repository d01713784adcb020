#!/usr/bin/env bash
# The CPU validation protocol: the whole workflow on config/validate.yaml (64 synthetic patients,
# 35 to 60 min on 2 cores), then its tables, figures and wall time copied to
# benchmarks/results/validate/. `--record-only` copies the results of a finished run.
#   bash benchmarks/validate.sh [--record-only]
set -euo pipefail
cd "$(dirname "$0")/.."
results=results/validate
out=benchmarks/results/validate
if [[ "${1:-}" != "--record-only" ]]; then
  start=$(date +%s)
  snakemake --profile profiles/cpu --configfile config/validate.yaml
  echo $(( $(date +%s) - start )) > "$results/wall_seconds"
fi
mkdir -p "$out"
cp "$results"/tables/*.md "$out"/
cp "$results"/figures/*.png "$out"/
python - "$results" "$out" <<'PY'
import json, os, subprocess, sys, time
from pathlib import Path
results, out = Path(sys.argv[1]), Path(sys.argv[2])
wall = results / "wall_seconds"
record = {
    "what": "CPU validation protocol: snakemake --profile profiles/cpu --configfile config/validate.yaml",
    "wall_seconds": int(wall.read_text()) if wall.exists() else None,
    "machine": f"{os.cpu_count()} CPU cores, no GPU",
    "recorded": time.strftime("%Y-%m-%d %H:%M"),
    "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip(),
}
(out / "run.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
print(json.dumps(record))
PY
