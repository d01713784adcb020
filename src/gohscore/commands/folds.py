"""``gohscore folds``: assign patients to cross-validation folds and the held-out test set (Parquet)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from gohscore.errors import GohscoreError
from gohscore.files import atomic_path
from gohscore.params import parse_params_json

log = logging.getLogger("gohscore")

DEFAULTS = {"n_folds": 4, "n_test": 47, "stratify": True, "previous": None}


def parse_params(text: str) -> dict:
    """Parse ``--params-json`` (keys n_folds, n_test, stratify, previous)."""
    return parse_params_json(text, "folds", allowed=DEFAULTS, defaults=DEFAULTS)


def main(argv: list[str] | None = None) -> int:
    """Read the validated labels (and observers), assign folds, write folds.parquet."""
    parser = argparse.ArgumentParser(prog="gohscore folds", description=__doc__)
    parser.add_argument("--labels", required=True, help="validated labels.parquet (from 'gohscore ingest')")
    parser.add_argument("--observers", help="observers.parquet; its patients always go to the test set")
    parser.add_argument("--params-json", default=json.dumps(DEFAULTS), help="folds config section as JSON")
    parser.add_argument("--seed", type=int, required=True, help="master seed")
    parser.add_argument("--previous", help="an earlier folds.parquet: its patients keep their assignment")
    parser.add_argument("--out", required=True, help="output folds.parquet")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    params = parse_params(args.params_json)
    args.previous = args.previous or params.pop("previous", None)
    params.pop("previous", None)

    import pandas as pd

    from gohscore.folds import FOLD_COLUMNS, assign_folds, check_folds
    from gohscore.labels import LEVELS

    labels = pd.read_parquet(args.labels)
    mean_tot = labels[[f"L{n}_TOT" for n in LEVELS]].mean(axis=1)
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
        n_folds=int(params["n_folds"]),
        n_test=params["n_test"],
        stratify=bool(params["stratify"]),
        seed=args.seed,
        forced_test=forced,
        previous=previous,
    )
    check_folds(folds, int(params["n_folds"]))
    with atomic_path(args.out) as tmp:
        folds.to_parquet(tmp, index=False)
    counts = folds.groupby(["set", "fold"]).size().to_dict()
    log.info("folds: %s", ", ".join(f"{s} {f}: {c}" for (s, f), c in sorted(counts.items())))
    return 0
