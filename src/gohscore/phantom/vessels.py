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
    The tree grows one generation at a time, all segments of a generation together.
    """
    rows: list[np.ndarray] = []
    points = np.asarray(points, float).reshape(-1, 3)
    starts = np.asarray(root, float).reshape(1, 3)
    radii = np.array([float(radius)])
    owner = np.zeros(len(points), np.intp)  # segment of the current generation owning each point
    while len(radii):
        m = len(radii)
        counts = np.bincount(owner, minlength=m)
        live = counts > 0
        if not live.all():  # only an empty root territory; nothing grows from it
            starts, radii, counts = starts[live], radii[live], counts[live]
            owner = (np.cumsum(live) - 1)[owner]
            m = len(radii)
            if m == 0:
                break
        centre = np.stack([np.bincount(owner, points[:, i], m) for i in range(3)], axis=1) / counts[:, None]
        step = np.where(counts > 3, reach, 1.0)[:, None]
        ends = starts + step * (centre - starts) + rng.normal(0, 1.5, (m, 3))
        rows.append(np.hstack([starts, ends, radii[:, None]]))
        grows = (counts >= 3) & (radii >= min_radius)
        keep = grows[owner]
        points, owner = points[keep], owner[keep]
        if len(points) == 0:
            break
        spread = points - centre[owner]
        # principal axis of each territory (largest eigenvector of its scatter matrix), with a
        # fixed sign (largest component positive) so the split does not depend on LAPACK
        scatter = np.empty((m, 3, 3))
        for i in range(3):
            for j in range(i, 3):
                scatter[:, i, j] = scatter[:, j, i] = np.bincount(owner, spread[:, i] * spread[:, j], m)
        scatter[~grows] = np.eye(3)
        axes = np.linalg.eigh(scatter)[1][:, :, -1]
        big = np.take_along_axis(axes, np.abs(axes).argmax(axis=1)[:, None], axis=1)
        axes *= np.where(big < 0, -1.0, 1.0)
        side = (spread * axes[owner]).sum(axis=1) > 0
        child = 2 * owner + side  # two children per segment
        child_counts = np.bincount(child, minlength=2 * m)
        parent = np.arange(2 * m) // 2
        child_r = radii[parent] * (child_counts / np.maximum(counts[parent], 1)) ** (1 / 3)
        kept = (child_r >= min_radius * 0.8) & grows[parent]
        new_index = np.cumsum(kept) - 1
        on = kept[child]
        points, owner = points[on], new_index[child[on]]
        starts, radii = ends[parent[kept]], child_r[kept]
    return np.vstack(rows) if rows else np.empty((0, 7))


def capsule(p0: tuple[float, float, float], p1: tuple[float, float, float], r: float) -> list[float]:
    """One capsule row from two end points and a radius."""
    return [*p0, *p1, r]


def polyline(points: list[tuple[float, float, float]], r: float) -> list[list[float]]:
    """Capsule rows along a polyline of constant radius."""
    return [capsule(a, b, r) for a, b in zip(points[:-1], points[1:], strict=False)]


BIG_BOX = 400  # boxes of more pixels than this are tested one capsule at a time


def _segment_term(q: np.ndarray, length2: np.ndarray | np.float32) -> np.ndarray:
    """``L^2 tc (tc - 2 q)`` with ``tc = clip(q, 0, 1)``, in place in ``q``: added to ``|s|^2`` it gives
    the squared distance to the segment (``q = s.d / L^2``)."""
    tc = np.minimum(np.maximum(q, 0), 1)
    q *= -2
    q += tc
    q *= tc
    q *= length2
    return q


class CapsuleTable:
    """Per-capsule constants of scanner-frame capsule tables, computed once per patient.

    ``entries`` is a list of (capsule table, radii); ``radii`` lists (part, scale, grow): the
    table is painted as part ``part`` at radius ``scale * r + grow`` (a vessel and its fat
    cuff, an airway's wall and lumen). A capsule's geometry is tested once per slice at its
    largest radius and the distance classified against all of its radii, so one pass serves
    every part. Radii that are not positive are dropped.
    """

    def __init__(self, entries: list[tuple[np.ndarray, list[tuple[int, float, float]]]]):
        width = max((len(radii) for _, radii in entries), default=1)
        caps, r2, parts, r_max = [], [], [], []
        for table, radii in entries:
            table = np.asarray(table, float).reshape(-1, 7)
            rad = np.full((len(table), width), -np.inf)
            part = np.full((len(table), width), -1, np.intp)
            for j, (i, scale, grow) in enumerate(radii):
                rad[:, j] = scale * table[:, 6] + grow
                part[:, j] = i
            keep = (rad > 0).any(axis=1)
            caps.append(table[keep])
            rad = rad[keep]
            r2.append(np.where(rad > 0, rad * rad, -1.0))
            parts.append(np.where(rad > 0, part[keep], -1))
            r_max.append(rad.max(axis=1))
        self.caps = np.vstack(caps) if caps else np.empty((0, 7))
        self.part = np.vstack(parts) if parts else np.empty((0, width), np.intp)  # -1: no such radius
        self.r2 = (np.vstack(r2) if r2 else np.empty((0, width))).astype(np.float32)  # -1 where unused
        self.r = np.concatenate(r_max) if r_max else np.empty(0)  # the largest radius
        c = self.caps
        w0, w1 = c[:, 2], c[:, 5]
        self.w_lo = np.minimum(w0, w1) - self.r
        self.w_hi = np.maximum(w0, w1) + self.r
        d = c[:, 3:6] - c[:, 0:3]
        self.dw = d[:, 2]
        length2 = (d * d).sum(axis=1)
        segment = length2 > 1e-9
        safe2 = np.where(segment, length2, 1.0)
        self.az = np.where(segment, d[:, 2] / safe2, 0.0)
        # float32 per-pixel constants, one row per capsule: x0, y0, dx/L^2, dy/L^2, L^2
        self.pixel_consts = np.stack(
            [
                c[:, 0],
                c[:, 1],
                np.where(segment, d[:, 0] / safe2, 0.0),
                np.where(segment, d[:, 1] / safe2, 0.0),
                np.where(segment, length2, 0.0),
            ],
            axis=1,
        ).astype(np.float32)

    def __len__(self) -> int:
        return len(self.caps)


class CapsuleStamper:
    """Paint capsules onto axial slices (or a rectangular region of them).

    Capsules are moved once from the body frame into scanner millimetres (the in-plane
    rotation is an isometry, so distances are unchanged) and their per-capsule constants
    are kept in a ``CapsuleTable``. Per slice the bounding boxes of all capsules cutting it
    are computed together; the few large boxes (mediastinal tubes) get one broadcast distance
    test each, and the pixels of all small boxes (the lung trees) are gathered into one flat
    array and tested in one go, so there is no Python loop over the thousands of small capsules.
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

    def pixels(self, table: CapsuleTable, w: float) -> tuple[np.ndarray, np.ndarray]:
        """Flat indices (into this stamper's rows x cols) of the pixels inside capsules at height ``w``, and their parts."""
        sel = np.flatnonzero((table.w_lo <= w) & (table.w_hi >= w))
        if len(sel) == 0:
            return np.empty(0, np.intp), np.empty(0, np.intp)
        c = table.caps[sel]
        r = table.r[sel]
        dw = table.dw[sel]
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
        width = np.maximum(j1 - j0, 0)
        count = np.maximum(i1 - i0, 0) * width
        ww = w - c[:, 2]
        # per capsule: |w - w0|^2 and (w - w0) dz / L^2, the height's share of |s|^2 and of q
        per_cap = np.stack([ww * ww, ww * table.az[sel]], axis=1).astype(np.float32)
        consts = table.pixel_consts[sel]
        r2_sel = table.r2[sel]
        parts = table.part[sel]
        big = count > BIG_BOX
        out_idx, out_part = [], []
        # few large boxes (mediastinal tubes): one broadcast distance test per capsule
        for i in np.flatnonzero(big).tolist():
            a0, a1, b0, b1 = int(i0[i]), int(i1[i]), int(j0[i]), int(j1[i])
            x0c, y0c, ax, ay, length2 = consts[i]
            sx = self.x_mm[b0:b1] - x0c
            sy = self.y_mm[a0:a1] - y0c
            s2 = (sy * sy + per_cap[i, 0])[:, None] + (sx * sx)[None, :]
            q = (sy * ay + per_cap[i, 1])[:, None] + (sx * ax)[None, :]
            s2 += _segment_term(q, length2)
            w_box = b1 - b0
            for r2, part in zip(r2_sel[i].tolist(), parts[i].tolist(), strict=True):
                if part < 0:
                    continue
                inside = np.flatnonzero(s2 <= r2)
                out_idx.append((a0 + inside // w_box) * n_cols + (b0 + inside % w_box))
                out_part.append(np.full(len(inside), part, np.intp))
        # many small boxes (lung trees): all pixels of all boxes in one flat array
        small = np.flatnonzero(~big & (count > 0))
        total = int(count[small].sum())
        if total:
            cnt = count[small]
            # pixel e of the gathered array belongs to small capsule cap[e], at (row, col) inside its box
            cap = np.repeat(small, cnt)
            local = np.arange(total) - np.repeat(np.cumsum(cnt) - cnt, cnt)
            width_e = width[cap]
            row = local // width_e
            col = local - row * width_e
            row += i0[cap]
            col += j0[cap]
            x0c, y0c, ax, ay, length2 = consts[cap].T
            sx = self.x_mm[col] - x0c
            sy = self.y_mm[row] - y0c
            pc = per_cap[cap]
            s2 = sy * sy
            s2 += pc[:, 0]
            s2 += sx * sx
            q = sy * ay
            q += pc[:, 1]
            q += sx * ax
            s2 += _segment_term(q, length2)
            flat = row * n_cols + col
            for j in range(r2_sel.shape[1]):
                inside = np.flatnonzero(s2 <= r2_sel[cap, j])  # -1 for a missing radius: never inside
                out_idx.append(flat[inside])
                out_part.append(parts[cap[inside], j])
        if not out_idx:
            return np.empty(0, np.intp), np.empty(0, np.intp)
        return np.concatenate(out_idx), np.concatenate(out_part)

    def paint_parts(self, img: np.ndarray, table: CapsuleTable, w: float, steps) -> None:
        """Paint a table's parts in order: ``steps`` holds (part, value, only mask or None, clear mask or None)."""
        idx, part = self.pixels(table, w)
        if len(idx) == 0:
            return
        flat = img.reshape(-1)
        for i, value, only, clear in steps:
            sub = idx[part == i]
            if only is not None:
                sub = sub[only.reshape(-1)[sub]]
            flat[sub] = value
            if clear is not None:
                clear.reshape(-1)[sub] = False
