"""Random anatomy of one patient: body, thoracic cavity, levels, scan geometry (all in mm).

Body frame: ``u`` towards the patient's left, ``v`` towards the back (both LPS-like but
centred on the body and turned by the patient's small in-plane rotation), ``w`` towards
the head with ``w = 0`` at the main carina. Scanner frame: LPS world ``x, y, z``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gohscore.phantom.sizes import SizePreset


@dataclass
class Anatomy:
    """Every random number that shapes one patient; the renderer is a pure function of it."""

    # scan geometry
    matrix: int
    pixel_mm: float
    slice_mm: float
    n_slices: int
    origin_xyz_mm: tuple[float, float, float]
    w_bottom: float  # w of slice 0
    body_xy_mm: tuple[float, float]  # world x, y of the body centre
    rotation_rad: float
    # body and wall
    body_a: float
    body_b_ant: float
    body_b_post: float
    fat_mm: float
    muscle_mm: float
    cav_a: float
    cav_vc: float
    cav_b: float
    # lungs and levels (w in mm)
    w_apex: float
    w_shoulder: float
    dome_r: float
    dome_l: float
    recess_mm: float
    level_w: tuple[float, float, float, float, float]  # anatomical L1..L5 (L4 = midpoint)
    level_k: tuple[int, int, int, int, int]  # slice index of each level, from the bottom
    band_mm: float
    # mediastinum and organs
    heart: tuple[float, ...]  # u, v, w, a, b, c, angle
    left_atrium: tuple[float, ...]  # u, v, w, a, b, c
    trachea_v: float
    spine_v: float
    spine_r: float
    spine_pitch: float
    spine_phase: float
    rib_pitch: float
    rib_phase: float
    rib_drop: float
    aorta_r: float
    # appearance
    noise_hu: float
    severity: float
    gg_share: float
    seed_key: tuple[int, ...] = field(default=())

    def slice_w(self, k: int | np.ndarray) -> float | np.ndarray:
        """Body-frame height ``w`` (mm above the carina) of slice ``k`` (counted from the bottom)."""
        return self.w_bottom + np.asarray(k) * self.slice_mm

    def slice_z(self, k: int | np.ndarray) -> float | np.ndarray:
        """World z (mm) of slice ``k``."""
        return self.origin_xyz_mm[2] + np.asarray(k) * self.slice_mm


def draw_severity(rng: np.random.Generator) -> float:
    """Patient disease severity in 0..1: about a third healthy, the rest a long tail."""
    if rng.random() < 0.25:
        return 0.0
    return float(np.clip(rng.beta(1.3, 3.2), 0.02, 1.0))


def level_slices(
    level_w: tuple[float, ...], w_bottom: float, slice_mm: float, n_slices: int
) -> tuple[int, int, int, int, int]:
    """Slice index (from the bottom) of each level: L1-L3 and L5 the nearest slice, L4 halfway between L3 and L5."""

    def snap(w: float) -> int:
        return int(np.clip(np.floor((w - w_bottom) / slice_mm + 0.5), 0, n_slices - 1))

    k1, k2, k3, k5 = snap(level_w[0]), snap(level_w[1]), snap(level_w[2]), snap(level_w[4])
    return k1, k2, k3, int(np.floor((k3 + k5) / 2 + 0.5)), k5


def draw_anatomy(rng: np.random.Generator, preset: SizePreset) -> Anatomy:
    """Draw one patient's anatomy and scan geometry at the given size preset."""
    u = rng.uniform
    scale = u(0.86, 1.14)
    body_a = 165 * scale * u(0.93, 1.07)
    body_b_ant = 100 * scale * u(0.9, 1.1)
    body_b_post = 112 * scale * u(0.92, 1.08)
    fat_mm = u(5, 24) * scale
    muscle_mm = u(6, 11)
    cav_a = body_a - fat_mm - muscle_mm - 9
    v_ant = -body_b_ant + fat_mm + muscle_mm + 9
    v_post = body_b_post - 0.6 * fat_mm - 40
    cav_vc = (v_ant + v_post) / 2
    cav_b = (v_post - v_ant) / 2

    lung_height = u(0.88, 1.12)
    w_apex = u(75, 95) * lung_height
    dome_r = -u(110, 148) * lung_height
    dome_l = dome_r - u(5, 25)
    recess_mm = u(35, 55)
    extent = w_apex - dome_l + recess_mm * 0.9
    if extent > 292:
        recess_mm -= (extent - 292) / 0.9
        extent = 292
    l1 = u(22, 40)
    l3 = -u(32, 50)
    l5 = dome_r + u(6, 12)
    w_lung_bottom = w_apex - extent

    pixel_paper = float(np.clip(2 * body_a * u(1.08, 1.22) / 512, 0.6, 0.85))
    fov = pixel_paper * 512
    pixel_mm = fov / preset.matrix
    weights = np.asarray(preset.slice_weights, float)
    slice_mm = float(rng.choice(preset.slice_spacings_mm, p=weights / weights.sum()))
    scan_len = float(np.clip(extent + u(25, 85), 300, 380))
    slack = max(0.0, (min(scan_len, 300) - extent) / 2)
    lung_mid = (w_apex + w_lung_bottom) / 2 + u(-slack, slack)
    n_slices = int(round(scan_len / slice_mm)) + 1
    w_bottom = lung_mid - (n_slices - 1) * slice_mm / 2

    level_w = (l1, 0.0, l3, (l3 + l5) / 2, l5)
    k1, k2, k3, k4, k5 = level_slices(level_w, w_bottom, slice_mm, n_slices)

    x0 = -(preset.matrix - 1) / 2 * pixel_mm + u(-5, 5)
    y0 = -(preset.matrix - 1) / 2 * pixel_mm + u(-5, 5)
    z0 = float(np.round(-u(150, 450), 1))
    centre_y_room = fov / 2 - body_b_post - 8  # keep the back inside the field of view
    body_xy = (u(-12, 12), u(-25, max(-24.0, min(20.0, centre_y_room))))

    spine_r = u(16, 20) * scale**0.5
    spine_v = v_post - spine_r * 0.35
    trachea_v = spine_v - spine_r - 30
    heart_bottom = (dome_r + dome_l) / 2 - 12
    heart_top = l3 + u(0, 10)
    heart = (
        u(22, 36),
        v_ant + u(44, 56) * scale,
        (heart_top + heart_bottom) / 2,
        u(55, 65) * scale,
        u(40, 48) * scale,
        (heart_top - heart_bottom) / 2,
        np.deg2rad(u(20, 40)),
    )
    left_atrium = (u(0, 10), heart[1] + heart[4] * 0.75, l3, u(30, 38) * scale, 17 * scale, u(16, 22))
    return Anatomy(
        matrix=preset.matrix,
        pixel_mm=float(pixel_mm),
        slice_mm=slice_mm,
        n_slices=n_slices,
        origin_xyz_mm=(float(x0), float(y0), z0),
        w_bottom=float(w_bottom),
        body_xy_mm=(float(body_xy[0]), float(body_xy[1])),
        rotation_rad=float(np.deg2rad(u(-4, 4))),
        body_a=float(body_a),
        body_b_ant=float(body_b_ant),
        body_b_post=float(body_b_post),
        fat_mm=float(fat_mm),
        muscle_mm=float(muscle_mm),
        cav_a=float(cav_a),
        cav_vc=float(cav_vc),
        cav_b=float(cav_b),
        w_apex=float(w_apex),
        w_shoulder=float(w_apex - u(55, 75)),
        dome_r=float(dome_r),
        dome_l=float(dome_l),
        recess_mm=float(recess_mm),
        level_w=tuple(float(x) for x in level_w),
        level_k=(k1, k2, k3, k4, k5),
        band_mm=float(u(7, 11)),
        heart=tuple(float(x) for x in heart),
        left_atrium=tuple(float(x) for x in left_atrium),
        trachea_v=float(trachea_v),
        spine_v=float(spine_v),
        spine_r=float(spine_r),
        spine_pitch=float(u(24, 29)),
        spine_phase=float(u(0, 30)),
        rib_pitch=float(u(24, 30)),
        rib_phase=float(u(0, 30)),
        rib_drop=float(u(70, 100)),
        aorta_r=float(u(12, 15.5)),
        noise_hu=float(np.clip(13 / np.sqrt(slice_mm) * u(0.8, 1.25), 5, 28)),
        severity=draw_severity(rng),
        gg_share=float(u(0.35, 0.9)),
    )


def superellipse(u: np.ndarray, v: np.ndarray, a: float, b: float | np.ndarray) -> np.ndarray:
    """``|u/a|^2.5 + |v/b|^2.5`` (below 1 inside): the rounded-box cross-section of the torso."""
    x = np.abs(u / a)
    y = np.abs(v / b)
    return x * x * np.sqrt(x) + y * y * np.sqrt(y)


def cavity_value(u: np.ndarray, v: np.ndarray, a: float, b: float) -> np.ndarray:
    """``(u/a)^2 + (v/b)^2`` with a slightly flattened back (below 1 inside the thoracic cavity)."""
    vb = np.where(v > 0, v * 1.08, v)
    return (u / a) ** 2 + (vb / b) ** 2


def dome_height(anat: Anatomy, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Height ``w`` of the diaphragm under each (u, v): two domes, the posterior recesses deepest."""
    vd = anat.cav_vc - 0.15 * anat.cav_b
    dv = v - vd
    depth_v = np.where(dv > 0, dv / (anat.cav_b * 1.1), dv / (anat.cav_b * 1.7))
    span_u = anat.cav_a * 0.62
    qr = ((u + anat.cav_a * 0.45) / span_u) ** 2 + depth_v**2
    ql = ((u - anat.cav_a * 0.45) / span_u) ** 2 + depth_v**2
    return np.maximum(anat.dome_r - anat.recess_mm * qr, anat.dome_l - anat.recess_mm * ql)


def cavity_axes(anat: Anatomy, w: float) -> tuple[float, float, float]:
    """(half-width, centre v, half-depth) of the thoracic cavity at height ``w``; narrows to the apices."""
    if w <= anat.w_shoulder:
        return anat.cav_a, anat.cav_vc, anat.cav_b
    t = (w - anat.w_shoulder) / (anat.w_apex - anat.w_shoulder)
    s = float(np.sqrt(max(0.0, 1 - t * t)))
    b = anat.cav_b * (0.45 + 0.55 * s)
    v_post = anat.cav_vc + anat.cav_b
    return anat.cav_a * (0.12 + 0.88 * s**0.8), v_post - b, b


def lung_region(anat: Anatomy, u: np.ndarray, v: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Analytic lung membership of points (u, v, w), for growing the vessel trees (no vessels cleared)."""
    inside = np.zeros(np.broadcast(u, v, w).shape, bool)
    for wi in np.unique(np.round(w / 8) * 8):
        sel = np.abs(w - wi) <= 4
        a, vc, b = cavity_axes(anat, float(wi))
        if wi > anat.w_apex:
            continue
        uu, vv, ww = u[sel], v[sel], w[sel]
        ok = cavity_value(uu, vv - vc, a, b) < 1
        ok &= np.abs(uu - 8) > anat.band_mm + 12
        ok &= ww > dome_height(anat, uu, vv)
        hu, hv, hw, ha, hb, hc, ang = anat.heart
        dz = (ww - hw) / (hc + 5)
        c, s_ = np.cos(ang), np.sin(ang)
        du, dv = uu - hu, vv - hv
        qa = (c * du + s_ * dv) / (ha + 5)
        qb = (-s_ * du + c * dv) / (hb + 5)
        ok &= qa * qa + qb * qb + dz * dz > 1
        ok &= (uu / (anat.spine_r + 14)) ** 2 + ((vv - anat.spine_v) / (anat.spine_r + 14)) ** 2 > 1
        inside[sel] = ok
    return inside
