"""``gohscore train-scores``: train the 2D score network (TOT, GG, RET) for one fold and ablation."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd

from gohscore.commands.options import add_machine_options, add_run_files, machine_from_args
from gohscore.files import read_parquet
from gohscore.scores.ablations import ABLATIONS
from gohscore.settings import ScoreParams

log = logging.getLogger("gohscore")


def build_parser() -> argparse.ArgumentParser:
    """The command's options."""
    p = argparse.ArgumentParser(prog="gohscore train-scores", description=__doc__)
    p.add_argument("--fold", type=int, required=True, help="the held-out fold (never read)")
    p.add_argument("--ablation", choices=list(ABLATIONS), required=True)
    p.add_argument("--slices", type=Path, required=True, help="slices/reference folder")
    p.add_argument("--labels", type=Path, required=True, help="ingest/labels.parquet")
    p.add_argument("--folds", type=Path, required=True, help="folds.parquet")
    p.add_argument("--patches", type=Path, required=True, help="ingest/patches.parquet (may be empty)")
    p.add_argument("--params-json", required=True, help="the 'scores:' config section as JSON")
    p.add_argument("--seed", type=int, required=True)
    add_run_files(p)
    p.add_argument("--draws", type=Path, required=True, help="output label histograms (draws.parquet)")
    add_machine_options(p)
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the command."""
    args = build_parser().parse_args(argv)
    params = ScoreParams.from_json(args.params_json)
    machine = machine_from_args(args)
    from gohscore.scores.train import train_scores
    from gohscore.splits import check_split_fold
    from gohscore.training import RunFiles

    labels = read_parquet(args.labels, "labels table", ["patient"])
    folds = read_parquet(args.folds, "folds table", ["patient", "set", "fold"])
    check_split_fold(folds, args.fold, str(args.folds))
    patches = read_parquet(args.patches, "patches table", ["file", "pattern", "patient"])
    if patches.empty:
        patches = pd.DataFrame(columns=["file", "pattern", "patient"])
    history = train_scores(
        args.slices,
        labels,
        folds,
        patches,
        params,
        args.fold,
        args.ablation,
        args.seed,
        RunFiles(args.model, args.card, args.history),
        draws_path=args.draws,
        machine=machine,
    )
    log.info("wrote %s (%d epochs)", args.model, len(history))
    return 0
