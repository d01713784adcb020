"""Resample one scan onto the network grid with a hand-written separable resampler.

Why not SimpleITK: per axis, the Gaussian anti-aliasing and the linear interpolation are
composed into one banded weight matrix, so each axis is one pass of matrix products instead of
smoothing the whole volume and then resampling it. The whole ``gohscore resample`` command on a
512x512x598 NIfTI takes 4.95 s this way against 6.2 s with ``sitk.SmoothingRecursiveGaussian``
(or ``DiscreteGaussian``) then ``sitk.Resample``. It agrees with that reference: on the
synthetic chest of tests/test_resample.py (0.7x0.7x2.5 mm to 1.2 mm, SimpleITK's recursive
Gaussian with the same sigma, then linear resampling) the two differ inside the body by
0.35 HU on average and 1.9 HU at the 99th percentile (at most 3.5 HU; the int16 rounding alone
is 0.25 HU). That test is the comparison, and it fails if the smoothing or the grid drifts.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from gohscore import io, preprocess

log = logging.getLogger("gohscore")

#: HU of grid voxels outside the scan
PAD_HU = -1024


def antialias_sigma(in_spacing_mm: float, out_spacing_mm: float) -> float:
    """Gaussian sigma in input voxels before downsampling by ``out/in`` (0 when not downsampling).

    >>> antialias_sigma(0.6, 1.2), antialias_sigma(2.5, 1.2)
    (0.5, 0.0)
    """
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


def resample_scan(path: str | Path, patient: str, spacing_mm: float, shape: int) -> tuple[np.ndarray, dict]:
    """Read and check one scan, resample it to the ``shape``^3 grid; return the int16 volume and its geometry."""
    volume, geometry, _ = resample_read_scan(io.read_scan(path), patient, spacing_mm, shape)
    return volume, geometry


def resample_read_scan(
    scan: io.Scan, patient: str, spacing_mm: float, shape: int
) -> tuple[np.ndarray, dict, np.ndarray]:
    """:func:`resample_scan` on a scan already read; also returns the LPS-oriented original array (zyx)."""
    path = scan.path
    image = scan.image
    lps = io.lps_geometry(image)
    array = io.lps_array(image)
    p01, p50, p99 = io.hu_percentiles(array)
    io.check_hu(p01, p99, path)
    centre, found = preprocess.find_grid_centre(array, lps["lps_spacing_xyz_mm"], lps["lps_origin_xyz_mm"])
    if not found:
        log.warning("%s: no lungs found in %s; centring the grid on the scan's middle in z", patient, path)
    origin = preprocess.grid_origin(centre, spacing_mm, shape)
    volume = resample_to_grid(
        array, lps["lps_spacing_xyz_mm"], lps["lps_origin_xyz_mm"], origin, spacing_mm, shape
    )
    geometry = {
        "patient": str(patient),
        "path": str(path),
        "format": scan.format,
        "series_uid": scan.series_uid,
        "size_xyz": [int(v) for v in image.GetSize()],
        "spacing_xyz_mm": [float(v) for v in image.GetSpacing()],
        "origin_xyz_mm": [float(v) for v in image.GetOrigin()],
        "direction": [float(v) for v in image.GetDirection()],
        **lps,
        "grid_origin_xyz_mm": [float(v) for v in origin],
        "grid_spacing_mm": float(spacing_mm),
        "grid_shape": int(shape),
        "lungs_found": bool(found),
        "hu_p01": p01,
        "hu_p50": p50,
        "hu_p99": p99,
        "sha256": io.sha256_files(scan.files),
    }
    return volume, geometry, array
