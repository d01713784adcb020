"""Tests of the phantom cohort on the tiny size: levels, labels, determinism, HU ranges, distribution."""

from __future__ import annotations

import numpy as np
import pytest

from gohscore.errors import GohscoreError
from gohscore.goh import LEVELS, round_to_5
from gohscore.phantom.cohort import generate_patient
from gohscore.phantom.labels import area_percentages, consistent_scores, make_consistent
from gohscore.phantom.observers import observer_patients, observer_rows
from gohscore.phantom.render import HU
from gohscore.phantom.sizes import PhantomParams
from gohscore.phantom.vessels import CapsuleStamper, CapsuleTable, grow_tree

TINY = {
    "n_patients": 30,
    "size": "tiny",
    "dicom_every": 5,
    "n_observer_patients": 4,
    "patches_per_pattern": 1,
}


@pytest.fixture(scope="module")
def params():
    return PhantomParams.from_section(TINY)


@pytest.fixture(scope="module")
def cohort(params):
    return [generate_patient(f"P{i:04d}", params, 7) for i in range(1, 31)]


def test_consistent_scores_keep_tot_between_max_and_sum():
    assert consistent_scores(4.8, 2.4, 2.4) == (5, 5, 0)
    assert consistent_scores(12.6, 12.6, 0.0) == (15, 15, 0)
    assert make_consistent(40, 10, 5) == (15, 10, 5)
    assert make_consistent(0, 10, 5) == (10, 10, 5)


def test_levels_ordered_and_l4_at_midpoint(cohort):
    for pat in cohort:
        z = [pat.label[f"L{level}_z_mm"] for level in LEVELS]
        assert all(a > b for a, b in zip(z[:-1], z[1:], strict=False)), (pat.patient, z)
        assert abs(z[3] - (z[2] + z[4]) / 2) <= pat.anatomy.slice_mm / 2 + 1e-6
        k = np.asarray(pat.anatomy.level_k)
        assert np.allclose(pat.anatomy.slice_z(k), z, atol=1e-3)  # each level is a slice centre


def test_labels_equal_recomputed_area_fractions(cohort):
    for pat in cohort:
        for level, res in zip(LEVELS, pat.levels, strict=True):
            raw = area_percentages(res.lung, res.gg, res.ret)
            tot, gg, ret = (pat.label[f"L{level}_{p}"] for p in ("TOT", "GG", "RET"))
            assert (tot, gg, ret) == consistent_scores(*raw)
            assert tot == round_to_5(raw[0])
            assert all(abs(s - r) < 5 for s, r in zip((tot, gg, ret), raw, strict=True))
            assert max(gg, ret) <= tot <= gg + ret
            assert res.lung.sum() > 0


def test_same_seed_same_patient_other_seed_differs(params):
    a = generate_patient("P0004", params, 7)
    b = generate_patient("P0004", params, 7)
    c = generate_patient("P0004", params, 8)
    assert a.volume.tobytes() == b.volume.tobytes() and a.label == b.label
    assert a.volume.shape != c.volume.shape or a.volume.tobytes() != c.volume.tobytes()
    assert a.label != c.label


def test_tissue_hu_in_range(cohort):
    assert HU["air"] == -1000 and -910 <= HU["lung"] <= -850
    assert -100 <= HU["fat"] <= -50 and 40 <= HU["muscle"] <= 80 and 400 <= HU["cortex"] <= 1000
    pat = cohort[0]
    vol = pat.volume
    corner = vol[:, :3, :3]
    assert abs(float(np.median(corner)) + 1000) < 40  # air outside the body
    res = pat.levels[1]
    lung_hu = float(np.median(res.hu[res.lung & ~res.gg & ~res.ret]))
    assert -910 <= lung_hu <= -780  # vessels and partial volume raise the median a little
    assert vol.min() >= -1024 and vol.max() <= 3071 and vol.max() > 300  # bone is present


def test_disease_hu_in_range():
    params = PhantomParams.from_section({**TINY, "size": "demo"})
    pat = generate_patient("P0004", params, 7)  # severity 0.83 with seed 7
    res = pat.levels[4]
    gg_only = res.gg & ~res.ret
    assert gg_only.sum() > 20
    assert -780 <= float(np.median(res.hu[gg_only])) <= -300


def test_label_distribution_resembles_figure_2(cohort):
    tot = np.array([[p.label[f"L{level}_TOT"] for level in LEVELS] for p in cohort])
    assert (tot == 0).mean() > 0.4  # most levels 0 %
    assert tot.max() >= 40  # a long tail
    means = tot.mean(axis=0)
    assert means[4] > means[0] and means[3] > means[0]
    assert np.polyfit(np.arange(5), means, 1)[0] > 0  # rising from level 1 to level 5


def test_observer_rows_are_rounded_consistent_and_deterministic(cohort):
    chosen = observer_patients(7, 30, 4)
    assert chosen == observer_patients(7, 30, 4) and len(set(chosen)) == 4 and chosen == sorted(chosen)
    assert observer_patients(7, 30, 0) == []
    rows = observer_rows(cohort[3].label, 7, 4)
    assert rows == observer_rows(cohort[3].label, 7, 4)
    assert {(r["observer"], r["read"]) for r in rows} == {("Obs1", 1), ("Obs1", 2), ("Obs2", 1), ("Obs2", 2)}
    for r in rows:
        for level in LEVELS:
            t, g, e = (r[f"L{level}_{p}"] for p in ("TOT", "GG", "RET"))
            assert t % 5 == 0 and g % 5 == 0 and e % 5 == 0 and 0 <= t <= 100
            assert max(g, e) <= t <= g + e


def test_bad_params_raise_user_errors():
    with pytest.raises(GohscoreError, match="size"):
        PhantomParams.from_section({**TINY, "size": "huge"})
    with pytest.raises(GohscoreError, match="phantom.n_patiens"):  # a misspelt key is refused, not ignored
        PhantomParams.from_section({**TINY, "n_patiens": 3})
    with pytest.raises(GohscoreError, match="phantom.n_patients"):  # ids are P0001..P9999
        PhantomParams.from_section({**TINY, "n_patients": 10000})
    with pytest.raises(GohscoreError, match="n_observer_patients"):
        PhantomParams.from_section({**TINY, "n_observer_patients": 99})


def _segment_distance(px, py, pw, caps):
    """Brute force: distance of every point to every capsule's axis segment, (points, capsules)."""
    a, b = caps[None, :, 0:3], caps[None, :, 3:6]
    p = np.stack([px, py, np.full_like(px, pw)], axis=1)[:, None, :]
    d = b - a
    t = np.clip(((p - a) * d).sum(-1) / np.maximum((d * d).sum(-1), 1e-12), 0, 1)
    return np.linalg.norm(p - (a + t[..., None] * d), axis=-1)


def test_capsule_stamper_matches_brute_force_distances(params):
    pat = generate_patient("P0002", PhantomParams.from_section({**TINY, "size": "demo"}), 7)
    anat = pat.anatomy
    rng = np.random.default_rng(3)
    x0, y0, _ = anat.origin_xyz_mm
    span = anat.matrix * anat.pixel_mm
    n = 60
    start = np.column_stack(
        [x0 + rng.uniform(0, span, n), y0 + rng.uniform(0, span, n), rng.uniform(-60, 60, n)]
    )
    end = start + rng.normal(0, 25, (n, 3))
    end[:5, 2] = start[:5, 2]  # lying in a slice
    end[5:8] = start[5:8]  # spheres
    caps = np.column_stack([start, end, rng.uniform(0.5, 30, n)])
    rows, cols = slice(5, anat.matrix - 9), slice(11, anat.matrix - 3)
    stamper = CapsuleStamper(anat, rows, cols)
    table = CapsuleTable([(caps[:30], [(0, 1.0, 0.0)]), (caps[30:], [(1, 1.0, 2.0), (2, 0.5, -1.0)])])
    yy, xx = np.meshgrid(stamper.y_mm.astype(float), stamper.x_mm.astype(float), indexing="ij")
    radius = {0: caps[:, 6], 1: caps[:, 6] + 2.0, 2: 0.5 * caps[:, 6] - 1.0}
    owner = {0: np.arange(n) < 30, 1: np.arange(n) >= 30, 2: np.arange(n) >= 30}
    for w in (-40.0, 0.3, 17.0):
        idx, part = stamper.pixels(table, w)
        dist = _segment_distance(xx.ravel(), yy.ravel(), w, caps)
        for p in (0, 1, 2):
            got = np.bincount(idx[part == p], minlength=xx.size)
            # every pixel once per capsule of the part holding it (up to float32 rounding on an edge)
            inside = (dist <= radius[p][None, :]) & owner[p][None, :]
            edge = (np.abs(dist - radius[p][None, :]) < 1e-3).any(1)
            assert np.array_equal(got[~edge], inside[~edge].sum(1)), (w, p)
        assert set(np.unique(part)) <= {0, 1, 2}


def test_grow_tree_thins_towards_the_periphery():
    rng = np.random.default_rng(5)
    points = rng.uniform(-50, 50, (800, 3))
    a = grow_tree(np.zeros(3), points, 6.0, np.random.default_rng(1), min_radius=0.7)
    b = grow_tree(np.zeros(3), points, 6.0, np.random.default_rng(1), min_radius=0.7)
    assert np.array_equal(a, b) and a.shape[1] == 7 and len(a) > 100
    assert a[0, 6] == 6.0 and a[:, 6].min() >= 0.7 * 0.8
    # one generation at a time: rows 1 and 2 are the root's children, starting at its end and
    # carrying its radius cubed between them (Murray's law), and radii only shrink
    assert np.allclose(a[1:3, 0:3], a[0, 3:6])
    assert np.isclose((a[1:3, 6] ** 3).sum(), 6.0**3)
    assert a[:, 6].max() == 6.0


def test_gaussian_wrap_matches_scipy():
    ndimage = pytest.importorskip("scipy.ndimage")
    from gohscore.phantom.disease import gaussian_wrap

    rng = np.random.default_rng(0)
    for shape, sigma, truncate in (((9, 5, 7), (1.8, 2.5, 1.0), 3.0), ((2, 30, 40), (0, 0.7, 0.7), 4.0)):
        x = rng.standard_normal(shape).astype(np.float32)
        want = ndimage.gaussian_filter(x, sigma, mode="wrap", truncate=truncate)
        assert np.allclose(gaussian_wrap(x, sigma, truncate), want, atol=1e-5)
