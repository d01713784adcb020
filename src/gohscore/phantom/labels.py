"""Goh scores from masks: area fractions, half-up rounding to 5 %, consistent TOT/GG/RET rows."""

from __future__ import annotations

import numpy as np

from gohscore.goh import round_to_5


def area_percentages(lung: np.ndarray, gg: np.ndarray, ret: np.ndarray) -> tuple[float, float, float]:
    """Return (TOT, GG, RET) as percent of the lung area; TOT is the union of GG and RET inside the lung."""
    n_lung = int(np.count_nonzero(lung))
    if n_lung == 0:
        return 0.0, 0.0, 0.0
    gg_in = gg & lung
    ret_in = ret & lung
    tot = np.count_nonzero(gg_in | ret_in) * 100.0 / n_lung
    return tot, np.count_nonzero(gg_in) * 100.0 / n_lung, np.count_nonzero(ret_in) * 100.0 / n_lung


def consistent_scores(tot: float, gg: float, ret: float) -> tuple[int, int, int]:
    """Round (TOT, GG, RET) half up to 5 and keep ``max(GG, RET) <= TOT <= GG + RET``.

    Half-up rounding is monotonic, so ``max(GG, RET) <= TOT`` survives it; only
    ``TOT <= GG + RET`` can break (e.g. 2.4 + 2.4 = 4.8 -> 0 + 0 < 5). Then the component
    with the larger rounding remainder is rounded up instead, as a reader would.
    """
    t, g, r = (int(round_to_5(x)) for x in (tot, gg, ret))
    while t > g + r:
        if gg - g >= ret - r:
            g += 5
        else:
            r += 5
    return t, g, r


def make_consistent(tot: int, gg: int, ret: int) -> tuple[int, int, int]:
    """Clip already-rounded scores to 0..100 and force ``max(GG, RET) <= TOT <= min(GG + RET, 100)``."""
    gg = int(np.clip(gg, 0, 100))
    ret = int(np.clip(ret, 0, 100))
    tot = int(np.clip(tot, max(gg, ret), min(gg + ret, 100)))
    return tot, gg, ret
