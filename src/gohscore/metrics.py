"""Agreement metrics for levels and scores: pure functions of paired arrays.

Every function takes a reference and a prediction (or two predictions) as array-likes of
equal length, ignores nothing silently, and returns ``nan`` instead of raising when the
statistic is undefined (fewer than 3 pairs, or no variation at all).

>>> mae_sd([0, 5, 10, 20], [0, 10, 10, 10])
(3.75, 4.7871355387816905)
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

ArrayLike = npt.ArrayLike

#: The 21 Goh score classes (percent), used as the fixed label set of the kappa.
SCORE_LABELS: tuple[int, ...] = tuple(range(0, 101, 5))

#: Below this many pairs every agreement statistic is reported as ``nan``.
MIN_PAIRS = 3


def _pair(ref: ArrayLike, pred: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Return ``ref`` and ``pred`` as float arrays of the same length (ValueError otherwise)."""
    a = np.asarray(ref, dtype=float).ravel()
    b = np.asarray(pred, dtype=float).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired arrays differ in length: {a.size} reference vs {b.size} predicted")
    if np.isnan(a).any() or np.isnan(b).any():
        raise ValueError("paired arrays contain NaN; drop incomplete pairs before computing metrics")
    return a, b


def mae_sd(ref: ArrayLike, pred: ArrayLike) -> tuple[float, float]:
    """Mean absolute error and the sample SD (ddof=1) of the absolute errors; ``nan`` when empty."""
    a, b = _pair(ref, pred)
    err = np.abs(b - a)
    if err.size == 0:
        return float("nan"), float("nan")
    sd = float(np.std(err, ddof=1)) if err.size > 1 else float("nan")
    return float(err.mean()), sd


def weighted_kappa(ref: ArrayLike, pred: ArrayLike, labels: Sequence[int] = SCORE_LABELS) -> float:
    """Linearly weighted Cohen's kappa over the fixed label set (default 0, 5, ..., 100).

    The label set is passed to scikit-learn explicitly, so a class that only one rater used
    (e.g. a single 100) still counts. Values outside ``labels`` raise ValueError: round first.
    """
    from sklearn.metrics import cohen_kappa_score

    a, b = _pair(ref, pred)
    if a.size < MIN_PAIRS:
        return float("nan")
    ai, bi = np.rint(a).astype(int), np.rint(b).astype(int)
    allowed = np.asarray(labels, dtype=int)
    outside = sorted(set(np.setdiff1d(np.concatenate([ai, bi]), allowed).tolist()))
    if outside or not (np.allclose(ai, a) and np.allclose(bi, b)):
        raise ValueError(f"scores {outside or 'with decimals'} are not in the label set; round to 5 first")
    if np.unique(np.concatenate([ai, bi])).size < 2:
        return float("nan")
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        value = cohen_kappa_score(ai, bi, labels=allowed, weights="linear")
    return float(value)


def icc_a1(ref: ArrayLike, pred: ArrayLike) -> float:
    """ICC(2,1) of two raters: two-way random effects, absolute agreement, single rater (pingouin).

    pingouin names this type ``ICC2`` (before 0.6) or ``ICC(A,1)`` (0.6 and later).
    """
    import pandas as pd
    import pingouin

    a, b = _pair(ref, pred)
    if a.size < MIN_PAIRS or np.ptp(np.concatenate([a, b])) == 0:
        return float("nan")
    n = a.size
    long = pd.DataFrame(
        {
            "target": np.tile(np.arange(n), 2),
            "rater": np.repeat(["reference", "prediction"], n),
            "rating": np.concatenate([a, b]),
        }
    )
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        table = pingouin.intraclass_corr(data=long, targets="target", raters="rater", ratings="rating")
    row = table[table["Type"].isin(["ICC2", "ICC(A,1)"])]
    if row.empty:
        raise RuntimeError(f"pingouin returned no ICC2/ICC(A,1) row; types: {list(table['Type'])}")
    return float(row["ICC"].iloc[0])


def wilcoxon_abs_errors(ref: ArrayLike, pred_a: ArrayLike, pred_b: ArrayLike) -> float:
    """Two-sided Wilcoxon signed-rank p-value comparing |pred_a - ref| with |pred_b - ref| (paired).

    Returns ``nan`` with fewer than 3 pairs or when the two methods' absolute errors never differ.
    """
    from scipy.stats import wilcoxon

    r, a = _pair(ref, pred_a)
    _, b = _pair(ref, pred_b)
    diff = np.abs(a - r) - np.abs(b - r)
    if diff.size < MIN_PAIRS or not np.any(diff != 0):
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = wilcoxon(np.abs(a - r), np.abs(b - r), zero_method="wilcox", alternative="two-sided")
    return float(result.pvalue)


def bland_altman(ref: ArrayLike, pred: ArrayLike) -> dict[str, float]:
    """Bland–Altman statistics of ``pred - ref``: mean, sample SD and the 95 % limits (mean ± 1.96 SD)."""
    a, b = _pair(ref, pred)
    diff = b - a
    n = diff.size
    mean = float(diff.mean()) if n else float("nan")
    sd = float(np.std(diff, ddof=1)) if n >= 2 else float("nan")
    return {
        "n": n,
        "mean_error": mean,
        "sd_error": sd,
        "loa_low": mean - 1.96 * sd,
        "loa_high": mean + 1.96 * sd,
    }


def regression(ref: ArrayLike, pred: ArrayLike) -> dict[str, float]:
    """Least-squares line ``pred = slope * ref + intercept`` and Pearson r; ``nan`` if ref is constant."""
    a, b = _pair(ref, pred)
    if a.size < MIN_PAIRS or np.ptp(a) == 0:
        return {"slope": float("nan"), "intercept": float("nan"), "r": float("nan")}
    slope, intercept = np.polyfit(a, b, 1)
    r = float(np.corrcoef(a, b)[0, 1]) if np.ptp(b) > 0 else float("nan")
    return {"slope": float(slope), "intercept": float(intercept), "r": r}


def score_agreement(ref: ArrayLike, pred: ArrayLike) -> dict[str, float]:
    """n, MAE, SD of absolute error, weighted kappa and ICC(2,1) of rounded scores, in one dict."""
    a, b = _pair(ref, pred)
    mae, sd = mae_sd(a, b)
    return {"n": a.size, "mae": mae, "sd": sd, "kappa": weighted_kappa(a, b), "icc": icc_a1(a, b)}


def level_agreement(ref: ArrayLike, pred: ArrayLike) -> dict[str, float]:
    """n, MAE, SD of absolute error and ICC(2,1) of level positions (slices), in one dict."""
    a, b = _pair(ref, pred)
    mae, sd = mae_sd(a, b)
    return {"n": a.size, "mae": mae, "sd": sd, "icc": icc_a1(a, b)}
