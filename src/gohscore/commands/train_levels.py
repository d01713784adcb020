"""``gohscore train-levels``: train the 3D level network for one fold (resumes from its checkpoint)."""

from __future__ import annotations

import argparse
from pathlib import Path

from gohscore.commands.options import add_machine_options, add_run_files, machine_from_args
from gohscore.files import read_parquet
from gohscore.settings import LevelParams


def build_parser() -> argparse.ArgumentParser:
    """The command's options."""
    p = argparse.ArgumentParser(prog="gohscore train-levels", description=__doc__)
    p.add_argument(
        "--fold", type=int, required=True, help="the held-out fold K (its patients are never read)"
    )
    p.add_argument("--volumes", type=Path, required=True, help="folder of {patient}.npy grid volumes")
    p.add_argument("--manifest", type=Path, required=True, help="ingest/manifest.parquet")
    p.add_argument("--labels", type=Path, required=True, help="ingest/labels.parquet")
    p.add_argument("--folds", type=Path, required=True, help="folds.parquet")
    p.add_argument("--params-json", required=True, help="the levels: config section as JSON")
    p.add_argument("--seed", type=int, required=True, help="master seed")
    add_run_files(p)
    add_machine_options(p)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the command."""
    args = build_parser().parse_args(argv)
    params = LevelParams.from_json(args.params_json)
    machine = machine_from_args(args)
    from gohscore.levels.train import train_levels
    from gohscore.training import RunFiles

    train_levels(
        fold=args.fold,
        volumes_dir=args.volumes,
        manifest=read_parquet(args.manifest, "manifest"),
        labels=read_parquet(args.labels, "labels"),
        folds=read_parquet(args.folds, "folds table"),
        params=params,
        seed=args.seed,
        files=RunFiles(args.model, args.card, args.history),
        machine=machine,
        sources={"manifest": str(args.manifest), "labels": str(args.labels), "folds": str(args.folds)},
    )
    return 0
