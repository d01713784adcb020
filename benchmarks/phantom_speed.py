"""Benchmark of the phantom generator: full-size (paper) patients on one core (time, peak memory).

For each patient two fresh single-threaded processes run:

* the per-patient job exactly as the workflow runs it (``gohscore phantom --patient ...
  --scan-dir ... --patch-dir ... --part ...``), timed from outside, so interpreter start,
  imports, generation, the scan (NIfTI or DICOM), the patches and the part JSON all count;
  its peak RSS comes from ``wait4``;
* ``generate_patient`` alone (the in-memory volume), timed inside.

Then a few patients run as such jobs on ``--workers`` parallel workers (measured wall time).
The 227-patient cohort time on 8 cores is extrapolated from a linear fit of job time
against slice count, summed over the cohort's actual slice counts and divided by 8 (the
workers are independent). The figures go to benchmarks/results/phantom_speed.json.

    python benchmarks/phantom_speed.py [--patients P0001 ...] [--parallel-patients 8] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

GENERATE = r"""
import json, resource, sys, time
from gohscore.phantom.cohort import generate_patient, tune_allocator
from gohscore.phantom.sizes import PhantomParams
params = PhantomParams.from_section(json.loads(sys.argv[1]))
tune_allocator()  # as the per-patient job does
t0 = time.perf_counter()
pat = generate_patient(sys.argv[2], params, int(sys.argv[3]))
print(json.dumps({
    "generate_s": round(time.perf_counter() - t0, 2),
    "shape_zyx": list(pat.volume.shape),
    "slice_mm": pat.anatomy.slice_mm,
    "generate_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
}))
"""

PAPER = {
    "n_patients": 227,
    "size": "paper",
    "dicom_every": 10,
    "n_observer_patients": 16,
    "patches_per_pattern": 2,
}

SINGLE_THREAD = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS": "1",  # SimpleITK's global default (DICOM patients)
}


def gohscore_exe() -> str:
    """The ``gohscore`` console script of this interpreter's environment."""
    local = Path(sys.executable).with_name("gohscore")
    return str(local) if local.exists() else (shutil.which("gohscore") or "gohscore")


def run_job(patient: str, seed: int, root: Path, env: dict) -> dict:
    """One per-patient job as the workflow runs it: wall time, peak RSS, scan size, the part's info."""
    cmd = [
        gohscore_exe(),
        "phantom",
        "--patient",
        patient,
        "--params-json",
        json.dumps(PAPER),
        "--seed",
        str(seed),
        "--scan-dir",
        str(root / "scans" / patient),
        "--patch-dir",
        str(root / "patches" / patient),
        "--part",
        str(root / "parts" / f"{patient}.json"),
    ]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err}")
    info = json.loads((root / "parts" / f"{patient}.json").read_text())["info"]
    scan_bytes = sum(p.stat().st_size for p in (root / "scans" / patient).iterdir())
    return {
        "job_s": round(wall, 2),
        "job_cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "job_peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
        "format": info["format"],
        "scan_mib": round(scan_bytes / 2**20, 1),
        "write_patient_s": info["seconds"],
    }


def cohort_slices(seed: int) -> np.ndarray:
    """Slice count of every patient of the 227-patient paper cohort (the anatomy draw is cheap)."""
    from gohscore.phantom.anatomy import draw_anatomy
    from gohscore.phantom.sizes import PhantomParams, patient_index

    params = PhantomParams.from_section(PAPER)
    ids = [f"P{i:04d}" for i in range(1, PAPER["n_patients"] + 1)]
    return np.array(
        [
            draw_anatomy(np.random.default_rng([seed, patient_index(p), 0]), params.preset).n_slices
            for p in ids
        ]
    )


def previous_summary(path: Path) -> dict | None:
    """The headline figures of the result file this run replaces (for a before/after view)."""
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    measured = old.get("measured", {})
    keep = {k: v for k, v in measured.items() if k != "patients"}
    return {"date": old.get("date"), "what": old.get("what"), **keep, "extrapolated": old.get("extrapolated")}


def main() -> int:
    """Run the benchmark and record its figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--patients",
        nargs="+",
        default=["P0001", "P0002", "P0003", "P0004", "P0007", "P0010", "P0014", "P0018"],
    )
    parser.add_argument("--seed", type=int, default=2022)
    parser.add_argument("--parallel-patients", type=int, default=8, help="P0001.. run on --workers (0: skip)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "phantom_speed.json")
    args = parser.parse_args()
    env = {**os.environ, **SINGLE_THREAD}
    load_start = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for patient in args.patients:
            cmd = [sys.executable, "-c", GENERATE, json.dumps(PAPER), patient, str(args.seed)]
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            row = {"patient": patient, **json.loads(done.stdout.strip().splitlines()[-1])}
            row.update(run_job(patient, args.seed, root / "serial", env))
            rows.append(row)
            print(row, flush=True)
        parallel = None
        if args.parallel_patients > 0:
            ids = [f"P{i:04d}" for i in range(1, args.parallel_patients + 1)]
            t0 = time.perf_counter()
            with ThreadPoolExecutor(args.workers) as pool:
                jobs = list(pool.map(lambda p: run_job(p, args.seed, root / "parallel", env), ids))
            wall = time.perf_counter() - t0
            parallel = {
                "patients": ids,
                "workers": args.workers,
                "wall_s": round(wall, 2),
                "sum_job_s": round(sum(j["job_s"] for j in jobs), 2),
                "max_job_peak_rss_mib": max(j["job_peak_rss_mib"] for j in jobs),
            }
            print(parallel, flush=True)
    load_end = os.getloadavg()

    slices = np.array([r["shape_zyx"][0] for r in rows], float)
    job = np.array([r["job_s"] for r in rows])
    gen = np.array([r["generate_s"] for r in rows])
    slope, intercept = np.polyfit(slices, job, 1)
    cohort = cohort_slices(args.seed)
    cohort_job_s = float(np.sum(intercept + slope * cohort))
    result = {
        "what": "per-patient phantom job (gohscore phantom, paper size) on one core; cohort time extrapolated",
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": (
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, shared with other "
            f"work; load average {load_start[0]:.2f} at start, {load_end[0]:.2f} at end, so the "
            f"figures are upper bounds; Python {platform.python_version()}"
        ),
        "threads": SINGLE_THREAD,
        "measured": {
            "patients": rows,
            "mean_generate_s": round(float(gen.mean()), 2),
            "mean_job_s": round(float(job.mean()), 2),
            "max_job_s": round(float(job.max()), 2),
            "max_peak_rss_mib": max(max(r["job_peak_rss_mib"], r["generate_peak_rss_mib"]) for r in rows),
            "job_s_fit": {
                "intercept_s": round(float(intercept), 3),
                "per_100_slices_s": round(float(slope * 100), 3),
            },
        },
        "measured_parallel": parallel,
        "extrapolated": {
            "cohort_mean_slices": round(float(cohort.mean()), 1),
            "cohort_mean_job_s": round(cohort_job_s / len(cohort), 2),
            "cohort_227_on_8_cores_min": round(cohort_job_s / 8 / 60, 2),
            "assumes": (
                "job time = fit above at each cohort patient's slice count; 8 free cores, independent "
                "workers, linear scaling, no scheduler or disk contention (extrapolated, not measured)"
            ),
        },
        "targets": {"patient_s": 5, "cohort_227_on_8_cores_min": 5, "rss_gib_per_worker": 2},
        "previous_run": previous_summary(args.out),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result["extrapolated"]))
    print(
        f"mean generate {gen.mean():.2f} s, mean job {job.mean():.2f} s, "
        f"peak RSS {result['measured']['max_peak_rss_mib']} MiB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
