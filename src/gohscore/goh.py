"""The vocabulary of the Goh system, in one place.

A Goh reading scores five axial levels of a chest CT, L1 (highest) to L5 (lowest). At each
level a reader gives three extents in percent of the lung: TOT (all fibrosis), GG (ground
glass) and RET (reticulation). Every score is a multiple of 5 between 0 and 100.

The labels table holds one row per patient with the world z of each level (``L{k}_z_mm``) and
the 15 scores (``L{k}_{pattern}``). The level numbers, pattern names, column names and the
rounding rule are defined here and nowhere else.

The rounding rule: round half up to the nearest multiple of 5, then clip to [0, 100], that is
``clip(floor(x / 5 + 0.5) * 5, 0, 100)``. Halves go up (2.5 -> 5, 12.5 -> 15), unlike Python's
``round``, which rounds halves to even. :func:`round_to_5` (numpy) and :func:`round_to_5_torch`
(torch) both evaluate this one expression, :func:`_round_rule`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import torch

#: The five levels, numbered from the top (L1) to the bottom (L5).
LEVELS: tuple[int, ...] = (1, 2, 3, 4, 5)
N_LEVELS: int = len(LEVELS)
#: Where each level lies in the chest.
LEVEL_NAMES: dict[int, str] = {
    1: "origin of the great vessels",
    2: "main carina",
    3: "pulmonary venous confluence",
    4: "halfway between 3 and 5",
    5: "above the right hemidiaphragm",
}

#: The three scored patterns: total extent, ground glass, reticulation.
PATTERNS: tuple[str, ...] = ("TOT", "GG", "RET")
#: The two lesion patterns that have their own texture (TOT is their union).
LESION_PATTERNS: tuple[str, ...] = ("GG", "RET")

#: Scores are multiples of this many percent.
SCORE_STEP: float = 5.0
SCORE_MIN: float = 0.0
SCORE_MAX: float = 100.0


def z_column(level: int) -> str:
    """Labels-table column of a level's world z in mm, e.g. ``z_column(3) == "L3_z_mm"``."""
    return f"L{level}_z_mm"


def score_column(level: int, pattern: str) -> str:
    """Labels-table column of one score, e.g. ``score_column(2, "GG") == "L2_GG"``."""
    return f"L{level}_{pattern}"


#: The five z columns of the labels table, L1 to L5.
Z_COLUMNS: tuple[str, ...] = tuple(z_column(k) for k in LEVELS)
#: The 15 score columns of the labels (and observers) table, level by level: L1_TOT, L1_GG, L1_RET, L2_TOT, ...
SCORE_COLUMNS: tuple[str, ...] = tuple(score_column(k, p) for k in LEVELS for p in PATTERNS)

_T = TypeVar("_T")


def _round_rule(x: _T, floor: Callable[[_T], _T], clip: Callable[[_T, float, float], _T]) -> _T:
    """The rounding rule ``clip(floor(x / 5 + 0.5) * 5, 0, 100)``, with the array library's floor and clip."""
    return clip(floor(x / SCORE_STEP + 0.5) * SCORE_STEP, SCORE_MIN, SCORE_MAX)


def round_to_5(x: npt.ArrayLike) -> np.ndarray:
    """Round percentages half up to a multiple of 5 and clip to [0, 100]; float64.

    >>> round_to_5([2.4, 2.5, 12.5, -3, 104]).tolist()
    [0.0, 5.0, 15.0, 0.0, 100.0]
    """
    return _round_rule(np.asarray(x, dtype=np.float64), np.floor, np.clip)


def round_to_5_torch(x: torch.Tensor) -> torch.Tensor:
    """Torch version of :func:`round_to_5`: the same rule, on the tensor's device and in its float dtype."""
    import torch

    return _round_rule(x, torch.floor, torch.clamp)
