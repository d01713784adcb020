"""Sliding-window decoding: window starts and the median over windows."""

from __future__ import annotations

import numpy as np
import pytest

from gohscore.levels.decode import decode_windows, ensemble, spread_starts, window_starts


def test_window_starts_cover_the_volume() -> None:
    """Stride 4 over 256 with a 192 crop gives the paper's 17 windows, the last one flush with the top."""
    starts = window_starts(256, 192, 4)
    assert len(starts) == 17 and starts[0] == 0 and starts[-1] == 64
    assert window_starts(32, 24, 5).tolist() == [0, 5, 8]
    assert window_starts(24, 24, 4).tolist() == [0]
    assert spread_starts(256, 192, 5).tolist() == [0, 16, 32, 48, 64]
    with pytest.raises(ValueError):
        window_starts(20, 24, 4)


def test_decode_windows_median_with_offsets() -> None:
    """Each window's in-crop index is shifted by its start, then the median per level is taken."""
    starts = np.array([0, 4, 8, 12])
    # A perfect net: level at grid 30 and 10 -> in-crop 30 - s, 10 - s; one window is an outlier.
    per_window = np.array([[30.0, 10.0], [26.0, 6.0], [22.0, 2.0], [90.0, -50.0]])
    assert decode_windows(per_window, starts).tolist() == [30.0, 10.0]
    assert decode_windows(np.array([[1.0], [2.0], [10.0]]), np.array([0, 4, 8])).tolist() == [6.0]
    assert ensemble(np.array([[1.0, 5.0], [3.0, 7.0], [2.0, 100.0]])).tolist() == [2.0, 7.0]
