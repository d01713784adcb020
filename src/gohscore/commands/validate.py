"""``gohscore validate``: check a cohort folder (layout, tables, scan headers) without resampling anything.

Every problem found is printed on its own line; the exit status is 2 when there is any.
Pixel checks (truncated data, intensities not in HU) need the full read and happen in
``gohscore resample``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from gohscore.errors import GohscoreError

log = logging.getLogger("gohscore")


def validate_cohort(cohort_dir: str | Path) -> tuple[list[str], dict]:
    """Check a cohort; return the list of problems (one line each) and a summary."""
    from gohscore import io
    from gohscore.cohort import discover_scans, find_table
    from gohscore.labels import (
        check_levels_in_scans,
        read_table,
        row_name,
        validate_labels,
        validate_observers,
        validate_patches,
    )
    from gohscore.progress import progress

    cohort = Path(cohort_dir)
    problems: list[str] = []
    summary: dict = {
        "cohort": str(cohort),
        "scans": 0,
        "formats": {},
        "labels": 0,
        "observers": 0,
        "patches": 0,
    }
    try:
        scans = discover_scans(cohort)
    except GohscoreError as err:
        return [str(err)], summary
    headers: dict[str, dict] = {}
    for patient, entry in progress(scans.items(), "validate scans", total=len(scans)):
        try:
            headers[patient] = io.scan_header(entry)
        except GohscoreError as err:
            problems.append(str(err))
    summary["scans"] = len(scans)
    for header in headers.values():
        summary["formats"][header["format"]] = summary["formats"].get(header["format"], 0) + 1

    labels = None
    try:
        labels_path = find_table(cohort, "labels")
        if labels_path is None:
            problems.append(f"{cohort} has no labels table; add labels.csv (or .xlsx/.parquet)")
        else:
            labels = validate_labels(read_table(labels_path), str(labels_path))
            summary["labels"] = len(labels)
            for i, patient in enumerate(labels["patient"]):
                if patient not in scans:
                    problems.append(
                        f"{labels_path} {row_name(i)}: patient {patient!r} has no scan in {cohort / 'scans'}"
                    )
            for patient in sorted(set(scans) - set(labels["patient"])):
                problems.append(
                    f"scan {scans[patient]} (patient {patient!r}) has no row in {labels_path}; add its labels"
                )
            z_ranges = {p: (h["z_min_mm"], h["z_max_mm"]) for p, h in headers.items()}
            try:
                check_levels_in_scans(labels, z_ranges, str(labels_path))
            except GohscoreError as err:
                problems.append(str(err))
    except GohscoreError as err:
        problems.append(str(err))

    if labels is not None:
        try:
            obs_path = find_table(cohort, "observers")
            if obs_path is not None:
                summary["observers"] = len(
                    validate_observers(read_table(obs_path), labels["patient"], str(obs_path))
                )
        except GohscoreError as err:
            problems.append(str(err))
    patches_csv = cohort / "patches" / "patches.csv"
    if patches_csv.is_file():
        try:
            summary["patches"] = len(
                validate_patches(read_table(patches_csv), patches_csv.parent, str(patches_csv))
            )
        except GohscoreError as err:
            problems.append(str(err))
    return problems, summary


def main(argv: list[str] | None = None) -> int:
    """Validate a cohort folder; print a summary, list every problem, exit 2 if any."""
    parser = argparse.ArgumentParser(prog="gohscore validate", description=__doc__)
    parser.add_argument("--cohort", required=True, help="cohort folder (scans/, labels.csv, ...)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    problems, summary = validate_cohort(args.cohort)
    formats = ", ".join(f"{k} {v}" for k, v in sorted(summary["formats"].items())) or "none readable"
    print(
        f"cohort {summary['cohort']}: {summary['scans']} scans ({formats}), {summary['labels']} label rows, "
        f"{summary['observers']} observer rows, {summary['patches']} patches"
    )
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    if problems:
        raise GohscoreError(
            f"{len(problems)} problem(s) in cohort {args.cohort} (listed above); fix them and rerun"
        )
    print("cohort OK")
    return 0
