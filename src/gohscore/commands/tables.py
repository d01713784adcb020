"""``gohscore tables``: the paper's tables (parquet + Markdown) from the prediction tables."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd

from gohscore import tables as T
from gohscore.errors import GohscoreError
from gohscore.files import atomic_path, read_parquet
from gohscore.markdown import markdown_document

log = logging.getLogger("gohscore")


def read_tables(paths: list[Path], what: str, columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read, check ``columns`` of, and concatenate parquet files; GohscoreError naming the file."""
    frames = []
    for path in paths:
        frame = read_parquet(path, f"{what} file")
        T.require_columns(frame, columns, str(path))
        frames.append(frame)
    if not frames:
        raise GohscoreError(f"no {what} files given")
    out = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    if "patient" in out.columns:
        out["patient"] = out["patient"].astype(str)
    return out


def write_table(
    table: pd.DataFrame,
    out_dir: Path,
    name: str,
    title: str,
    display: pd.DataFrame | None = None,
    notes: list[str] | tuple[str, ...] = (),
) -> None:
    """Write ``name.parquet`` (numbers) and ``name.md`` (``display`` or the table itself) atomically."""
    with atomic_path(out_dir / f"{name}.parquet") as tmp:
        table.to_parquet(tmp, index=False)
    text = markdown_document(title, table if display is None else display, notes)
    with atomic_path(out_dir / f"{name}.md") as tmp:
        tmp.write_text(text, encoding="utf-8")
    log.info("wrote %s (%d rows)", out_dir / f"{name}.parquet", len(table))


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
    p.add_argument("--out-dir", type=Path, required=True, help="folder for *.parquet and *.md")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def main(argv: list[str] | None = None) -> int:
    """Compute every table and write it as parquet and Markdown."""
    args = build_parser().parse_args(argv)
    levels_cv = read_tables(args.levels_cv, "CV level predictions", T.LEVEL_COLUMNS)
    levels_test = read_tables(args.levels_test, "test level predictions", T.LEVEL_COLUMNS)
    scores_cv = read_tables(args.scores_cv, "CV score predictions", T.SCORE_COLUMNS)
    scores_test = read_tables(args.scores_test, "test score predictions", T.SCORE_COLUMNS)
    labels = read_tables([args.labels], "labels", ("patient",) + T.LABEL_SCORE_COLUMNS)
    observers = read_tables([args.observers], "observers", T.OBSERVER_COLUMNS)
    folds = read_tables([args.folds], "folds", T.FOLD_COLUMNS)
    for frame, name, expected in (
        (levels_cv, "--levels-cv", "cv"),
        (levels_test, "--levels-test", "test"),
        (scores_cv, "--scores-cv", "cv"),
        (scores_test, "--scores-test", "test"),
    ):
        T.check_sets(frame, folds, expected, name)
    score_cols = [f"{s}_{p}" for s in ("pred", "ref") for p in T.PATTERNS]
    T.check_score_values(scores_cv, score_cols, "--scores-cv")
    T.check_score_values(scores_test, score_cols, "--scores-test")
    T.check_score_values(labels, T.LABEL_SCORE_COLUMNS, str(args.labels))
    T.check_score_values(observers, T.LABEL_SCORE_COLUMNS, str(args.observers))
    T.final_predictions(scores_test, args.final_ablation)  # fails early on an unknown name

    out = args.out_dir
    t1 = T.table1_levels(levels_cv)
    write_table(
        t1,
        out,
        "table1_levels",
        "Table 1: level positions, cross-validation",
        T.table1_display(t1),
        [
            *T.TABLE1_NOTES,
            "Baseline MAE: every patient's level put at the mean reference position of the patients the "
            "fold's model was trained on (no image used); the network should beat it clearly.",
        ],
    )
    t1_test = T.table1_levels(levels_test, training=levels_cv)
    write_table(
        t1_test,
        out,
        "table1_levels_test",
        "Level positions, test set",
        T.table1_display(t1_test),
        [
            "Ensemble of the fold models on the held-out test set.",
            *T.TABLE1_NOTES,
            "Baseline MAE: every level put at its mean reference position over the cross-validation patients.",
        ],
    )
    agreement = T.levels_agreement(levels_cv)
    write_table(
        agreement,
        out,
        "levels_agreement",
        "Level positions: Bland–Altman and regression (CV)",
        None,
        [
            f"Error = predicted - reference in {T.LEVEL_FRAME}; limits of agreement = mean ± 1.96 SD; "
            "regression of predicted on reference."
        ],
    )
    t2 = T.table2_scores_cv(scores_cv, args.ablations)
    write_table(
        t2,
        out,
        "table2_scores_cv",
        "Table 2: score prediction, cross-validation",
        T.wide_display(t2, ["ablation", "source"], marker=True),
        T.TABLE2_NOTES,
    )
    t3, notes3 = T.table3_observers(observers, labels, scores_test, args.final_ablation, args.cohort_source)
    write_table(
        t3,
        out,
        "table3_observers",
        "Table 3: observers and model against the consensus",
        T.wide_display(t3, ["method"]) if not t3.empty else t3,
        notes3,
    )
    ts = T.test_set(scores_test, args.ablations)
    write_table(
        ts,
        out,
        "test_set",
        "Score prediction, test set",
        T.wide_display(ts, ["ablation", "source"]),
        T.TEST_SET_NOTES,
    )
    st = T.stages(scores_test, labels, folds, args.final_ablation)
    write_table(
        st, out, "stages", f"Goh stage per test patient ({args.final_ablation})", None, T.stage_notes(st)
    )
    dist = T.label_distribution(labels)
    write_table(
        dist,
        out,
        "label_distribution",
        "Label distribution (Figure 2)",
        None,
        [f"{len(labels)} patients x 5 levels; count of slices per score value."],
    )
    if args.draws:
        parts = [
            # a run's draws.parquet holds the label_draws columns but the ablation (its folder)
            read_tables([path], "draws table", T.LABEL_DRAW_COLUMNS[1:]).assign(
                ablation=path.parent.parent.name, fold=path.parent.name.removeprefix("fold")
            )
            for path in args.draws
        ]
        ld = T.label_draws(pd.concat(parts, ignore_index=True))
        write_table(
            ld,
            out,
            "label_draws",
            "What the score networks were taught: TOT histograms of slices, draws and syntheses",
            None,
            [
                "Shares per TOT value, mean over folds. real: the training slices; drawn: real slices as "
                "drawn (uniform, or balanced), less the draws that synthesis replaces; synthetic: a sample "
                "of syntheses, scaled to their share of the draws; seen = drawn + synthetic.",
            ],
        )
    sc = T.scatter_counts(scores_test, args.final_ablation)
    write_table(
        sc,
        out,
        "scatter_counts",
        f"Reference vs predicted counts, test set ({args.final_ablation})",
        None,
        ["Number of slices at each (reference, predicted) position (Figure 5 circle sizes)."],
    )
    return 0
