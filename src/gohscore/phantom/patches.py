"""Pure GG / pure RET texture patches cropped from diseased slices, as a user would crop them by hand."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from gohscore.goh import LESION_PATTERNS
from gohscore.phantom.render import SliceResult


def _window_sums(mask: np.ndarray, side: int) -> np.ndarray:
    """Number of True pixels in every ``side`` x ``side`` window (top-left anchored)."""
    c = np.pad(mask.astype(np.int32).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    return c[side:, side:] - c[:-side, side:] - c[side:, :-side] + c[:-side, :-side]


def crop_patches(
    render: Callable[[int], SliceResult],
    pure_area: np.ndarray,
    pixel_mm: float,
    n_per_pattern: int,
    rng: np.random.Generator,
) -> list[tuple[str, int, int, int, np.ndarray]]:
    """Up to ``n_per_pattern`` (pattern, slice, row, col, HU crop) per pattern, 24-48 mm square, pure inside the lung.

    ``pure_area[k]`` holds the pixel counts of GG-only and RET-only lung on slice ``k``;
    the slices with the most pure pattern are rendered again and searched for a window
    that is at least 97 % that pattern.
    """
    out = []
    for col, pattern in enumerate(LESION_PATTERNS):
        if n_per_pattern <= 0:
            break
        side = max(4, int(round(rng.uniform(24, 48) / pixel_mm)))
        order = np.argsort(-pure_area[:, col], kind="stable")
        candidates = [int(k) for k in order[: 4 * n_per_pattern] if pure_area[k, col] >= side * side]
        rng.shuffle(candidates)
        found = 0
        for k in candidates:
            res = render(k)
            pure = (res.gg & ~res.ret) if pattern == "GG" else (res.ret & ~res.gg)
            pure &= res.lung
            sums = _window_sums(pure, side)
            valid = np.argwhere(sums >= 0.97 * side * side)
            if len(valid) == 0:
                continue
            i, j = valid[rng.integers(len(valid))]
            out.append((pattern, k, int(i), int(j), res.hu[i : i + side, j : j + side].copy()))
            found += 1
            if found == n_per_pattern:
                break
    return out
