"""Grad-CAM heat maps on a network small enough to work the map out by hand."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from gohscore.cards import ModelCard
from gohscore.networks import vgg11
from gohscore.scores.explain import explain_slices, scale_to_max, target_layer

CPU = torch.device("cpu")
CARD = ModelCard("scores", {}, {"input_size": 16, "hu_window": [-1000, 1000]}, {"scale": 100.0}, {})


class OneChannel(nn.Module):
    """features: identity 1x1 convolution, ReLU, 2x pooling; head: sign * sum of the pooled map.

    With one channel, Grad-CAM is ReLU(mean gradient x activation): for ``sign`` +1 it is the
    ReLU'd input itself (pooled, upsampled), for ``sign`` -1 it is zero everywhere.
    """

    def __init__(self, sign: float) -> None:
        super().__init__()
        conv = nn.Conv2d(1, 1, 1)
        with torch.no_grad():
            conv.weight.fill_(1.0)
            conv.bias.zero_()
        self.features = nn.Sequential(conv, nn.ReLU(inplace=True), nn.MaxPool2d(2))
        self.sign = sign

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_from(x, 0)

    def forward_from(self, x: torch.Tensor, start: int) -> torch.Tensor:
        total = self.features[start:](x).flatten(1).sum(1, keepdim=True) * self.sign
        return torch.cat([total, total, -total], dim=1)


def square_slice() -> np.ndarray:
    """-1000 HU (maps to -1) everywhere but a 4 x 4 square of +1000 HU (maps to +1) at rows/cols 4..7."""
    img = np.full((1, 16, 16), -1000.0, dtype=np.float32)
    img[0, 4:8, 4:8] = 1000.0
    return img


def test_the_map_lights_what_raises_the_output_and_nothing_else() -> None:
    maps = explain_slices([OneChannel(1.0)], square_slice(), CARD, CPU)
    assert maps.shape == (1, 3, 16, 16) and maps.dtype == np.float32
    tot = maps[0, 0]
    assert tot.max() == 1.0 and tot[5, 5] == 1.0  # the square's centre, at the maximum
    assert tot[12:, 12:].max() == 0.0 and tot[:, 12:].max() == 0.0  # far from the square: nothing
    assert np.array_equal(maps[0, 0], maps[0, 1])  # GG has the same gradient as TOT
    assert maps[0, 2].max() == 0.0  # RET falls as the square brightens: no heat


def test_ensemble_maps_are_the_mean_of_each_models_map() -> None:
    one = explain_slices([OneChannel(1.0)], square_slice(), CARD, CPU)
    both = explain_slices([OneChannel(1.0), OneChannel(-1.0)], square_slice(), CARD, CPU)
    assert np.allclose(both[0, 0], one[0, 0] / 2)


def test_a_blank_slice_gives_an_all_zero_map_not_noise() -> None:
    blank = np.full((2, 16, 16), -1000.0, dtype=np.float32)
    assert explain_slices([OneChannel(1.0)], blank, CARD, CPU).max() == 0.0


def test_scale_to_max_keeps_zero_at_zero() -> None:
    maps = torch.tensor([[[[1.0, 3.0]]], [[[0.0, 0.0]]]])
    assert np.allclose(scale_to_max(maps).flatten().numpy(), [1 / 3, 1.0, 0.0, 0.0])


def test_target_layer_of_the_score_vgg11() -> None:
    net = vgg11(2, 1, 3, width=2, head_features=8)
    assert target_layer(net) == "features.13"  # 4th convolution's ReLU: 1/4 of the input side
    assert target_layer(net, 8) == "features.20"
    assert target_layer(OneChannel(1.0)) == "features.1"


def test_explaining_leaves_the_model_untouched() -> None:
    torch.manual_seed(0)
    net = vgg11(2, 1, 3, width=2, head_features=8).eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    explain_slices([net], np.random.default_rng(0).normal(-600, 300, (2, 16, 16)), CARD, CPU)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert all(m.inplace for m in net.modules() if isinstance(m, nn.ReLU))


def test_gradcam_equals_monais_gradcam() -> None:
    """The one-forward Grad-CAM gives MONAI's maps (same layer, same scaling), for every output."""
    import copy

    from monai.visualize import GradCAM

    from gohscore.scores.explain import gradcam

    torch.manual_seed(2)
    net = vgg11(2, 1, 3, width=2, head_features=8).eval()
    x = torch.randn(3, 1, 32, 32)
    layer = target_layer(net)
    ours = gradcam(net, x, layer)
    reference = copy.deepcopy(net)
    for m in reference.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False
    cam = GradCAM(nn_module=reference, target_layers=layer, postprocessing=scale_to_max)
    for j in range(3):
        theirs = cam(x, class_idx=j)[:, 0]
        assert torch.allclose(ours[:, j], theirs, atol=1e-5), j
    assert ours.max() > 0  # not the trivial all-zero agreement
