"""Cut the axial slices at the five levels and resize them to the score network's square input (in HU)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

log = logging.getLogger("gohscore")

AIR_HU = -1024.0


def level_offsets(slices_per_level: int) -> list[int]:
    """Offsets of the slices kept around a level, centred on it (3 -> [-1, 0, 1], 2 -> [-1, 0])."""
    if slices_per_level < 1:
        raise ValueError(f"slices_per_level must be at least 1, got {slices_per_level}")
    return list(range(-(slices_per_level // 2), slices_per_level - slices_per_level // 2))


def nearest_slice(k: float, n_slices: int) -> int:
    """The slice nearest to fractional index ``k`` (halves up), clamped to ``0..n_slices-1``."""
    return int(np.clip(np.floor(k + 0.5), 0, n_slices - 1))


def level_slice_indices(k: float, n_slices: int, slices_per_level: int) -> list[tuple[int, int]]:
    """``(offset, slice_index)`` pairs around the slice nearest ``k``; indices clamped at the scan ends."""
    centre = nearest_slice(k, n_slices)
    return [(off, int(np.clip(centre + off, 0, n_slices - 1))) for off in level_offsets(slices_per_level)]


def resize_square(
    slices_yx: np.ndarray, spacing_yx_mm: Sequence[float], size: int, fill: float = AIR_HU
) -> tuple[np.ndarray, float]:
    """Pad ``(n, y, x)`` HU slices with air (``fill``) to a square field of view, resize to ``size``² (antialiased).

    Returns the float32 slices and their new (isotropic) pixel spacing in mm.

    >>> out, mm = resize_square(np.full((1, 4, 8), -800.0), (1.0, 0.5), 2)
    >>> out.shape, mm
    ((1, 2, 2), 2.0)
    """
    arr = np.asarray(slices_yx, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[None]
    ny, nx = arr.shape[-2:]
    py, px, top, left = square_box((ny, nx), spacing_yx_mm)
    fov = max(ny * float(spacing_yx_mm[0]), nx * float(spacing_yx_mm[1]))
    padded = np.full((arr.shape[0], py, px), fill, dtype=np.float32)
    padded[:, top : top + ny, left : left + nx] = arr
    t = torch.from_numpy(padded)[:, None]
    if (py, px) != (size, size):
        down = py > size or px > size
        t = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False, antialias=down)
    return t[:, 0].numpy(), fov / size


def square_box(shape_yx: Sequence[int], spacing_yx_mm: Sequence[float]) -> tuple[int, int, int, int]:
    """``(padded_y, padded_x, top, left)``: the square field of view :func:`resize_square` pads a slice to."""
    ny, nx = (int(v) for v in shape_yx)
    sy, sx = (float(s) for s in spacing_yx_mm)
    fov = max(ny * sy, nx * sx)
    py, px = max(ny, round(fov / sy)), max(nx, round(fov / sx))
    return py, px, (py - ny) // 2, (px - nx) // 2


def unsquare(maps: np.ndarray, shape_yx: Sequence[int], spacing_yx_mm: Sequence[float]) -> np.ndarray:
    """Maps on the network's square input grid, ``(n, size, size)``, back onto the original slice grid.

    The inverse of :func:`resize_square`'s geometry: resize (bilinear) to the padded square, then
    cut the padding away. Returns ``(n, *shape_yx)`` float32.

    >>> unsquare(np.ones((1, 2, 2)), (4, 8), (1.0, 0.5)).shape
    (1, 4, 8)
    """
    py, px, top, left = square_box(shape_yx, spacing_yx_mm)
    t = torch.from_numpy(np.asarray(maps, dtype=np.float32))[:, None]
    if t.shape[-2:] != (py, px):
        t = F.interpolate(t, size=(py, px), mode="bilinear", align_corners=False)
    ny, nx = (int(v) for v in shape_yx)
    return t[:, 0, top : top + ny, left : left + nx].numpy()


def to_int16(slices_hu: np.ndarray) -> np.ndarray:
    """Round HU to the nearest integer and store as int16 (clipped to its range)."""
    return np.clip(np.rint(slices_hu), -32768, 32767).astype(np.int16)


def extract_levels(
    volume_zyx: np.ndarray,
    spacing_xyz_mm: Sequence[float],
    level_k: Sequence[float],
    slices_per_level: int,
    size: int,
) -> tuple[np.ndarray, list[dict], float]:
    """Slices around each level's fractional slice index ``level_k`` (from the bottom), resized to ``size``².

    Returns the int16 stack ``(len(level_k) * slices_per_level, size, size)``, one dict per row
    (``level`` 1.., ``offset``, ``row``, ``slice_index``) and the pixel spacing in mm.
    """
    n = volume_zyx.shape[0]
    rows: list[dict] = []
    picks: list[int] = []
    for level, k in enumerate(level_k, start=1):
        if not np.isfinite(k):
            raise ValueError(f"level {level}: slice position is not finite ({k})")
        if k < -0.5 or k > n - 0.5:
            log.warning(
                "level %d lies outside the scan (slice %.1f of %d); using the nearest end slice", level, k, n
            )
        for offset, index in level_slice_indices(float(k), n, slices_per_level):
            rows.append({"level": level, "offset": offset, "row": len(picks), "slice_index": index})
            picks.append(index)
    resized, pixel_mm = resize_square(volume_zyx[picks], (spacing_xyz_mm[1], spacing_xyz_mm[0]), size)
    return to_int16(resized), rows, pixel_mm
