"""The workflow's report: every table (parquet, Markdown and HTML) and figure (PNG), in one registry.

:data:`TABLE_NAMES` and :data:`FIGURE_NAMES` are the files that ``gohscore tables`` and
``gohscore figures`` write, in order; the workflow builds its target list from them, so a table
added here is a target there. :func:`write_tables` and :func:`write_figures` do the work; the two
commands only read their options.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from gohscore.errors import GohscoreError
from gohscore.files import atomic_path, read_parquet
from gohscore.goh import PATTERNS, SCORE_COLUMNS

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("gohscore")


def _lazy(name: str):
    """Module ``name``, executed on its first attribute access (the stdlib's ``LazyLoader``).

    The workflow imports this module while it parses, for the names of the tables and figures;
    the table and plot code (pandas, matplotlib, the metrics) loads only when a report is made.
    """
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


T = _lazy("gohscore.tables")
plots = _lazy("gohscore.plots")

AGREEMENT_COLUMNS = ("level", "mean_error", "loa_low", "loa_high", "slope", "intercept")


def read_tables(paths: list[Path], what: str, columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read, check ``columns`` of, and concatenate parquet files; GohscoreError naming the file."""
    frames = []
    for path in paths:
        frame = read_parquet(path, f"{what} file")
        T.require_columns(frame, columns, str(path))
        frames.append(frame)
    if not frames:
        raise GohscoreError(f"no {what} files given")
    import pandas as pd

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
    """Write ``name.parquet`` (numbers), ``name.md`` and ``name.html`` (``display`` or the table) atomically."""
    from gohscore.htmltable import html_document
    from gohscore.markdown import markdown_document

    with atomic_path(out_dir / f"{name}.parquet") as tmp:
        table.to_parquet(tmp, index=False)
    shown = table if display is None else display
    for ext, document in (("md", markdown_document), (TABLE_PAGE_FORMAT, html_document)):
        with atomic_path(out_dir / f"{name}.{ext}") as tmp:
            tmp.write_text(document(title, shown, notes), encoding="utf-8")
    log.info("wrote %s (%d rows)", out_dir / f"{name}.parquet", len(table))


@dataclass(frozen=True)
class ReportInputs:
    """What the tables are computed from (already read and checked by :func:`read_report_inputs`)."""

    levels_cv: pd.DataFrame
    levels_test: pd.DataFrame
    scores_cv: pd.DataFrame
    scores_test: pd.DataFrame
    labels: pd.DataFrame
    observers: pd.DataFrame
    folds: pd.DataFrame
    final_ablation: str
    cohort_source: str = "folder"
    ablations: list[str] | None = None
    draws: pd.DataFrame | None = None


def read_draws(paths: list[Path]) -> pd.DataFrame | None:
    """The draws.parquet files of the score runs (``scores/<ablation>/fold<k>/``), with ablation and fold."""
    if not paths:
        return None
    parts = [
        # a run's draws.parquet holds the label_draws columns but the ablation and fold (its folders)
        read_tables([path], "draws table", T.LABEL_DRAW_COLUMNS[1:]).assign(
            ablation=path.parent.parent.name, fold=path.parent.name.removeprefix("fold")
        )
        for path in paths
    ]
    import pandas as pd

    return pd.concat(parts, ignore_index=True)


def read_report_inputs(
    levels_cv: list[Path],
    levels_test: list[Path],
    scores_cv: list[Path],
    scores_test: list[Path],
    labels: Path,
    observers: Path,
    folds: Path,
    final_ablation: str,
    cohort_source: str = "folder",
    ablations: list[str] | None = None,
    draws: list[Path] = (),
) -> ReportInputs:
    """Read and check every input of the tables; errors name the file and the problem."""
    inputs = ReportInputs(
        levels_cv=read_tables(levels_cv, "CV level predictions", T.LEVEL_PREDICTION_COLUMNS),
        levels_test=read_tables(levels_test, "test level predictions", T.LEVEL_PREDICTION_COLUMNS),
        scores_cv=read_tables(scores_cv, "CV score predictions", T.SCORE_PREDICTION_COLUMNS),
        scores_test=read_tables(scores_test, "test score predictions", T.SCORE_PREDICTION_COLUMNS),
        labels=read_tables([labels], "labels", ("patient",) + SCORE_COLUMNS),
        observers=read_tables([observers], "observers", T.OBSERVER_COLUMNS),
        folds=read_tables([folds], "folds", T.FOLD_COLUMNS),
        final_ablation=final_ablation,
        cohort_source=cohort_source,
        ablations=ablations,
        draws=read_draws(list(draws)),
    )
    for frame, name, expected in (
        (inputs.levels_cv, "--levels-cv", "cv"),
        (inputs.levels_test, "--levels-test", "test"),
        (inputs.scores_cv, "--scores-cv", "cv"),
        (inputs.scores_test, "--scores-test", "test"),
    ):
        T.check_sets(frame, inputs.folds, expected, name)
    score_cols = [f"{s}_{p}" for s in ("pred", "ref") for p in PATTERNS]
    T.check_score_values(inputs.scores_cv, score_cols, "--scores-cv")
    T.check_score_values(inputs.scores_test, score_cols, "--scores-test")
    T.check_score_values(inputs.labels, SCORE_COLUMNS, str(labels))
    T.check_score_values(inputs.observers, SCORE_COLUMNS, str(observers))
    T.final_predictions(inputs.scores_test, final_ablation)  # fails early on an unknown name
    return inputs


@dataclass(frozen=True)
class Report:
    """One computed table: the numbers, what the Markdown shows (None: the numbers) and its notes."""

    table: pd.DataFrame
    title: str
    display: pd.DataFrame | None = None
    notes: list[str] | tuple[str, ...] = field(default_factory=tuple)


def _table1(x: ReportInputs) -> Report:
    t1 = T.table1_levels(x.levels_cv)
    return Report(
        t1,
        "Table 1: level positions, cross-validation",
        T.table1_display(t1),
        [
            *T.TABLE1_NOTES,
            "Baseline MAE: every patient's level put at the mean reference position of the patients the "
            "fold's model was trained on (no image used); the network should beat it clearly.",
        ],
    )


def _table1_test(x: ReportInputs) -> Report:
    t1 = T.table1_levels(x.levels_test, training=x.levels_cv)
    return Report(
        t1,
        "Level positions, test set",
        T.table1_display(t1),
        [
            "Ensemble of the fold models on the held-out test set.",
            *T.TABLE1_NOTES,
            "Baseline MAE: every level put at its mean reference position over the cross-validation patients.",
        ],
    )


def _agreement(x: ReportInputs) -> Report:
    return Report(
        T.levels_agreement(x.levels_cv),
        "Level positions: Bland–Altman and regression (CV)",
        None,
        [
            f"Error = predicted - reference in {T.LEVEL_FRAME}; limits of agreement = mean ± 1.96 SD; "
            "regression of predicted on reference."
        ],
    )


def _table2(x: ReportInputs) -> Report:
    t2 = T.table2_scores_cv(x.scores_cv, x.ablations)
    return Report(
        t2,
        "Table 2: score prediction, cross-validation",
        T.wide_display(t2, ["ablation", "source"], marker=True),
        T.TABLE2_NOTES,
    )


def _table3(x: ReportInputs) -> Report:
    t3, notes = T.table3_observers(x.observers, x.labels, x.scores_test, x.final_ablation, x.cohort_source)
    return Report(
        t3,
        "Table 3: observers and model against the consensus",
        T.wide_display(t3, ["method"]) if not t3.empty else t3,
        notes,
    )


def _test_set(x: ReportInputs) -> Report:
    ts = T.test_set(x.scores_test, x.ablations)
    return Report(
        ts, "Score prediction, test set", T.wide_display(ts, ["ablation", "source"]), T.TEST_SET_NOTES
    )


def _stages(x: ReportInputs) -> Report:
    st = T.stages(x.scores_test, x.labels, x.folds, x.final_ablation)
    return Report(st, f"Goh stage per test patient ({x.final_ablation})", None, T.stage_notes(st))


def _label_distribution(x: ReportInputs) -> Report:
    return Report(
        T.label_distribution(x.labels),
        "Label distribution (Figure 2)",
        None,
        [f"{len(x.labels)} patients x 5 levels; count of slices per score value."],
    )


def _label_draws(x: ReportInputs) -> Report | None:
    if x.draws is None:
        return None
    return Report(
        T.label_draws(x.draws),
        "What the score networks were taught: TOT histograms of slices, draws and syntheses",
        None,
        [
            "Shares per TOT value, mean over folds. real: the training slices; drawn: real slices as "
            "drawn (uniform, or balanced), less the draws that synthesis replaces; synthetic: a sample "
            "of syntheses, scaled to their share of the draws; seen = drawn + synthetic.",
        ],
    )


def _scatter_counts(x: ReportInputs) -> Report:
    return Report(
        T.scatter_counts(x.scores_test, x.final_ablation),
        f"Reference vs predicted counts, test set ({x.final_ablation})",
        None,
        ["Number of slices at each (reference, predicted) position (Figure 5 circle sizes)."],
    )


# name -> builder; a builder may return None when its input was not given (label_draws)
TABLES: dict[str, Callable[[ReportInputs], Report | None]] = {
    "table1_levels": _table1,
    "table1_levels_test": _table1_test,
    "levels_agreement": _agreement,
    "table2_scores_cv": _table2,
    "table3_observers": _table3,
    "test_set": _test_set,
    "stages": _stages,
    "label_distribution": _label_distribution,
    "label_draws": _label_draws,
    "scatter_counts": _scatter_counts,
}
TABLE_NAMES: tuple[str, ...] = tuple(TABLES)
TABLE_FORMATS = ("parquet", "md")
TABLE_PAGE_FORMAT = "html"  # the page of each table that the workflow report shows
# written by ``gohscore explain-test`` (heat maps against the lesion masks), not ``gohscore tables``
HEATMAP_TABLE = "heatmap_validation"


def write_tables(inputs: ReportInputs, out_dir: Path) -> list[str]:
    """Compute and write every table of :data:`TABLES` that has its inputs; return their names."""
    written = []
    for name, build in TABLES.items():
        report = build(inputs)
        if report is not None:
            write_table(report.table, Path(out_dir), name, report.title, report.display, report.notes)
            written.append(name)
    return written


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
    import pandas as pd

    return pd.concat(frames, ignore_index=True)


@dataclass(frozen=True)
class FigureInputs:
    """What the figures are drawn from: the written tables plus predictions and training histories."""

    tables_dir: Path
    levels_cv: pd.DataFrame
    scores_test: pd.DataFrame
    final_ablation: str
    histories: list[Path] = field(default_factory=list)


def _fig_bland_altman(x: FigureInputs, out: Path) -> bool:
    agreement = read_table(x.tables_dir, "levels_agreement", AGREEMENT_COLUMNS)
    plots.levels_bland_altman(x.levels_cv, agreement, out)
    return True


def _fig_correlation(x: FigureInputs, out: Path) -> bool:
    agreement = read_table(x.tables_dir, "levels_agreement", AGREEMENT_COLUMNS)
    plots.levels_correlation(x.levels_cv, agreement, out)
    return True


def _fig_scatter(x: FigureInputs, out: Path) -> bool:
    # the same function as the scatter_counts table, so the circle sizes are the table's numbers
    counts = T.scatter_counts(x.scores_test, x.final_ablation)
    plots.scores_scatter(counts, out, f"test set, {x.final_ablation}, predicted levels")
    return True


def _fig_label_distribution(x: FigureInputs, out: Path) -> bool:
    plots.label_distribution(read_table(x.tables_dir, "label_distribution", ("score",) + PATTERNS), out)
    return True


def _fig_ablation(x: FigureInputs, out: Path) -> bool:
    table2 = read_table(
        x.tables_dir, "table2_scores_cv", ("ablation", "source", "pattern", "mae", "sd", "better")
    )
    plots.ablation_mae(table2, out)
    return True


def _fig_training(x: FigureInputs, out: Path) -> bool:
    if not x.histories:
        return False
    plots.training_curves(stack_histories(x.histories), out)
    return True


def _fig_label_draws(x: FigureInputs, out: Path) -> bool:
    if not (x.tables_dir / "label_draws.parquet").is_file():
        return False
    plots.label_draws(read_table(x.tables_dir, "label_draws", T.LABEL_DRAW_COLUMNS), out)
    return True


# name (name.png) -> painter; a painter returns False when its input was not given
FIGURES: dict[str, Callable[[FigureInputs, Path], bool]] = {
    "levels_bland_altman": _fig_bland_altman,
    "levels_correlation": _fig_correlation,
    "scores_scatter": _fig_scatter,
    "label_distribution": _fig_label_distribution,
    "ablation_mae": _fig_ablation,
    "training_curves": _fig_training,
    "label_draws": _fig_label_draws,
}
FIGURE_NAMES: tuple[str, ...] = tuple(FIGURES)
HEATMAP_FIGURE = "heatmap_validation"  # by ``gohscore explain-test``


def write_figures(inputs: FigureInputs, out_dir: Path) -> list[str]:
    """Draw every figure of :data:`FIGURES` that has its inputs into ``out_dir``; return their names."""
    drawn = [name for name, paint in FIGURES.items() if paint(inputs, Path(out_dir) / f"{name}.png")]
    log.info("wrote %d figures to %s", len(drawn), out_dir)
    return drawn
