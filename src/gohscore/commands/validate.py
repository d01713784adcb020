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


def header_z_range(header: dict) -> tuple[float, float]:
    """The z range a level may lie in, from a scan's header (:func:`gohscore.ingest.slack_z_range`)."""
    import numpy as np

    from gohscore.ingest import slack_z_range

    d = np.asarray(header["direction"], float).reshape(3, 3)
    slice_mm = header["spacing_xyz_mm"][int(np.argmax(np.abs(d[2])))]  # the axis closest to world z
    return slack_z_range(header["z_min_mm"], header["z_max_mm"], slice_mm)


def validate_cohort(cohort_dir: str | Path) -> tuple[list[str], dict]:
    """Check a cohort; return the list of problems (one line each) and a summary."""
    from gohscore import io
    from gohscore.cohort import discover_scans
    from gohscore.ingest import cohort_problems
    from gohscore.progress import progress

    cohort = Path(cohort_dir)
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
    problems: list[str] = []
    headers: dict[str, dict] = {}
    for patient, entry in progress(scans.items(), "validate scans", total=len(scans)):
        try:
            headers[patient] = io.scan_header(entry)
        except GohscoreError as err:
            problems.append(str(err))
    summary["scans"] = len(scans)
    for header in headers.values():
        summary["formats"][header["format"]] = summary["formats"].get(header["format"], 0) + 1
    z_ranges = {p: header_z_range(h) for p, h in headers.items()}
    found, tables = cohort_problems(cohort, {p: str(e) for p, e in scans.items()}, z_ranges)
    for name in ("labels", "observers", "patches"):
        summary[name] = len(tables[name]) if name in tables else 0
    return problems + found, summary


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
