"""What the score nets were taught: draws tables, their fold means and the figure drawn from them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gohscore import plots
from gohscore import tables as T
from gohscore.scores.draws import BINS, draw_table, shares


def test_shares_and_draw_table_by_hand():
    assert shares(np.array([0, 0, 5, 100]))[[0, 1, 20]].tolist() == [0.5, 0.25, 0.25]
    # 4 slices drawn 0.1, 0.1, 0.4, 0.4; the two healthy ones (TOT 0) replaced half the time
    t = draw_table(
        np.array([0, 0, 10, 20]),
        np.array([0.1, 0.1, 0.4, 0.4]),
        np.array([0.5, 0.5, 0, 0]),
        np.array([15.0, 15.0, 25.0]),
    )
    row = t.set_index("score")
    assert row.loc[0, "drawn"] == pytest.approx(0.1)  # 0.2 of the draws, half of them stay real
    assert row.loc[10, "drawn"] == pytest.approx(0.4) and row.loc[20, "drawn"] == pytest.approx(0.4)
    assert row.loc[15, "synthetic"] == pytest.approx(0.1 * 2 / 3) and row.loc[
        25, "synthetic"
    ] == pytest.approx(0.1 / 3)
    assert t["seen"].sum() == pytest.approx(1.0) and t["real"].sum() == pytest.approx(1.0)
    assert row.loc[0, "real"] == pytest.approx(0.5)  # half the slices are healthy, whatever is drawn


def test_label_draws_table_averages_folds_and_the_figure_draws(tmp_path):
    def one(fold: int, drawn0: float) -> pd.DataFrame:
        t = pd.DataFrame({"score": BINS, "real": 0.0, "drawn": 0.0, "synthetic": 0.0, "seen": 0.0})
        t.loc[0, ["real", "drawn", "seen"]] = [1.0, drawn0, drawn0]
        t.loc[4, ["synthetic", "seen"]] = [1 - drawn0, 1 - drawn0]
        return t.assign(ablation="balanced_synthesis", fold=fold)

    table = T.label_draws(pd.concat([one(0, 0.4), one(1, 0.6)], ignore_index=True))
    assert list(table.columns) == list(T.LABEL_DRAW_COLUMNS)
    assert table.loc[0, "drawn"] == pytest.approx(0.5) and table.loc[4, "synthetic"] == pytest.approx(0.5)
    out = plots.label_draws(table, tmp_path / "label_draws.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000
