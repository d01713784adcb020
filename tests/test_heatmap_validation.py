"""Heat-map metrics on hand-made maps and masks, with values worked out by hand or by scikit-learn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from gohscore import heatmap_validation as hv


def grid() -> tuple[np.ndarray, np.ndarray]:
    """A 4 x 5 slice: lung = columns 0..3 (16 px), lesion = rows 0..1, columns 0..2 (6 px)."""
    lung = np.zeros((4, 5), bool)
    lung[:, :4] = True
    mask = np.zeros((4, 5), bool)
    mask[:2, :3] = True
    return lung, mask


def test_energy_and_pointing_by_hand() -> None:
    lung, mask = grid()
    heat = np.zeros((4, 5))
    heat[0, 0], heat[3, 3], heat[0, 4] = 3.0, 1.0, 1.0  # 3 of 5 inside the lesion; the peak inside it
    assert hv.energy_in_mask(heat, mask) == pytest.approx(0.6)
    assert hv.pointing_game(heat, mask) == 1.0
    heat[3, 3] = 4.0
    assert hv.pointing_game(heat, mask) == 0.0
    assert np.isnan(hv.energy_in_mask(np.zeros((4, 5)), mask)) and np.isnan(
        hv.pointing_game(np.zeros((4, 5)), mask)
    )


def test_pixel_auc_agrees_with_scikit_learn_and_a_flat_map_is_one_half() -> None:
    lung, mask = grid()
    rng = np.random.default_rng(4)
    heat = rng.random((4, 5))
    heat[0, 1] = heat[2, 2]  # a tie across the classes
    region = lung | mask
    assert hv.pixel_auc(heat, mask, lung) == pytest.approx(roc_auc_score(mask[region], heat[region]))
    assert hv.pixel_auc(np.ones((4, 5)), mask, lung) == 0.5
    assert np.isnan(hv.pixel_auc(heat, np.zeros((4, 5), bool), lung))


def test_map_score_is_the_hot_share_of_the_lung() -> None:
    lung, _ = grid()
    heat = np.zeros((4, 5))
    heat[0, :4] = [1.0, 0.5, 0.49, 0.0]  # two lung pixels reach half the maximum: 2 / 16
    heat[1, 4] = 0.9  # outside the lung: not counted
    assert hv.map_score(heat, lung) == pytest.approx(12.5)
    assert hv.map_score(np.zeros((4, 5)), lung) == 0.0


def test_level_rows_and_summary() -> None:
    lung, mask = grid()
    heat = np.zeros((3, 4, 5))
    heat[:, :2, :3] = 1.0  # every pattern's map exactly on the lesion
    masks = {"TOT": mask, "GG": mask, "RET": np.zeros((4, 5), bool)}  # no RET on this level
    rows = pd.DataFrame(hv.level_rows("P1", 2, heat, masks, lung, lung))
    tot = rows[rows["pattern"] == "TOT"].set_index("method")
    assert tot.loc["gradcam", "energy_in_mask"] == 1.0 and tot.loc["gradcam", "pixel_auc"] == 1.0
    assert tot.loc["lung_mask", "energy_in_mask"] == pytest.approx(6 / 16)
    assert tot.loc["lung_mask", "pointing_game"] == pytest.approx(6 / 16)
    assert tot.loc["lung_mask", "pixel_auc"] == 0.5
    assert tot.loc["gradcam_in_lung", "map_score"] == pytest.approx(37.5)
    ret = rows[rows["pattern"] == "RET"]
    assert ret["method"].tolist() == ["gradcam_in_lung"] and ret["energy_in_mask"].isna().all()
    reference = pd.DataFrame(
        {"patient": ["P1"], "level": [2], "ref_TOT": [20.0], "ref_GG": [30.0], "ref_RET": [0.0]}
    )
    summary = hv.summary_table(rows, reference).set_index(["pattern", "method"])
    assert summary.loc[("TOT", "gradcam"), "n_levels"] == 1
    assert summary.loc[("TOT", "gradcam_in_lung"), "map_score_mae"] == pytest.approx(17.5)
    assert summary.loc[("RET", "gradcam_in_lung"), "map_score_mae"] == pytest.approx(37.5)
    assert summary.loc[("RET", "gradcam"), "n_levels"] == 0
