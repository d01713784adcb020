"""Goh staging: boundaries 10, 20, 30 and FVC 70 exactly."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from gohscore.staging import global_extent, goh_stage, simple_stage, stage_frame


@pytest.mark.parametrize(
    ("extent", "fvc", "stage"),
    [
        (9.0, None, "limited"),
        (10.0, None, "indeterminate"),  # 10 is inside the indeterminate band
        (10.0, 70.0, "limited"),  # FVC 70 exactly: limited
        (10.0, 69.9, "extensive"),
        (20.0, None, "indeterminate"),
        (30.0, None, "indeterminate"),  # 30 is inside the band
        (30.0, 80.0, "limited"),
        (30.0, 50.0, "extensive"),
        (31.0, 100.0, "extensive"),  # above 30: FVC is not asked
        (0.0, 40.0, "limited"),
        (math.nan, 80.0, "unknown"),
        (20.0, math.nan, "indeterminate"),
    ],
)
def test_goh_stage_boundaries(extent: float, fvc: float | None, stage: str) -> None:
    assert goh_stage(extent, fvc) == stage


@pytest.mark.parametrize(
    ("extent", "stage"),
    [(10.0, "limited"), (20.0, "limited"), (21.0, "extensive"), (30.0, "extensive"), (math.nan, "unknown")],
)
def test_simple_stage_cutoff_20(extent: float, stage: str) -> None:
    assert simple_stage(extent) == stage


def test_global_extent_is_exact_mean_of_five_levels() -> None:
    assert global_extent([5, 10, 15, 10, 10]) == 10.0
    assert global_extent([0, 0, 0, 0, 100]) == 20.0
    assert math.isnan(global_extent([10, 10, 10, 10]))
    assert math.isnan(global_extent([10, 10, math.nan, 10, 10]))


def test_stage_frame_with_and_without_fvc() -> None:
    tot = pd.DataFrame(
        {
            f"L{k}_TOT": v
            for k, v in zip(
                range(1, 6), [[0, 15, 50], [5, 15, 40], [10, 15, 30], [10, 15, 20], [25, 15, 10]], strict=True
            )
        },
        index=["a", "b", "c"],
    )
    out = stage_frame(tot, pd.Series({"b": 65.0}))
    assert out["extent"].tolist() == [10.0, 15.0, 30.0]
    assert out["stage"].tolist() == ["indeterminate", "extensive", "indeterminate"]
    assert out["stage_simple"].tolist() == ["limited", "limited", "extensive"]
