"""Benchmark of the phantom generator: full-size patients on one core (time, peak memory).

Each patient runs in a fresh single-threaded subprocess, so its peak RSS is its own. The
227-patient cohort time on 8 cores is extrapolated from the mean per-patient time (the
workers are independent); the figures go to benchmarks/results/phantom_speed.json.

    python benchmarks/phantom_speed.py [--patients P0001 P0002 ...] [--seed 2022]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORKER = r"""
import json, resource, sys, time
from pathlib import Path
from gohscore.phantom.cohort import generate_patient, write_patient
from gohscore.phantom.sizes import parse_params
params = parse_params(json.loads(sys.argv[1]))
patient, seed, out = sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
t0 = time.perf_counter()
pat = generate_patient(patient, params, seed)
t1 = time.perf_counter()
shape = list(pat.volume.shape)
del pat
part = write_patient(patient, params, seed, out / "scans" / patient, out / "patches" / patient)
t2 = time.perf_counter()
print(json.dumps({
    "patient": patient, "shape_zyx": shape, "slice_mm": part["info"]["spacing_xyz_mm"][2],
    "format": part["info"]["format"], "generate_s": round(t1 - t0, 2),
    "generate_and_write_s": round(t2 - t1, 2),
    "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
}))
"""

PAPER = {
    "n_patients": 227,
    "size": "paper",
    "dicom_every": 10,
    "n_observer_patients": 16,
    "patches_per_pattern": 2,
}


def main() -> int:
    """Run the benchmark and record its figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", nargs="+", default=["P0001", "P0002", "P0003", "P0004", "P0010"])
    parser.add_argument("--seed", type=int, default=2022)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "phantom_speed.json")
    args = parser.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for patient in args.patients:
            cmd = [sys.executable, "-c", WORKER, json.dumps(PAPER), patient, str(args.seed), tmp]
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(rows[-1], flush=True)
    per_patient = sum(r["generate_and_write_s"] for r in rows) / len(rows)
    per_gen = sum(r["generate_s"] for r in rows) / len(rows)
    result = {
        "what": "one full-size (paper) phantom patient on one core; cohort time extrapolated",
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared), Python {platform.python_version()}",
        "measured": {
            "patients": rows,
            "mean_generate_s": round(per_gen, 2),
            "mean_generate_and_write_s": round(per_patient, 2),
            "max_peak_rss_mib": max(r["peak_rss_mib"] for r in rows),
        },
        "extrapolated": {
            "cohort_227_on_8_cores_min": round(227 * per_patient / 8 / 60, 2),
            "assumes": "independent workers scale linearly over 8 cores; per-patient time = measured mean",
        },
        "targets": {"patient_s": 5, "cohort_227_on_8_cores_min": 5, "rss_gib_per_worker": 2},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({k: result[k] for k in ("measured", "extrapolated")}["extrapolated"]))
    print(
        f"mean generate {per_gen:.2f} s, generate+write {per_patient:.2f} s, peak RSS {result['measured']['max_peak_rss_mib']} MiB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
