"""Level training crops: the ``windows`` mode trains on every window inference slides over; the head is fp32."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gohscore.errors import GohscoreError
from gohscore.levels.data import (
    CropSampler,
    ResidentVolumes,
    crop_start_bounds,
    crop_start_range,
    in_plane_indices,
)
from gohscore.levels.decode import window_starts
from gohscore.networks import vgg11
from tests.levels.toy import CPU, LEVEL_OFFSETS, SIDE, toy_volume


def _data(bases=(3.0, 8.0, 11.0)) -> tuple[ResidentVolumes, np.ndarray]:
    rng = np.random.default_rng(0)
    targets = np.array([[b + o for o in LEVEL_OFFSETS] for b in bases])
    vols = [toy_volume(b, rng) for b in bases]
    return ResidentVolumes.from_arrays(
        vols, [f"p{i}" for i in range(len(bases))], (-1500, 1500), CPU, targets
    ), targets


def test_window_crops_span_every_inference_window():
    data, targets = _data()
    crop = 16
    lo, hi = crop_start_range(targets, SIDE, crop, "windows")
    starts = window_starts(SIDE, crop, 1)
    assert (lo == starts.min()).all() and (hi == starts.max()).all()  # 0 .. SIDE - crop for every patient
    old = crop_start_range(targets, SIDE, crop, "all_levels")
    assert all(np.array_equal(a, b) for a, b in zip(old, crop_start_bounds(targets, SIDE, crop), strict=True))
    with pytest.raises(GohscoreError, match="crop_sampling"):
        crop_start_range(targets, SIDE, crop, "everywhere")

    one, one_targets = _data((3.0,))  # one patient: the crop start is its level minus the index in the crop
    sampler = CropSampler(one, crop, batch_size=400, sampling="windows")
    x, y = sampler(torch.Generator().manual_seed(0))
    index = sampler.scale.to_index(y)
    begins = (torch.as_tensor(one_targets, dtype=torch.float32) - index).round()
    assert (begins == begins[:, :1]).all()  # one start per crop
    assert int(begins.min()) == 0 and int(begins.max()) == SIDE - crop  # every start, both ends reached
    assert ((index < 0) | (index > crop - 1)).any()  # some crops cut a level off: trained on anyway
    for b in range(0, 400, 50):  # and the crop is the volume cut at that start
        s0 = int(begins[b, 0])
        assert torch.allclose(x[b, 0], one.normalised(0)[s0 : s0 + crop], atol=0.2)  # HU jitter only

    old = CropSampler(data, crop, batch_size=400, sampling="all_levels")
    index_old = old.scale.to_index(old(torch.Generator().manual_seed(0))[1])
    assert ((index_old >= 0) & (index_old <= crop - 1)).all()


def test_head_runs_in_fp32_under_autocast():
    net = vgg11(spatial_dims=3, in_channels=1, out_features=5, width=2, head_features=8).eval()
    seen = []
    for layer in net.modules():
        if isinstance(layer, torch.nn.Linear | torch.nn.Conv3d):
            layer.register_forward_hook(lambda m, i, o: seen.append((type(m).__name__, o.dtype)))
    x = torch.randn(1, 1, 16, 32, 32)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(x)
    assert out.dtype == torch.float32
    assert {d for n, d in seen if n == "Conv3d"} == {torch.bfloat16}  # the features do use autocast
    assert {d for n, d in seen if n == "Linear"} == {torch.float32}  # the head does not
    with torch.no_grad():
        assert torch.allclose(out, net(x), rtol=0.1, atol=1e-3)


def test_in_plane_augmentation_mirrors_and_shifts_the_crop_and_keeps_its_targets():
    side, crop = SIDE, 16
    vol = np.full((side, side, side), -1000, dtype=np.int16)
    vol[:, 5, 3] = 500  # one bright column at row 5, column 3, the length of the volume
    targets = np.array([[20.0, 17.0, 13.5, 9.5, 5.5]])
    one = ResidentVolumes.from_arrays([vol], ["p0"], (-1500, 1500), CPU, targets)
    plain = CropSampler(one, crop, batch_size=64, sampling="windows")
    moved = CropSampler(one, crop, batch_size=64, sampling="windows", flip_probability=0.5, shift_voxels=2)
    x0, y0 = plain(torch.Generator().manual_seed(3))
    x1, y1 = moved(torch.Generator().manual_seed(3))
    assert torch.equal(y0, y1)  # same draws of patient and start, and the levels do not move

    places = set()
    for b in range(64):
        bright = (x1[b, 0, 0] == x1[b, 0, 0].max()).nonzero().tolist()
        assert len(bright) == 1  # still one column, not smeared or wrapped round
        (row, col), mirrored = bright[0], bright[0][1] > side // 2
        shift_x = (side - 1 - col) - 3 if mirrored else col - 3
        assert abs(row - 5) <= 2 and abs(shift_x) <= 2, (row, col)
        places.add((row - 5, shift_x, mirrored))
        assert (x1[b, 0] == x1[b, 0, :1]).all()  # the same in-plane move for every slice of the crop
    assert len({m for *_, m in places}) == 2  # both mirrored and plain crops were drawn
    assert {r for r, *_ in places} == set(range(-2, 3)) and {s for _, s, _ in places} == set(range(-2, 3))
    peak = x0.amax(dim=(1, 2, 3, 4))[:, None]
    assert (x0[:, 0, :, 5, 3] == peak).all()  # without the keys nothing moves


def test_in_plane_indices_repeat_the_border_instead_of_wrapping():
    rows, cols = in_plane_indices(
        5, torch.tensor([False, True]), torch.tensor([-2, 0]), torch.tensor([3, -1])
    )
    assert rows.tolist() == [[2, 3, 4, 4, 4], [0, 1, 2, 3, 4]]  # moved down by 2: voxel i reads i + 2
    assert cols.tolist() == [[0, 0, 0, 0, 1], [3, 2, 1, 0, 0]]  # right by 3; and left by 1, then mirrored
