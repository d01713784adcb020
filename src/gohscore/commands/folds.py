"""``gohscore folds``: assign patients to cross-validation folds and the held-out test set (Parquet)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from gohscore.errors import GohscoreError
from gohscore.files import atomic_path
from gohscore.settings import FoldParams

log = logging.getLogger("gohscore")


def main(argv: list[str] | None = None) -> int:
    """Read the validated labels (and observers), assign folds, write folds.parquet."""
    parser = argparse.ArgumentParser(prog="gohscore folds", description=__doc__)
    parser.add_argument("--labels", required=True, help="validated labels.parquet (from 'gohscore ingest')")
    parser.add_argument("--observers", help="observers.parquet; its patients always go to the test set")
    parser.add_argument(
        "--params-json", default="{}", help="the 'folds:' config section as JSON (default: the schema's)"
    )
    parser.add_argument("--seed", type=int, required=True, help="master seed")
    parser.add_argument("--previous", help="an earlier folds.parquet: its patients keep their assignment")
    parser.add_argument("--out", required=True, help="output folds.parquet")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    params = FoldParams.from_json(args.params_json)
    args.previous = args.previous or params.previous

    import pandas as pd

    from gohscore.folds import FOLD_COLUMNS, assign_folds, check_folds
    from gohscore.goh import LEVELS, score_column

    labels = pd.read_parquet(args.labels)
    mean_tot = labels[[score_column(n, "TOT") for n in LEVELS]].mean(axis=1)
    forced: list[str] = []
    if args.observers and Path(args.observers).exists():
        forced = sorted(set(pd.read_parquet(args.observers)["patient"].astype(str)))
    previous = None
    if args.previous:
        previous = pd.read_parquet(args.previous)
        missing = [c for c in FOLD_COLUMNS if c not in previous.columns]
        if missing:
            raise GohscoreError(
                f"{args.previous}: missing column {missing[0]!r}; pass a folds.parquet written by gohscore"
            )
    folds = assign_folds(
        labels["patient"].astype(str),
        mean_tot,
        n_folds=params.n_folds,
        n_test=params.n_test,
        stratify=params.stratify,
        seed=args.seed,
        forced_test=forced,
        previous=previous,
    )
    check_folds(folds, params.n_folds)
    with atomic_path(args.out) as tmp:
        folds.to_parquet(tmp, index=False)
    counts = folds.groupby(["set", "fold"]).size().to_dict()
    log.info("folds: %s", ", ".join(f"{s} {f}: {c}" for (s, f), c in sorted(counts.items())))
    return 0
