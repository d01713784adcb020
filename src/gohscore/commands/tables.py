"""``gohscore tables``: the paper's tables (parquet + Markdown) from the prediction tables."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from gohscore import tables as T

log = logging.getLogger("gohscore")


def build_parser() -> argparse.ArgumentParser:
    """The command's options."""
    p = argparse.ArgumentParser(prog="gohscore tables", description=__doc__)
    p.add_argument(
        "--levels-cv", type=Path, nargs="+", required=True, help="CV level predictions (one per fold)"
    )
    p.add_argument("--levels-test", type=Path, nargs="+", required=True, help="test-set level predictions")
    p.add_argument(
        "--scores-cv", type=Path, nargs="+", required=True, help="CV score predictions (all ablations)"
    )
    p.add_argument("--scores-test", type=Path, nargs="+", required=True, help="test score predictions")
    p.add_argument("--labels", type=Path, required=True, help="ingest/labels.parquet")
    p.add_argument("--observers", type=Path, required=True, help="ingest/observers.parquet (may be empty)")
    p.add_argument("--folds", type=Path, required=True, help="folds.parquet")
    p.add_argument("--final-ablation", required=True, help="ablation used for the test set and Table 3")
    p.add_argument(
        "--cohort-source",
        choices=T.COHORT_SOURCES,
        default="folder",
        help="config cohort.source: 'phantom' says in Table 3 that the observers are simulated "
        "(default: folder, a real cohort's observers.parquet)",
    )
    p.add_argument(
        "--ablations", nargs="+", default=None, help="row order of Table 2 (default: order of files)"
    )
    p.add_argument(
        "--draws",
        type=Path,
        nargs="*",
        default=[],
        help="draws.parquet of the score training runs (scores/<ablation>/fold<k>/): the label_draws table",
    )
    p.add_argument("--out-dir", type=Path, required=True, help="folder for *.parquet, *.md and *.html")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def main(argv: list[str] | None = None) -> int:
    """Compute every table and write it as parquet and Markdown."""
    args = build_parser().parse_args(argv)
    from gohscore.reports import read_report_inputs, write_tables

    inputs = read_report_inputs(
        args.levels_cv,
        args.levels_test,
        args.scores_cv,
        args.scores_test,
        args.labels,
        args.observers,
        args.folds,
        args.final_ablation,
        args.cohort_source,
        args.ablations,
        args.draws,
    )
    write_tables(inputs, args.out_dir)
    return 0
