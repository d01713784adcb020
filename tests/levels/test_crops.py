"""Level training crops: the ``windows`` mode trains on every window inference slides over; the head is fp32."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gohscore.errors import GohscoreError
from gohscore.levels.data import CropSampler, ResidentVolumes, crop_start_bounds, crop_start_range
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
