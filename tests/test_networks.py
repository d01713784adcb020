"""Shapes of the VGG11 regressors in 2D and 3D, odd and tiny sizes, and the pretrained loader."""

from __future__ import annotations

import pytest
import torch

from gohscore.errors import GohscoreError
from gohscore.networks import vgg11, vgg11_channels


@pytest.mark.parametrize(
    ("dims", "spatial", "width", "out"),
    [
        (2, (33, 47), 4, 3),
        (2, (5, 3), 2, 3),
        (2, (1, 1), 2, 1),
        (3, (20, 29, 31), 2, 5),
        (3, (24, 32, 32), 8, 5),
        (3, (7, 1, 9), 1, 5),
    ],
)
def test_vgg11_shapes(dims: int, spatial: tuple[int, ...], width: int, out: int) -> None:
    """Any spatial size, odd or smaller than 32, maps to (batch, out)."""
    net = vgg11(dims, 1, out, width=width, head_features=16)
    y = net(torch.randn(2, 1, *spatial))
    assert y.shape == (2, out)
    assert torch.isfinite(y).all()


def test_vgg11_widths_and_paper_layout() -> None:
    """Width 64 is torchvision's layout; the paper's level net doubles the last block."""
    assert vgg11_channels(64) == [64, 128, 256, 256, 512, 512, 512, 512]
    paper = vgg11_channels(8, last_block=16)
    assert paper == [8, 16, 32, 32, 64, 64, 128, 128]
    net = vgg11(3, 1, 5, channels=paper)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv3d)]
    assert [c.out_channels for c in convs] == paper
    std = vgg11(2, 1, 3, width=64)
    assert [m.out_channels for m in std.modules() if isinstance(m, torch.nn.Conv2d)] == vgg11_channels(64)
    linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    # the head sees a 6 x 8 x 8 feature grid (the paper crop / 32), not a global average
    assert [(m.in_features, m.out_features) for m in linears] == [
        (128 * 6 * 8 * 8, 1024),
        (1024, 1024),
        (1024, 5),
    ]
    head_2d = [m for m in std.modules() if isinstance(m, torch.nn.Linear)][0]
    assert head_2d.in_features == 25088  # torchvision's vgg11_bn: 512 x 7 x 7
    gap = vgg11(2, 1, 3, width=2, head_features=8, pool_size=[1, 1])
    assert [m for m in gap.modules() if isinstance(m, torch.nn.Linear)][0].in_features == 16


def test_head_sees_where_a_structure_lies() -> None:
    """With the default feature grid, a shifted input gives a different output; a global average barely can."""
    torch.manual_seed(0)
    x = torch.zeros(1, 1, 64, 64)
    x[..., 10:18, 20:28] = 1.0
    shifted = torch.roll(x, shifts=30, dims=2)
    net = vgg11(2, 1, 1, width=2, head_features=8, dropout=0.0).eval()
    for layer in net.classifier:
        if isinstance(layer, torch.nn.Linear):
            torch.nn.init.normal_(layer.weight, 0.0, 0.5)
    with torch.no_grad():
        a, b = net(x), net(shifted)
    assert (a - b).abs().item() > 1e-3 * max(a.abs().item(), b.abs().item())


def test_vgg11_multichannel_2d() -> None:
    """Three input channels work in 2D."""
    assert vgg11(2, 3, 3, width=2, head_features=8)(torch.randn(1, 3, 17, 9)).shape == (1, 3)


def test_pretrained_loads_features_and_reinitialises_first_conv(tmp_path) -> None:
    """A 3-channel state dict loads into a 1-channel net except the first conv."""
    torch.manual_seed(0)
    src = vgg11(2, 3, 3, width=2, head_features=8)
    path = tmp_path / "w.pt"
    torch.save(src.state_dict(), path)
    dst = vgg11(2, 1, 3, width=2, head_features=8, pretrained=path)
    assert torch.equal(dst.features[4].weight, src.features[4].weight)
    assert dst.features[0].weight.shape[1] == 1
    with pytest.raises(GohscoreError):
        vgg11(2, 1, 3, width=4, pretrained=path)
    with pytest.raises(GohscoreError):
        vgg11(2, 1, 3, width=2, pretrained=tmp_path / "missing.pt")


def test_forward_from_a_feature_layer_continues_the_forward_pass() -> None:
    torch.manual_seed(5)
    net = vgg11(2, 1, 3, width=2, head_features=8).eval()
    x = torch.randn(2, 1, 40, 40)
    for k in (0, 5, 14, len(net.features)):
        with torch.no_grad():
            assert torch.allclose(net.forward_from(net.features[:k](x), k), net(x), atol=1e-6), k
