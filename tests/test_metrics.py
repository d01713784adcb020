"""Metrics against known values worked out by hand (ANOVA mean squares, sign enumeration, pair sums)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from gohscore import metrics


def test_mae_sd_hand_computed() -> None:
    mae, sd = metrics.mae_sd([0, 5, 10, 20], [0, 10, 10, 10])  # |errors| 0, 5, 0, 10
    assert mae == pytest.approx(3.75)
    # deviations from 3.75: -3.75, 1.25, -3.75, 6.25; squares sum to 68.75; ddof=1 -> 68.75 / 3
    assert sd == pytest.approx(np.sqrt(68.75 / 3))
    assert sd == pytest.approx(4.787135538781691)


def _linear_kappa_by_pairs(ref: list[int], pred: list[int]) -> float:
    """Linearly weighted kappa from its definition: 1 - observed / chance-expected mean |difference|.

    With equally spaced labels the linear weights are proportional to |a - b|, so the observed
    disagreement is the mean |ref_i - pred_i| and the chance one the mean over all pairs (i, j).
    """
    a, b = np.asarray(ref, dtype=float), np.asarray(pred, dtype=float)
    observed = np.abs(a - b).mean()
    expected = np.abs(a[:, None] - b[None, :]).mean()
    return 1.0 - observed / expected


def test_kappa_hand_computed_with_fixed_labels_and_keeps_100() -> None:
    ref = [0, 5, 10, 50, 95, 0, 20]
    pred = [0, 5, 15, 50, 100, 5, 20]  # 100 only in the prediction
    ours = metrics.weighted_kappa(ref, pred)
    # observed mean |diff| = 15/7; mean over the 49 (i, j) pairs = 1625/49
    # kappa = 1 - (15/7) / (1625/49) = 1 - 21/325 = 304/325
    assert ours == pytest.approx(304 / 325)
    assert ours == pytest.approx(_linear_kappa_by_pairs(ref, pred))
    # the original fault dropped the label 100, hence the (95, 100) pair: 6 pairs, 1 - (10/6) / (630/36) = 19/21
    dropped = _linear_kappa_by_pairs([0, 5, 10, 50, 0, 20], [0, 5, 15, 50, 5, 20])
    assert dropped == pytest.approx(19 / 21)
    assert ours != pytest.approx(dropped)


def test_perfect_agreement_gives_kappa_and_icc_one() -> None:
    scores = [0, 5, 10, 30, 100, 0, 45]
    assert metrics.weighted_kappa(scores, scores) == pytest.approx(1.0)
    assert metrics.icc_a1(scores, scores) == pytest.approx(1.0)
    assert metrics.mae_sd(scores, scores) == (0.0, 0.0)


def _icc_a1_by_anova(ref: list[float], pred: list[float]) -> tuple[float, float]:
    """ICC(2,1) and ICC(3,1) (Shrout & Fleiss) of an n x 2 matrix from the two-way ANOVA mean squares."""
    y = np.column_stack([ref, pred]).astype(float)
    n, k = y.shape
    grand = y.mean()
    ss_rows = k * ((y.mean(axis=1) - grand) ** 2).sum()
    ss_cols = n * ((y.mean(axis=0) - grand) ** 2).sum()
    ss_err = ((y - grand) ** 2).sum() - ss_rows - ss_cols
    msr, msc, mse = ss_rows / (n - 1), ss_cols / (k - 1), ss_err / ((n - 1) * (k - 1))
    absolute = (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)
    consistency = (msr - mse) / (msr + (k - 1) * mse)
    return absolute, consistency


@pytest.mark.filterwarnings("ignore:The inplace keyword")
def test_icc_two_way_absolute_single_hand_computed() -> None:
    ref, pred = [2, 4, 6, 8, 10], [3, 5, 6, 10, 11]
    # by hand: grand mean 6.5; SSR = 2 * 42.5 = 85, MSR = 85/4; column means 6 and 7, SSC = 2.5 = MSC;
    # SST = 88.5, SSE = 1, MSE = 1/4; ICC = 21 / (21.5 + 2 * 2.25 / 5) = 21 / 22.4 = 15/16
    absolute, consistency = _icc_a1_by_anova(ref, pred)
    assert absolute == pytest.approx(15 / 16)
    assert consistency == pytest.approx(21 / 21.5)
    assert metrics.icc_a1(ref, pred) == pytest.approx(15 / 16)
    # a pure bias of +2: MSE = 0, MSR = 5, MSC = 10, so ICC(2,1) = 5 / (5 + 2 * 10 / 5) = 5/9, while the
    # consistency ICC(3,1) would be 1: absolute agreement is what is measured
    assert metrics.icc_a1([1, 2, 3, 4, 5], [3, 4, 5, 6, 7]) == pytest.approx(5 / 9)
    assert _icc_a1_by_anova([1, 2, 3, 4, 5], [3, 4, 5, 6, 7]) == pytest.approx((5 / 9, 1.0))


def test_wilcoxon_exact_p_values_by_enumeration() -> None:
    """Two-sided p-values counted over the 2^n equally likely sign patterns of the n non-zero differences.

    The implementation (scipy, method "auto") is exact here: the exact null distribution without
    ties or zeros, a full sign-flip enumeration otherwise (n <= 13); zero differences are dropped.
    """
    ref = np.array([10, 20, 30, 40, 50, 60])
    # |a - ref| = 1..6 (signs of the raw errors must not matter), b exact: every difference positive,
    # T+ = 21 is reached by 1 of 64 sign patterns, so p = 2 * 1/64
    a = ref + np.array([1, -2, 3, -4, 5, -6])
    assert metrics.wilcoxon_abs_errors(ref, a, ref) == pytest.approx(2 / 64)
    assert metrics.wilcoxon_abs_errors(ref, ref, a) == pytest.approx(2 / 64)  # the other tail
    # differences -1, 2, 3, 4, 5, 6: T- = 1; T- <= 1 for the empty set and {1}: p = 2 * 2/64
    a = ref + np.array([0, 2, 3, 4, 5, 6])
    b = ref - np.array([1, 0, 0, 0, 0, 0])
    assert metrics.wilcoxon_abs_errors(ref, a, b) == pytest.approx(4 / 64)
    # differences -1, 1, 2, 3, 4, 5 and two zeros (dropped): ranks 1.5, 1.5, 3, 4, 5, 6, T- = 1.5;
    # T- <= 1.5 for {}, {first 1.5}, {second 1.5}: p = 2 * 3/64 = 0.09375 (the normal approximation
    # without continuity correction would give 0.0585)
    ref8 = np.arange(8) * 10
    err_a = np.array([0, 1, 2, 3, 4, 5, 7, 7])
    err_b = np.array([1, 0, 0, 0, 0, 0, 7, 7])
    assert metrics.wilcoxon_abs_errors(ref8, ref8 - err_a, ref8 + err_b) == pytest.approx(6 / 64)
    assert np.isnan(metrics.wilcoxon_abs_errors(ref, a, a))


def test_bland_altman_and_regression_known_pair() -> None:
    ba = metrics.bland_altman([1, 2, 3, 4], [2, 2, 4, 6])  # differences 1, 0, 1, 2
    sd = np.sqrt(2 / 3)
    assert ba["mean_error"] == pytest.approx(1.0)
    assert ba["sd_error"] == pytest.approx(sd)
    assert ba["loa_low"] == pytest.approx(1 - 1.96 * sd)
    assert ba["loa_high"] == pytest.approx(1 + 1.96 * sd)
    reg = metrics.regression([0, 1, 2, 3], [1, 3, 5, 7])
    assert (reg["slope"], reg["intercept"], reg["r"]) == pytest.approx((2.0, 1.0, 1.0))


@pytest.mark.parametrize(
    ("ref", "pred"),
    [([10, 10, 10, 10], [10, 10, 10, 10]), ([0, 5], [0, 10]), ([], [])],
    ids=["constant", "two-pairs", "empty"],
)
def test_degenerate_inputs_give_nan_without_warnings(ref: list[int], pred: list[int]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(metrics.weighted_kappa(ref, pred))
        assert np.isnan(metrics.icc_a1(ref, pred))
        assert np.isnan(metrics.regression(ref, pred)["slope"])
        assert np.isnan(metrics.wilcoxon_abs_errors(ref, pred, pred))


def test_kappa_rejects_unrounded_scores_and_length_mismatch() -> None:
    with pytest.raises(ValueError, match="round to 5"):
        metrics.weighted_kappa([0, 5, 12], [0, 5, 10])
    with pytest.raises(ValueError, match="differ in length"):
        metrics.mae_sd([0, 5], [0])
