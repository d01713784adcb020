"""Level training data: output scaling, resident crops, HU jitter, normalisation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from gohscore.levels.data import CropSampler, OutputScale, ResidentVolumes, crop_start_bounds, normalise
from tests.levels.toy import (
    CPU,
    LEVEL_OFFSETS,
    SIDE,
    toy_volume,
)


def test_output_scale_round_trip() -> None:
    """Outputs map back to in-crop indices exactly; 0 is the crop centre."""
    s = OutputScale.for_crop(192)
    idx = torch.tensor([0.0, 95.5, 191.0])
    assert torch.allclose(s.to_index(s.to_output(idx)), idx)
    assert s.to_index(torch.zeros(1)).item() == pytest.approx(95.5)


def test_crops_hold_all_levels_and_match_the_volume(tmp_path: Path) -> None:
    """Every sampled crop contains the five levels; x is the normalised volume cut at the crop start."""
    rng = np.random.default_rng(3)
    bases = [3.0, 8.0, 11.0]
    vols = [toy_volume(b, rng) for b in bases]
    targets = np.array([[b + o for o in LEVEL_OFFSETS] for b in bases])
    data = ResidentVolumes.from_arrays(vols, ["a", "b", "c"], (-1500, 1500), CPU, targets)
    lo, hi = crop_start_bounds(targets, SIDE, 24)
    assert (lo <= hi).all()
    assert (lo + 24 > np.ceil(targets.max(1))).all() and (hi <= np.floor(targets.min(1))).all()
    sampler = CropSampler(data, 24, batch_size=16, hu_scale_jitter=0.0, hu_shift_jitter=0.0)
    gen = torch.Generator().manual_seed(0)
    x, y = sampler(gen)
    assert x.shape == (16, 1, 24, SIDE, SIDE) and y.shape == (16, 5)
    idx_in_crop = sampler.scale.to_index(y)
    assert (idx_in_crop >= 0).all() and (idx_in_crop <= 23).all()
    for b in range(16):
        # find the patient and start that reproduce this crop
        starts = {i: float(targets[i, 0] - idx_in_crop[b, 0]) for i in range(3)}
        hits = [
            i
            for i, s in starts.items()
            if abs(s - round(s)) < 1e-4
            and 0 <= round(s) <= SIDE - 24
            and torch.allclose(x[b, 0], data.normalised(i)[round(s) : round(s) + 24])
        ]
        assert hits, f"crop {b} does not match any volume"
    # same generator state -> same batch (seeded); the HU jitter is checked in the next test
    assert torch.equal(sampler(torch.Generator().manual_seed(0))[0], x)


def test_crop_hu_jitter_stays_within_gain_and_shift_bounds() -> None:
    """Each crop's HU become gain * HU + shift, gain in 1 +- 5 %, shift in +-25 HU, drawn per crop.

    The volume holds two known values (-800 HU in the front half, 200 HU in the back half of every
    slice), so the un-normalised crop gives both gain and shift: gain = (h200 - h800) / 1000 and
    shift = h800 + 800 * gain, where h800 and h200 are the jittered HU of the two halves.
    """
    base = 5.0
    vol = np.full((SIDE, SIDE, SIDE), 200, dtype=np.int16)
    vol[:, : SIDE // 2, :] = -800
    targets = np.array([[base + o for o in LEVEL_OFFSETS]])
    data = ResidentVolumes.from_arrays([vol], ["flat"], (-1500, 1500), CPU, targets)
    assert data.mean.item() == pytest.approx(-300.0) and data.std.item() > 400  # not the clamp at 1
    sampler = CropSampler(data, 24, batch_size=200)  # the defaults: gain +-0.05, shift +-25 HU
    x, _ = sampler(torch.Generator().manual_seed(5))
    hu = x.double() * data.std.double() + data.mean.double()  # undo the z-score
    low, high = hu[:, 0, :, : SIDE // 2, :], hu[:, 0, :, SIDE // 2 :, :]
    # one gain and one shift per crop: each half of a crop is a single value
    assert torch.allclose(low, low[:, :1, :1, :1].expand_as(low), atol=1e-3)
    assert torch.allclose(high, high[:, :1, :1, :1].expand_as(high), atol=1e-3)
    h800, h200 = low[:, 0, 0, 0], high[:, 0, 0, 0]
    gain = (h200 - h800) / 1000.0
    shift = h800 + 800.0 * gain
    assert (gain - 1).abs().max().item() <= 0.05 + 1e-6
    assert shift.abs().max().item() <= 25.0 + 1e-3
    # the draws fill the stated ranges (200 uniform draws all inside 80 % of a range: p = 0.8^200)
    assert (gain - 1).min().item() < -0.04 and (gain - 1).max().item() > 0.04
    assert shift.min().item() < -20.0 and shift.max().item() > 20.0
    # gain and shift are separate draws, and the batch is not one repeated crop
    assert not torch.allclose((gain - 1) / 0.05, shift / 25.0, atol=0.01)
    assert gain.unique().numel() > 100
    # the same seed without jitter gives the clean volume: gain 1, shift 0
    plain = CropSampler(data, 24, batch_size=200, hu_scale_jitter=0.0, hu_shift_jitter=0.0)
    x0, _ = plain(torch.Generator().manual_seed(5))
    clean = x0.double() * data.std.double() + data.mean.double()
    assert torch.allclose(clean[:, 0, :, : SIDE // 2, :], torch.full_like(low, -800.0), atol=1e-3)
    assert torch.allclose(clean[:, 0, :, SIDE // 2 :, :], torch.full_like(high, 200.0), atol=1e-3)


def test_normalise_clips_and_zscores() -> None:
    """HU outside the window are clipped before the z-score."""
    hu = torch.tensor([-3000.0, 0.0, 3000.0])
    out = normalise(hu, torch.tensor(0.0), torch.tensor(1500.0), (-1500, 1500))
    assert out.tolist() == [-1.0, 0.0, 1.0]
