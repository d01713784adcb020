"""The Goh vocabulary: levels, patterns, column names and the one rounding rule, against hand-worked values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from gohscore import goh
from gohscore.goh import round_to_5, round_to_5_torch

# x -> clip(floor(x / 5 + 0.5) * 5, 0, 100), worked out by hand
HAND = [
    (0.0, 0.0),  # floor(0.5) = 0
    (2.4, 0.0),  # floor(0.98) = 0
    (2.4999, 0.0),
    (2.5, 5.0),  # floor(1.0) = 1: halves go up
    (7.5, 10.0),  # floor(2.0) = 2; Python's round(7.5 / 5) * 5 gives 10 too
    (12.4, 10.0),  # floor(2.98) = 2
    (12.5, 15.0),  # floor(3.0) = 3; Python's round(12.5 / 5) * 5 gives 10 (halves to even)
    (92.5, 95.0),
    (97.5, 100.0),
    (97.6, 100.0),  # floor(20.02) = 20
    (100.0, 100.0),
    (102.0, 100.0),  # floor(20.9) = 20
    (104.0, 100.0),  # floor(21.3) = 21 -> 105, clipped to 100
    (-3.0, 0.0),  # floor(-0.1) = -1 -> -5, clipped to 0
]


@pytest.mark.parametrize(("x", "want"), HAND)
def test_round_to_5_hand_values(x: float, want: float) -> None:
    assert float(round_to_5(x)) == want


@pytest.mark.parametrize(("x", "want"), HAND)
def test_round_to_5_torch_hand_values(x: float, want: float) -> None:
    assert float(round_to_5_torch(torch.tensor(x, dtype=torch.float64))) == want


def test_halves_go_up_unlike_python_round() -> None:
    assert round(12.5 / 5) * 5 == 10
    assert float(round_to_5(12.5)) == 15.0


def test_round_to_5_keeps_the_shape_of_arrays_and_series() -> None:
    got = round_to_5([[2.5, 7.4], [-3.0, 104.0]])
    assert got.dtype == np.float64 and got.shape == (2, 2)
    assert got.tolist() == [[5.0, 5.0], [0.0, 100.0]]
    assert round_to_5(pd.Series([12.5, 17.4, 17.5])).tolist() == [15.0, 15.0, 20.0]
    assert round_to_5(np.array([3, 8], dtype=np.int64)).tolist() == [5.0, 10.0]


def test_each_half_goes_up_and_the_number_just_below_goes_down() -> None:
    halves = 5.0 * np.arange(20) + 2.5  # 2.5, 7.5, ..., 97.5
    below = np.nextafter(halves, -np.inf)
    assert round_to_5(halves).tolist() == (5.0 * np.arange(1, 21)).tolist()
    assert round_to_5(below).tolist() == (5.0 * np.arange(20)).tolist()
    assert round_to_5_torch(torch.from_numpy(halves)).tolist() == round_to_5(halves).tolist()
    assert round_to_5_torch(torch.from_numpy(below)).tolist() == round_to_5(below).tolist()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_numpy_and_torch_agree_on_a_grid_with_every_boundary(dtype: torch.dtype) -> None:
    grid = np.arange(-10.0, 110.0 + 1e-9, 0.25)  # exact in float32 too; holds every x.5 boundary
    assert {2.5, 7.5, 97.5} <= set(grid.tolist())
    got = round_to_5_torch(torch.tensor(grid, dtype=dtype))
    assert got.dtype == dtype
    assert got.double().numpy().tolist() == round_to_5(grid).tolist()


def test_numpy_and_torch_agree_on_random_values() -> None:
    x = np.random.default_rng(0).uniform(-20.0, 120.0, 10_000)
    np.testing.assert_array_equal(round_to_5_torch(torch.from_numpy(x)).numpy(), round_to_5(x))


def test_levels_and_patterns() -> None:
    assert goh.LEVELS == (1, 2, 3, 4, 5) and goh.N_LEVELS == 5
    assert sorted(goh.LEVEL_NAMES) == list(goh.LEVELS)
    assert goh.LEVEL_NAMES[2] == "main carina"
    assert goh.PATTERNS == ("TOT", "GG", "RET")
    assert goh.LESION_PATTERNS == ("GG", "RET") and set(goh.LESION_PATTERNS) < set(goh.PATTERNS)
    assert goh.SCORE_STEP == 5.0


def test_column_builders() -> None:
    assert goh.z_column(3) == "L3_z_mm"
    assert goh.score_column(2, "GG") == "L2_GG"
    assert goh.Z_COLUMNS == ("L1_z_mm", "L2_z_mm", "L3_z_mm", "L4_z_mm", "L5_z_mm")
    assert len(goh.SCORE_COLUMNS) == 15 and len(set(goh.SCORE_COLUMNS)) == 15
    assert goh.SCORE_COLUMNS[:4] == ("L1_TOT", "L1_GG", "L1_RET", "L2_TOT")
    assert goh.SCORE_COLUMNS[-1] == "L5_RET"
