"""``gohscore figures``: the paper's figures (PNG) from the tables of ``gohscore tables``."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd

from gohscore import plots
from gohscore import tables as T
from gohscore.commands.tables import read_tables
from gohscore.errors import GohscoreError

log = logging.getLogger("gohscore")


def read_table(tables_dir: Path, name: str, columns: tuple[str, ...]) -> pd.DataFrame:
    """One table ``name.parquet`` from ``tables_dir``, with its columns checked."""
    path = tables_dir / f"{name}.parquet"
    if not path.is_file():
        raise GohscoreError(
            f"{path}: table not found; run 'gohscore tables' with --out-dir {tables_dir} first"
        )
    return read_tables([path], f"table {name}", columns)


def run_name(history: Path) -> tuple[str, str]:
    """(network, fold) of a ``.../levels/fold0/history.parquet`` or ``.../scores/<ablation>/fold0/...`` path."""
    fold = history.parent.name.removeprefix("fold")
    network = history.parent.parent.name
    if history.parent.parent.parent.name == "scores":
        network = f"scores/{network}"
    return network, fold


def stack_histories(paths: list[Path]) -> pd.DataFrame:
    """The training histories, one table with ``network`` and ``fold`` columns."""
    frames = []
    for path in paths:
        network, fold = run_name(path)
        history = read_tables([path], "training history", ("epoch", "train_loss", "val_loss"))
        frames.append(history.assign(network=network, fold=fold))
    return pd.concat(frames, ignore_index=True)


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
    out = args.out_dir
    levels = read_tables(args.levels_cv, "CV level predictions", T.LEVEL_COLUMNS)
    scores = read_tables(args.scores_test, "test score predictions", T.SCORE_COLUMNS)
    agreement = read_table(
        args.tables, "levels_agreement", ("level", "mean_error", "loa_low", "loa_high", "slope", "intercept")
    )
    dist = read_table(args.tables, "label_distribution", ("score",) + T.PATTERNS)
    table2 = read_table(
        args.tables, "table2_scores_cv", ("ablation", "source", "pattern", "mae", "sd", "better")
    )

    plots.levels_bland_altman(levels, agreement, out / "levels_bland_altman.png")
    plots.levels_correlation(levels, agreement, out / "levels_correlation.png")
    # the same function as the scatter_counts table, so the circle sizes are the table's numbers
    counts = T.scatter_counts(scores, args.final_ablation)
    plots.scores_scatter(
        counts, out / "scores_scatter.png", f"test set, {args.final_ablation}, predicted levels"
    )
    plots.label_distribution(dist, out / "label_distribution.png")
    plots.ablation_mae(table2, out / "ablation_mae.png")
    draws_path = args.tables / "label_draws.parquet"
    if draws_path.is_file():
        plots.label_draws(
            read_table(args.tables, "label_draws", T.LABEL_DRAW_COLUMNS), out / "label_draws.png"
        )
    if args.histories:
        plots.training_curves(stack_histories(args.histories), out / "training_curves.png")
    log.info("wrote the figures to %s", out)
    return 0
