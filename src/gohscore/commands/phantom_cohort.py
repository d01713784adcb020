"""``gohscore phantom-cohort``: generate a whole synthetic cohort folder in parallel."""

from __future__ import annotations

import argparse
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from gohscore.lesion_masks import mask_path
from gohscore.phantom.cohort import tune_allocator, write_patient, write_tables
from gohscore.phantom.observers import observer_patients
from gohscore.phantom.sizes import PhantomParams, patient_id
from gohscore.progress import progress


def _one(job: tuple[str, PhantomParams, int, Path]) -> dict:
    """Worker: write one patient into the cohort folder."""
    patient, params, seed, out = job
    scans, patches = out / "scans" / patient, out / "patches" / patient
    return write_patient(patient, params, seed, scans, patches, mask_path(out, patient))


def generate_cohort(out: Path, params: PhantomParams, seed: int, jobs: int = 1) -> list[dict]:
    """Write every patient's scan, patches and lesion masks into ``out`` and the tables; return the parts."""
    todo = [(patient_id(i), params, seed, out) for i in range(1, params.n_patients + 1)]
    if jobs <= 1:
        parts = list(progress(map(_one, todo), "phantom patients", total=len(todo)))
    else:
        with ProcessPoolExecutor(max_workers=jobs, initializer=tune_allocator) as pool:
            parts = list(progress(pool.map(_one, todo), "phantom patients", total=len(todo)))
    write_tables(parts, out, observer_patients(seed, params.n_patients, params.n_observer_patients))
    return parts


def main(argv: list[str] | None = None) -> int:
    """Generate the cohort folder."""
    parser = argparse.ArgumentParser(prog="gohscore phantom-cohort", description=__doc__)
    parser.add_argument(
        "--out", type=Path, required=True, help="cohort folder to create (scans/, labels.csv, ...)"
    )
    parser.add_argument("--params-json", required=True, help="the config's 'phantom' section as JSON")
    parser.add_argument("--seed", type=int, required=True, help="the config's top-level seed")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    generate_cohort(args.out, PhantomParams.from_json(args.params_json), args.seed, max(1, args.jobs))
    return 0
