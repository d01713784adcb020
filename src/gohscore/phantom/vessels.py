"""Tubes as capsules: branching lung vessel/airway trees and the stamping of capsules onto a slice."""

from __future__ import annotations

import numpy as np

from gohscore.phantom.anatomy import Anatomy, lung_region

# a capsule table has one row per segment: u0, v0, w0, u1, v1, w1, radius (mm, body frame)
Capsules = np.ndarray


def sample_lung_points(anat: Anatomy, rng: np.random.Generator, side: int, n: int) -> np.ndarray:
    """``n`` random points (u, v, w) inside one lung (side -1 = right, +1 = left)."""
    a = anat.cav_a
    lo = np.array([0 if side > 0 else -a, anat.cav_vc - anat.cav_b, anat.dome_l - anat.recess_mm])
    hi = np.array([a if side > 0 else 0, anat.cav_vc + anat.cav_b, anat.w_apex])
    points = np.empty((0, 3))
    for _ in range(8):
        cand = rng.uniform(lo, hi, size=(3 * n, 3))
        keep = lung_region(anat, cand[:, 0], cand[:, 1], cand[:, 2])
        points = np.vstack([points, cand[keep]])
        if len(points) >= n:
            break
    return points[:n]


def grow_tree(
    root: np.ndarray,
    points: np.ndarray,
    radius: float,
    rng: np.random.Generator,
    min_radius: float = 0.7,
    reach: float = 0.55,
) -> Capsules:
    """Grow a tree from ``root`` into a cloud of territory points by recursive halving.

    Each segment heads for the centroid of its territory; the territory is then split
    across its longest axis and each half feeds a child whose radius follows Murray's
    law (radius^3 proportional to territory size), so vessels thin towards the periphery.
    """
    rows: list[list[float]] = []
    stack = [(np.asarray(root, float), points, radius)]
    while stack:
        start, territory, r = stack.pop()
        if len(territory) == 0:
            continue
        centre = territory.mean(axis=0)
        step = reach if len(territory) > 3 else 1.0
        end = start + step * (centre - start) + rng.normal(0, 1.5, 3)
        rows.append([*start, *end, r])
        if len(territory) < 3 or r < min_radius:
            continue
        spread = territory - centre
        axis = np.linalg.svd(spread, full_matrices=False)[2][0]
        side = spread @ axis > 0
        for part in (territory[side], territory[~side]):
            child_r = r * (len(part) / len(territory)) ** (1 / 3)
            if child_r >= min_radius * 0.8:
                stack.append((end, part, child_r))
    return np.asarray(rows, float).reshape(-1, 7)


def capsule(p0: tuple[float, float, float], p1: tuple[float, float, float], r: float) -> list[float]:
    """One capsule row from two end points and a radius."""
    return [*p0, *p1, r]


def polyline(points: list[tuple[float, float, float]], r: float) -> list[list[float]]:
    """Capsule rows along a polyline of constant radius."""
    return [capsule(a, b, r) for a, b in zip(points[:-1], points[1:], strict=False)]


class CapsuleTable:
    """Per-capsule constants of one scanner-frame capsule table at one radius change, computed once per patient."""

    def __init__(self, caps: np.ndarray, grow: float = 0.0):
        caps = np.asarray(caps, float).reshape(-1, 7)
        r = caps[:, 6] + grow
        caps = caps[r > 0]
        self.caps = caps
        self.r = caps[:, 6] + grow
        self.r2 = (self.r * self.r).astype(np.float32)
        w0, w1 = caps[:, 2], caps[:, 5]
        self.w_lo = np.minimum(w0, w1) - self.r
        self.w_hi = np.maximum(w0, w1) + self.r
        d = caps[:, 3:6] - caps[:, 0:3]
        self.d = d
        length2 = (d * d).sum(axis=1)
        self.segment = length2 > 1e-9
        safe2 = np.where(self.segment, length2, 1.0)
        self.length2 = np.where(self.segment, length2, 0.0).astype(np.float32)
        self.ax = np.where(self.segment, d[:, 0] / safe2, 0.0).astype(np.float32)
        self.ay = np.where(self.segment, d[:, 1] / safe2, 0.0).astype(np.float32)
        self.az = np.where(self.segment, d[:, 2] / safe2, 0.0)
        self.x0 = caps[:, 0].astype(np.float32)
        self.y0 = caps[:, 1].astype(np.float32)

    def __len__(self) -> int:
        return len(self.caps)


class CapsuleStamper:
    """Paint capsules onto axial slices (or a rectangular region of them), all capsules of a slice at once.

    Capsules are moved once from the body frame into scanner millimetres (the in-plane
    rotation is an isometry, so distances are unchanged) and their per-capsule constants
    are kept in a ``CapsuleTable``. Per slice the bounding boxes of all capsules cutting it
    are computed together, the pixels of every box are gathered into one flat array and the
    distance test runs on that array in one go (no Python loop over capsules).
    """

    def __init__(self, anat: Anatomy, rows: slice | None = None, cols: slice | None = None):
        n = anat.matrix
        rows = rows if rows is not None else slice(0, n)
        cols = cols if cols is not None else slice(0, n)
        self.pixel_mm = anat.pixel_mm
        self.rotation = (float(np.cos(anat.rotation_rad)), float(np.sin(anat.rotation_rad)))
        self.centre = anat.body_xy_mm
        x0, y0, _ = anat.origin_xyz_mm
        self.x_mm = (x0 + np.arange(n) * anat.pixel_mm).astype(np.float32)[cols]
        self.y_mm = (y0 + np.arange(n) * anat.pixel_mm).astype(np.float32)[rows]
        self.shape = (len(self.y_mm), len(self.x_mm))
        self.origin = (x0 + cols.start * anat.pixel_mm, y0 + rows.start * anat.pixel_mm)

    def to_scanner(self, caps: Capsules) -> np.ndarray:
        """Capsule table with (u, v) replaced by scanner (x, y) in mm."""
        c, s = self.rotation
        xc, yc = self.centre
        out = caps.copy()
        for iu, iv in ((0, 1), (3, 4)):
            out[:, iu] = xc + c * caps[:, iu] - s * caps[:, iv]
            out[:, iv] = yc + s * caps[:, iu] + c * caps[:, iv]
        return out

    def pixels(self, table: CapsuleTable, w: float) -> np.ndarray:
        """Flat indices (into this stamper's rows x cols) of the pixels inside any capsule at height ``w``."""
        sel = np.flatnonzero((table.w_lo <= w) & (table.w_hi >= w))
        if len(sel) == 0:
            return np.empty(0, np.intp)
        c = table.caps[sel]
        r = table.r[sel]
        dw = table.d[sel, 2]
        steep = np.abs(dw) > 1e-6
        safe = np.where(steep, dw, 1.0)
        ta = np.where(steep, (w - r - c[:, 2]) / safe, 0.0)
        tb = np.where(steep, (w + r - c[:, 2]) / safe, 1.0)
        t_lo = np.clip(np.minimum(ta, tb), 0, 1)
        t_hi = np.clip(np.maximum(ta, tb), 0, 1)
        xa, xb = c[:, 0] + t_lo * (c[:, 3] - c[:, 0]), c[:, 0] + t_hi * (c[:, 3] - c[:, 0])
        ya, yb = c[:, 1] + t_lo * (c[:, 4] - c[:, 1]), c[:, 1] + t_hi * (c[:, 4] - c[:, 1])
        x0, y0 = self.origin
        p = self.pixel_mm
        n_rows, n_cols = self.shape
        j0 = np.maximum(np.floor((np.minimum(xa, xb) - r - x0) / p).astype(np.intp), 0)
        j1 = np.minimum(np.ceil((np.maximum(xa, xb) + r - x0) / p).astype(np.intp) + 1, n_cols)
        i0 = np.maximum(np.floor((np.minimum(ya, yb) - r - y0) / p).astype(np.intp), 0)
        i1 = np.minimum(np.ceil((np.maximum(ya, yb) + r - y0) / p).astype(np.intp) + 1, n_rows)
        height = np.maximum(i1 - i0, 0)
        width = np.maximum(j1 - j0, 0)
        count = height * width
        total = int(count.sum())
        if total == 0:
            return np.empty(0, np.intp)
        # pixel e of the gathered array belongs to capsule cap[e], at (row, col) inside its box
        cap = np.repeat(np.arange(len(sel)), count)
        local = np.arange(total) - np.repeat(np.cumsum(count) - count, count)
        width_e = width[cap]
        row = local // width_e
        col = local - row * width_e
        row += i0[cap]
        col += j0[cap]
        # distance^2 to the segment = |s|^2 + L^2 * tc * (tc - 2 q), q = s.d / L^2, tc = clip(q, 0, 1)
        ww = w - c[:, 2]
        sx = self.x_mm[col] - table.x0[sel][cap]
        sy = self.y_mm[row] - table.y0[sel][cap]
        s2 = sy * sy
        s2 += (ww * ww).astype(np.float32)[cap]
        s2 += sx * sx
        q = sy * table.ay[sel][cap]
        q += (ww * table.az[sel]).astype(np.float32)[cap]
        q += sx * table.ax[sel][cap]
        tc = np.minimum(np.maximum(q, 0), 1)
        q *= -2
        q += tc
        q *= tc
        q *= table.length2[sel][cap]
        s2 += q
        inside = s2 <= table.r2[sel][cap]
        return (row * n_cols + col)[inside]

    def paint(
        self,
        img: np.ndarray,
        table: CapsuleTable,
        w: float,
        value: float,
        only: np.ndarray | None = None,
        clear: np.ndarray | None = None,
    ) -> None:
        """Set ``img`` to ``value`` inside the table's capsules (only where ``only``; clear ``clear`` there)."""
        idx = self.pixels(table, w)
        if len(idx) == 0:
            return
        if only is not None:
            idx = idx[only.reshape(-1)[idx]]
        img.reshape(-1)[idx] = value
        if clear is not None:
            clear.reshape(-1)[idx] = False
