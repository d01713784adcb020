"""The threshold lung mask on a synthetic slice with two lungs, vessels, a trachea and noise."""

from __future__ import annotations

import numpy as np

from gohscore.scores.lungmask import lung_mask


def _ellipse(shape, cy, cx, ry, rx):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1


def synthetic_slice(size: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A chest slice (HU) and its true lung mask: body ellipse, two dark lungs with vessels, a trachea."""
    rng = np.random.default_rng(seed)
    s = size / 64
    img = np.full((size, size), -1000.0)
    img[_ellipse(img.shape, 32 * s, 32 * s, 24 * s, 30 * s)] = 40.0
    lungs = _ellipse(img.shape, 30 * s, 18 * s, 16 * s, 10 * s) | _ellipse(
        img.shape, 30 * s, 46 * s, 16 * s, 10 * s
    )
    img[lungs] = -860.0
    vessels = rng.random(img.shape) < 0.01
    img[lungs & vessels] = 30.0
    img[_ellipse(img.shape, 20 * s, 32 * s, 2 * s, 2 * s)] = -1000.0  # trachea
    return img + rng.normal(0, 20, img.shape), lungs


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice overlap of two boolean masks."""
    return 2 * float((a & b).sum()) / float(a.sum() + b.sum())


def test_lung_mask_matches_truth():
    for size in (64, 128):
        img, truth = synthetic_slice(size)
        mask = lung_mask(img)
        assert dice(mask, truth) > 0.9
        assert not mask[0, 0]  # outside air is not lung


def test_lung_mask_empty_without_lungs():
    img = np.full((32, 32), 40.0)
    assert not lung_mask(img).any()
