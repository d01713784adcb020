"""Figures are written (non-empty PNG) from small tables; no pyplot state is touched."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

from gohscore import plots
from gohscore import tables as T
from gohscore.commands import figures as figures_cmd
from gohscore.errors import GohscoreError
from tests.test_tables import make_cohort, write_inputs

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def is_png(path: Path) -> bool:
    """A non-empty PNG file."""
    return path.is_file() and path.stat().st_size > 1000 and path.read_bytes()[:8] == PNG_MAGIC


@pytest.fixture(scope="module")
def cohort() -> dict[str, pd.DataFrame]:
    """A smaller cohort than the tables tests."""
    return make_cohort(n_cv=8, n_test=4, n_obs=2, seed=5)


def test_each_plot_writes_a_png(cohort: dict[str, pd.DataFrame], tmp_path: Path) -> None:
    agreement = T.levels_agreement(cohort["levels_cv"])
    assert is_png(plots.levels_bland_altman(cohort["levels_cv"], agreement, tmp_path / "ba.png"))
    assert is_png(plots.levels_correlation(cohort["levels_cv"], agreement, tmp_path / "corr.png"))
    counts = T.scatter_counts(cohort["scores_test"], "balanced_synthesis")
    assert is_png(plots.scores_scatter(counts, tmp_path / "scatter.png", "test"))
    assert is_png(plots.label_distribution(T.label_distribution(cohort["labels"]), tmp_path / "dist.png"))
    assert is_png(plots.ablation_mae(T.table2_scores_cv(cohort["scores_cv"]), tmp_path / "mae.png"))
    pyplot = sys.modules.get("matplotlib.pyplot")  # pingouin imports it; we must not use it
    assert pyplot is None or pyplot.get_fignums() == []


def test_figures_command(cohort: dict[str, pd.DataFrame], tmp_path: Path) -> None:
    paths = write_inputs(cohort, tmp_path / "in")
    tables = tmp_path / "tables"
    tables.mkdir()
    T.levels_agreement(cohort["levels_cv"]).to_parquet(tables / "levels_agreement.parquet")
    T.label_distribution(cohort["labels"]).to_parquet(tables / "label_distribution.parquet")
    T.table2_scores_cv(cohort["scores_cv"]).to_parquet(tables / "table2_scores_cv.parquet")
    out = tmp_path / "figures"
    argv = [
        "--tables",
        str(tables),
        "--levels-cv",
        *map(str, paths["levels_cv"]),
        "--scores-test",
        *map(str, paths["scores_test"]),
        "--final-ablation",
        "balanced_synthesis",
        "--out-dir",
        str(out),
    ]
    assert figures_cmd.main(argv) == 0
    for name in [
        "levels_bland_altman",
        "levels_correlation",
        "scores_scatter",
        "label_distribution",
        "ablation_mae",
    ]:
        assert is_png(out / f"{name}.png"), name
    (tables / "levels_agreement.parquet").unlink()
    with pytest.raises(GohscoreError, match="levels_agreement.parquet: table not found"):
        figures_cmd.main(argv)


def test_training_curves_from_history_files(tmp_path):
    from gohscore.reports import run_name, stack_histories

    paths = []
    for network in ("levels", "scores/balanced"):
        for fold in (0, 1):
            path = tmp_path / network / f"fold{fold}" / "history.parquet"
            path.parent.mkdir(parents=True)
            pd.DataFrame(
                {
                    "epoch": [1, 2, 3],
                    "train_loss": [3.0, 2.0, 1.5],
                    "val_loss": [2.5, 2.2, 2.1],
                    "seconds": 1.0,
                }
            ).to_parquet(path)
            paths.append(path)
    assert run_name(paths[-1]) == ("scores/balanced", "1")
    stacked = stack_histories(paths)
    assert set(stacked["network"]) == {"levels", "scores/balanced"} and len(stacked) == 12
    out = plots.training_curves(stacked, tmp_path / "curves.png")
    assert out.stat().st_size > 1000
