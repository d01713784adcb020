"""``gohscore predict-scores``: TOT, GG, RET per level with one model or an ensemble, on extracted slices."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from gohscore.commands.options import add_machine_options, machine_from_args
from gohscore.errors import GohscoreError
from gohscore.files import atomic_path, read_parquet
from gohscore.goh import PATTERNS, score_column
from gohscore.scores.data import fold_patients, load_slices, read_index

log = logging.getLogger("gohscore")

COLUMNS = [
    "patient",
    "set",
    "fold",
    "ablation",
    "level",
    "source",
    *(f"pred_{s}" for s in PATTERNS),
    *(f"ref_{s}" for s in PATTERNS),
]


def build_parser() -> argparse.ArgumentParser:
    """The command's options."""
    p = argparse.ArgumentParser(prog="gohscore predict-scores", description=__doc__)
    p.add_argument(
        "--models", type=Path, nargs="+", required=True, help="model.pt files (several = ensemble)"
    )
    p.add_argument("--slices", type=Path, required=True, help="slices/reference or slices/predicted folder")
    p.add_argument("--folds", type=Path, required=True, help="folds.parquet")
    p.add_argument("--set", dest="set_name", choices=["cv", "test"], required=True)
    p.add_argument("--fold", type=int, default=None, help="only this fold's patients (with --set cv)")
    p.add_argument("--ablation", required=True, help="written to the 'ablation' column")
    p.add_argument("--source", choices=["reference", "predicted"], required=True)
    p.add_argument("--labels", type=Path, default=None, help="labels.parquet for the ref_* columns")
    add_machine_options(p, amp=False, deterministic=False)  # score inference runs in fp32
    p.add_argument("--out", type=Path, required=True, help="predictions .parquet")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the command."""
    from gohscore.cards import check_ensemble, load_model
    from gohscore.scores.predict import predict_table
    from gohscore.splits import check_split_fold
    from gohscore.training import select_device

    args = build_parser().parse_args(argv)
    machine = machine_from_args(args)
    folds = read_parquet(args.folds, "folds table", ["patient", "set", "fold"])
    check_split_fold(folds, args.fold if args.set_name == "cv" else None, str(args.folds))
    patients = fold_patients(folds, args.fold, args.set_name)
    if not patients:
        raise GohscoreError(
            f"{args.folds}: no patient in set {args.set_name!r}"
            + (f" fold {args.fold}" if args.fold is not None else "")
            + "; check --set/--fold"
        )
    available = set(read_index(args.slices)["patient"])
    missing = [p for p in patients if p not in available]
    if missing:
        raise GohscoreError(
            f"{args.slices}: no slices for patients {missing[:5]}; re-run 'gohscore extract-slices'"
        )
    loaded = [load_model(p) for p in args.models]
    card = check_ensemble([c for _, c in loaded], "scores")
    images, index = load_slices(args.slices, patients)
    device = select_device(machine.device)
    table = predict_table([m for m, _ in loaded], card, images, index, device)
    fold_of = dict(zip(folds["patient"], folds["fold"].astype(int), strict=True))
    table.insert(1, "set", args.set_name)
    table.insert(2, "fold", table["patient"].map(fold_of).astype(int))
    table.insert(3, "ablation", args.ablation)
    table.insert(5, "source", args.source)
    for s in PATTERNS:
        table[f"ref_{s}"] = np.nan
    if args.labels is not None:
        labels = read_parquet(args.labels, "labels table", ["patient"]).set_index("patient")
        for i, (patient, level) in enumerate(zip(table["patient"], table["level"], strict=True)):
            if patient in labels.index:
                for s in PATTERNS:
                    table.loc[i, f"ref_{s}"] = float(labels.at[patient, score_column(int(level), s)])
    table["level"] = table["level"].astype(int)
    table = table[COLUMNS].sort_values(["patient", "level"], ignore_index=True)
    with atomic_path(args.out) as tmp:
        table.to_parquet(tmp, index=False)
    log.info("wrote %s: %d patients x levels with %d model(s)", args.out, len(table), len(loaded))
    return 0
