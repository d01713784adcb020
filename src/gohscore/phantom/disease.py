"""SSc-ILD (NSIP-like) ground glass and reticulation from smooth 3D random fields.

Three coarse fields decide where disease is (extent ``D``), where it is ground glass
(``G``) and where reticulation (``R``); a fourth, finer band-pass field ``H`` draws the
reticular lines along its zero crossings, which close into 1-2.5 cm cells. Fields live on
coarse grids in scanner coordinates and are linearly upsampled per slice, so the disease
is coherent in 3D. Biases make it basal, peripheral and posterior.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from gohscore.phantom.anatomy import Anatomy


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
        pad = 2 * corr_mm
        self.y0, self.x0, self.z0 = rows_mm[0] - pad, cols_mm[0] - pad, z_range_mm[0] - pad
        ny = int((rows_mm[-1] + pad - self.y0) / step_xy) + 2
        nx = int((cols_mm[-1] + pad - self.x0) / step_xy) + 2
        nz = int((z_range_mm[1] + pad - self.z0) / step_z) + 2
        self.step_z, self.nz = step_z, nz
        sigma = (corr_mm / step_z, corr_mm / step_xy, corr_mm / step_xy)
        self.fields = []
        for _ in range(count):
            noise = rng.standard_normal((nz, ny, nx), dtype=np.float32)
            smooth = ndimage.gaussian_filter(noise, sigma, mode="wrap", truncate=3.0)
            smooth /= max(float(smooth.std()), 1e-6)
            self.fields.append(smooth)
        self.iy, self.fy = _interp_index(rows_mm, self.y0, step_xy, ny)
        self.ix, self.fx = _interp_index(cols_mm, self.x0, step_xy, nx)
        self.fy = self.fy[:, None]

    def at(self, z_mm: float) -> list[np.ndarray]:
        """Every field on the fine (rows, cols) grid at world height ``z_mm``."""
        pos = float(np.clip((z_mm - self.z0) / self.step_z, 0, self.nz - 1 - 1e-6))
        lo = int(pos)
        f = np.float32(pos - lo)
        out = []
        for field in self.fields:
            plane = (1 - f) * field[lo] + f * field[lo + 1]
            rows = plane[self.iy] * (1 - self.fy) + plane[self.iy + 1] * self.fy
            out.append(rows[:, self.ix] * (1 - self.fx) + rows[:, self.ix + 1] * self.fx)
        return out


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
        s = anat.severity
        self.offset = -4.4 + 6.5 * s
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
        self, w: float, z_mm: float, periph: np.ndarray, post: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(GG amount 0..1, RET amount 0..1, line strength 0..1, GG mask, RET mask) on the fine grid."""
        f_d, f_g, f_r = self.coarse.at(z_mm)
        (f_h,) = self.fine.at(z_mm)
        basal = self.basal(w)
        d = f_d + (self.offset + 2.2 * basal) + 1.5 * (periph - 0.6) + 0.9 * post
        g = f_g + self.g_bias
        r = f_r + self.r_bias + 0.9 * basal + 0.6 * (periph - 0.6)
        eps = 0.3
        soft_d = np.clip(0.5 + d / eps, 0, 1)
        gg_amount = np.minimum(soft_d, np.clip(0.5 + g / eps, 0, 1))
        ret_amount = np.minimum(soft_d, np.clip(0.5 + r / eps, 0, 1))
        lines = np.clip(1 - np.abs(f_h) / self.line_width, 0, 1)
        return gg_amount, ret_amount, lines, (d > 0) & (g > 0), (d > 0) & (r > 0)
