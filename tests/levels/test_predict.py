"""Level inference: the prediction table and decoding an ensemble of constant nets."""

from __future__ import annotations

import numpy as np
import pandas as pd

from gohscore.cards import ModelCard
from gohscore.levels.decode import window_starts
from gohscore.levels.predict import TABLE_COLUMNS, level_table, predict_levels_volume
from tests.levels.toy import (
    CPU,
    ConstantNet,
    toy_volume,
)


def test_level_table_columns_and_mapping() -> None:
    """The table has the contract's columns; pred/ref z and slices follow the geometry."""
    geoms = {
        "A": {
            "grid_origin_xyz_mm": [0, 0, -100.0],
            "grid_spacing_mm": 2.0,
            "grid_shape": 32,
            "lps_origin_xyz_mm": [0, 0, -110.0],
            "spacing_xyz_mm": [1, 1, 2.5],
        }
    }
    folds = pd.DataFrame({"patient": ["A"], "set": ["test"], "fold": [-1]})
    pred = np.array([[20.0, 16.0, 12.0, 8.0, 4.0]])
    ref = np.array([[-60.0, -68.0, -76.0, -84.0, np.nan]])
    t = level_table(["A"], pred, ref, geoms, folds)
    assert list(t.columns) == TABLE_COLUMNS and len(t) == 5
    assert t["pred_z_mm"].tolist() == [-60.0, -68.0, -76.0, -84.0, -92.0]
    assert t["pred_slice"].tolist() == [20.0, 16.8, 13.6, 10.4, 7.2]
    assert np.allclose(t["ref_index"].iloc[:4], pred[0, :4]) and np.isnan(t["ref_index"].iloc[4])
    assert t["fold"].tolist() == [-1] * 5 and t["level"].tolist() == [1, 2, 3, 4, 5]


def test_predict_levels_volume_decodes_and_ensembles() -> None:
    """A constant net predicts the crop centre in every window: median of starts + centre; models -> median."""
    card = ModelCard("levels", {}, {"hu_window": [-1500, 1500], "crop_z": 24, "grid_shape": 32}, {}, {})
    vol = toy_volume(5.0, np.random.default_rng(0))
    starts = window_starts(32, 24, 4)  # 0, 4, 8
    centre = (24 - 1) / 2
    got = predict_levels_volume([ConstantNet(0.0)], vol, card, CPU, 4, False)
    assert np.allclose(got, np.median(starts) + centre)
    got = predict_levels_volume(
        [ConstantNet(0.0), ConstantNet(1.0), ConstantNet(-0.5)], vol, card, CPU, 4, False
    )
    assert np.allclose(got, np.median(starts) + centre)
    got = predict_levels_volume([ConstantNet(1.0), ConstantNet(1.0 / 12)], vol, card, CPU, 4, False)
    assert np.allclose(got, np.median(starts) + centre + (12 + 1) / 2)
