"""Tubular anatomy: aorta and great vessels, pulmonary arteries and veins, airways, oesophagus."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gohscore.phantom.anatomy import Anatomy
from gohscore.phantom.vessels import Capsules, grow_tree, polyline, sample_lung_points


@dataclass
class Tubes:
    """Capsule tables of every tube, grouped by how they are painted."""

    blood: Capsules  # mediastinal vessels (blood, fat cuff, clear the lung)
    airway: Capsules  # trachea and main bronchi (outer radius; lumen = radius - wall)
    oesophagus: Capsules
    lung_vessels: Capsules  # intrapulmonary arteries and veins (drawn inside the lung only)
    lung_airways: Capsules  # intrapulmonary bronchi (outer radius)


def build_tubes(
    anat: Anatomy, rng: np.random.Generator, n_points: int = 1400, min_radius: float = 0.6
) -> Tubes:
    """Lay out the mediastinal tubes relative to the levels and grow the lung trees."""
    l1, _, l3, _, _ = anat.level_w
    top = anat.slice_w(anat.n_slices - 1) + 20
    bottom = anat.w_bottom - 20
    tv, sv, ra = anat.trachea_v, anat.spine_v, anat.aorta_r
    hu, hv, hw, ha, hb, hc, _ = anat.heart
    v_ant = anat.cav_vc - anat.cav_b
    arch_w = l1 - 4
    asc_v = tv - ra - 16
    desc = (ra * 0.3 + 14, sv - anat.spine_r - ra * 0.6)
    blood = []
    # ascending aorta, arch (apex just below level 1), descending aorta beside the spine
    blood += polyline(
        [
            (hu - 15, hv - 5, hw + 0.3 * hc),
            (-12, asc_v, l3 + 5),
            (-10, asc_v, arch_w - 22),
            (-4, asc_v + 10, arch_w - 3),
            (6, tv, arch_w),
            (desc[0], tv + 22, arch_w - 8),
            (desc[0], desc[1], arch_w - 35),
            (desc[0] - 2, desc[1], bottom),
        ],
        ra,
    )
    # great vessels rise from the top of the arch (their origin is level 1)
    blood += polyline([(-6, asc_v + 8, arch_w), (-18, asc_v + 4, l1 + 25), (-28, asc_v + 2, top)], 6.5)
    blood += polyline([(4, tv - 10, arch_w), (10, tv - 12, l1 + 30), (16, tv - 14, top)], 4.5)
    blood += polyline([(14, tv + 10, arch_w - 2), (26, tv + 12, l1 + 25), (45, tv + 14, top)], 5.5)
    # superior vena cava into the right atrium
    blood += polyline([(-36, asc_v - 2, top), (-34, asc_v, l1), (-32, asc_v + 2, l3 - 10)], 9)
    # pulmonary trunk from the right ventricle, left and right pulmonary arteries to the hila
    fork = (14, asc_v + 6, -14.0)
    blood += polyline([(hu + 5, v_ant + 30, hw + 0.4 * hc), (20, v_ant + 38, l3 + 5), fork], 13)
    hilum_r = (-anat.cav_a * 0.42, tv + 6, -18.0)
    hilum_l = (anat.cav_a * 0.42, tv + 8, -8.0)
    blood += polyline([fork, (-10, tv - 14, -18), hilum_r], 10)
    blood += polyline([fork, (30, tv - 4, -6), hilum_l], 10)
    # left atrium's pulmonary veins: their confluence is level 3
    lu, lv, lw, la, _, _ = anat.left_atrium
    vein_roots = []
    for side in (-1, 1):
        for dw in (12, -10):
            a = (lu + side * la * 0.7, lv, lw + dw * 0.3)
            b = (lu + side * (la + 22), lv + 6, lw + dw)
            blood += polyline([a, b], 7)
            vein_roots.append((side, dw, np.array(b)))

    # airways: trachea to the carina (w = 0), then the two main bronchi
    trachea_r = rng.uniform(8, 11)
    airway = polyline([(0, tv, top), (0, tv, 0.0)], trachea_r)
    bronchus_r_end = (-anat.cav_a * 0.3, tv + 10, -22.0)
    bronchus_l_end = (anat.cav_a * 0.34, tv + 14, -32.0)
    airway += polyline([(0, tv, 2.0), (-trachea_r * 0.4, tv + 2, -6), bronchus_r_end], trachea_r * 0.75)
    airway += polyline([(0, tv, 2.0), (trachea_r * 0.5, tv + 3, -8), bronchus_l_end], trachea_r * 0.68)
    oesophagus = polyline(
        [(4, tv + trachea_r + 8, top), (12, sv - anat.spine_r - 8, l3), (30, sv - 30, bottom)], 8
    )

    lung_vessels, lung_airways = [], []
    for side, hilum, bronchus in ((-1, hilum_r, bronchus_r_end), (1, hilum_l, bronchus_l_end)):
        points = sample_lung_points(anat, rng, side, n_points)
        if len(points) < 20:
            continue
        lung_vessels.append(grow_tree(np.array(hilum), points, 6.5, rng, min_radius=min_radius))
        for vs, dw, root in vein_roots:
            if vs == side:
                upper = points[:, 2] > lw
                lung_vessels.append(
                    grow_tree(root, points[upper if dw > 0 else ~upper], 5.0, rng, min_radius=min_radius)
                )
        lung_airways.append(
            grow_tree(np.array(bronchus), points, 5.0, rng, min_radius=max(1.6, min_radius), reach=0.45)
        )
    return Tubes(
        blood=np.asarray(blood, float),
        airway=np.asarray(airway, float),
        oesophagus=np.asarray(oesophagus, float),
        lung_vessels=np.vstack(lung_vessels) if lung_vessels else np.empty((0, 7)),
        lung_airways=np.vstack(lung_airways) if lung_airways else np.empty((0, 7)),
    )
