"""Render axial slices of one patient: HU image plus the lung, GG and RET masks of that slice."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gohscore.phantom.anatomy import Anatomy, cavity_axes, cavity_value, dome_height, superellipse
from gohscore.phantom.disease import Disease, gaussian_wrap
from gohscore.phantom.mediastinum import build_tubes
from gohscore.phantom.vessels import CapsuleStamper, CapsuleTable

# HU of each tissue (means; noise and blur are added on top)
HU = {
    "air": -1000.0,
    "lung": -860.0,
    "fat": -95.0,
    "mediastinal_fat": -85.0,
    "skin": 35.0,
    "muscle": 48.0,
    "blood": 40.0,
    "heart": 42.0,
    "liver": 60.0,
    "spleen": 48.0,
    "stomach": 25.0,
    "abdomen": 30.0,
    "csf": 12.0,
    "disc": 85.0,
    "marrow": 210.0,
    "cortex": 650.0,
    "cartilage": 120.0,
    "airway_wall": 25.0,
    "table": 250.0,
    "foam": -880.0,
}


@dataclass
class SliceResult:
    """One rendered axial slice: int16 HU image (rows = y, cols = x) and boolean masks."""

    hu: np.ndarray
    lung: np.ndarray
    gg: np.ndarray
    ret: np.ndarray


def _ellipse(u: np.ndarray, v: np.ndarray, a: float, b: float) -> np.ndarray:
    """Inside of an axis-aligned ellipse centred at the origin."""
    return (u / a) ** 2 + (v / b) ** 2 < 1


def _blur3(img: np.ndarray) -> np.ndarray:
    """Separable [1, 2, 1] / 4 smoothing in both directions (the scanner's slight blur), edges repeated."""
    return _blur3_inner(np.pad(img, 1, mode="edge"))


def _blur3_inner(img: np.ndarray) -> np.ndarray:
    """``_blur3`` of ``img`` on its interior only (one pixel less on every side), as float32."""
    rows = img[:-2] + img[2:]
    rows += img[1:-1]
    rows += img[1:-1]
    out = rows[:, :-2] + rows[:, 2:]
    out += rows[:, 1:-1]
    out += rows[:, 1:-1]
    out *= np.float32(1 / 16)
    return out


def _lung_block(lung: np.ndarray, box: tuple[slice, slice]) -> tuple[slice, slice] | None:
    """Bounding box of the lung pixels (all inside ``box``), or None without lung."""
    sub = lung[box]
    rows = np.flatnonzero(sub.any(axis=1))
    if len(rows) == 0:
        return None
    cols = np.flatnonzero(sub.any(axis=0))
    r0, c0 = box[0].start, box[1].start
    return slice(r0 + int(rows[0]), r0 + int(rows[-1]) + 1), slice(c0 + int(cols[0]), c0 + int(cols[-1]) + 1)


def _shift(block: tuple[slice, slice], box: tuple[slice, slice]) -> tuple[slice, slice]:
    """``block`` (in the same frame as ``box``) relative to ``box``'s corner."""
    r0, c0 = box[0].start, box[1].start
    return slice(block[0].start - r0, block[0].stop - r0), slice(block[1].start - c0, block[1].stop - c0)


def _bbox(mask: np.ndarray, margin: int) -> tuple[slice, slice]:
    """Bounding box of a 2D mask grown by ``margin`` pixels (clipped to the array)."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    n_rows, n_cols = mask.shape
    return (
        slice(max(int(rows[0]) - margin, 0), min(int(rows[-1]) + 1 + margin, n_rows)),
        slice(max(int(cols[0]) - margin, 0), min(int(cols[-1]) + 1 + margin, n_cols)),
    )


class Renderer:
    """Static per-patient arrays plus ``render(k)``, a pure function of the anatomy and slice index."""

    def __init__(self, anat: Anatomy, seed_key: tuple[int, ...]):
        self.anat = anat
        n, p = anat.matrix, anat.pixel_mm
        x0, y0, _ = anat.origin_xyz_mm
        xc, yc = anat.body_xy_mm
        c, s = np.cos(anat.rotation_rad), np.sin(anat.rotation_rad)
        x = (x0 + np.arange(n) * p).astype(np.float32)
        y = (y0 + np.arange(n) * p).astype(np.float32)
        dx, dy = x[None, :] - xc, y[:, None] - yc
        self.u = (c * dx + s * dy).astype(np.float32)
        self.v = (-s * dx + c * dy).astype(np.float32)
        u, v = self.u, self.v
        self.rows_mm, self.cols_mm = y, x

        # body wall layers, table and mediastinal fat: the same on every slice
        b_body = np.where(v < 0, anat.body_b_ant, anat.body_b_post)
        tpl = np.full((n, n), HU["air"], np.float32)
        tpl[superellipse(u, v, anat.body_a, b_body) < 1] = HU["skin"]
        tpl[superellipse(u, v, anat.body_a - 2, b_body - 2) < 1] = HU["fat"]
        f = anat.fat_mm
        b_musc = np.where(v < 0, anat.body_b_ant - f, anat.body_b_post - 0.6 * f)
        tpl[superellipse(u, v, anat.body_a - f, b_musc) < 1] = HU["muscle"]
        table_top = yc + anat.body_b_post + 1.5 + 0.0009 * (x[None, :] - xc) ** 2
        depth = y[:, None] - table_top
        shell = ((depth >= 0) & (depth < 3)) | ((depth >= 14) & (depth < 17))
        tpl[(depth >= 3) & (depth < 14) & (np.abs(x[None, :] - xc) < 230)] = HU["foam"]
        tpl[shell & (np.abs(x[None, :] - xc) < 230)] = HU["table"]
        self.cav0 = cavity_value(u, v - anat.cav_vc, anat.cav_a, anat.cav_b)
        self.cav_in0 = self.cav0 < 1
        tpl[self.cav_in0] = HU["mediastinal_fat"]

        # bones: rib ring, spine (vertebra and disc patterns), sternum
        ring = (self.cav0 >= 1) & (cavity_value(u, v - anat.cav_vc, anat.cav_a + 11, anat.cav_b + 11) < 1)
        self.ring_idx = np.flatnonzero(ring)
        ru, rv = u.ravel()[self.ring_idx], v.ravel()[self.ring_idx] - anat.cav_vc
        rho = np.sqrt(self.cav0.ravel()[self.ring_idx])
        radial = (rho - 1) * np.hypot(ru, rv) / rho
        phi = np.arctan2(ru, rv)
        self.ring_shift = anat.rib_drop * (1 - np.cos(phi)) / 2
        self.ring_cortex = (radial < 2.2) | (radial > 8.0)
        self.ring_cartilage = (np.abs(ru) < 0.42 * anat.cav_a) & (rv < 0)
        self.ring_sternum = (np.abs(ru) < 22) & (rv < 0)
        sv, sr = anat.spine_v, anat.spine_r
        body = _ellipse(u, v - sv, sr * 1.12, sr)
        body_core = _ellipse(u, v - sv, sr * 1.12 - 2.2, sr - 2.2)
        canal_v = sv + sr + 9
        canal = _ellipse(u, v - canal_v, 7.5, 7.0)
        arch = _ellipse(u, v - canal_v, 12.5, 11.5) & ~canal & (v > sv + sr - 1)
        spinous = (np.abs(u) < 4.5) & (v > canal_v + 8) & (v < canal_v + 38)
        transverse = (np.abs(v - canal_v + 2) < 5) & (np.abs(u) > 8) & (np.abs(u) < sr + 20)
        posterior = arch | spinous | transverse
        self.spine_idx = np.flatnonzero(body | posterior | canal)
        vert = np.where(body_core, HU["marrow"], HU["cortex"]).astype(np.float32)
        vert = np.where(canal, HU["csf"], np.where(posterior, HU["cortex"] * 0.8, vert))
        disc = np.where(body, HU["disc"], vert)
        self.vert_vals = vert.ravel()[self.spine_idx]
        self.disc_vals = disc.ravel()[self.spine_idx]
        spine_cuff = _ellipse(u, v - sv, sr + 9, sr + 9) | (posterior & (v < canal_v + 12))
        st_v = anat.cav_vc - anat.cav_b - 5
        sternum = _ellipse(u, v - st_v, 16, 6.5)
        self.sternum_idx = np.flatnonzero(sternum)
        self.sternum_vals = np.where(
            _ellipse(u, v - st_v, 13.5, 4.2), HU["marrow"], HU["cortex"] * 0.8
        ).ravel()[self.sternum_idx]
        self.template = tpl

        # lungs: candidate region (cavity minus mediastinal band and spine) and the diaphragm
        self.band = np.abs(u - 8) > anat.band_mm
        self.not_spine = ~spine_cuff
        self.cand0 = self.cav_in0 & self.band & self.not_spine
        self.dome = dome_height(anat, u, v).astype(np.float32)
        self.post = np.clip((v - anat.cav_vc) / anat.cav_b, -1, 1).astype(np.float32)
        self.periph = np.clip(self.cav0, 0, 1).astype(np.float32)
        self.lung_hu = (HU["lung"] + 28 * self.post).astype(np.float32)

        self.box = _bbox(self.cav_in0, 0)
        tubes_rng = np.random.default_rng([*seed_key, 11])
        # coarse matrices need neither many nor sub-pixel vessels
        n_points = int(np.clip(1400 * (0.7 / p) ** 1.5, 120, 1400))
        self.tubes = build_tubes(anat, tubes_rng, n_points=n_points, min_radius=max(0.6, 0.45 * p))
        self.disease = None
        if anat.severity > 0:
            self.disease = Disease(
                anat, np.random.default_rng([*seed_key, 12]), y[self.box[0]], x[self.box[1]]
            )

        # Only a rectangle around the cavity, ribs, spine, sternum and tubes changes from slice
        # to slice; outside it every slice is the blurred template plus noise. The margin of two
        # pixels keeps the blur of the changing pixels inside the rectangle's interior.
        dynamic = self.cav_in0.copy()
        flat = dynamic.reshape(-1)
        for idx in (self.ring_idx, self.spine_idx, self.sternum_idx):
            flat[idx] = True
        t = self.tubes
        stamper = CapsuleStamper(anat)
        tables = {
            name: stamper.to_scanner(getattr(t, name))
            for name in ("blood", "airway", "oesophagus", "lung_vessels", "lung_airways")
        }
        caps = np.vstack(list(tables.values()))
        if len(caps):
            reach = caps[:, 6] + 3.0  # the widest cuff (blood + 3 mm)
            lo_x = np.minimum(caps[:, 0], caps[:, 3]) - reach
            hi_x = np.maximum(caps[:, 0], caps[:, 3]) + reach
            lo_y = np.minimum(caps[:, 1], caps[:, 4]) - reach
            hi_y = np.maximum(caps[:, 1], caps[:, 4]) + reach
            j0 = int(np.clip(np.floor((lo_x.min() - x0) / p), 0, n - 1))
            j1 = int(np.clip(np.ceil((hi_x.max() - x0) / p), 0, n - 1))
            i0 = int(np.clip(np.floor((lo_y.min() - y0) / p), 0, n - 1))
            i1 = int(np.clip(np.ceil((hi_y.max() - y0) / p), 0, n - 1))
            dynamic[i0 : i1 + 1, j0 : j1 + 1] |= True
        region = _bbox(dynamic, 2)
        self.region = region
        r0, c0 = region[0].start, region[1].start
        n_cols = region[1].stop - c0
        for name in ("ring_idx", "spine_idx", "sternum_idx"):
            idx = getattr(self, name)
            setattr(self, name, (idx // n - r0) * n_cols + (idx % n - c0))
        self.box = (
            slice(self.box[0].start - r0, self.box[0].stop - r0),
            slice(self.box[1].start - c0, self.box[1].stop - c0),
        )
        for name in (
            "u",
            "v",
            "template",
            "cav_in0",
            "band",
            "not_spine",
            "cand0",
            "dome",
            "post",
            "periph",
            "lung_hu",
        ):
            setattr(self, name, np.ascontiguousarray(getattr(self, name)[region]))
        self.chambers = self._heart_chambers()
        self.periph_box = self.periph[self.box]
        self.post_box = self.post[self.box]
        self.stamper = CapsuleStamper(anat, *region)
        # parts, painted in this order: mediastinal tubes before the lungs are filled, lung tubes after
        self.mediastinal = CapsuleTable(
            [
                (tables["blood"], [(0, 1.0, 3.0), (3, 1.0, 0.0)]),  # fat cuff, blood
                (tables["oesophagus"], [(1, 1.0, 0.0)]),
                (tables["airway"], [(2, 1.0, 2.5), (4, 1.0, 0.0), (5, 1.0, -2.0)]),  # cuff, wall, lumen
            ]
        )
        self.in_lung = CapsuleTable(
            [
                (tables["lung_vessels"], [(0, 1.0, 0.0)]),
                (tables["lung_airways"], [(1, 1.0, 0.0), (2, 0.68, 0.0)]),  # wall, lumen
            ]
        )
        self.static = np.rint(_blur3(tpl)).astype(np.int16)

        noise_rng = np.random.default_rng([*seed_key, 13])
        m = n + n // 2
        bank = noise_rng.standard_normal((4, m, m), dtype=np.float32)
        bank = gaussian_wrap(bank, (0, 0.7, 0.7))
        bank *= np.float32(anat.noise_hu / max(float(bank.std()), 1e-6))
        self.noise = np.rint(bank).astype(np.int16)
        self.noise_offsets = noise_rng.integers(0, n // 2 + 1, size=(anat.n_slices, 3))

    def render(self, k: int, out: np.ndarray | None = None) -> SliceResult:
        """Render slice ``k`` (0 = bottom): HU int16 image (into ``out`` if given) and lung/GG/RET masks."""
        anat = self.anat
        u, v = self.u, self.v
        w = float(anat.slice_w(k))
        z_mm = float(anat.slice_z(k))
        n = anat.matrix
        img = self.template.copy()
        shape = img.shape

        if w > anat.w_shoulder:
            a, vc, b = cavity_axes(anat, w)
            cav_in = cavity_value(u, v - vc, a, b) < 1
            img[self.cav_in0 & ~cav_in] = HU["muscle"]
            cand = cav_in & self.band & self.not_spine if w < anat.w_apex else np.zeros(shape, bool)
        else:
            cand = self.cand0
        lung = cand & (self.dome < w)

        self._paint_heart(img, lung, w)
        self._paint_abdomen(img, w)
        fat = HU["mediastinal_fat"]
        self.stamper.paint_parts(
            img,
            self.mediastinal,
            w,
            (
                (0, fat, None, lung),
                (1, HU["muscle"] - 10, None, lung),
                (2, fat, None, lung),
                (3, HU["blood"], None, lung),
                (4, HU["airway_wall"], None, lung),
                (5, HU["air"], None, None),
            ),
        )

        np.copyto(img, self.lung_hu, where=lung)
        gg = np.zeros((n, n), bool)
        ret = np.zeros((n, n), bool)
        if self.disease is not None:
            block = _lung_block(lung, self.box)
            if block is not None:
                rs, cs = block
                sub_lung = lung[rs, cs]
                bs = _shift(block, self.box)
                gg_amt, ret_amt, lines, gg_m, ret_m = self.disease.slice(
                    w, z_mm, self.periph_box, self.post_box, *bs
                )
                base = self.lung_hu[rs, cs]
                # base + GG amount (GG HU - base) + 70 RET amount, then towards RET HU on the lines
                val = gg_amt * (self.disease.gg_hu - base)
                val += base
                val += 70 * ret_amt
                ret_amt *= lines
                lines = self.disease.ret_hu - val
                lines *= ret_amt
                val += lines
                np.copyto(img[rs, cs], val, where=sub_lung)
                gg_m &= sub_lung
                ret_m &= sub_lung
                gg[self.region][rs, cs] = gg_m
                ret[self.region][rs, cs] = ret_m
        self.stamper.paint_parts(
            img,
            self.in_lung,
            w,
            (
                (0, HU["blood"], lung, None),
                (1, HU["airway_wall"], lung, None),
                (2, HU["air"] + 40, lung, None),
            ),
        )

        self._paint_bones(img, w)
        # outside the region the slice is the static blurred template; inside, the blurred
        # interior of the region (its one-pixel rim is static too); then noise from the bank
        hu = np.empty((n, n), np.int16) if out is None else out
        nb, oi, oj = self.noise_offsets[k]
        noise = self.noise[nb % 4, oi : oi + n, oj : oj + n]
        np.add(self.static, noise, out=hu)
        rs, cs = self.region
        inner = (slice(rs.start + 1, rs.stop - 1), slice(cs.start + 1, cs.stop - 1))
        blurred = _blur3_inner(img)
        np.rint(blurred, out=blurred)
        np.add(blurred.astype(np.int16), noise[inner], out=hu[inner])
        np.clip(hu, -1024, 3071, out=hu)
        lung_full = np.zeros((n, n), bool)
        lung_full[self.region] = lung
        return SliceResult(hu=hu, lung=lung_full, gg=gg, ret=ret)

    def _heart_chambers(self) -> list[tuple]:
        """Per chamber (heart with epicardial fat, left atrium): its block of the cavity box and, on it,
        the in-plane ellipse values of the outer (with fat) and inner outline; the same on every slice."""
        hu_, hv, hw, ha, hb, hc, ang = self.anat.heart
        out = []
        for cu, cv, cw, a, b, c, angle, fat in (
            (hu_, hv, hw, ha, hb, hc, ang, 4.0),
            (*self.anat.left_atrium, 0.0, 3.0),
        ):
            rs, cs = self.box
            du, dv = self.u[rs, cs] - cu, self.v[rs, cs] - cv
            ca, sa = np.cos(angle), np.sin(angle)
            qa = ca * du + sa * dv
            qb = -sa * du + ca * dv
            e_out = (qa / (a + fat)) ** 2 + (qb / (b + fat)) ** 2
            if not (e_out < 1).any():
                continue
            block = _bbox(e_out < 1, 0)
            e_in = ((qa / a) ** 2 + (qb / b) ** 2)[block]
            block = (
                slice(rs.start + block[0].start, rs.start + block[0].stop),
                slice(cs.start + block[1].start, cs.start + block[1].stop),
            )
            out.append((cw, c, fat, block, e_out[_shift(block, self.box)], e_in))
        return out

    def _paint_heart(self, img: np.ndarray, lung: np.ndarray, w: float) -> None:
        """Heart (with epicardial fat) and left atrium cross-sections; they push the lung aside."""
        for cw, c, fat, block, e_out, e_in in self.chambers:
            q = 1 - ((w - cw) / (c + fat)) ** 2
            if q <= 0:
                continue
            outer = e_out < q  # inside the ellipse scaled by sqrt(q)
            qi = 1 - ((w - cw) / c) ** 2
            inner = e_in < qi if qi > 0 else np.zeros_like(outer)
            above = self.dome[block] < w
            sub = img[block]
            inner &= above
            np.copyto(sub, np.float32(HU["fat"]), where=outer & ~inner & above & (sub < 0))
            np.copyto(sub, np.float32(HU["heart"]), where=inner)
            lung[block] &= ~outer

    def _paint_abdomen(self, img: np.ndarray, w: float) -> None:
        """Below the diaphragm: liver on the right, stomach (gas on top) and spleen on the left."""
        anat = self.anat
        if w > anat.dome_r + 1:
            return
        rs, cs = self.box
        below = self.cav_in0[rs, cs] & (self.dome[rs, cs] >= w)
        if not below.any():
            return
        u, v = self.u[rs, cs], self.v[rs, cs]
        sub = img[rs, cs]
        liver_edge = 20 + 0.25 * (anat.dome_l - w)
        sub[below] = np.where(u[below] < liver_edge, HU["liver"], HU["abdomen"])
        cav_b, vc = anat.cav_b, anat.cav_vc
        sc = (anat.cav_a * 0.5, vc - 0.2 * cav_b, anat.dome_l - 45)
        q = 1 - ((w - sc[2]) / 48) ** 2
        if q > 0:
            r = np.sqrt(q)
            stomach = below & _ellipse(u - sc[0], v - sc[1], 48 * r, 0.45 * cav_b * r)
            lumen = below & _ellipse(u - sc[0], v - sc[1], 48 * r - 4, 0.45 * cav_b * r - 4)
            sub[stomach] = HU["muscle"]
            sub[lumen] = np.where(v[lumen] < sc[1] + 5, HU["air"], HU["stomach"])
        sp = (anat.cav_a * 0.62, vc + 0.5 * cav_b, anat.dome_l - 55)
        q = 1 - ((w - sp[2]) / 55) ** 2
        if q > 0:
            r = np.sqrt(q)
            sub[below & _ellipse(u - sp[0], v - sp[1], 28 * r, 0.4 * cav_b * r)] = HU["spleen"]

    def _paint_bones(self, img: np.ndarray, w: float) -> None:
        """Ribs (oblique bands around the cavity), vertebral bodies and discs, sternum."""
        anat = self.anat
        flat = img.reshape(-1)
        if anat.dome_l - 80 < w < anat.w_apex + 25:
            phase = np.mod((w - anat.rib_phase + self.ring_shift) / anat.rib_pitch, 1.0)
            rib = (phase < 0.42) & ~self.ring_sternum
            edge = self.ring_cortex | (phase < 0.07) | (phase > 0.35)
            vals = np.where(self.ring_cartilage, HU["cartilage"], np.where(edge, HU["cortex"], HU["marrow"]))
            flat[self.ring_idx[rib]] = vals[rib]
        in_disc = np.mod((w - anat.spine_phase) / anat.spine_pitch, 1.0) < 0.2
        flat[self.spine_idx] = self.disc_vals if in_disc else self.vert_vals
        if anat.dome_r - 10 < w < anat.level_w[0] + 35:
            flat[self.sternum_idx] = self.sternum_vals
