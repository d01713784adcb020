"""The fold ensemble's spread, worked out by hand for stand-in models with known outputs."""

from __future__ import annotations

import numpy as np
import torch

from gohscore.cards import ModelCard
from gohscore.levels.decode import window_starts
from gohscore.levels.predict import predict_levels_members, predict_levels_volume
from gohscore.scores.predict import level_members, predict_scores_slices
from gohscore.uncertainty import REVIEW_SD_MM, REVIEW_SD_PERCENT, review_flags, spread
from tests.levels.toy import CPU, ConstantNet, toy_volume


class ConstantScores(torch.nn.Module):
    """A stand-in score network that outputs the same fractions (TOT, GG, RET) for every slice."""

    def __init__(self, tot: float, gg: float, ret: float) -> None:
        super().__init__()
        self.out = torch.tensor([tot, gg, ret])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out.expand(x.shape[0], 3).clone()


def test_level_members_and_their_spread() -> None:
    """Two models 11 indices apart: each decodes on its own, the spread is half the gap (ddof 0)."""
    card = ModelCard("levels", {}, {"hu_window": [-1500, 1500], "crop_z": 24, "grid_shape": 32}, {}, {})
    vol = toy_volume(5.0, np.random.default_rng(0))
    centre = np.median(window_starts(32, 24, 4)) + (24 - 1) / 2
    # output 1 means +12 slices in a 24-slice crop, 1/12 means +1
    members = predict_levels_members([ConstantNet(1.0), ConstantNet(1.0 / 12)], vol, card, CPU, 4, False)
    assert members.shape == (2, 5)
    assert np.allclose(members[0], centre + 12) and np.allclose(members[1], centre + 1)
    assert np.allclose(spread(members), 5.5)
    ensemble = predict_levels_volume([ConstantNet(1.0), ConstantNet(1.0 / 12)], vol, card, CPU, 4, False)
    assert np.allclose(ensemble, centre + 6.5)


def test_score_members_spread_is_taken_before_rounding() -> None:
    """Models at 20 % and 31 % TOT: ensemble 25.5 -> 25 after rounding to 5, spread 5.5 from the raw values."""
    card = ModelCard(
        "scores",
        {},
        {"input_size": 16, "hu_window": [-1500, 1500], "slices_per_level": 3},
        {"scale": 100.0},
        {},
    )
    slices = np.full((15, 16, 16), -800.0, dtype=np.float32)
    models = [ConstantScores(0.20, 0.10, 0.0), ConstantScores(0.31, 0.10, 0.04)]
    members = level_members(models, slices, card, CPU)
    assert members.shape == (2, 5, 3)
    assert np.allclose(members[:, :, 0], [[20.0] * 5, [31.0] * 5])
    sd = spread(members)
    assert np.allclose(sd[:, 0], 5.5) and np.allclose(sd[:, 1], 0.0) and np.allclose(sd[:, 2], 2.0)
    assert predict_scores_slices(models, slices, card, CPU)[:, 0].tolist() == [25.0] * 5


def test_review_flags_follow_each_threshold() -> None:
    z = np.array([0.0, REVIEW_SD_MM, REVIEW_SD_MM + 0.1, 0.0, 0.0])
    s = np.zeros((5, 3))
    s[3, 2] = REVIEW_SD_PERCENT + 0.1
    s[4, 0] = REVIEW_SD_PERCENT  # at the threshold: not flagged
    assert review_flags(z, s).tolist() == [False, False, True, True, False]
    assert review_flags(z, s, sd_mm=100.0, sd_percent=100.0).tolist() == [False] * 5


def test_one_model_has_no_spread() -> None:
    assert spread(np.array([[3.0, 4.0]])).tolist() == [0.0, 0.0]
