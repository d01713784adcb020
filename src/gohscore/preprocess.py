"""Resample an LPS volume to the network grid (isotropic, anti-aliased, cropped/padded) and map z both ways.

Everything here is pure: arrays and geometry in, arrays and numbers out. The grid is
axis-aligned (identity direction); voxel ``(i, j, k)`` (x, y, z) of the grid sits at
``grid_origin_xyz_mm + spacing * (i, j, k)``. Array order is zyx, index z = 0 at the bottom.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
from scipy import ndimage

log = logging.getLogger("gohscore")

PAD_HU = -1024
#: body: anything denser than this (HU); lung air: anything lighter than AIR_HU inside the body
BODY_HU = -500.0
AIR_HU = -400.0
#: voxel size (mm) of the coarse copy used to find the body and the lungs
COARSE_MM = 4.0


def antialias_sigma(in_spacing_mm: float, out_spacing_mm: float) -> float:
    """Gaussian sigma in input voxels before downsampling by ``out/in`` (0 when not downsampling)."""
    return max(0.0, (out_spacing_mm / in_spacing_mm - 1.0) / 2.0)


def axis_weights(
    n_in: int, in_spacing: float, in_origin: float, n_out: int, out_spacing: float, out_origin: float
) -> np.ndarray:
    """Weights (n_out x n_in) of one axis: Gaussian anti-aliasing then linear interpolation.

    Outputs that fall outside the input get weight 0 (they become the pad value); the
    Gaussian repeats the edge voxel.
    """
    sigma = antialias_sigma(in_spacing, out_spacing)
    smooth = np.eye(n_in)
    if sigma > 0:
        radius = max(1, int(np.ceil(3 * sigma)))
        offsets = np.arange(-radius, radius + 1)
        kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
        kernel /= kernel.sum()
        smooth = np.zeros((n_in, n_in))
        rows = np.arange(n_in)
        for off, w in zip(offsets, kernel, strict=True):
            np.add.at(smooth, (rows, np.clip(rows + off, 0, n_in - 1)), w)
    pos = (out_origin + out_spacing * np.arange(n_out) - in_origin) / in_spacing
    lo = np.floor(pos).astype(int)
    frac = pos - lo
    interp = np.zeros((n_out, n_in))
    for idx, w in ((lo, 1.0 - frac), (lo + 1, frac)):
        ok = (idx >= 0) & (idx < n_in)
        np.add.at(interp, (np.flatnonzero(ok), idx[ok]), w[ok])
    # points within half a voxel outside the first/last sample take the edge value
    edge = ((pos > -0.5) & (pos < 0)) | ((pos > n_in - 1) & (pos < n_in - 0.5))
    for i in np.flatnonzero(edge):
        interp[i] = 0.0
        interp[i, int(np.clip(np.rint(pos[i]), 0, n_in - 1))] = 1.0
    return (interp @ smooth).astype(np.float32)


def _blocks(weights: np.ndarray, block: int = 16) -> list[tuple[int, int, int, int, np.ndarray]]:
    """Split a banded weight matrix into row blocks with their nonzero column range."""
    out = []
    for i0 in range(0, weights.shape[0], block):
        rows = weights[i0 : i0 + block]
        nz = np.flatnonzero(np.any(rows != 0, axis=0))
        if nz.size:
            out.append(
                (
                    i0,
                    i0 + rows.shape[0],
                    int(nz[0]),
                    int(nz[-1]) + 1,
                    np.ascontiguousarray(rows[:, nz[0] : nz[-1] + 1]),
                )
            )
    return out


def resample_to_grid(
    array_zyx: np.ndarray,
    spacing_xyz_mm: tuple[float, float, float] | list[float],
    origin_xyz_mm: tuple[float, float, float] | list[float],
    grid_origin_xyz_mm: tuple[float, float, float] | list[float] | np.ndarray,
    grid_spacing_mm: float,
    grid_shape: int,
    pad_hu: float = PAD_HU,
    slab: int = 16,
) -> np.ndarray:
    """Resample an axis-aligned LPS volume onto the ``grid_shape``^3 grid; returns int16 zyx.

    Separable: per axis a Gaussian (sigma from :func:`antialias_sigma`) composed with linear
    interpolation, applied as blocked matrix products, in-plane first slab by slab, then z.
    """
    nz_in, ny_in, nx_in = array_zyx.shape
    wx = axis_weights(
        nx_in, spacing_xyz_mm[0], origin_xyz_mm[0], grid_shape, grid_spacing_mm, grid_origin_xyz_mm[0]
    )
    wy = axis_weights(
        ny_in, spacing_xyz_mm[1], origin_xyz_mm[1], grid_shape, grid_spacing_mm, grid_origin_xyz_mm[1]
    )
    wz = axis_weights(
        nz_in, spacing_xyz_mm[2], origin_xyz_mm[2], grid_shape, grid_spacing_mm, grid_origin_xyz_mm[2]
    )
    bx, by, bz = _blocks(wx), _blocks(wy), _blocks(wz)
    out = np.zeros((grid_shape, grid_shape * grid_shape), np.float32)
    needed = np.flatnonzero(np.any(wz != 0, axis=0))
    if needed.size and by and bx:
        z_lo, z_hi = int(needed[0]), int(needed[-1]) + 1
        y_lo, y_hi = by[0][2], by[-1][3]
        x_lo, x_hi = bx[0][2], bx[-1][3]
        inplane = np.zeros((z_hi - z_lo, grid_shape, grid_shape), np.float32)
        for z0 in range(z_lo, z_hi, slab):
            z1 = min(z0 + slab, z_hi)
            # shift so that the pad value is 0: zero weights outside the scan then mean "pad"
            block = np.empty((z1 - z0, y_hi - y_lo, x_hi - x_lo), np.float32)
            np.subtract(array_zyx[z0:z1, y_lo:y_hi, x_lo:x_hi], pad_hu, out=block, casting="unsafe")
            tmp = np.zeros((z1 - z0, grid_shape, x_hi - x_lo), np.float32)
            for i0, i1, j0, j1, w in by:
                tmp[:, i0:i1, :] = np.matmul(w, block[:, j0 - y_lo : j1 - y_lo, :])
            dest = inplane[z0 - z_lo : z1 - z_lo]
            for i0, i1, j0, j1, w in bx:
                dest[:, :, i0:i1] = tmp[:, :, j0 - x_lo : j1 - x_lo] @ w.T
        flat = inplane.reshape(z_hi - z_lo, -1)
        for i0, i1, j0, j1, w in bz:
            out[i0:i1] = w @ flat[j0 - z_lo : j1 - z_lo]
    out += pad_hu
    np.rint(out, out=out)
    np.clip(out, -32768, 32767, out=out)
    return out.astype(np.int16).reshape(grid_shape, grid_shape, grid_shape)


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
