"""Geometry of the network grid: where to centre it on a scan, and world z <-> grid/original slices.

The resampler itself is in :mod:`gohscore.resample`. Everything here is pure: arrays and
geometry in, arrays and numbers out. The grid is
axis-aligned (identity direction); voxel ``(i, j, k)`` (x, y, z) of the grid sits at
``grid_origin_xyz_mm + spacing * (i, j, k)``. Array order is zyx, index z = 0 at the bottom.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
from scipy import ndimage

log = logging.getLogger("gohscore")

#: body: anything denser than this (HU); lung air: anything lighter than AIR_HU inside the body
BODY_HU = -500.0
AIR_HU = -400.0
#: voxel size (mm) of the coarse copy used to find the body and the lungs
COARSE_MM = 4.0


def _largest_components(mask: np.ndarray, keep_fraction: float) -> np.ndarray:
    """Keep the connected components of ``mask`` at least ``keep_fraction`` of the largest one."""
    labels, n = ndimage.label(mask)
    if n == 0:
        return mask
    sizes = np.bincount(labels.ravel())[1:]
    keep = np.flatnonzero(sizes >= keep_fraction * sizes.max()) + 1
    return np.isin(labels, keep)


def find_grid_centre(
    array_zyx: np.ndarray,
    spacing_xyz_mm: list[float] | tuple[float, ...],
    origin_xyz_mm: list[float] | tuple[float, ...],
) -> tuple[np.ndarray, bool]:
    """World centre (xyz, mm) for the grid: in-plane the body's box centre, in z the lungs' centre.

    Works on a coarse (about 4 mm) copy. Returns the centre and whether lungs were found
    (if not, z falls back to the scan's centre).
    """
    spacing = np.asarray(spacing_xyz_mm, float)
    origin = np.asarray(origin_xyz_mm, float)
    size_xyz = np.asarray(array_zyx.shape[::-1])
    step = np.maximum(1, np.round(COARSE_MM / spacing).astype(int))
    coarse = np.asarray(array_zyx[:: step[2], :: step[1], :: step[0]])
    scan_centre = origin + spacing * (size_xyz - 1) / 2
    body = _largest_components(coarse > BODY_HU, 1.0)
    if not body.any():
        return scan_centre, False
    zz, yy, xx = np.nonzero(body)
    centre = scan_centre.copy()
    centre[0] = origin[0] + spacing[0] * step[0] * (xx.min() + xx.max()) / 2
    centre[1] = origin[1] + spacing[1] * step[1] * (yy.min() + yy.max()) / 2
    plane = np.zeros((3, 3, 3), bool)
    plane[1] = ndimage.generate_binary_structure(2, 1)
    inside = ndimage.binary_fill_holes(body, structure=plane)
    lungs = inside & (coarse < AIR_HU) & ~body
    min_voxels = max(8, int(20_000 / np.prod(spacing * step)))  # about 20 ml
    if lungs.sum() < min_voxels:
        return centre, False
    lungs = _largest_components(lungs, 0.25)
    zs = np.flatnonzero(lungs.any(axis=(1, 2)))
    centre[2] = origin[2] + spacing[2] * step[2] * (zs.min() + zs.max()) / 2
    return centre, True


def grid_origin(centre_xyz_mm: np.ndarray, spacing_mm: float, shape: int) -> np.ndarray:
    """Origin (voxel 0,0,0) of a ``shape``^3 grid of ``spacing_mm`` centred on ``centre_xyz_mm``."""
    return np.asarray(centre_xyz_mm, float) - spacing_mm * (shape - 1) / 2


def grid_index_to_world_z(index: float | np.ndarray, geom: Mapping) -> float | np.ndarray:
    """World z (mm) of a (fractional) grid slice index."""
    return geom["grid_origin_xyz_mm"][2] + geom["grid_spacing_mm"] * np.asarray(index, float)


def world_z_to_grid_index(z_mm: float | np.ndarray, geom: Mapping) -> float | np.ndarray:
    """Fractional grid slice index of a world z (mm)."""
    return (np.asarray(z_mm, float) - geom["grid_origin_xyz_mm"][2]) / geom["grid_spacing_mm"]


def _lps_z_spacing(geom: Mapping) -> float:
    """Slice spacing of the LPS-oriented original scan."""
    if "lps_spacing_xyz_mm" in geom:
        return float(geom["lps_spacing_xyz_mm"][2])
    return float(geom["spacing_xyz_mm"][2])


def world_z_to_original_slice(z_mm: float | np.ndarray, geom: Mapping) -> float | np.ndarray:
    """Fractional slice number (from the bottom, 0-based) of world z in the LPS-oriented original."""
    return (np.asarray(z_mm, float) - geom["lps_origin_xyz_mm"][2]) / _lps_z_spacing(geom)


def original_slice_to_world_z(k: float | np.ndarray, geom: Mapping) -> float | np.ndarray:
    """World z (mm) of a (fractional) slice number of the LPS-oriented original (0 = bottom)."""
    return geom["lps_origin_xyz_mm"][2] + _lps_z_spacing(geom) * np.asarray(k, float)


def original_z_range(geom: Mapping) -> tuple[float, float]:
    """World z (mm) of the bottom and top slice centres of the original scan."""
    bottom = float(original_slice_to_world_z(0, geom))
    top = float(original_slice_to_world_z(geom["lps_size_xyz"][2] - 1, geom))
    return bottom, top
