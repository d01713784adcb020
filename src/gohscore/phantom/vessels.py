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


class CapsuleStamper:
    """Paint capsules onto axial slices, touching only each capsule's bounding box.

    Capsules are moved once from the body frame into scanner millimetres (the in-plane
    rotation is an isometry, so distances are unchanged); per slice the bounding boxes of
    all capsules cutting it are computed together and only the distance test runs per capsule.
    """

    def __init__(self, anat: Anatomy):
        self.n = anat.matrix
        self.pixel_mm = anat.pixel_mm
        self.rotation = (float(np.cos(anat.rotation_rad)), float(np.sin(anat.rotation_rad)))
        self.centre = anat.body_xy_mm
        x0, y0, _ = anat.origin_xyz_mm
        self.x_mm = (x0 + np.arange(self.n) * anat.pixel_mm).astype(np.float32)
        self.y_mm = (y0 + np.arange(self.n) * anat.pixel_mm).astype(np.float32)
        self.origin = (x0, y0)

    def to_scanner(self, caps: Capsules) -> np.ndarray:
        """Capsule table with (u, v) replaced by scanner (x, y) in mm."""
        c, s = self.rotation
        xc, yc = self.centre
        out = caps.copy()
        for iu, iv in ((0, 1), (3, 4)):
            out[:, iu] = xc + c * caps[:, iu] - s * caps[:, iv]
            out[:, iv] = yc + s * caps[:, iu] + c * caps[:, iv]
        return out

    def masks(self, caps: np.ndarray, w: float, grow: float = 0.0):
        """Yield (row slice, col slice, mask) per scanner-frame capsule (radius + ``grow``) cutting height ``w``."""
        if len(caps) == 0:
            return
        r_all = caps[:, 6] + grow
        w0_all, w1_all = caps[:, 2], caps[:, 5]
        sel = np.flatnonzero(
            (np.minimum(w0_all, w1_all) - r_all <= w) & (np.maximum(w0_all, w1_all) + r_all >= w)
        )
        if len(sel) == 0:
            return
        c = caps[sel]
        r = r_all[sel]
        dw = c[:, 5] - c[:, 2]
        safe = np.where(np.abs(dw) > 1e-6, dw, 1.0)
        ta = np.where(np.abs(dw) > 1e-6, (w - r - c[:, 2]) / safe, 0.0)
        tb = np.where(np.abs(dw) > 1e-6, (w + r - c[:, 2]) / safe, 1.0)
        t_lo = np.clip(np.minimum(ta, tb), 0, 1)
        t_hi = np.clip(np.maximum(ta, tb), 0, 1)
        xa, xb = c[:, 0] + t_lo * (c[:, 3] - c[:, 0]), c[:, 0] + t_hi * (c[:, 3] - c[:, 0])
        ya, yb = c[:, 1] + t_lo * (c[:, 4] - c[:, 1]), c[:, 1] + t_hi * (c[:, 4] - c[:, 1])
        x0, y0 = self.origin
        p = self.pixel_mm
        j0 = np.maximum(np.floor((np.minimum(xa, xb) - r - x0) / p).astype(int), 0)
        j1 = np.minimum(np.ceil((np.maximum(xa, xb) + r - x0) / p).astype(int) + 1, self.n)
        i0 = np.maximum(np.floor((np.minimum(ya, yb) - r - y0) / p).astype(int), 0)
        i1 = np.minimum(np.ceil((np.maximum(ya, yb) + r - y0) / p).astype(int) + 1, self.n)
        ok = np.flatnonzero((i1 > i0) & (j1 > j0))
        rows = c[ok].tolist()
        for (cx0, cy0, cw0, cx1, cy1, cw1, _), ri, a0, a1, b0, b1 in zip(
            rows,
            r[ok].tolist(),
            i0[ok].tolist(),
            i1[ok].tolist(),
            j0[ok].tolist(),
            j1[ok].tolist(),
            strict=True,
        ):
            sx = self.x_mm[b0:b1] - np.float32(cx0)
            sy = self.y_mm[a0:a1] - np.float32(cy0)
            dx, dy, dz = cx1 - cx0, cy1 - cy0, cw1 - cw0
            ww = w - cw0
            length2 = dx * dx + dy * dy + dz * dz
            s2 = (sy * sy + np.float32(ww * ww))[:, None] + (sx * sx)[None, :]
            if length2 > 1e-9:
                # distance^2 to the segment = |s|^2 + L^2 * tc * (tc - 2 q), q = s.d / L^2, tc = clip(q, 0, 1)
                q = (sy * np.float32(dy / length2) + np.float32(ww * dz / length2))[:, None] + (
                    sx * np.float32(dx / length2)
                )[None, :]
                tc = np.minimum(np.maximum(q, 0), 1)
                q *= -2
                q += tc
                q *= tc
                q *= np.float32(length2)
                s2 += q
            inside = s2 <= ri * ri
            yield slice(a0, a1), slice(b0, b1), inside

    def paint(
        self,
        img: np.ndarray,
        caps: np.ndarray,
        w: float,
        value: float,
        grow: float = 0.0,
        only: np.ndarray | None = None,
        clear: np.ndarray | None = None,
    ) -> None:
        """Set ``img`` to ``value`` inside scanner-frame capsules (only where ``only``; clear ``clear`` there)."""
        for rs, cs, inside in self.masks(caps, w, grow):
            if only is not None:
                inside &= only[rs, cs]
            img[rs, cs][inside] = value
            if clear is not None:
                clear[rs, cs][inside] = False
