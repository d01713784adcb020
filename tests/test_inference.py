"""Inference settings: channels-last models give the same outputs; pass sizes change nothing but speed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gohscore.cards import ModelCard
from gohscore.inference import for_inference, per_pass
from gohscore.levels.data import normalise, volume_stats
from gohscore.levels.decode import window_starts
from gohscore.levels.predict import window_indices
from gohscore.networks import vgg11
from gohscore.scores.predict import predict_images

CPU = torch.device("cpu")


@pytest.mark.parametrize(
    ("dims", "shape", "layout"),
    [(2, (40, 40), torch.channels_last), (3, (24, 32, 32), torch.channels_last_3d)],
)
def test_for_inference_is_eval_channels_last_and_changes_no_output(dims, shape, layout) -> None:
    torch.manual_seed(0)
    net = vgg11(dims, 1, 3, width=2, head_features=16)
    x = torch.randn(3, 1, *shape)
    with torch.no_grad():
        expected = net.eval()(x)
    net.train()
    same = for_inference(net, CPU)
    assert same is net and not net.training
    conv = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Conv3d))
    assert conv.weight.is_contiguous(memory_format=layout)
    with torch.no_grad():
        assert torch.allclose(net(x), expected, atol=1e-5)


def test_pass_sizes_follow_the_first_layer_budget() -> None:
    """One paper level window per CPU pass, eight on CUDA; small inputs share a pass; never zero."""
    cuda = torch.device("cuda")
    level, score = vgg11(3, 1, 5, width=8), vgg11(2, 1, 3, width=64)
    assert per_pass(level, (192, 256, 256), CPU) == 1
    assert per_pass(level, (192, 256, 256), cuda) == 8
    assert per_pass(score, (512, 512), CPU) == 6
    assert per_pass(vgg11(3, 1, 5, width=4), (48, 64, 64), CPU) >= 64  # the demo's windows: one pass
    assert per_pass(vgg11(3, 1, 5, width=64), (192, 256, 256), CPU) == 1  # over budget: still one


def test_window_and_slice_passes_of_any_size_agree() -> None:
    """One window (slice) per pass or several: the same predictions."""
    torch.manual_seed(1)
    rng = np.random.default_rng(1)
    level_net = for_inference(vgg11(3, 1, 5, width=2, head_features=16), CPU)
    vol = torch.from_numpy(rng.integers(-1000, 400, (32, 32, 32)).astype(np.int16))
    mean, std = volume_stats(vol, (-1500.0, 1500.0))
    vol = normalise(vol, mean, std, (-1500.0, 1500.0))
    starts = window_starts(32, 24, 2)
    one = window_indices(level_net, vol, starts, 24, CPU, amp=False, chunk=1)
    five = window_indices(level_net, vol, starts, 24, CPU, amp=False, chunk=5)
    assert one.shape == (len(starts), 5) and np.allclose(one, five, atol=1e-4)

    score_net = vgg11(2, 1, 3, width=2, head_features=16)
    card = ModelCard("scores", {}, {"input_size": 32, "hu_window": [-1500, 1500]}, {"scale": 100.0}, {})
    images = rng.integers(-1000, 400, (7, 32, 32)).astype(np.float32)
    a = predict_images([score_net], images, card, CPU, batch_size=1)
    b = predict_images([score_net], images, card, CPU, batch_size=4)
    assert a.shape == (7, 3) and np.allclose(a, b, atol=1e-4)
