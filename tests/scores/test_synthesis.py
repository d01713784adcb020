"""Synthesis of GG/RET on healthy slices: scores = rounded area fractions, lung-only, seeded; texture pools
hold only training patients' patches (the leak the original code had)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import torch

from gohscore.errors import GohscoreError
from gohscore.scores.synthesis import (
    SynthesisConfig,
    SynthesisParams,
    apply_synthesis,
    draw_params,
    lung_summary,
    synthesize,
)
from gohscore.scores.textures import (
    PROCEDURAL,
    build_pool,
    check_pool_patients,
    load_pool,
    procedural_pool,
    sample_texture,
)
from gohscore.scores.train import build_bank
from tests.scores.test_lungmask import synthetic_slice


def _healthy(size: int = 64, seed: int = 0):
    img, lung = synthetic_slice(size, seed)
    return img.astype(np.float32), lung


LUNG_ROWS, LUNG_COLS = (8, 56), (4, 60)  # a rectangular lung of 48 x 56 = 2688 pixels
LUNG_AREA = (LUNG_ROWS[1] - LUNG_ROWS[0]) * (LUNG_COLS[1] - LUNG_COLS[0])


def _circles(gg: tuple[float, float, float], ret: tuple[float, float, float]) -> SynthesisParams:
    """Parameters of one synthesis with one GG and one RET circle ``(row, col, radius)``, brightening only."""
    e = SynthesisConfig().max_ellipses
    centres = np.zeros((1, 2, e, 2), np.float32)
    axes = np.ones((1, 2, e, 2), np.float32)
    active = np.zeros((1, 2, e), bool)
    for k, (r, c, radius) in enumerate((gg, ret)):
        centres[0, k, 0], axes[0, k, 0], active[0, k, 0] = (r, c), (radius, radius), True
    return SynthesisParams(
        centres=centres,
        axes=axes,
        angles=np.zeros((1, 2, e), np.float32),
        active=active,
        gg_delta_hu=np.array([300.0], np.float32),
        gg_use_patch=np.array([False]),
        tile_index=np.zeros((1, 2), int),
        tile_angle=np.zeros((1, 2), np.float32),
        tile_scale=np.ones((1, 2), np.float32),
        tile_offset=np.zeros((1, 2, 2), np.float32),
    )


def _rect_lung() -> tuple[np.ndarray, np.ndarray]:
    lung = np.zeros((64, 64), bool)
    lung[LUNG_ROWS[0] : LUNG_ROWS[1], LUNG_COLS[0] : LUNG_COLS[1]] = True
    return np.where(lung, -860.0, 40.0).astype(np.float32), lung


def _radius(share: float) -> float:
    """The radius of a circle covering ``share`` of the lung (area = pi r^2)."""
    return math.sqrt(share * LUNG_AREA / math.pi)


@pytest.mark.parametrize(
    ("gg", "ret", "expected"),
    [
        # disjoint circles of 15 % and 25 % of the lung: TOT is their sum, 40 %
        ((22.0, 18.0, _radius(0.15)), (36.0, 44.0, _radius(0.25)), [40, 15, 25]),
        # RET (9.5 %) inside GG (30 %): TOT is GG's area, not the sum
        ((32.0, 32.0, _radius(0.30)), (32.0, 32.0, _radius(0.095)), [30, 30, 10]),
        # a GG circle of 30 % centred on the lung's left edge: only its inner half (15 %) counts
        ((32.0, float(LUNG_COLS[0]) - 0.5, _radius(0.30)), (20.0, 45.0, _radius(0.095)), [25, 15, 10]),
    ],
)
def test_scores_of_known_circles(gg, ret, expected):
    """Scores worked out from circle areas (pi r^2 over the lung's 2688 pixels), chosen mid-bin so
    that pixelisation cannot cross a rounding boundary."""
    img, lung = _rect_lung()
    res = apply_synthesis(
        torch.as_tensor(img)[None], torch.as_tensor(lung)[None], _circles(gg, ret), procedural_pool(0), None,
        torch.ones(1),
    )  # fmt: skip
    assert res.scores[0].tolist() == expected
    out = res.images[0].numpy()
    assert np.array_equal(out[~lung], img[~lung])  # nothing outside the lung changes
    gg_only = res.gg_mask[0].numpy() & ~res.ret_mask[0].numpy()
    assert gg_only.sum() > 100
    assert (out[gg_only] - img[gg_only]).mean() > 150  # GG brightens the lung by about +300 HU
    ret_mask = res.ret_mask[0].numpy()
    assert np.abs(out[ret_mask] - img[ret_mask]).mean() > 50  # RET walls are denser than the lung


def test_random_syntheses_keep_the_label_rules():
    img, lung = _healthy()
    pool = procedural_pool(0)
    for seed in range(20):
        out, scores, _, res = synthesize(img, lung, np.random.default_rng(seed), pool, pixel_spacing_mm=5.0)
        gg, ret = res.gg_mask[0].numpy(), res.ret_mask[0].numpy()
        assert not (gg & ~lung).any() and not (ret & ~lung).any()
        assert max(scores[1], scores[2]) <= scores[0] <= scores[1] + scores[2]
        assert np.array_equal(out[~lung], img[~lung])
        assert np.all(scores % 5 == 0) and np.all((scores >= 0) & (scores <= 100))


def test_synthesis_is_deterministic_for_a_seed():
    img, lung = _healthy()
    pool = procedural_pool(1)
    a = synthesize(img, lung, np.random.default_rng(7), pool)
    b = synthesize(img, lung, np.random.default_rng(7), pool)
    c = synthesize(img, lung, np.random.default_rng(8), pool)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_batched_synthesis_matches_single():
    img, lung = _healthy()
    pool = procedural_pool(2)
    rng = np.random.default_rng(3)
    summaries = [lung_summary(lung, rng) for _ in range(4)]
    coords = np.stack([s[0] for s in summaries])
    extent = np.array([s[1] for s in summaries])
    params = draw_params(np.random.default_rng(4), coords, extent, (0, len(pool)))
    batch = apply_synthesis(
        torch.as_tensor(np.stack([img] * 4)),
        torch.as_tensor(np.stack([lung] * 4)),
        params,
        pool,
        None,
        torch.full((4,), 2.0),
    )
    assert batch.images.shape == (4, 64, 64) and batch.scores.shape == (4, 3)
    assert params.active.any(axis=(1, 2)).all() and params.active.sum(axis=2).max() <= 3
    for i in range(4):
        one = SynthesisParams(**{k: v[i : i + 1] for k, v in vars(params).items()})
        single = apply_synthesis(
            torch.as_tensor(img)[None], torch.as_tensor(lung)[None], one, pool, None, torch.full((1,), 2.0)
        )
        assert torch.allclose(single.images[0], batch.images[i], atol=1e-3)
        assert torch.equal(single.scores[0], batch.scores[i])


def test_texture_tiles_repeat_mirrored():
    patch = np.arange(12, dtype=np.float32).reshape(3, 4)
    pool = build_pool("RET", [patch], [1.0], ["A"])
    one = torch.ones(1)
    tex = sample_texture(
        pool, torch.zeros(1, dtype=torch.long), torch.zeros(1), one, torch.zeros(1, 2), one, (12, 16)
    )[0]
    tex = tex.numpy()
    assert np.array_equal(tex[6:9, 8:12], patch) and np.array_equal(tex[6:9, 12:16], patch[:, ::-1])
    assert np.array_equal(tex[9:12, 8:12], patch[::-1])
    half = sample_texture(
        pool,
        torch.zeros(1, dtype=torch.long),
        torch.tensor([math.pi / 2]),
        one * 2,
        torch.zeros(1, 2),
        one,
        (12, 16),
    )
    assert set(np.unique(half.numpy())) <= set(patch.ravel().tolist())


def _write_patch(path, value: float) -> None:
    img = sitk.GetImageFromArray(np.full((1, 8, 8), value, dtype=np.float32))
    img.SetSpacing((0.7, 0.7, 1.0))
    sitk.WriteImage(img, str(path))


def _patches_table(tmp_path) -> pd.DataFrame:
    rows = []
    for patient, value in [("T1", -100.0), ("T2", -120.0), ("V1", 999.0), ("X9", 777.0)]:
        for pattern in ("GG", "RET"):
            path = tmp_path / f"{patient}_{pattern}.nii.gz"
            _write_patch(path, value)
            rows.append({"file": str(path), "pattern": pattern, "patient": patient})
    return pd.DataFrame(rows)


def test_pools_hold_only_training_patients(tmp_path):
    patches = _patches_table(tmp_path)
    train = ["T1", "T2", "T3"]
    for pattern in ("GG", "RET"):
        pool = load_pool(patches, pattern, train)
        assert sorted(pool.patients) == ["T1", "T2"]
        assert float(pool.tiles.max()) < 0  # the validation/test patches' values never enter
    leaky = build_pool("RET", [np.zeros((4, 4))] * 2, [1.0, 1.0], ["T1", "V1"])
    with pytest.raises(GohscoreError, match="V1"):
        check_pool_patients(leaky, train)
    check_pool_patients(procedural_pool(0), train)  # procedural tiles belong to no patient
    assert load_pool(patches, "RET", ["nobody"]) is None


def test_synthesis_never_uses_a_held_out_patch(tmp_path):
    """Leak test: with patches of training (about -100 HU) and held-out patients (+999/+777 HU), no
    synthetic pixel ever takes a held-out value and the bank's pools name training patients only."""
    patches = _patches_table(tmp_path)
    img, lung = _healthy()
    images = np.stack([img, img, img]).astype(np.int16)
    targets = np.zeros((3, 3), dtype=np.float32)
    bank = build_bank(
        images,
        targets,
        ["T1", "T2"],
        patches,
        1.0,
        0,
        torch.device("cpu"),
        SynthesisConfig(gg_patch_probability=1.0),
        on="healthy",
    )
    assert set(bank.ret_pool.patients) | set(bank.gg_pool.patients) <= {"T1", "T2"}
    for seed in range(10):
        rng = np.random.default_rng(seed)
        pick = rng.integers(0, len(bank.rows), size=4)
        params = draw_params(
            rng, bank.coords[pick], bank.extent[pick], (len(bank.gg_pool), len(bank.ret_pool)), bank.cfg
        )
        res = apply_synthesis(
            torch.as_tensor(images[pick]).float(),
            bank.lungs[pick],
            params,
            bank.ret_pool,
            bank.gg_pool,
            torch.full((4,), 5.0),
            bank.cfg,
        )
        assert float(res.images.max()) < 700


def test_procedural_fallback_without_patches():
    img, lung = _healthy()
    empty = pd.DataFrame(columns=["file", "pattern", "patient"])
    bank = build_bank(
        np.stack([img]).astype(np.int16),
        np.zeros((1, 3), np.float32),
        ["T1"],
        empty,
        0.5,
        0,
        torch.device("cpu"),
        on="healthy",
    )
    assert bank.gg_pool is None and set(bank.ret_pool.patients) == {PROCEDURAL}
    tile = bank.ret_pool.tiles[0].numpy()
    assert tile.min() < -600 and tile.max() > -300  # dark cells, bright walls
