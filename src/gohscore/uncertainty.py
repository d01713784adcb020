"""The fold ensemble's spread: how far its models disagree, and when a level needs a reader's review.

Every prediction comes from one model per cross-validation fold. The spread is the standard
deviation across those models (``ddof=0``: the models are the whole ensemble, not a sample of
it; one model has a spread of 0):

- of each model's level position in world z (mm);
- of each model's *unrounded* level score (%), before the ensemble mean is rounded to 5.

A level is flagged "review" when its position spread exceeds :data:`REVIEW_SD_MM` or any of its
three score spreads exceeds :data:`REVIEW_SD_PERCENT`. The defaults are one grid slice of the
demo's 4.8 mm grid and two steps of the 5 % score scale.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy loads on first use, so that the defaults import lightly (command options)
    import numpy as np

REVIEW_SD_MM = 4.8
REVIEW_SD_PERCENT = 10.0


def spread(per_model: np.typing.ArrayLike) -> np.ndarray:
    """SD across models (axis 0, ``ddof=0``).

    >>> spread([[1.0, 5.0], [3.0, 5.0]]).tolist()
    [1.0, 0.0]
    """
    import numpy as np

    return np.asarray(per_model, dtype=np.float64).std(axis=0, ddof=0)


def review_flags(
    z_sd_mm: np.typing.ArrayLike,
    score_sd: np.typing.ArrayLike,
    sd_mm: float = REVIEW_SD_MM,
    sd_percent: float = REVIEW_SD_PERCENT,
) -> np.ndarray:
    """``True`` for each level (rows) whose position spread or any score spread passes its threshold.

    ``z_sd_mm`` is ``(levels,)``, ``score_sd`` ``(levels, 3)``.

    >>> review_flags([1.0, 6.0, 1.0], [[0, 0, 0], [0, 0, 0], [0, 12.0, 0]]).tolist()
    [False, True, True]
    """
    import numpy as np

    z = np.asarray(z_sd_mm, dtype=np.float64)
    s = np.asarray(score_sd, dtype=np.float64)
    return (z > sd_mm) | (s > sd_percent).any(axis=1)
