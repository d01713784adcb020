"""SSc-ILD (NSIP-like) ground glass and reticulation from smooth 3D random fields.

Three coarse fields decide where disease is (extent ``D``), where it is ground glass
(``G``) and where reticulation (``R``); a fourth, finer band-pass field ``H`` draws the
reticular lines along its zero crossings, which close into 1-2.5 cm cells. Fields live on
coarse grids in scanner coordinates and are linearly upsampled per slice, so the disease
is coherent in 3D. Biases make it basal, peripheral and posterior.
"""

from __future__ import annotations

import copy

import numpy as np

from gohscore.phantom.anatomy import Anatomy


def gaussian_wrap(field: np.ndarray, sigma: tuple[float, ...], truncate: float = 4.0) -> np.ndarray:
    """Gaussian smoothing with periodic edges, as float32 (``scipy.ndimage.gaussian_filter(mode="wrap")``).

    Separable: per axis the truncated, normalised kernel is applied to the periodically padded
    array as a sum of shifted views (the kernels here have at most 13 taps), in float32.
    Keeps scipy out of the phantom's imports.
    """
    out = np.asarray(field, np.float32)
    for axis, s in enumerate(sigma):
        if s <= 1e-15:
            continue
        radius = int(truncate * float(s) + 0.5)
        x = np.arange(-radius, radius + 1)
        kernel = np.exp(-0.5 * (x / float(s)) ** 2)
        kernel = (kernel / kernel.sum()).astype(np.float32)
        pad = [(0, 0)] * out.ndim
        pad[axis] = (radius, radius)
        padded = np.pad(out, pad, mode="wrap")
        n = out.shape[axis]
        view = [slice(None)] * out.ndim
        acc = None
        for i, weight in enumerate(kernel):
            view[axis] = slice(i, i + n)
            term = weight * padded[tuple(view)]
            if acc is None:
                acc = term
            else:
                acc += term
        out = acc
    return out


def _interp_index(
    coords_mm: np.ndarray, start_mm: float, step_mm: float, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Lower grid index and fractional weight of each fine coordinate on a coarse 1D grid."""
    pos = np.clip((coords_mm - start_mm) / step_mm, 0, n - 1 - 1e-6)
    lo = np.floor(pos).astype(np.intp)
    return lo, (pos - lo).astype(np.float32)


class _CoarseField:
    """A smooth Gaussian random field with unit SD on a coarse grid, upsampled on demand."""

    def __init__(
        self,
        rng: np.random.Generator,
        rows_mm: np.ndarray,
        cols_mm: np.ndarray,
        z_range_mm: tuple[float, float],
        step_mm: tuple[float, float],
        corr_mm: float,
        count: int,
    ):
        step_xy, step_z = step_mm
        self.step_xy = step_xy
        pad = 2 * corr_mm
        self.y0, self.x0, self.z0 = rows_mm[0] - pad, cols_mm[0] - pad, z_range_mm[0] - pad
        ny = int((rows_mm[-1] + pad - self.y0) / step_xy) + 2
        nx = int((cols_mm[-1] + pad - self.x0) / step_xy) + 2
        nz = int((z_range_mm[1] + pad - self.z0) / step_z) + 2
        self.step_z, self.nz = step_z, nz
        sigma = (corr_mm / step_z, corr_mm / step_xy, corr_mm / step_xy)
        fields = []
        for _ in range(count):
            noise = rng.standard_normal((nz, ny, nx), dtype=np.float32)
            smooth = gaussian_wrap(noise, sigma, truncate=3.0)
            smooth /= max(float(smooth.std()), 1e-6)
            fields.append(smooth)
        self.fields = np.stack(fields, axis=1)  # (nz, count, ny, nx): one height holds every field
        self.iy, self.fy = _interp_index(rows_mm, self.y0, step_xy, ny)
        self.ix, self.fx = _interp_index(cols_mm, self.x0, step_xy, nx)
        self.fy = self.fy[:, None]

    def resampled(self, rows_mm: np.ndarray, cols_mm: np.ndarray) -> _CoarseField:
        """The same fields, upsampled onto another fine (rows, cols) grid given in this field's coordinates."""
        out = copy.copy(self)
        out.iy, out.fy = _interp_index(rows_mm, self.y0, self.step_xy, self.fields.shape[2])
        out.ix, out.fx = _interp_index(cols_mm, self.x0, self.step_xy, self.fields.shape[3])
        out.fy = out.fy[:, None]
        return out

    def at(self, z_mm: float, rows: slice = slice(None), cols: slice = slice(None)) -> list[np.ndarray]:
        """Every field on the fine (rows, cols) grid at world height ``z_mm`` (optionally a sub-block of it)."""
        pos = float(np.clip((z_mm - self.z0) / self.step_z, 0, self.nz - 1 - 1e-6))
        lo = int(pos)
        f = np.float32(pos - lo)
        iy, fy = self.iy[rows], self.fy[rows]
        ix, fx = self.ix[cols], self.fx[cols]
        # only the coarse rows and columns the block needs
        y_lo, y_hi = int(iy[0]), int(iy[-1]) + 2
        x_lo, x_hi = int(ix[0]), int(ix[-1]) + 2
        iy, ix = iy - y_lo, ix - x_lo
        below = self.fields[lo, :, y_lo:y_hi, x_lo:x_hi]
        above = self.fields[lo + 1, :, y_lo:y_hi, x_lo:x_hi]
        plane = below + f * (above - below)
        # columns first (on the few coarse rows), then whole fine rows
        left, right = plane[:, :, ix], plane[:, :, ix + 1]
        cols_ = left + fx * (right - left)
        top, bottom = cols_[:, iy], cols_[:, iy + 1]
        bottom -= top
        bottom *= fy
        bottom += top
        return list(bottom)


def severity_offset(severity: float) -> float:
    """The shift of the extent field for a severity in 0..1: the larger, the more lung is diseased."""
    return -4.4 + 6.5 * severity


class Disease:
    """One patient's disease: soft pattern amounts for rendering and hard masks for labels."""

    def __init__(self, anat: Anatomy, rng: np.random.Generator, rows_mm: np.ndarray, cols_mm: np.ndarray):
        self.anat = anat
        z_lo = float(anat.slice_z(0))
        z_hi = float(anat.slice_z(anat.n_slices - 1))
        self.coarse = _CoarseField(rng, rows_mm, cols_mm, (z_lo, z_hi), (6.0, 6.0), 11.0, 3)
        fine_step = max(2.2, 0.8 * anat.pixel_mm)
        self.fine = _CoarseField(
            rng, rows_mm, cols_mm, (z_lo, z_hi), (fine_step, max(2.6, fine_step)), 4.2, 1
        )
        self.offset = severity_offset(anat.severity)
        self.g_bias = 2.6 * (anat.gg_share - 0.5) + 0.9
        self.r_bias = 2.6 * (0.5 - anat.gg_share) + 0.1
        self.gg_hu = float(rng.uniform(-680, -480))
        self.ret_hu = float(rng.uniform(-180, 20))
        self.line_width = float(rng.uniform(0.16, 0.26))

    def basal(self, w: float) -> float:
        """0 at the apex, 1 at the right dome (and a little more below)."""
        anat = self.anat
        return float(np.clip((anat.w_apex - w) / (anat.w_apex - anat.dome_r), 0, 1.15))

    def slice(
        self,
        w: float,
        z_mm: float,
        periph: np.ndarray,
        post: np.ndarray,
        rows: slice = slice(None),
        cols: slice = slice(None),
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(GG amount 0..1, RET amount 0..1, line strength 0..1, GG mask, RET mask) on the fine grid.

        ``periph`` and ``post`` cover the fine grid; ``rows`` and ``cols`` pick the block to compute.
        """
        f_d, f_g, f_r = self.coarse.at(z_mm, rows, cols)
        (f_h,) = self.fine.at(z_mm, rows, cols)
        periph, post = periph[rows, cols], post[rows, cols]
        basal = self.basal(w)
        # d = f_d + offset + 2.2 basal + 1.5 (periph - 0.6) + 0.9 post; g = f_g + g bias;
        # r = f_r + r bias + 0.9 basal + 0.6 (periph - 0.6); all in place on the upsampled fields
        d, g, r = f_d, f_g, f_r
        d += 1.5 * periph
        d += 0.9 * post
        d += self.offset + 2.2 * basal - 0.9
        g += self.g_bias
        r += 0.6 * periph
        r += self.r_bias + 0.9 * basal - 0.36
        diseased = d > 0
        gg_mask = g > 0
        gg_mask &= diseased
        ret_mask = r > 0
        ret_mask &= diseased
        eps = 0.3
        for x in (d, g, r):  # soft versions, 0.5 at the boundary; d's is clipped to 0..1
            x *= 1 / eps
            x += 0.5
        np.clip(d, 0, 1, out=d)
        gg_amount = np.maximum(np.minimum(d, g, out=g), 0, out=g)
        ret_amount = np.maximum(np.minimum(d, r, out=r), 0, out=r)
        lines = np.abs(f_h, out=f_h)
        lines *= -1 / self.line_width
        lines += 1
        np.clip(lines, 0, 1, out=lines)
        return gg_amount, ret_amount, lines, gg_mask, ret_mask
