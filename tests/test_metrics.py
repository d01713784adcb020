"""Metrics against scikit-learn, pingouin and scipy called directly, and hand-computed cases."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pingouin
import pytest
from scipy.stats import wilcoxon
from sklearn.metrics import cohen_kappa_score

from gohscore import metrics

LABELS = list(range(0, 101, 5))


def test_round_to_5_is_half_up_and_clipped() -> None:
    got = metrics.round_to_5([2.5, 7.5, 12.5, 2.49, -3.0, 103.0, 97.6])
    # Python's round(12.5 / 5) * 5 would give 10 (banker's rounding)
    assert got.tolist() == [5.0, 10.0, 15.0, 0.0, 0.0, 100.0, 100.0]


def test_mae_sd_hand_computed() -> None:
    mae, sd = metrics.mae_sd([0, 5, 10, 20], [0, 10, 10, 10])  # |errors| 0, 5, 0, 10
    assert mae == pytest.approx(3.75)
    assert sd == pytest.approx(np.std([0, 5, 0, 10], ddof=1))


def test_kappa_matches_sklearn_with_fixed_labels_and_keeps_100() -> None:
    ref = [0, 5, 10, 50, 95, 0, 20]
    pred = [0, 5, 15, 50, 100, 5, 20]  # 100 only in the prediction
    ours = metrics.weighted_kappa(ref, pred)
    assert ours == pytest.approx(cohen_kappa_score(ref, pred, labels=LABELS, weights="linear"))
    dropped = cohen_kappa_score(ref, pred, labels=LABELS[:-1], weights="linear")  # the original fault
    assert ours != pytest.approx(dropped)


def test_perfect_agreement_gives_kappa_and_icc_one() -> None:
    scores = [0, 5, 10, 30, 100, 0, 45]
    assert metrics.weighted_kappa(scores, scores) == pytest.approx(1.0)
    assert metrics.icc_a1(scores, scores) == pytest.approx(1.0)
    assert metrics.mae_sd(scores, scores) == (0.0, 0.0)


@pytest.mark.filterwarnings("ignore:The inplace keyword")
def test_icc_matches_pingouin_two_way_absolute_single() -> None:
    rng = np.random.default_rng([7, 1])
    ref = rng.normal(100, 20, 30)
    pred = ref + rng.normal(3, 5, 30)
    long = pd.DataFrame(
        {"t": np.tile(np.arange(30), 2), "r": np.repeat(["a", "b"], 30), "x": np.concatenate([ref, pred])}
    )
    table = pingouin.intraclass_corr(data=long, targets="t", raters="r", ratings="x")
    expected = table.loc[table["Type"].isin(["ICC2", "ICC(A,1)"]), "ICC"].iloc[0]
    assert metrics.icc_a1(ref, pred) == pytest.approx(expected)
    # absolute agreement: a constant bias lowers it below the consistency ICC(3,1)
    consistency = table.loc[table["Type"].isin(["ICC3", "ICC(C,1)"]), "ICC"].iloc[0]
    assert metrics.icc_a1(ref, pred) < consistency


def test_wilcoxon_matches_scipy_on_absolute_errors() -> None:
    ref = np.array([0, 5, 10, 20, 30, 40, 50, 5, 0, 15])
    a = np.array([5, 5, 20, 30, 30, 50, 70, 10, 10, 15])
    b = np.array([0, 5, 15, 20, 25, 40, 55, 5, 0, 15])
    expected = wilcoxon(np.abs(a - ref), np.abs(b - ref)).pvalue
    assert metrics.wilcoxon_abs_errors(ref, a, b) == pytest.approx(expected)
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
