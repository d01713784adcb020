"""``gohscore ingest``: validate the cohort's tables against the resampled scans; write Parquet tables."""

from __future__ import annotations

import argparse
import contextlib
import logging

from gohscore.files import atomic_path

log = logging.getLogger("gohscore")


def main(argv: list[str] | None = None) -> int:
    """Validate labels/observers/patches and write manifest, labels, observers and patches Parquet files."""
    parser = argparse.ArgumentParser(prog="gohscore ingest", description=__doc__)
    parser.add_argument("--cohort", required=True, help="cohort folder (scans/, labels.csv, ...)")
    parser.add_argument(
        "--geometry", required=True, nargs="+", help="geometry JSONs written by 'gohscore resample'"
    )
    parser.add_argument("--manifest", required=True, help="output manifest.parquet")
    parser.add_argument("--labels", required=True, help="output labels.parquet")
    parser.add_argument("--observers", required=True, help="output observers.parquet")
    parser.add_argument("--patches", required=True, help="output patches.parquet")
    parser.add_argument(
        "--positions",
        help="output positions.parquet: patient and level positions only (the labels that reference "
        "slices are cut at, so that a score edit leaves it unchanged)",
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)

    from gohscore.ingest import cohort_tables, read_geometries

    tables = cohort_tables(args.cohort, read_geometries(args.geometry))
    outputs = {
        "manifest": args.manifest,
        "labels": args.labels,
        "observers": args.observers,
        "patches": args.patches,
    }
    if args.positions:
        from gohscore.goh import Z_COLUMNS

        tables["positions"] = tables["labels"][["patient", *Z_COLUMNS]]
        outputs["positions"] = args.positions
    # all appear together or none: write to temporaries, move them only when every write succeeded
    with contextlib.ExitStack() as stack:
        for name, path in outputs.items():
            tmp = stack.enter_context(atomic_path(path))
            tables[name].to_parquet(tmp, index=False)
    log.info(
        "ingest: %d patients, %d observer rows, %d patches",
        len(tables["labels"]),
        len(tables["observers"]),
        len(tables["patches"]),
    )
    return 0
