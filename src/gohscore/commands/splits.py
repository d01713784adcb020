"""``gohscore splits``: write the split tables, the one input of each network job (see ``gohscore.splits``)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from gohscore.files import atomic_path, read_parquet

log = logging.getLogger("gohscore")


def build_parser() -> argparse.ArgumentParser:
    """The command's options."""
    p = argparse.ArgumentParser(prog="gohscore splits", description=__doc__)
    p.add_argument("--manifest", type=Path, required=True, help="ingest/manifest.parquet")
    p.add_argument("--labels", type=Path, required=True, help="ingest/labels.parquet")
    p.add_argument("--folds", type=Path, required=True, help="folds.parquet")
    p.add_argument("--n-folds", type=int, required=True, help="the number of folds (folds.n_folds)")
    p.add_argument(
        "--volumes", type=Path, required=True, help="folder of the resampled volumes (preprocess/)"
    )
    p.add_argument(
        "--slices", type=Path, required=True, help="folder of the reference slices (slices/reference)"
    )
    p.add_argument(
        "--out-dir", type=Path, required=True, help="folder for levels/*.parquet and scores/*.parquet"
    )
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the command."""
    args = build_parser().parse_args(argv)
    from gohscore.progress import progress
    from gohscore.splits import TASKS, split_names, split_path, split_table

    manifest = read_parquet(args.manifest, "manifest", ["patient"])
    labels = read_parquet(args.labels, "labels table", ["patient"])
    folds = read_parquet(args.folds, "folds table", ["patient", "set", "fold"])
    files = {"levels": args.volumes, "scores": args.slices}
    names = [(task, name) for task in TASKS for name in split_names(args.n_folds)]
    tables, known = {}, {task: {} for task in TASKS}  # each file is hashed once, for all its splits
    for task, name in progress(names, "split tables"):
        tables[task, name] = split_table(
            task, name, folds, labels, manifest, files[task], str(args.labels), known[task]
        )
    for (task, name), table in tables.items():  # every table is made before any is written
        with atomic_path(split_path(args.out_dir, task, name)) as tmp:
            table.to_parquet(tmp, index=False)
        log.info("%s/%s: %d patients", task, name, len(table))
    return 0
