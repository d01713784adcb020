"""``gohscore figures``: the paper's figures (PNG) from the tables of ``gohscore tables``."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger("gohscore")


def build_parser() -> argparse.ArgumentParser:
    """The command's options."""
    p = argparse.ArgumentParser(prog="gohscore figures", description=__doc__)
    p.add_argument("--tables", type=Path, required=True, help="folder written by 'gohscore tables'")
    p.add_argument("--levels-cv", type=Path, nargs="+", required=True, help="CV level predictions (points)")
    p.add_argument("--scores-test", type=Path, nargs="+", required=True, help="test score predictions")
    p.add_argument(
        "--histories", type=Path, nargs="*", default=[], help="history.parquet files of the training runs"
    )
    p.add_argument("--final-ablation", required=True, help="ablation drawn in the score scatter")
    p.add_argument("--out-dir", type=Path, required=True, help="folder for the PNG files")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def main(argv: list[str] | None = None) -> int:
    """Draw every figure into ``--out-dir``."""
    args = build_parser().parse_args(argv)
    from gohscore import tables as T
    from gohscore.reports import FigureInputs, read_tables, write_figures

    inputs = FigureInputs(
        tables_dir=args.tables,
        levels_cv=read_tables(args.levels_cv, "CV level predictions", T.LEVEL_PREDICTION_COLUMNS),
        scores_test=read_tables(args.scores_test, "test score predictions", T.SCORE_PREDICTION_COLUMNS),
        final_ablation=args.final_ablation,
        histories=list(args.histories),
    )
    write_figures(inputs, args.out_dir)
    return 0
