"""Score-training augmentation: known geometric effects, air from outside, noise level, parameter ranges."""

from __future__ import annotations

import math

import pytest
import torch

from gohscore.scores.augment import (
    AIR_HU,
    AugmentConfig,
    AugmentParams,
    affine_matrices,
    apply_augment,
    augment_batch,
    draw_augment,
)


def _params(n: int = 1, angle=0.0, zoom=1.0, shift=(0.0, 0.0), flip=False, noise=0.0) -> AugmentParams:
    return AugmentParams(
        angle=torch.full((n,), float(angle)),
        zoom=torch.full((n,), float(zoom)),
        shift=torch.tensor([shift] * n, dtype=torch.float32),
        flip=torch.full((n,), bool(flip)),
        noise_sd=torch.full((n,), float(noise)),
    )


def _image(rows: int = 32, cols: int = 40, seed: int = 0) -> torch.Tensor:
    return torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed)) * 100 - 800


def test_identity_and_mirror():
    x = torch.stack([_image(seed=1), _image(seed=2)])
    assert torch.allclose(apply_augment(x, _params(2)), x, atol=1e-2)
    assert torch.allclose(apply_augment(x, _params(2, flip=True)), x.flip(-1), atol=1e-2)


def test_shift_moves_content_by_that_fraction_of_the_side():
    img = torch.full((1, 32, 40), AIR_HU)
    img[0, 10, 5] = 0.0
    out = apply_augment(img, _params(shift=(0.25, 0.0)))  # a quarter of 32 rows = 8 rows
    bright = torch.nonzero(out[0] > -900).tolist()
    assert bright == [[2, 5]]


def test_quarter_turn_of_a_square_and_air_from_outside():
    img = torch.full((1, 33, 33), AIR_HU)
    img[0, 16, 16:30] = 0.0  # a bar from the centre towards the right edge
    out = apply_augment(img, _params(angle=math.pi / 2))[0]
    assert float(out[16, 18:30].max()) < -900  # the bar left its row...
    bright = torch.nonzero(out > -500).tolist()  # ...and lies along the centre column
    assert bright == [[r, 16] for r in range(16, 30)] or bright == [[r, 16] for r in range(3, 17)]
    # zooming out brings in what lies beyond the border: air, not zeros
    flat = torch.full((1, 32, 32), -500.0)
    small = apply_augment(flat, _params(zoom=0.5))[0]
    assert small[0, 0].item() == pytest.approx(AIR_HU, abs=1e-3)
    assert small[16, 16].item() == pytest.approx(-500.0, abs=1e-3)


def test_noise_has_the_drawn_sd():
    flat = torch.full((1, 128, 128), -850.0)
    noise = torch.randn(1, 128, 128, generator=torch.Generator().manual_seed(4))
    out = apply_augment(flat, _params(noise=20.0), noise)
    assert float(out.std()) == pytest.approx(20.0, rel=0.05)
    assert float(out.mean()) == pytest.approx(-850.0, abs=1.0)


def test_drawn_parameters_fill_their_ranges():
    cfg = AugmentConfig(
        rotate_deg=10.0, translate_fraction=0.05, scale=(0.95, 1.05), flip_probability=0.5, noise_hu=20.0
    )
    p = draw_augment(4000, cfg, torch.Generator().manual_seed(0), torch.device("cpu"))
    deg = p.angle.rad2deg()
    assert -10 <= float(deg.min()) < -9.5 and 9.5 < float(deg.max()) <= 10
    assert 0.95 <= float(p.zoom.min()) < 0.952 and 1.048 < float(p.zoom.max()) <= 1.05
    assert float(p.shift.abs().max()) <= 0.05 and float(p.shift.abs().max()) > 0.049
    assert 0.46 < float(p.flip.float().mean()) < 0.54
    assert 0.0 <= float(p.noise_sd.min()) and float(p.noise_sd.max()) <= cfg.noise_hu


def test_augment_batch_is_seeded_and_off_when_disabled():
    x = torch.stack([_image(seed=s) for s in range(4)])
    cfg = AugmentConfig.defaults()
    a = augment_batch(x, cfg, torch.Generator().manual_seed(9))
    b = augment_batch(x, cfg, torch.Generator().manual_seed(9))
    assert torch.equal(a, b) and not torch.allclose(a, x, atol=1.0)
    assert augment_batch(x, None, torch.Generator().manual_seed(9)) is x
    assert AugmentConfig.from_section(None) is None and AugmentConfig.from_section(False) is None
    assert AugmentConfig.from_section({"scale": [0.9, 1.1]}).scale == (0.9, 1.1)


def test_resampling_matches_monai_affine_transform():
    """The hand-built sampling grid gives MONAI's AffineTransform result on a non-square batch."""
    from monai.networks.layers import AffineTransform

    wide = AugmentConfig(
        rotate_deg=40.0, translate_fraction=0.2, scale=(0.7, 1.4), flip_probability=0.5, noise_hu=0.0
    )
    x = torch.stack([_image(seed=s) for s in range(6)])  # 32 x 40
    params = draw_augment(len(x), wide, torch.Generator().manual_seed(3), x.device)
    assert params.flip.any() and not params.flip.all()
    warp = AffineTransform(normalized=True, mode="bilinear", padding_mode="zeros", align_corners=False)
    expected = warp((x - AIR_HU)[:, None], affine_matrices(params))[:, 0] + AIR_HU
    assert torch.allclose(apply_augment(x, params), expected, atol=0.05)
