"""Sliding-window decoding: crop starts along z and the per-level median of the windows' predictions."""

from __future__ import annotations

import numpy as np


def window_starts(side: int, crop_z: int, stride: int) -> np.ndarray:
    """Starts ``0, stride, 2*stride, ...`` of ``crop_z``-slice windows over ``side`` slices, always ending at the top.

    >>> window_starts(256, 192, 4)[[0, 1, -1]].tolist(), len(window_starts(256, 192, 4))
    ([0, 4, 64], 17)
    >>> window_starts(256, 192, 48).tolist()
    [0, 48, 64]
    """
    if crop_z > side:
        raise ValueError(f"crop of {crop_z} slices does not fit in {side} slices")
    if stride < 1:
        raise ValueError(f"stride must be at least 1, got {stride}")
    last = side - crop_z
    starts = list(range(0, last + 1, stride))
    if starts[-1] != last:
        starts.append(last)
    return np.asarray(starts, dtype=np.int64)


def spread_starts(side: int, crop_z: int, n: int) -> np.ndarray:
    """``n`` (or fewer) evenly spaced window starts covering the whole range (a cheap validation pass)."""
    last = side - crop_z
    return np.unique(np.round(np.linspace(0, last, max(1, n))).astype(np.int64))


def decode_windows(indices_in_crop: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Per-level median over windows of the grid index (window start + index inside the window).

    ``indices_in_crop`` is ``(windows, levels)``; the result is ``(levels,)``.

    >>> decode_windows(np.array([[10.0, 5.0], [7.0, 2.0], [3.0, -1.0]]), np.array([0, 4, 8]))
    array([11.,  6.])
    """
    grid = np.asarray(indices_in_crop, dtype=np.float64) + np.asarray(starts, dtype=np.float64)[:, None]
    return np.median(grid, axis=0)


def ensemble(per_model: np.ndarray) -> np.ndarray:
    """Median across models (``(models, levels)`` -> ``(levels,)``) of each model's decoded levels."""
    return np.median(np.asarray(per_model, dtype=np.float64), axis=0)
