"""Benchmark: ingest + resample of a 512x512x400 scan (0.7x0.7x0.8 mm) on one core, and loading a 256^3 volume.

Decompression is excluded: the scan is an uncompressed .mha read from a warm page cache.
Run: ``python benchmarks/ingest_speed.py`` (writes benchmarks/results/ingest_speed.json, or ``--out``).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import SimpleITK as sitk  # noqa: E402

from gohscore import io  # noqa: E402
from gohscore.resample import resample_scan  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "ingest_speed.json"


def synthetic_scan(path: Path) -> None:
    """Write a 512x512x400 chest-like int16 scan (air, body, lungs) as uncompressed .mha."""
    z, y, x = np.ogrid[0:400, 0:512, 0:512]
    arr = np.full((400, 512, 512), -1000, np.int16)
    arr[:, ((x[0] - 255.5) / 215) ** 2 + ((y[0] - 255.5) / 170) ** 2 < 1] = 40
    for side in (-1, 1):
        lung = ((x - 255.5 - side * 95) / 70) ** 2 + ((y - 245) / 120) ** 2 + ((z - 220) / 150) ** 2
        arr[lung < 1] = -850
    arr += np.random.default_rng(0).integers(-20, 21, size=(1, 512, 512), dtype=np.int16)
    image = sitk.GetImageFromArray(arr)
    image.SetSpacing((0.7, 0.7, 0.8))
    image.SetOrigin((-179.0, -179.0, -400.0))
    sitk.WriteImage(image, str(path), useCompression=False)


def best_of(fn, repeats: int) -> float:
    """Fastest wall time of ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    """Run the benchmark, print and save the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=RESULTS, help="JSON file (default benchmarks/results/...)"
    )
    args = parser.parse_args()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    with tempfile.TemporaryDirectory() as tmp:
        scan = Path(tmp) / "scan.mha"
        synthetic_scan(scan)
        scan.read_bytes()  # warm the page cache
        read_s = best_of(lambda: io.read_scan(scan), 3)
        hash_s = best_of(lambda: io.sha256_files([scan]), 3)
        total_s = best_of(lambda: resample_scan(scan, "BENCH", 1.2, 256), 3)
        volume, _ = resample_scan(scan, "BENCH", 1.2, 256)
        npy = Path(tmp) / "vol.npy"
        io.write_volume(volume, npy)
        io.read_volume(npy)
        load_ms = 1000 * best_of(lambda: io.read_volume(npy), 10)
    result = {
        "scan": "512x512x400 int16, 0.7x0.7x0.8 mm, uncompressed .mha, warm cache",
        "threads": 1,
        "ingest_resample_s": round(total_s, 3),
        "of_which_read_s": round(read_s, 3),
        "of_which_sha256_s": round(hash_s, 3),
        "load_cached_256_ms": round(load_ms, 1),
        "targets": {"ingest_resample_s": 1.0, "load_cached_256_ms": 50.0},
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus, python {sys.version.split()[0]}",
    }
    print(json.dumps(result, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
