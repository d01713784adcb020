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
    assert [(m.in_features, m.out_features) for m in linears] == [(128, 1024), (1024, 1024), (1024, 5)]


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
