"""Goh scores are multiples of 5, rounded half up, between 0 and 100."""

from __future__ import annotations

import numpy as np
import torch

SCORES: tuple[str, str, str] = ("TOT", "GG", "RET")
SCORE_STEP = 5.0  # scores are multiples of this


def round_half_up_5(x: np.ndarray | float) -> np.ndarray:
    """Round percentages to the nearest 5, halves up (``5*floor(x/5+0.5)``: 2.5 -> 5, 7.5 -> 10, 12.4 -> 10)."""
    return SCORE_STEP * np.floor(np.asarray(x, dtype=np.float64) / SCORE_STEP + 0.5)


def round_score(x: np.ndarray | float) -> np.ndarray:
    """Round half up to a multiple of 5 and clip to [0, 100]."""
    return np.clip(round_half_up_5(x), 0.0, 100.0)


def round_score_torch(x: torch.Tensor) -> torch.Tensor:
    """Torch twin of :func:`round_score` (same formula, stays on the tensor's device)."""
    return torch.clamp(SCORE_STEP * torch.floor(x / SCORE_STEP + 0.5), 0.0, 100.0)
